//! The CSV history: one row per server per instant, ordered by time then server.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::exposition::{ConstLabels, LabelCache, RenderLabels};
use crate::model::server::{Z95, Z99};
use crate::model::{Frame, Member, Timeline};
use crate::units::format_instant;

pub const HEADER: [&str; 15] = [
    "timestamp",
    "server",
    "dc",
    "role",
    "up",
    "cpu_usage",
    "memory_usage",
    "disk_usage",
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
    "rps",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "error_rate",
];

/// The numeric fields of a row, each with its comma, are written into a buffer of this
/// size on the stack, then appended at once: 10 fields of at most 25 bytes (a comma, a
/// sign, 19 digits, a point and 3 decimals).
const METRICS_MAX: usize = 10 * 25;

/// The numeric fields of a row being written.
struct Fields {
    bytes: [u8; METRICS_MAX],
    len: usize,
}

/// "00" to "99", for writing two digits at a time.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

impl Fields {
    fn new() -> Fields {
        Fields {
            bytes: [0; METRICS_MAX],
            len: 0,
        }
    }

    /// Appends a comma and `value` rounded to `DECIMALS` places (half away from zero, as
    /// `f64::round`), from an integer, so it is fast and the same on every platform. The
    /// length is known first, so the digits go straight to their places, two at a time;
    /// `DECIMALS` is a constant so that its divisions are multiplications.
    fn push_fixed<const DECIMALS: usize>(&mut self, value: f64) {
        let unit = 10u64.pow(DECIMALS as u32);
        let scaled = round_to_int(value * unit as f64);
        let mut rest = scaled.unsigned_abs();
        let whole_digits = digit_count(rest / unit);
        let sign = usize::from(scaled < 0);
        let point = usize::from(DECIMALS > 0);
        let start = self.len;
        let end = start + 1 + sign + whole_digits + point + DECIMALS;
        let out = &mut self.bytes[start..end];
        out[0] = b',';
        if sign == 1 {
            out[1] = b'-';
        }
        let mut at = out.len();
        // The decimals in one division, then by pairs: a chain of divisions by 10 would
        // make each digit wait for the one after it.
        let mut frac = (rest % unit) as usize;
        rest /= unit;
        if DECIMALS % 2 == 1 {
            at -= 1;
            out[at] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        for _ in 0..DECIMALS / 2 {
            let pair = frac % 100 * 2;
            frac /= 100;
            at -= 2;
            out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if DECIMALS > 0 {
            at -= 1;
            out[at] = b'.';
        }
        while rest >= 100 {
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            at -= 2;
            out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if rest >= 10 {
            let pair = rest as usize * 2;
            at -= 2;
            out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            at -= 1;
            out[at] = b'0' + rest as u8;
        }
        debug_assert_eq!(at, 1 + sign);
        self.len = end;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The decimal digits of `n`, by comparisons: `u64::ilog10` divides, which costs more.
fn digit_count(n: u64) -> usize {
    const POWERS: [u64; 19] = {
        let mut p = [10u64; 19];
        let mut i = 1;
        while i < 19 {
            p[i] = p[i - 1] * 10;
            i += 1;
        }
        p
    };
    1 + POWERS.iter().take_while(|&&p| n >= p).count()
}

/// `x.round() as i64` without the call to the C library's `round` that x86-64's baseline
/// needs (it has no rounding instruction): truncate, then correct by the remainder, which
/// is exact. The correction is arithmetic, not a branch: whether a value's remainder
/// reaches a half is a coin toss, and a branch on it would be mispredicted every other
/// field.
fn round_to_int(x: f64) -> i64 {
    let truncated = x as i64;
    let rest = x - truncated as f64;
    let correction = i64::from(rest >= 0.5) - i64::from(rest <= -0.5);
    truncated.saturating_add(correction)
}

/// `e^x` to within 2 units in the last place, in a third of `libm::exp`'s time (it has a
/// division and a reduction for every range): two of them are a tenth of a CSV row's cost,
/// and the percentiles they make are rounded to 3 decimals. `x` is a percentile's z-score
/// times the log-normal spread, within a few units of 0; beyond ±700 this hands over to
/// `libm`. It is `2^(k/64) e^r` with `|r| <= ln 2 / 128`, the power from a table and
/// `e^r` from its Taylor series to `r^6` (error below 2^-60).
fn exp_for_percentiles(x: f64) -> f64 {
    const STEPS: f64 = 64.0;
    // ln 2 / 64 in two parts: the first has zeros in its low bits, so `k * LN2_HI` is exact.
    const LN2_HI: f64 = 0.010_830_424_260_348_082;
    const LN2_LO: f64 = 4.359_010_638_708_991_4e-10;
    if !(-700.0..=700.0).contains(&x) {
        return libm::exp(x);
    }
    let k = round_to_int(x * (STEPS / std::f64::consts::LN_2));
    let r = (x - k as f64 * LN2_HI) - k as f64 * LN2_LO;
    let power = powers_of_two_64ths()[k.rem_euclid(64) as usize];
    let scale = f64::from_bits(((k.div_euclid(64) + 1023) as u64) << 52);
    let series = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    power * series * scale
}

/// 2^(j/64) for j in 0..64, from `libm`, once.
fn powers_of_two_64ths() -> &'static [f64; 64] {
    static TABLE: std::sync::OnceLock<[f64; 64]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|j| libm::exp2(j as f64 / 64.0)))
}

/// A server that is up: its numeric fields, in header order from `cpu_usage` on, each
/// preceded by a comma.
fn push_metrics(row: &mut Vec<u8>, frame: &Frame, i: usize) {
    let median_ms = frame.value(i, |s| &s.latency_median) * 1000.0;
    let spread = frame.value(i, |s| &s.latency_spread);
    let mut fields = Fields::new();
    fields.push_fixed::<2>(frame.value(i, |s| &s.cpu));
    fields.push_fixed::<2>(frame.value(i, |s| &s.memory));
    fields.push_fixed::<2>(frame.value(i, |s| &s.disk));
    fields.push_fixed::<1>(frame.value(i, |s| &s.receive_bps));
    fields.push_fixed::<1>(frame.value(i, |s| &s.transmit_bps));
    fields.push_fixed::<2>(frame.value(i, |s| &s.rps));
    fields.push_fixed::<3>(median_ms);
    fields.push_fixed::<3>(median_ms * exp_for_percentiles(Z95 * spread));
    fields.push_fixed::<3>(median_ms * exp_for_percentiles(Z99 * spread));
    fields.push_fixed::<3>(frame.value(i, |s| &s.server_error) * 100.0);
    row.extend_from_slice(fields.as_bytes());
}

/// CSV fields, quoted as CSV needs (a name or label from the config may hold a comma or a
/// quote), each after a comma.
fn csv_fields<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b','))
        .from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(fields);
    let mut out = vec![b','];
    out.extend(w.into_inner().unwrap_or_default());
    out.pop(); // the record's terminator
    out
}

