//! The CSV history: one row per server per instant, ordered by time then server.

use std::io::{self, Write};
use std::sync::Arc;

use crate::exposition::ConstLabels;
use crate::model::server::{Z95, Z99};
use crate::model::{Frame, Member, Timeline, shape};
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

/// Writes `value` rounded to `decimals` places (half away from zero, as `f64::round`):
/// integer arithmetic, so it is fast and the same on every platform. The integer part is
/// written by `itoa` (two digits at a time), the decimals from the remainder.
/// `DECIMALS` is a constant so that the divisions by its power of ten are multiplications.
fn push_fixed<const DECIMALS: u32>(buf: &mut Vec<u8>, value: f64) {
    let decimals = DECIMALS;
    let unit = 10u64.pow(decimals);
    let scaled = round_to_int(value * unit as f64);
    let magnitude = scaled.unsigned_abs();
    if scaled < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(itoa::Buffer::new().format(magnitude / unit).as_bytes());
    if decimals > 0 {
        let mut fraction = magnitude % unit;
        let mut digits = [b'0'; 20];
        let digits = &mut digits[..=decimals as usize];
        digits[0] = b'.';
        for d in digits[1..].iter_mut().rev() {
            *d = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        buf.extend_from_slice(digits);
    }
}

/// `x.round() as i64` without the call to the C library's `round` that x86-64's baseline
/// needs (it has no rounding instruction): truncate, then correct by the remainder, which
/// is exact.
fn round_to_int(x: f64) -> i64 {
    let truncated = x as i64;
    let rest = x - truncated as f64;
    if rest >= 0.5 {
        truncated.saturating_add(1)
    } else if rest <= -0.5 {
        truncated.saturating_sub(1)
    } else {
        truncated
    }
}

/// `push_fixed` for some number of decimals.
type PushFixed = fn(&mut Vec<u8>, f64);

/// A server that is up: its numeric fields, in header order from `cpu_usage` on, each
/// preceded by a comma.
fn push_metrics(row: &mut Vec<u8>, frame: &Frame, i: usize) {
    let median_ms = frame.value(i, |s| &s.latency_median) * 1000.0;
    let spread = frame.value(i, |s| &s.latency_spread);
    let fields: [(f64, PushFixed); 10] = [
        (frame.value(i, |s| &s.cpu), push_fixed::<2>),
        (frame.value(i, |s| &s.memory), push_fixed::<2>),
        (frame.value(i, |s| &s.disk), push_fixed::<2>),
        (frame.value(i, |s| &s.receive_bps), push_fixed::<1>),
        (frame.value(i, |s| &s.transmit_bps), push_fixed::<1>),
        (frame.value(i, |s| &s.rps), push_fixed::<2>),
        (median_ms, push_fixed::<3>),
        (median_ms * libm::exp(Z95 * spread), push_fixed::<3>),
        (median_ms * libm::exp(Z99 * spread), push_fixed::<3>),
        (frame.value(i, |s| &s.server_error) * 100.0, push_fixed::<3>),
    ];
    for (value, push) in fields {
        row.push(b',');
        push(row, value);
    }
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

/// `,server,dc,role,` for machine `name` in `m`'s slot.
fn prefix(m: &Member, name: &str) -> Vec<u8> {
    let mut p = csv_fields([name, &m.dc, m.role.name()]);
    p.push(b',');
    p
}

/// The part of each server's row that changes only when churn renames its machine:
/// `,server,dc,role,`.
struct RowPrefixes {
    members: Vec<Member>,
    born_ms: Vec<i64>,
    prefixes: Vec<Vec<u8>>,
}

impl RowPrefixes {
    fn new(members: &[Member]) -> RowPrefixes {
        RowPrefixes {
            members: members.to_vec(),
            born_ms: vec![shape::ORIGINAL; members.len()],
            prefixes: members.iter().map(|m| prefix(m, &m.name)).collect(),
        }
    }

    /// Renames the machines `frame` shows born since.
    fn refresh(&mut self, frame: &Frame) {
        if self.born_ms == frame.roster.born_ms {
            return;
        }
        for (i, name) in shape::renamed(&self.members, &mut self.born_ms, &frame.roster) {
            self.prefixes[i] = prefix(&self.members[i], &name);
        }
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
        out.extend_from_slice(suffix);
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
    let mut header = HEADER.join(",");
    for (name, _) in labels.iter() {
        header.push(',');
        header.push_str(name);
    }
    header.push('\n');
    out.write_all(header.as_bytes())?;
    let suffix = if labels.is_empty() {
        Vec::new()
    } else {
        csv_fields(labels.iter().map(|(_, v)| v))
    };
    let servers: usize = slices.iter().map(|t| t.members().len()).sum();
    let per_block = (ROWS_AHEAD / servers.max(1)).clamp(1, 256);
    let mut instants = instants.peekable();
    let mut rows = 0u64;
    std::thread::scope(|scope| -> io::Result<()> {
        // Each slice's thread is sent blocks of instants and answers with their rows.
        let workers: Vec<_> = slices
            .iter_mut()
            .map(|timeline| {
                let (work, blocks) = std::sync::mpsc::sync_channel::<Arc<[i64]>>(BLOCKS_AHEAD);
                let (done, results) = std::sync::mpsc::sync_channel::<Vec<Rows>>(BLOCKS_AHEAD);
                let suffix = &suffix;
                scope.spawn(move || {
                    let mut prefixes = RowPrefixes::new(timeline.members());
                    for block in blocks {
                        let rows = block
                            .iter()
                            .map(|&t| {
                                let frame = timeline.at(t);
                                prefixes.refresh(&frame);
                                let stamp = format_instant(t);
                                let mut bytes = Vec::with_capacity(prefixes.prefixes.len() * 128);
                                let count = push_rows(
                                    &mut bytes,
                                    stamp.as_bytes(),
                                    &frame,
                                    &prefixes.prefixes,
                                    suffix,
                                );
                                Rows { bytes, count }
                            })
                            .collect();
                        if done.send(rows).is_err() {
                            return; // the writer stopped
                        }
                    }
                });
                (work, results)
            })
            .collect();
        let stopped = || io::Error::other("a slice of the fleet stopped");
        let mut in_flight = std::collections::VecDeque::new();
        loop {
            while in_flight.len() < BLOCKS_AHEAD && instants.peek().is_some() {
                let block: Arc<[i64]> = instants.by_ref().take(per_block).collect();
                for (work, _) in &workers {
                    work.send(block.clone()).map_err(|_| stopped())?;
                }
                in_flight.push_back(block.len());
            }
            let Some(len) = in_flight.pop_front() else {
                return Ok(());
            };
            let mut parts = Vec::with_capacity(workers.len());
            for (_, results) in &workers {
                parts.push(results.recv().map_err(|_| stopped())?);
            }
            for j in 0..len {
                let mut added = 0;
                for part in &parts {
                    out.write_all(&part[j].bytes)?;
                    added += part[j].count;
                }
                rows += added;
                if !progress(added) {
                    // Dropping the channels stops the slices.
                    return Ok(());
                }
            }
        }
    })?;
    out.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, d: u32) -> String {
        let mut b = Vec::new();
        match d {
            0 => push_fixed::<0>(&mut b, v),
            1 => push_fixed::<1>(&mut b, v),
            2 => push_fixed::<2>(&mut b, v),
            3 => push_fixed::<3>(&mut b, v),
            _ => unreachable!("the tests use 0 to 3 decimals"),
        }
        String::from_utf8(b).unwrap()
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
