//! `fleetsim report`: a history CSV read once, row by row, summed up per server and told
//! as Markdown: which servers crossed an alert's threshold (and for how long), whose memory
//! or disk grows toward full, the busiest servers, and each server's availability.
//!
//! Memory stays bounded whatever the length of the file (a week of 10,000 servers is 403
//! million rows): each server keeps a few sums, its open threshold runs, and the sums of
//! its last trend window in twelve buckets; only the crossings found are kept as a list.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::history::HEADER;
use crate::model::incidents::format_duration_ms;
use crate::settings::ReportSettings;
use crate::units::{format_instant, parse_instant};

/// The columns a row is read from, by their place in [`HEADER`].
const TIMESTAMP: usize = 0;
const SERVER: usize = 1;
const DC: usize = 2;
const ROLE: usize = 3;
const UP: usize = 4;
const CPU: usize = 5;
const MEMORY: usize = 6;
const DISK: usize = 7;
const P99: usize = 13;
const ERROR_RATE: usize = 14;

/// What a row of a server that is up says, as the rules read it.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    up: bool,
    cpu: f64,
    memory: f64,
    disk: f64,
    p99_ms: f64,
    error_rate: f64,
}

/// An alert of the shipped `alerts.yml`, as these rows show it.
pub struct Rule {
    pub alert: &'static str,
    /// The condition, as the report prints it.
    pub condition: &'static str,
    pub for_ms: i64,
    over: fn(&Reading) -> bool,
}

/// The fleet's alerts of `alerts.yml`, on the CSV's columns: the error rate and the p99
/// are the rows' own (where the rules take them from rates over 5 minutes).
pub const RULES: [Rule; 6] = [
    Rule {
        alert: "HighCpuUsage",
        condition: "CPU > 80%",
        for_ms: 5 * 60_000,
        over: |r| r.up && r.cpu > 80.0,
    },
    Rule {
        alert: "LowMemoryAvailable",
        condition: "memory available < 10%",
        for_ms: 5 * 60_000,
        over: |r| r.up && 100.0 - r.memory < 10.0,
    },
    Rule {
        alert: "DiskAlmostFull",
        condition: "disk > 90%",
        for_ms: 5 * 60_000,
        over: |r| r.up && r.disk > 90.0,
    },
    Rule {
        alert: "ServerDown",
        condition: "down",
        for_ms: 60_000,
        over: |r| !r.up,
    },
    Rule {
        alert: "HighErrorRate",
        condition: "5xx > 5%",
        for_ms: 5 * 60_000,
        over: |r| r.up && r.error_rate > 5.0,
    },
    Rule {
        alert: "HighLatencyP99",
        condition: "p99 latency > 2s",
        for_ms: 5 * 60_000,
        over: |r| r.up && r.p99_ms > 2000.0,
    },
];

/// Buckets a trend window is cut into: the fit covers the last window to a twelfth.
const TREND_BUCKETS: i64 = 12;

/// A fall from one row to the next larger than this (percentage points) is a restart or
/// a cleanup: the growth before it is not the growth since.
const RESET_DROP: f64 = 5.0;

/// Servers whose memory or disk is projected full further ahead than this are counted, not
/// listed.
const TREND_HORIZON_MS: i64 = 7 * 86_400_000;

/// Sums of a least-squares fit of `y` against `t` (hours from the file's first row).
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: f64,
    t: f64,
    y: f64,
    tt: f64,
    ty: f64,
}

impl Sums {
    fn add(&mut self, t: f64, y: f64) {
        self.n += 1.0;
        self.t += t;
        self.y += y;
        self.tt += t * t;
        self.ty += t * y;
    }

    fn merge(&mut self, o: &Sums) {
        self.n += o.n;
        self.t += o.t;
        self.y += o.y;
        self.tt += o.tt;
        self.ty += o.ty;
    }

