//! The history as OpenMetrics text, in the form `promtool tsdb create-blocks-from
//! openmetrics` imports: the exporter's own series, with timestamps in seconds, `# EOF`
//! last, and ordered family by family, then series by series, then by time, as
//! OpenMetrics requires (a strict parser refuses a series whose samples are not together).
//!
//! The model produces every family and every server at once, instant by instant, which is
//! the transposed order. Servers are independent, so each server is run alone over the
//! whole history: its samples of each family come out series by series already, and are
//! appended to that family's spool (an anonymous temporary file). Workers take contiguous
//! ranges of servers, each with spools of its own, and the spools are joined family by
//! family, worker by worker, at the end: memory stays flat however long the history and
//! however many servers, at the cost of writing it twice.
//!
//! The incidents' series are the fleet's, not a server's: their activity is kept as runs
//! of consecutive instants (a few per incident, whatever the history's length) and written
//! from those.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::exposition::{
    ConstLabels, Dimension, Extra, Family, FleetLabels, Part, Read, STATUSES, SampleWriter,
    SeriesSink, visit_family,
};
use crate::model::{Member, Timeline};

/// Each worker holds a spool per family open: past this many workers the open files, not
/// the cores, would be the limit.
const MAX_WORKERS: usize = 16;

/// Bytes buffered per spool before a write.
const SPOOL_BUFFER: usize = 1 << 17;

/// The instants of a history: `start_ms`, `start_ms + step_ms`, ... before `end_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

impl Grid {
    fn len(&self) -> i64 {
        if self.end_ms <= self.start_ms {
            0
        } else {
            (self.end_ms - self.start_ms + self.step_ms - 1) / self.step_ms
        }
    }

    fn at(&self, index: i64) -> i64 {
        self.start_ms + index * self.step_ms
    }
}

