//! `generate`: the fleet's history, from the same model and timeline as the live exporter.

mod csv;
mod openmetrics;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{self, FleetSettings, Format, GenerateArgs};
use crate::error::{Error, Result};
use crate::exporter::unix_now_ms;
use crate::model::server::Counting;
use crate::model::{self, FleetParams, Member, Schedule, ShapeSpec, Timeline};

pub use self::csv::{HEADER, write_csv};
pub use self::openmetrics::write_openmetrics;

/// Servers below which a slice is not worth a thread of its own.
const MIN_SLICE: usize = 64;

/// `fleetsim generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    let settings = args.fleet.resolve()?;
    let (start, end) = cli::history_range(&args, unix_now_ms())?;
    let step = args.step.as_millis() as i64;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, interrupted.clone());
    }
    let format = args.format.unwrap_or_else(|| Format::from_path(&args.out));
    let rows = write_file(&args.out, format, &settings, start, end, step, &interrupted)?;
    eprintln!("fleetsim: wrote {rows} rows to {}", args.out.display());
    Ok(())
}

/// The CSV history's fleet from `start`: sliced for the cores (servers are independent,
/// so each slice steps on a thread of its own), and without counters, which the CSV does
/// not show (see [`Counting`]).
pub fn csv_slices(
    params: &FleetParams,
    seed: u64,
    members: &[Member],
    start: i64,
    schedule: &Schedule,
    shape: &ShapeSpec,
) -> Vec<Timeline> {
    let threads = crate::cores();
    let per_slice = members.len().div_ceil(threads).max(MIN_SLICE);
    members
        .chunks(per_slice)
        .map(|part| {
            Timeline::shaped(
                params,
                seed,
                part.to_vec(),
                start,
                schedule.clone(),
                shape.clone(),
                Counting::Off,
            )
        })
        .collect()
}

/// Bytes written between two background flushes.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// A file writer whose data goes to the disk while the rest is still being written: every
/// [`WRITEBACK_EVERY`] bytes a thread of its own flushes what is written so far. A history
/// is hundreds of MB, and the `fsync` that makes it durable before it is renamed into
/// place would otherwise wait for all of it at the end (a third of a second for 640 MB
/// here), with the cores idle.
struct Writeback<'f> {
    file: &'f std::fs::File,
    unflushed: u64,
    flush: std::sync::mpsc::SyncSender<()>,
    /// Flushes asked for so far.
    requested: u64,
}

impl<'f> Writeback<'f> {
    fn new<'s>(scope: &'s std::thread::Scope<'s, '_>, file: &'f std::fs::File) -> Writeback<'f>
    where
        'f: 's,
    {
        // One request waits at most: a flush asked for while one runs is merged into it.
        let (flush, requests) = std::sync::mpsc::sync_channel::<()>(1);
        scope.spawn(move || {
            for () in requests {
                // A failure shows again, and is reported, at the final sync.
                let _ = file.sync_data();
            }
        });
        Writeback {
            file,
            unflushed: 0,
            flush,
            requested: 0,
        }
    }
}

impl std::io::Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unflushed += n as u64;
        if self.unflushed >= WRITEBACK_EVERY {
            self.unflushed = 0;
            self.requested += 1;
            let _ = self.flush.try_send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The instants of a history: `start`, `start + step`, ... before `end`.
pub fn instants(start: i64, end: i64, step: i64) -> impl Iterator<Item = i64> {
    (0..)
        .map(move |i| start + i * step)
        .take_while(move |&t| t < end)
}

/// Writes the history in `format` to a temporary file beside `out`, then renames it into place, so the
/// file appears whole or not at all.
pub fn write_file(
    out: &Path,
    format: Format,
    settings: &FleetSettings,
    start: i64,
    end: i64,
    step: i64,
    interrupted: &AtomicBool,
) -> Result<u64> {
    let cannot = |what: &str, e: std::io::Error| {
        Error::Runtime(format!("cannot {what} {}: {e}", out.display()))
    };
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Runtime(format!("cannot create the folder {}: {e}", dir.display())))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| cannot("write", e))?;

    let timestamps = ((end - start) + step - 1) / step;
    let total = timestamps as u64 * settings.range.len() as u64;
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {percent:>3}% {human_pos}/{human_len} rows, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let members = model::members(&settings.params, settings.servers, settings.range.clone());
    let schedule = settings.schedule(start, &members)?;
    let times = instants(start, end, step);
    let tick = |n| {
        progress.inc(n);
        !interrupted.load(Ordering::Relaxed)
    };
    let rows = match format {
        Format::Csv => {
            let mut slices = csv_slices(
                &settings.params,
                settings.seed,
                &members,
                start,
                &schedule,
                &settings.shape,
            );
            // Each instant's rows come as one large buffer: written as they are, unbuffered.
            std::thread::scope(|scope| {
                let file = temp.as_file();
                let out = Writeback::new(scope, file);
                write_csv(out, &mut slices, &settings.labels, times, tick)
            })
        }
        Format::OpenMetrics => {
            let mut timeline = Timeline::shaped(
                &settings.params,
                settings.seed,
                members,
                start,
                schedule,
                settings.shape.clone(),
                Counting::On,
            );
            let file = std::io::BufWriter::with_capacity(1 << 20, temp.as_file());
            write_openmetrics(file, dir, &mut timeline, &settings.labels, times, tick)
        }
    }
    .map_err(|e| cannot("write", e))?;
    progress.finish_and_clear();
    if interrupted.load(Ordering::Relaxed) {
        return Err(Error::Runtime(format!(
            "interrupted: {} was not written",
            out.display()
        )));
    }
    temp.as_file().sync_all().map_err(|e| cannot("write", e))?;
    temp.persist(out).map_err(|e| cannot("write", e.error))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn writeback_writes_everything_and_flushes_as_it_goes() {
        let temp = tempfile::NamedTempFile::new().unwrap();
        let chunk: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let chunks = (2 * WRITEBACK_EVERY as usize) / chunk.len() + 3;
        let requested = std::thread::scope(|scope| {
            let mut out = Writeback::new(scope, temp.as_file());
            for _ in 0..chunks {
                out.write_all(&chunk).unwrap();
            }
            out.requested
        });
        assert_eq!(requested, 2);
        let written = std::fs::read(temp.path()).unwrap();
        assert_eq!(written.len(), chunks * chunk.len());
        assert!(written.chunks(chunk.len()).all(|c| c == chunk));
    }
}