    /// Slope (per hour) and the fitted value at `t`, given three points or more at two
    /// instants or more.
    fn fit_at(&self, t: f64) -> Option<(f64, f64)> {
        let det = self.n * self.tt - self.t * self.t;
        if self.n < 3.0 || det <= 1e-12 * self.n * self.tt.max(1.0) {
            return None;
        }
        let slope = (self.n * self.ty - self.t * self.y) / det;
        let intercept = (self.y - slope * self.t) / self.n;
        Some((slope, intercept + slope * t))
    }
}

/// A signal's recent growth: the sums of its last window's buckets, since its last drop.
#[derive(Debug, Clone, Default)]
struct Trend {
    buckets: VecDeque<(i64, Sums)>,
    last: Option<f64>,
}

impl Trend {
    fn add(&mut self, bucket: i64, t: f64, y: f64) {
        if self.last.is_some_and(|last| y < last - RESET_DROP) {
            self.buckets.clear();
        }
        self.last = Some(y);
        if self.buckets.back().is_none_or(|(b, _)| *b != bucket) {
            self.buckets.push_back((bucket, Sums::default()));
        }
        if let Some((_, sums)) = self.buckets.back_mut() {
            sums.add(t, y);
        }
        while self
            .buckets
            .front()
            .is_some_and(|(b, _)| *b <= bucket - TREND_BUCKETS)
        {
            self.buckets.pop_front();
        }
    }

    /// Slope per hour and fitted value at `t`, over the buckets still in the window at
    /// `bucket`.
    fn fit(&self, bucket: i64, t: f64) -> Option<(f64, f64)> {
        let mut sums = Sums::default();
        for (_, s) in self
            .buckets
            .iter()
            .filter(|(b, _)| *b > bucket - TREND_BUCKETS)
        {
            sums.merge(s);
        }
        sums.fit_at(t)
    }
}

/// A stretch of rows over a rule's threshold, still open.
#[derive(Debug, Clone, Copy)]
struct Run {
    start_ms: i64,
    last_over_ms: i64,
}

/// A threshold crossing held for at least its rule's `for`.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub server: usize,
    pub rule: usize,
    /// The first row over, and the first row back under (or the step after the last row
    /// over, when the server's rows stop or the file ends).
    pub start_ms: i64,
    pub end_ms: i64,
}

/// What the report keeps of one server.
#[derive(Debug, Clone)]
struct Server {
    name: String,
    dc: String,
    role: String,
    rows: u64,
    up_rows: u64,
    cpu_sum: f64,
    cpu_peak: f64,
    cpu_peak_ms: i64,
    last_ms: i64,
    runs: [Option<Run>; RULES.len()],
    memory: Trend,
    disk: Trend,
}

/// The history, summed up.
pub struct Summary {
    servers: Vec<Server>,
    crossings: Vec<Crossing>,
    rows: u64,
    first_ms: i64,
    last_ms: i64,
    step_ms: Option<i64>,
    trend_window_ms: i64,
}

/// `fleetsim report`.
pub fn run(settings: ReportSettings) -> Result<()> {
    let path = &settings.file;
    let file = File::open(path)
        .map_err(|e| Error::Runtime(format!("cannot read {}: {e}", path.display())))?;
    let summary = Summary::read(file, path, settings.trend_window_ms)?;
    let stdout = io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    summary
        .write_markdown(&mut out, path, settings.top)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Runtime(format!("cannot write the report: {e}")))
}

/// An error at `line` of `path`: `FILE:LINE: what`.
fn at(path: &Path, line: u64, what: impl std::fmt::Display) -> Error {
    Error::Runtime(format!("{}:{line}: {what}", path.display()))
}

fn text<'r>(record: &'r csv::ByteRecord, i: usize, path: &Path, line: u64) -> Result<&'r str> {
    std::str::from_utf8(&record[i])
        .map_err(|_| at(path, line, format!("{} is not UTF-8", HEADER[i])))
}

fn number(record: &csv::ByteRecord, i: usize, path: &Path, line: u64) -> Result<f64> {
    let field = text(record, i, path, line)?;
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(at(
            path,
            line,
            format!("{} `{field}` is not a number", HEADER[i]),
        )),
    }
}