/// `1732449600` for whole seconds, `1732449600.5` otherwise.
fn push_timestamp(buf: &mut Vec<u8>, unix_ms: i64) {
    let mut ints = itoa::Buffer::new();
    buf.push(b' ');
    buf.extend_from_slice(ints.format(unix_ms.div_euclid(1000)).as_bytes());
    let ms = unix_ms.rem_euclid(1000);
    if ms != 0 {
        let digits = format!("{ms:03}");
        buf.push(b'.');
        buf.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
}

fn is_fleet_wide(family: Family) -> bool {
    matches!(family.signal().read, Read::Incidents)
}

/// Writes the header, every family, and `# EOF` to `out`; spools go in `spool_dir`.
/// `timeline_of` makes the timeline of one server from the history's start. `progress` is
/// told how many rows (a server at an instant) were added since it was last told, and
/// returns false to stop: then nothing more is written.
pub fn write_openmetrics<W: Write>(
    mut out: W,
    spool_dir: &Path,
    members: &[Member],
    timeline_of: impl Fn(&Member) -> Timeline + Sync,
    consts: &ConstLabels,
    grid: Grid,
    mut progress: impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    let workers = crate::machine::cores()
        .min(MAX_WORKERS)
        .min(members.len())
        .max(1);
    let per_worker = members.len().div_ceil(workers).max(1);
    let rows = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (mut spools, incidents) = std::thread::scope(|scope| {
        let handles: Vec<_> = members
            .chunks(per_worker)
            .enumerate()
            .map(|(w, part)| {
                let (rows, stop, timeline_of) = (&rows, &stop, &timeline_of);
                scope.spawn(move || {
                    let spooled = spool_servers(
                        spool_dir,
                        part,
                        w == 0,
                        timeline_of,
                        consts,
                        grid,
                        rows,
                        stop,
                    );
                    // A failed write (a full disk) fails the history: the others need not
                    // run on.
                    if spooled.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    spooled
                })
            })
            .collect();
        let mut told = 0;
        loop {
            let finished = handles.iter().all(|h| h.is_finished());
            let now = rows.load(Ordering::Relaxed);
            if now > told {
                if !progress(now - told) {
                    stop.store(true, Ordering::Relaxed);
                }
                told = now;
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut spools = Vec::with_capacity(handles.len());
        let mut incidents = IncidentRuns::default();
        for handle in handles {
            let (worker_spools, worker_incidents) = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            spools.push(worker_spools);
            if let Some(found) = worker_incidents {
                incidents = found;
            }
        }
        io::Result::Ok((spools, incidents))
    })?;
    if stop.load(Ordering::Relaxed) {
        return Ok(rows.into_inner());
    }
    let labels = FleetLabels::with_labels(&[], consts);
    for (f, family) in Family::ALL.iter().enumerate() {
        let name = family.openmetrics_name();
        writeln!(out, "# TYPE {name} {}", family.kind().name())?;
        writeln!(out, "# HELP {name} {}", family.help())?;
        if is_fleet_wide(*family) {
            incidents.write(&mut out, *family, &labels, grid)?;
            continue;
        }
        for worker in &mut spools {
            let file = &mut worker[f];
            file.seek(SeekFrom::Start(0))?;
            io::copy(file, &mut out)?;
        }
    }
    out.write_all(b"# EOF\n")?;
    out.flush()?;
    Ok(rows.into_inner())
}

/// Runs each server of `part` alone over the grid, appending its samples to one spool per
/// family (the fleet-wide family's stays empty); with `incidents`, also records the
/// incidents' runs, from the first server's frames.
#[allow(clippy::too_many_arguments)]
fn spool_servers(
    spool_dir: &Path,
    part: &[Member],
    incidents: bool,
    timeline_of: &(impl Fn(&Member) -> Timeline + Sync),
    consts: &ConstLabels,
    grid: Grid,
    rows: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<(Vec<File>, Option<IncidentRuns>)> {
    let mut spools: Vec<FamilySpool> = Family::ALL
        .iter()
        .map(|family| FamilySpool::new(spool_dir, *family))
        .collect::<io::Result<_>>()?;
    let mut runs = incidents.then(IncidentRuns::default);
    let mut recording = incidents;
    let mut bufs: [Vec<u8>; STATUSES.len()] = Default::default();
    let mut timestamp = Vec::with_capacity(24);
    for member in part {
        let mut timeline = timeline_of(member);
        let mut labels = FleetLabels::with_labels(timeline.members(), consts);
        for index in 0..grid.len() {
            let t = grid.at(index);
            let frame = timeline.at(t);
            if !labels.is_current(&frame) {
                labels.refresh(&frame);
            }
            timestamp.clear();
            push_timestamp(&mut timestamp, t);
            for (family, spool) in Family::ALL.iter().zip(&mut spools) {
                if is_fleet_wide(*family) {
                    if let (true, Some(runs)) = (recording, &mut runs) {
                        visit_family(&mut runs.at(index), *family, &frame, false);
                    }
                    continue;
                }
                for buf in &mut bufs {
                    buf.clear();
                }
                let mut by_status = ByStatus {
                    writers: bufs
                        .each_mut()
                        .map(|buf| SampleWriter::new(buf, &labels, &timestamp)),
                };
                visit_family(&mut by_status, *family, &frame, true);
                spool.write(&bufs)?;
            }
            rows.fetch_add(u64::from(frame.present(0)), Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        for spool in &mut spools {
            spool.end_server()?;
        }
        // Every server's frames carry the fleet's incidents: the first one's are enough.
        recording = false;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let files = spools
        .into_iter()
        .map(FamilySpool::into_file)
        .collect::<io::Result<_>>()?;
    Ok((files, runs))
}

/// A family's spool. A family by status has a series per status for each server, which
/// must not interleave: the first status' samples go to the spool as they come, the
/// others' to a spool of their own, appended once the server's history is done.
struct FamilySpool {
    spool: BufWriter<File>,
    later: Vec<BufWriter<File>>,
}

impl FamilySpool {
    fn new(spool_dir: &Path, family: Family) -> io::Result<FamilySpool> {
        let open =
            || tempfile::tempfile_in(spool_dir).map(|f| BufWriter::with_capacity(SPOOL_BUFFER, f));
        let statuses = match family.dimension() {
            Dimension::Status => STATUSES.len(),
            Dimension::None | Dimension::Le => 1,
        };
        Ok(FamilySpool {
            spool: open()?,
            later: (1..statuses).map(|_| open()).collect::<io::Result<_>>()?,
        })
    }

    /// One instant's samples of a server, by status.
    fn write(&mut self, by_status: &[Vec<u8>]) -> io::Result<()> {
        self.spool.write_all(&by_status[0])?;
        for (later, buf) in self.later.iter_mut().zip(&by_status[1..]) {
            later.write_all(buf)?;
        }
        Ok(())
    }

    /// Appends the server's other statuses to the spool, and empties their spools.
    fn end_server(&mut self) -> io::Result<()> {
        for later in &mut self.later {
            later.flush()?;
            let file = later.get_mut();
            file.seek(SeekFrom::Start(0))?;
            io::copy(file, &mut self.spool)?;
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
        }
        Ok(())
    }

    fn into_file(self) -> io::Result<File> {
        self.spool.into_inner().map_err(|e| e.into_error())
    }
}

/// Sends each sample of a server to the writer of its status (all to the first when the
/// family has no status).
struct ByStatus<'a> {
    writers: [SampleWriter<'a>; STATUSES.len()],
}

impl SeriesSink for ByStatus<'_> {
    #[inline]
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        let status = match extra {
            Extra::Status(status) => status,
            Extra::None | Extra::Le(_) => 0,
        };
        self.writers[status].server_series(family, server, part, extra, value);
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        self.writers[0].incident_series(family, kind, target, value);
    }
}

/// The incidents' series in the order they first appear, each as runs of consecutive
/// grid indices with one value.
#[derive(Debug, Default)]
struct IncidentRuns {
    series: Vec<IncidentSeries>,
    /// Where each (kind, target) is in `series`.
    by_labels: HashMap<(String, String), usize>,
}

#[derive(Debug)]
struct IncidentSeries {
    kind: String,
    target: String,
    runs: Vec<Run>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    first: i64,
    last: i64,
    value: f64,
}

/// Records the incidents' series of the frame at grid index `index`.
struct Recorder<'a> {
    runs: &'a mut IncidentRuns,
    index: i64,
}

impl IncidentRuns {
    fn at(&mut self, index: i64) -> Recorder<'_> {
        Recorder { runs: self, index }
    }

    fn record(&mut self, kind: &str, target: &str, index: i64, value: f64) {
        let key = (kind.to_string(), target.to_string());
        let at = match self.by_labels.get(&key) {
            Some(&at) => at,
            None => {
                self.series.push(IncidentSeries {
                    kind: key.0.clone(),
                    target: key.1.clone(),
                    runs: Vec::new(),
                });
                self.by_labels.insert(key, self.series.len() - 1);
                self.series.len() - 1
            }
        };
        let runs = &mut self.series[at].runs;
        match runs.last_mut() {
            Some(run) if run.last + 1 == index && run.value == value => run.last = index,
            _ => runs.push(Run {
                first: index,
                last: index,
                value,
            }),
        }
    }

    /// Every sample of every series, series by series, in time order.
    fn write(
        &self,
        out: &mut impl Write,
        family: Family,
        labels: &FleetLabels,
        grid: Grid,
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 << 12);
        let mut timestamp = Vec::with_capacity(24);
        for series in &self.series {
            for run in &series.runs {
                for index in run.first..=run.last {
                    timestamp.clear();
                    push_timestamp(&mut timestamp, grid.at(index));
                    buf.clear();
                    SampleWriter::new(&mut buf, labels, &timestamp).incident_series(
                        family,
                        &series.kind,
                        &series.target,
                        run.value,
                    );
                    out.write_all(&buf)?;
                }
            }
        }
        Ok(())
    }
}

impl SeriesSink for Recorder<'_> {
    fn server_series(&mut self, _: Family, _: usize, _: Part, _: Extra, _: f64) {}

    fn incident_series(&mut self, _: Family, kind: &str, target: &str, value: f64) {
        self.runs.record(kind, target, self.index, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_seconds() {
        let mut b = Vec::new();
        push_timestamp(&mut b, 1_732_449_600_000);
        push_timestamp(&mut b, 1_732_449_600_500);
        push_timestamp(&mut b, 1_732_449_600_025);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            " 1732449600 1732449600.5 1732449600.025"
        );
    }

    #[test]
    fn incidents_are_kept_as_runs_of_instants_per_series() {
        let mut runs = IncidentRuns::default();
        for index in [0, 1, 2, 5, 6] {
            runs.record("outage", "server=srv-01", index, 1.0);
        }
        runs.record("cpu_spike", "role=db", 1, 1.0);
        runs.record("cpu_spike", "role=db", 2, 0.5);
        let found: Vec<(&str, Vec<Run>)> = runs
            .series
            .iter()
            .map(|s| (s.kind.as_str(), s.runs.clone()))
            .collect();
        let run = |first, last, value| Run { first, last, value };
        assert_eq!(
            found,
            [
                ("outage", vec![run(0, 2, 1.0), run(5, 6, 1.0)]),
                ("cpu_spike", vec![run(1, 1, 1.0), run(2, 2, 0.5)]),
            ]
        );
    }
}