/// Renders the part of each server's row that changes only when churn renames its
/// machine: `,server,dc,role,`.
#[derive(Debug, Clone, Copy)]
struct RowPrefix;

impl RenderLabels for RowPrefix {
    type Rendered = Vec<u8>;

    fn render(&mut self, m: &Member, name: &str) -> Vec<u8> {
        let mut p = csv_fields([name, &m.dc, m.role.name()]);
        p.push(b',');
        p
    }
}

/// Appends the rows of one instant of one slice of the fleet (its servers in the fleet at
/// that instant); `suffix` is the constant labels' columns. Returns the rows.
fn push_rows(
    out: &mut Vec<u8>,
    stamp: &[u8],
    frame: &Frame,
    prefixes: &[Vec<u8>],
    suffix: &[u8],
) -> u64 {
    let mut rows = 0;
    for (i, prefix) in prefixes.iter().enumerate() {
        if !frame.present(i) {
            continue;
        }
        rows += 1;
        out.extend_from_slice(stamp);
        out.extend_from_slice(prefix);
        if frame.up(i) {
            out.push(b'1');
            push_metrics(out, frame, i);
        } else {
            out.extend_from_slice(b"0,,,,,,,,,,");
        }
        // Without constant labels there is no suffix: no call to copy nothing.
        if !suffix.is_empty() {
            out.extend_from_slice(suffix);
        }
        out.push(b'\n');
    }
    rows
}

/// Rows in a block of instants: enough to keep the cores busy while the file is written,
/// few enough that memory stays flat (a few MB).
const ROWS_AHEAD: usize = 32_768;

/// Blocks sent to the slices before the first comes back: one written while the next is
/// computed.
const BLOCKS_AHEAD: usize = 2;

/// One instant's rows of one slice.
struct Rows {
    bytes: Vec<u8>,
    count: u64,
}

/// The header line: the usual columns, then one per constant label, named by it.
fn header(labels: &ConstLabels) -> String {
    let mut header = HEADER.join(",");
    for (name, _) in labels.iter() {
        header.push(',');
        header.push_str(name);
    }
    header.push('\n');
    header
}

/// The constant labels' values, each after a comma: the end of every row.
fn row_suffix(labels: &ConstLabels) -> Vec<u8> {
    if labels.is_empty() {
        Vec::new()
    } else {
        csv_fields(labels.iter().map(|(_, v)| v))
    }
}