impl Summary {
    /// Reads a history CSV from `input` (named `path` in errors), once.
    pub fn read(input: impl io::Read, path: &Path, trend_window_ms: i64) -> Result<Summary> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(input);
        let mut record = csv::ByteRecord::new();
        let read = |reader: &mut csv::Reader<_>, record: &mut csv::ByteRecord| {
            reader.read_byte_record(record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                at(path, line, format!("not CSV: {e}"))
            })
        };
        if !read(&mut reader, &mut record)? {
            return Err(at(path, 1, "empty file, not a fleetsim history"));
        }
        let header: Vec<&[u8]> = record.iter().collect();
        let width = header.len();
        if width < HEADER.len()
            || header[..HEADER.len()]
                .iter()
                .zip(HEADER)
                .any(|(a, b)| *a != b.as_bytes())
        {
            return Err(at(
                path,
                1,
                format!(
                    "not a fleetsim history: the header should start with `{}`",
                    HEADER.join(",")
                ),
            ));
        }
        let bucket_ms = (trend_window_ms / TREND_BUCKETS).max(1);
        let mut summary = Summary {
            servers: Vec::new(),
            crossings: Vec::new(),
            rows: 0,
            first_ms: 0,
            last_ms: 0,
            step_ms: None,
            trend_window_ms,
        };
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut stamp: Vec<u8> = Vec::new();
        let mut now_ms = 0;
        let mut next_server = 0;
        while read(&mut reader, &mut record)? {
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != width {
                return Err(at(
                    path,
                    line,
                    format!("{} fields where the header has {width}", record.len()),
                ));
            }
            if record[TIMESTAMP] != stamp[..] {
                let t = parse_instant(text(&record, TIMESTAMP, path, line)?)
                    .map_err(|e| at(path, line, format!("timestamp: {e}")))?;
                if summary.rows > 0 && t < now_ms {
                    return Err(at(
                        path,
                        line,
                        format!(
                            "timestamp {} is before the row above's ({}); rows are ordered by time",
                            format_instant(t),
                            format_instant(now_ms)
                        ),
                    ));
                }
                if summary.rows == 0 {
                    summary.first_ms = t;
                } else if summary.step_ms.is_none() {
                    summary.step_ms = Some(t - now_ms);
                }
                stamp.clear();
                stamp.extend_from_slice(&record[TIMESTAMP]);
                now_ms = t;
                next_server = 0;
            }
            // Each instant lists the servers in the same order: the next one is usually
            // the one after the last.
            let name = &record[SERVER];
            let position = match summary.servers.get(next_server) {
                Some(s) if s.name.as_bytes() == name => next_server,
                _ => match index.get(name) {
                    Some(&p) => p,
                    None => {
                        let p = summary.servers.len();
                        index.insert(name.to_vec(), p);
                        summary.servers.push(Server::new(
                            text(&record, SERVER, path, line)?,
                            text(&record, DC, path, line)?,
                            text(&record, ROLE, path, line)?,
                        ));
                        p
                    }
                },
            };
            next_server = position + 1;
            let reading = match &record[UP] {
                b"1" => Reading {
                    up: true,
                    cpu: number(&record, CPU, path, line)?,
                    memory: number(&record, MEMORY, path, line)?,
                    disk: number(&record, DISK, path, line)?,
                    p99_ms: number(&record, P99, path, line)?,
                    error_rate: number(&record, ERROR_RATE, path, line)?,
                },
                b"0" => Reading::default(),
                _ => {
                    return Err(at(
                        path,
                        line,
                        format!(
                            "up `{}` is neither 1 nor 0",
                            String::from_utf8_lossy(&record[UP])
                        ),
                    ));
                }
            };
            let server = &mut summary.servers[position];
            if server.rows > 0 && now_ms <= server.last_ms {
                return Err(at(
                    path,
                    line,
                    format!(
                        "{} has a second row at {}",
                        server.name,
                        format_instant(now_ms)
                    ),
                ));
            }
            let hours = (now_ms - summary.first_ms) as f64 / 3_600_000.0;
            server.add(
                position,
                now_ms,
                hours,
                now_ms.div_euclid(bucket_ms),
                &reading,
                summary.step_ms,
                &mut summary.crossings,
            );
            summary.rows += 1;
        }
        if summary.rows == 0 {
            return Err(at(path, 2, "no rows after the header"));
        }
        summary.last_ms = now_ms;
        let step = summary.step_ms.unwrap_or(0);
        for (p, server) in summary.servers.iter_mut().enumerate() {
            server.close_runs(p, server.last_ms + step, &mut summary.crossings);
        }
        summary
            .crossings
            .sort_by_key(|c| (c.start_ms, c.server, c.rule));
        Ok(summary)
    }

    pub fn crossings(&self) -> &[Crossing] {
        &self.crossings
    }

    /// The report, as Markdown.
    pub fn write_markdown(&self, out: &mut impl Write, path: &Path, top: usize) -> io::Result<()> {
        let step = self.step_ms.unwrap_or(0);
        writeln!(out, "# fleetsim report: {}\n", path.display())?;
        writeln!(
            out,
            "{} rows of {} servers, from {} to {} (a row every {}).\n",
            self.rows,
            self.servers.len(),
            format_instant(self.first_ms),
            format_instant(self.last_ms),
            format_duration_ms(step)
        )?;
        self.write_crossings(out)?;
        self.write_trends(out)?;
        self.write_top(out, top)?;
        self.write_availability(out, step)
    }

    fn write_crossings(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "## Thresholds crossed\n")?;
        writeln!(
            out,
            "The alerts of alerts.yml on these rows: a server's rows over a threshold for at \
             least the rule's `for`, from the first row over to the first row back under.\n"
        )?;
        if self.crossings.is_empty() {
            return writeln!(out, "None.\n");
        }
        writeln!(
            out,
            "| server | alert | condition | for | from | to | lasted |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|")?;
        for c in &self.crossings {
            let rule = &RULES[c.rule];
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                self.servers[c.server].name,
                rule.alert,
                rule.condition,
                format_duration_ms(rule.for_ms),
                format_instant(c.start_ms),
                format_instant(c.end_ms),
                format_duration_ms(c.end_ms - c.start_ms)
            )?;
        }
        writeln!(out)
    }

    fn write_trends(&self, out: &mut impl Write) -> io::Result<()> {
        let bucket_ms = (self.trend_window_ms / TREND_BUCKETS).max(1);
        let bucket = self.last_ms.div_euclid(bucket_ms);
        let hours = (self.last_ms - self.first_ms) as f64 / 3_600_000.0;
        let mut growing = Vec::new();
        let mut slower = 0;
        for server in &self.servers {
            for (signal, trend) in [("memory", &server.memory), ("disk", &server.disk)] {
                // Only servers with rows in the last window: the others stopped.
                let Some((slope, now)) = trend.fit(bucket, hours) else {
                    continue;
                };
                if slope <= 0.0 {
                    continue;
                }
                // To the minute: the fit is not finer than that.
                let full_in_min = ((100.0 - now).max(0.0) / slope * 60.0).round() as i64;
                let full_in_ms = full_in_min * 60_000;
                if full_in_ms > TREND_HORIZON_MS {
                    slower += 1;
                    continue;
                }
                growing.push((full_in_ms, &server.name, signal, now, slope));
            }
        }
        growing.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        writeln!(out, "## Trends\n")?;
        writeln!(
            out,
            "Memory and disk growing: a least-squares fit over the last {} of rows (since the \
             last drop of more than {RESET_DROP} points, a restart or a cleanup), projected to \
             100%.\n",
            format_duration_ms(self.trend_window_ms)
        )?;
        if growing.is_empty() {
            writeln!(out, "None projected full within 7 days.\n")?;
        } else {
            writeln!(
                out,
                "| server | signal | fitted now | slope | full at | in |"
            )?;
            writeln!(out, "|---|---|---|---|---|---|")?;
            for (full_in_ms, name, signal, now, slope) in &growing {
                writeln!(
                    out,
                    "| {name} | {signal} | {now:.1}% | {slope:+.2} points/h | {} | {} |",
                    format_instant(self.last_ms + full_in_ms),
                    format_duration_ms(*full_in_ms)
                )?;
            }
            writeln!(out)?;
        }
        if slower > 0 {
            writeln!(
                out,
                "{slower} more growing, projected full later than 7 days from the last row.\n"
            )?;
        }
        Ok(())
    }

    fn write_top(&self, out: &mut impl Write, top: usize) -> io::Result<()> {
        let mut busy: Vec<&Server> = self.servers.iter().filter(|s| s.up_rows > 0).collect();
        busy.sort_by(|a, b| {
            b.mean_cpu()
                .total_cmp(&a.mean_cpu())
                .then(a.name.cmp(&b.name))
        });
        busy.truncate(top);
        writeln!(out, "## Top {top} servers by load\n")?;
        writeln!(out, "By mean CPU over the rows up.\n")?;
        writeln!(
            out,
            "| server | role | dc | mean CPU | peak CPU | peak at |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for s in busy {
            writeln!(
                out,
                "| {} | {} | {} | {:.2}% | {:.2}% | {} |",
                s.name,
                s.role,
                s.dc,
                s.mean_cpu(),
                s.cpu_peak,
                format_instant(s.cpu_peak_ms)
            )?;
        }
        writeln!(out)
    }

    fn write_availability(&self, out: &mut impl Write, step: i64) -> io::Result<()> {
        let mut servers: Vec<&Server> = self.servers.iter().collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        writeln!(out, "## Availability\n")?;
        writeln!(out, "The share of each server's rows that are up.\n")?;
        writeln!(
            out,
            "| server | role | dc | rows | up | down rows | down for |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|")?;
        for s in servers {
            let down = s.rows - s.up_rows;
            writeln!(
                out,
                "| {} | {} | {} | {} | {:.2}% | {down} | {} |",
                s.name,
                s.role,
                s.dc,
                s.rows,
                100.0 * s.up_rows as f64 / s.rows as f64,
                format_duration_ms(down as i64 * step)
            )?;
        }
        Ok(())
    }
}

