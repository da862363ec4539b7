//! The history as OpenMetrics text, in the form `promtool tsdb create-blocks-from
//! openmetrics` imports: the exporter's own series, with timestamps in seconds, each metric
//! family's samples together, and `# EOF` last.
//!
//! Families must not interleave, but the model produces every family at once, instant by
//! instant. So each family is spooled to an anonymous temporary file during the one pass
//! over time, and the spools are joined at the end: memory stays flat however long the
//! history, at the cost of writing it twice.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use crate::exposition::{ConstLabels, Family, FleetLabels, SampleWriter};
use crate::model::Timeline;

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

/// Writes the header, every family, and `# EOF` to `out`; spools go in `spool_dir`.
/// `progress` is told how many rows (servers) each instant added and returns false to stop.
pub fn write_openmetrics<W: Write>(
    mut out: W,
    spool_dir: &Path,
    timeline: &mut Timeline,
    consts: &ConstLabels,
    instants: impl Iterator<Item = i64>,
    mut progress: impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    let mut labels = FleetLabels::with_labels(timeline.members(), consts);
    let mut spools: Vec<BufWriter<File>> = Family::ALL
        .iter()
        .map(|_| tempfile::tempfile_in(spool_dir).map(|f| BufWriter::with_capacity(1 << 18, f)))
        .collect::<io::Result<_>>()?;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut timestamp = Vec::with_capacity(24);
    let mut rows = 0u64;
    for t in instants {
        let frame = timeline.at(t);
        if !labels.is_current(&frame) {
            labels.refresh(&frame);
        }
        timestamp.clear();
        push_timestamp(&mut timestamp, t);
        for (family, spool) in Family::ALL.iter().zip(&mut spools) {
            buf.clear();
            SampleWriter::new(&mut buf, &labels, &timestamp)
                .with_created()
                .family(*family, &frame);
            spool.write_all(&buf)?;
        }
        let present = (0..frame.len()).filter(|&i| frame.present(i)).count() as u64;
        rows += present;
        if !progress(present) {
            break;
        }
    }
    for (family, spool) in Family::ALL.iter().zip(spools) {
        let name = family.openmetrics_name();
        writeln!(out, "# TYPE {name} {}", family.kind().name())?;
        writeln!(out, "# HELP {name} {}", family.help())?;
        let mut file = spool.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        io::copy(&mut file, &mut out)?;
    }
    out.write_all(b"# EOF\n")?;
    out.flush()?;
    Ok(rows)
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
}
