//! The CSV history: one row per server per instant, ordered by time then server.

use std::io::{self, Write};

use crate::exposition::ConstLabels;
use crate::model::server::{Z95, Z99};
use crate::model::{Frame, Timeline, shape};
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

/// Writes `value` rounded to `decimals` places: integer arithmetic, so it is fast and the
/// same on every platform.
fn push_fixed(buf: &mut Vec<u8>, value: f64, decimals: u32) {
    let scale = 10i64.pow(decimals);
    let scaled = (value * scale as f64).round() as i64;
    if scaled < 0 {
        buf.push(b'-');
    }
    let magnitude = scaled.unsigned_abs();
    let mut ints = itoa::Buffer::new();
    buf.extend_from_slice(ints.format(magnitude / scale as u64).as_bytes());
    if decimals > 0 {
        buf.push(b'.');
        let fraction = ints.format(magnitude % scale as u64);
        buf.extend(std::iter::repeat_n(
            b'0',
            decimals as usize - fraction.len(),
        ));
        buf.extend_from_slice(fraction.as_bytes());
    }
}

/// The numeric fields of a server that is up, in header order from `cpu_usage` on.
fn push_metrics(fields: &mut [Vec<u8>], frame: &Frame, i: usize) {
    let median_ms = frame.value(i, |s| &s.latency_median) * 1000.0;
    let spread = frame.value(i, |s| &s.latency_spread);
    let values = [
        (frame.value(i, |s| &s.cpu), 2),
        (frame.value(i, |s| &s.memory), 2),
        (frame.value(i, |s| &s.disk), 2),
        (frame.value(i, |s| &s.receive_bps), 1),
        (frame.value(i, |s| &s.transmit_bps), 1),
        (frame.value(i, |s| &s.rps), 2),
        (median_ms, 3),
        (median_ms * libm::exp(Z95 * spread), 3),
        (median_ms * libm::exp(Z99 * spread), 3),
        (frame.value(i, |s| &s.server_error) * 100.0, 3),
    ];
    for (field, (value, decimals)) in fields.iter_mut().zip(values) {
        push_fixed(field, value, decimals);
    }
}

/// Writes the header and a row per server per instant; `progress` is told how many rows
/// each instant added and returns false to stop early. Returns the rows written.
pub fn write_csv<W: Write>(
    out: W,
    timeline: &mut Timeline,
    instants: impl Iterator<Item = i64>,
    progress: impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    write_csv_labeled(out, timeline, &ConstLabels::default(), instants, progress)
}

/// `write_csv` with a column per constant label after the usual ones, named by the label.
pub fn write_csv_labeled<W: Write>(
    out: W,
    timeline: &mut Timeline,
    labels: &ConstLabels,
    instants: impl Iterator<Item = i64>,
    mut progress: impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    let mut csv = csv::WriterBuilder::new().from_writer(out);
    csv.write_record(HEADER.iter().copied().chain(labels.iter().map(|(n, _)| n)))?;
    let mut names: Vec<(String, String, &str)> = timeline
        .members()
        .iter()
        .map(|m| (m.name.clone(), m.dc.clone(), m.role.name()))
        .collect();
    let members = timeline.members().to_vec();
    let mut born = vec![shape::ORIGINAL; names.len()];
    let mut roster: Option<std::sync::Arc<crate::model::Roster>> = None;
    let mut fields: Vec<Vec<u8>> = (0..10).map(|_| Vec::with_capacity(24)).collect();
    let mut rows = 0u64;
    for t in instants {
        let frame = timeline.at(t);
        let stamp = format_instant(t);
        // A new machine in a slot has a new name. The roster is shared until it changes,
        // so most instants skip the comparison.
        if !roster
            .as_ref()
            .is_some_and(|r| std::sync::Arc::ptr_eq(r, &frame.roster))
        {
            for (i, &b) in frame.roster.born_ms.iter().enumerate() {
                if born[i] != b {
                    names[i].0 = shape::identity(&members[i].name, b);
                    born[i] = b;
                }
            }
            roster = Some(frame.roster.clone());
        }
        let mut written = 0;
        for (i, (name, dc, role)) in names.iter().enumerate() {
            if !frame.present(i) {
                continue;
            }
            written += 1;
            csv.write_field(&stamp)?;
            csv.write_field(name)?;
            csv.write_field(dc)?;
            csv.write_field(role)?;
            if frame.up(i) {
                csv.write_field("1")?;
                fields.iter_mut().for_each(Vec::clear);
                push_metrics(&mut fields, &frame, i);
                for f in &fields {
                    csv.write_field(f)?;
                }
            } else {
                csv.write_field("0")?;
                for _ in 0..fields.len() {
                    csv.write_field("")?;
                }
            }
            for (_, value) in labels.iter() {
                csv.write_field(value)?;
            }
            csv.write_record(None::<&[u8]>)?;
        }
        rows += written;
        if !progress(written) {
            break;
        }
    }
    csv.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, d: u32) -> String {
        let mut b = Vec::new();
        push_fixed(&mut b, v, d);
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
    }
}