impl Server {
    fn new(name: &str, dc: &str, role: &str) -> Server {
        Server {
            name: name.to_string(),
            dc: dc.to_string(),
            role: role.to_string(),
            rows: 0,
            up_rows: 0,
            cpu_sum: 0.0,
            cpu_peak: f64::MIN,
            cpu_peak_ms: 0,
            last_ms: 0,
            runs: [None; RULES.len()],
            memory: Trend::default(),
            disk: Trend::default(),
        }
    }

    fn mean_cpu(&self) -> f64 {
        self.cpu_sum / self.up_rows.max(1) as f64
    }

    /// Takes in the server's row at `now_ms`.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        position: usize,
        now_ms: i64,
        hours: f64,
        bucket: i64,
        r: &Reading,
        step_ms: Option<i64>,
        crossings: &mut Vec<Crossing>,
    ) {
        // A gap in the server's rows (it left the fleet) ends what was open.
        if self.rows > 0 && step_ms.is_some_and(|step| now_ms - self.last_ms > step) {
            let end = self.last_ms + step_ms.unwrap_or(0);
            self.close_runs(position, end, crossings);
        }
        for (i, rule) in RULES.iter().enumerate() {
            if !(rule.over)(r) {
                self.close_run(position, i, now_ms, crossings);
                continue;
            }
            match &mut self.runs[i] {
                Some(open) => open.last_over_ms = now_ms,
                run @ None => {
                    *run = Some(Run {
                        start_ms: now_ms,
                        last_over_ms: now_ms,
                    })
                }
            }
        }
        self.rows += 1;
        self.last_ms = now_ms;
        if r.up {
            self.up_rows += 1;
            self.cpu_sum += r.cpu;
            if r.cpu > self.cpu_peak {
                self.cpu_peak = r.cpu;
                self.cpu_peak_ms = now_ms;
            }
            self.memory.add(bucket, hours, r.memory);
            self.disk.add(bucket, hours, r.disk);
        }
    }

    fn close_run(&mut self, position: usize, rule: usize, end_ms: i64, out: &mut Vec<Crossing>) {
        if let Some(run) = self.runs[rule].take()
            && run.last_over_ms - run.start_ms >= RULES[rule].for_ms
        {
            out.push(Crossing {
                server: position,
                rule,
                start_ms: run.start_ms,
                end_ms,
            });
        }
    }

    fn close_runs(&mut self, position: usize, end_ms: i64, out: &mut Vec<Crossing>) {
        for rule in 0..RULES.len() {
            self.close_run(position, rule, end_ms, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        HEADER.join(",")
    }

    fn row(t: &str, server: &str, cpu: f64, memory: f64) -> String {
        format!("{t},{server},dc1,web,1,{cpu},{memory},30,1,1,1,10,20,30,0.1")
    }

    fn minute(m: u32) -> String {
        format!("2026-01-01T{:02}:{:02}:00Z", m / 60, m % 60)
    }

    fn read(text: &str) -> Result<Summary> {
        Summary::read(text.as_bytes(), Path::new("h.csv"), 6 * 3_600_000)
    }

    #[test]
    fn a_crossing_is_kept_when_held_for_the_rule_s_for() {
        let mut text = header() + "\n";
        // srv-01 over 80% from minute 2 to 7 (held 5m), srv-02 from 2 to 5 (held 3m).
        for m in 0..10 {
            let hot = |from: u32, to: u32| if (from..=to).contains(&m) { 95.0 } else { 20.0 };
            text += &(row(&minute(m), "srv-01", hot(2, 7), 40.0) + "\n");
            text += &(row(&minute(m), "srv-02", hot(2, 5), 40.0) + "\n");
        }
        let summary = read(&text).unwrap();
        assert_eq!(
            summary.crossings(),
            [Crossing {
                server: 0,
                rule: 0,
                start_ms: parse_instant(&minute(2)).unwrap(),
                end_ms: parse_instant(&minute(8)).unwrap(),
            }]
        );
    }

    #[test]
    fn a_steady_climb_is_projected_full_where_it_reaches_100() {
        let mut text = header() + "\n";
        // Memory from 40% by 5 points an hour: 100% at hour 12.
        for m in 0..=240 {
            text += &(row(&minute(m), "srv-01", 20.0, 40.0 + 5.0 * m as f64 / 60.0) + "\n");
        }
        let summary = read(&text).unwrap();
        let mut out = Vec::new();
        summary
            .write_markdown(&mut out, Path::new("h.csv"), 5)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "| srv-01 | memory | 60.0% | +5.00 points/h | 2026-01-01T12:00:00Z | 8h |"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_input_is_located() {
        let e = |text: &str| read(text).err().unwrap().to_string();
        assert_eq!(
            e("a,b\n1,2\n"),
            format!(
                "h.csv:1: not a fleetsim history: the header should start with `{}`",
                header()
            )
        );
        assert_eq!(e(""), "h.csv:1: empty file, not a fleetsim history");
        let good = row(&minute(0), "srv-01", 20.0, 40.0);
        assert_eq!(
            e(&format!(
                "{}\n{good}\n{}\n",
                header(),
                good.replace(",20,", ",x,")
            )),
            "h.csv:3: cpu_usage `x` is not a number"
        );
        assert_eq!(
            e(&format!("{}\n{good}\n1,2\n", header())),
            "h.csv:3: 2 fields where the header has 15"
        );
        assert!(
            e(&format!("{}\n{good}\n{good}\n", header()))
                .starts_with("h.csv:3: srv-01 has a second row")
        );
    }
}