/// One slice's rows at each instant of `block`.
fn slice_rows(
    timeline: &mut Timeline,
    prefixes: &mut LabelCache<RowPrefix>,
    block: &[i64],
    suffix: &[u8],
) -> Vec<Rows> {
    block
        .iter()
        .map(|&t| {
            let frame = timeline.at(t);
            if !prefixes.is_current(&frame) {
                prefixes.refresh(&frame);
            }
            let stamp = format_instant(t);
            let mut bytes = Vec::with_capacity(prefixes.len() * 128);
            let count = push_rows(
                &mut bytes,
                stamp.as_bytes(),
                &frame,
                prefixes.servers(),
                suffix,
            );
            Rows { bytes, count }
        })
        .collect()
}

/// A slice's thread: it is sent blocks of instants and answers with their rows.
struct Slice {
    work: SyncSender<Arc<[i64]>>,
    results: Receiver<Vec<Rows>>,
}

impl Slice {
    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        timeline: &'scope mut Timeline,
        suffix: &'scope [u8],
    ) -> Slice {
        let (work, blocks) = sync_channel::<Arc<[i64]>>(BLOCKS_AHEAD);
        let (done, results) = sync_channel::<Vec<Rows>>(BLOCKS_AHEAD);
        scope.spawn(move || {
            let mut prefixes = LabelCache::render(timeline.members(), RowPrefix);
            for block in blocks {
                let rows = slice_rows(timeline, &mut prefixes, &block, suffix);
                if done.send(rows).is_err() {
                    return; // the writer stopped
                }
            }
        });
        Slice { work, results }
    }
}

fn stopped() -> io::Error {
    io::Error::other("a slice of the fleet stopped")
}

/// Keeps `BLOCKS_AHEAD` blocks of instants at the slices and writes their rows as they
/// come back, instant by instant, the slices' parts in order. Returns the rows written,
/// when the instants are done or `progress` says stop.
fn interleave(
    out: &mut impl Write,
    slices: &[Slice],
    instants: impl Iterator<Item = i64>,
    per_block: usize,
    progress: &mut impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    let mut instants = instants.peekable();
    let mut rows = 0u64;
    let mut in_flight = VecDeque::new();
    loop {
        while in_flight.len() < BLOCKS_AHEAD && instants.peek().is_some() {
            let block: Arc<[i64]> = instants.by_ref().take(per_block).collect();
            for slice in slices {
                slice.work.send(block.clone()).map_err(|_| stopped())?;
            }
            in_flight.push_back(block.len());
        }
        let Some(len) = in_flight.pop_front() else {
            return Ok(rows);
        };
        let mut parts = Vec::with_capacity(slices.len());
        for slice in slices {
            parts.push(slice.results.recv().map_err(|_| stopped())?);
        }
        for j in 0..len {
            let mut added = 0;
            for part in &parts {
                out.write_all(&part[j].bytes)?;
                added += part[j].count;
            }
            rows += added;
            if !progress(added) {
                // Returning drops the channels, which stops the slices.
                return Ok(rows);
            }
        }
    }
}

/// Writes the header and a row per server per instant, in time then server order, with a
/// column per constant label after the usual ones, named by the label; `progress` is told
/// how many rows each instant added and returns false to stop early. Returns the rows
/// written.
///
/// `slices` are timelines of consecutive parts of the fleet, in order (one is fine): each
/// is stepped and formatted on a thread of its own, and the writer interleaves their rows
/// instant by instant. Servers are independent, so the file is the same however the fleet
/// is sliced.
pub fn write_csv<W: Write>(
    mut out: W,
    slices: &mut [Timeline],
    labels: &ConstLabels,
    instants: impl Iterator<Item = i64>,
    mut progress: impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    out.write_all(header(labels).as_bytes())?;
    let suffix = row_suffix(labels);
    let servers: usize = slices.iter().map(|t| t.members().len()).sum();
    let per_block = (ROWS_AHEAD / servers.max(1)).clamp(1, 256);
    let rows = std::thread::scope(|scope| {
        let workers: Vec<Slice> = slices
            .iter_mut()
            .map(|timeline| Slice::spawn(scope, timeline, &suffix))
            .collect();
        interleave(&mut out, &workers, instants, per_block, &mut progress)
    })?;
    out.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, d: u32) -> String {
        let mut f = Fields::new();
        match d {
            0 => f.push_fixed::<0>(v),
            1 => f.push_fixed::<1>(v),
            2 => f.push_fixed::<2>(v),
            3 => f.push_fixed::<3>(v),
            _ => unreachable!("the tests use 0 to 3 decimals"),
        }
        let text = String::from_utf8(f.as_bytes().to_vec()).unwrap();
        text.strip_prefix(',')
            .expect("a field starts with its comma")
            .to_string()
    }

    #[test]
    fn fixed_point_formatting() {
        assert_eq!(fixed(57.126, 2), "57.13");
        assert_eq!(fixed(0.004, 2), "0.00");
        assert_eq!(fixed(3.0, 3), "3.000");
        assert_eq!(fixed(0.0525, 3), "0.053");
        assert_eq!(fixed(-1.5, 1), "-1.5");
        assert_eq!(fixed(120_000.04, 1), "120000.0");
        assert_eq!(fixed(7.0, 0), "7");
        assert_eq!(fixed(0.0, 0), "0");
        assert_eq!(fixed(0.0, 2), "0.00");
        assert_eq!(fixed(-0.004, 2), "0.00");
        assert_eq!(fixed(-0.5, 3), "-0.500");
        assert_eq!(fixed(1234.5678, 3), "1234.568");
        assert_eq!(fixed(9.999, 2), "10.00");
        assert_eq!(fixed(3_000_000_000.25, 1), "3000000000.3");
        assert_eq!(fixed(0.5, 0), "1");
        assert_eq!(fixed(-2.5, 0), "-3");
        assert_eq!(fixed(0.49999999999999994, 0), "0");
        assert_eq!(fixed(f64::NAN, 2), "0.00");
        assert_eq!(fixed(1e300, 1), fixed(f64::INFINITY, 1));
        assert_eq!(fixed(-1e300, 3), "-9223372036854775.808");
        assert_eq!(fixed(99.995, 2), "100.00");
    }

    #[test]
    fn fields_are_the_rounded_integer_with_its_point_placed() {
        let key = crate::model::noise::Key::from_seed(10);
        for i in 0..50_000 {
            let mut d = key.draws(i);
            let x = (d.uniform() - 0.5) * 10f64.powi((d.uniform() * 22.0) as i32 - 3);
            for decimals in 0..=3u32 {
                let scaled = (x * 10f64.powi(decimals as i32)).round() as i64;
                let digits = format!(
                    "{:0width$}",
                    scaled.unsigned_abs(),
                    width = decimals as usize + 1
                );
                let (whole, part) = digits.split_at(digits.len() - decimals as usize);
                let sign = if scaled < 0 { "-" } else { "" };
                let point = if decimals > 0 { "." } else { "" };
                assert_eq!(
                    fixed(x, decimals),
                    format!("{sign}{whole}{point}{part}"),
                    "{x}"
                );
            }
        }
        let around_powers = (0..20).flat_map(|k| {
            let p = 10u64.pow(k);
            [p - 1, p, p + 1]
        });
        for n in (0..=1000)
            .chain(around_powers)
            .chain([u64::MAX / 10, u64::MAX])
        {
            assert_eq!(digit_count(n), n.to_string().len(), "{n}");
        }
        // Ten of the widest fields fit the row's buffer.
        let mut f = Fields::new();
        for _ in 0..5 {
            f.push_fixed::<3>(-1e300);
            f.push_fixed::<0>(f64::MIN);
        }
        assert!(f.as_bytes().len() <= METRICS_MAX);
    }

    #[test]
    fn the_percentiles_exp_is_libm_s_to_two_units_in_the_last_place() {
        let key = crate::model::noise::Key::from_seed(11);
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let mut worst = 0;
        for i in 0..500_000 {
            let x = (key.draws(i).uniform() - 0.5) * 20.0;
            worst = worst.max(ulps(exp_for_percentiles(x), libm::exp(x)));
        }
        assert!(worst <= 2, "{worst} ulps");
        for x in [0.0, 1.0, -1.0, 1e-300, 709.0, -708.0, 800.0, -800.0] {
            assert!(ulps(exp_for_percentiles(x), libm::exp(x)) <= 2, "{x}");
        }
        assert_eq!(exp_for_percentiles(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_for_percentiles(f64::NEG_INFINITY), 0.0);
        assert!(exp_for_percentiles(f64::NAN).is_nan());
    }

    #[test]
    fn rounding_matches_the_standard_library() {
        let key = crate::model::noise::Key::from_seed(9);
        for i in 0..200_000 {
            let mut d = key.draws(i);
            // Values of every magnitude, and exact halves, where rounding decides.
            let x = (d.uniform() - 0.5) * 10f64.powi((d.uniform() * 18.0) as i32);
            let half = (x * 2.0).trunc() / 2.0;
            for v in [x, half, x.trunc() + 0.5] {
                assert_eq!(round_to_int(v), v.round() as i64, "{v}");
            }
        }
    }
}
