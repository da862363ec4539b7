//! `generate`: the fleet's history, from the same model and timeline as the live exporter.

mod csv;
mod events;
mod openmetrics;
mod output;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use crate::exposition::ConstLabels;
use crate::model::server::Counting;
use crate::model::{self, FleetParams, FleetSpec, Member, Schedule, ShapeSpec, Timeline};
use crate::settings::{Format, GenerateSettings};

pub use self::csv::{HEADER, write_csv};
pub use self::events::{EVENTS_HEADER, write_events};
pub use self::openmetrics::{Grid, write_openmetrics};

/// Servers below which a slice is not worth a thread of its own.
const MIN_SLICE: usize = 64;

/// `fleetsim generate`.
pub fn run(settings: GenerateSettings) -> Result<()> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, interrupted.clone());
    }
    let rows = write_file(&settings, &interrupted)?;
    eprintln!("fleetsim: wrote {rows} rows to {}", settings.out.display());
    let events = events::write_events(&settings)?;
    eprintln!(
        "fleetsim: wrote {events} events to {}",
        settings.events.display()
    );
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
    let threads = crate::machine::cores();
    let per_slice = members.len().div_ceil(threads).max(MIN_SLICE);
    members
        .chunks(per_slice)
        .map(|part| {
            FleetSpec::new(params, seed, part.to_vec())
                .schedule(schedule.clone())
                .shape(shape.clone())
                .counting(Counting::Off)
                .timeline(start)
        })
        .collect()
}

/// The instants of a history: `start`, `start + step`, ... before `end`.
pub fn instants(start: i64, end: i64, step: i64) -> impl Iterator<Item = i64> {
    (0..)
        .map(move |i| start + i * step)
        .take_while(move |&t| t < end)
}

/// The constant labels as Prometheus stores the scraped series: with the target's `job`
/// and `instance`, and, since the scrape does not honor the exposed labels, a constant
/// label of either name renamed `exported_job` (`exported_exported_job` if that is taken
/// too), as Prometheus renames it.
pub fn scraped_labels(
    consts: &ConstLabels,
    job: &str,
    instance: &str,
) -> std::result::Result<ConstLabels, String> {
    let target = [("instance", instance), ("job", job)];
    let mut pairs: Vec<(String, String)> = consts
        .iter()
        .filter(|(name, _)| target.iter().all(|(t, _)| t != name))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    for (name, value) in target {
        if let Some(exposed) = consts.get(name) {
            let mut renamed = format!("exported_{name}");
            while pairs.iter().any(|(n, _)| *n == renamed) {
                renamed.insert_str(0, "exported_");
            }
            pairs.push((renamed, exposed.to_string()));
        }
        pairs.push((name.to_string(), value.to_string()));
    }
    ConstLabels::new(pairs)
}

/// Writes the history to a temporary file beside `settings.out`, then renames it into
/// place, so the file appears whole or not at all.
pub fn write_file(settings: &GenerateSettings, interrupted: &AtomicBool) -> Result<u64> {
    let out = &settings.out;
    let cannot = |e: std::io::Error| Error::Runtime(format!("cannot write {}: {e}", out.display()));
    let (dir, temp) = temp_file_beside(out)?;
    let progress = progress_bar(settings);
    let tick = |n| {
        progress.inc(n);
        !interrupted.load(Ordering::Relaxed)
    };
    let rows = write_rows(settings, dir, &temp, tick)?.map_err(cannot)?;
    progress.finish_and_clear();
    if interrupted.load(Ordering::Relaxed) {
        return Err(Error::Runtime(format!(
            "interrupted: {} was not written",
            out.display()
        )));
    }
    temp.as_file().sync_all().map_err(cannot)?;
    temp.persist(out).map_err(|e| cannot(e.error))?;
    Ok(rows)
}

/// A temporary file in `out`'s folder (created if missing), and that folder.
fn temp_file_beside(out: &Path) -> Result<(&Path, NamedTempFile)> {
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
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // A temporary file is private (0600); the history is an ordinary file, readable as the
    // umask allows, as by a container reading it as another user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", out.display())))?;
    Ok((dir, temp))
}

/// A bar over every row of the history, on stderr (hidden when it is not a terminal).
fn progress_bar(settings: &GenerateSettings) -> ProgressBar {
    let (start, end, step) = (settings.start_ms, settings.end_ms, settings.step_ms);
    let timestamps = ((end - start) + step - 1) / step;
    let total = timestamps as u64 * settings.fleet.range.len() as u64;
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {percent:>3}% {human_pos}/{human_len} rows, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

/// Runs the fleet over the history's instants and writes its rows to `temp`: a bad
/// incident is a settings error, a failed write an I/O one.
fn write_rows(
    generate: &GenerateSettings,
    dir: &Path,
    temp: &NamedTempFile,
    tick: impl FnMut(u64) -> bool,
) -> Result<std::io::Result<u64>> {
    let settings = &generate.fleet;
    let (start, end, step) = (generate.start_ms, generate.end_ms, generate.step_ms);
    let members = model::members(&settings.params, settings.servers, settings.range.clone());
    let schedule = settings.schedule(start, &members)?;
    Ok(match generate.format {
        Format::Csv => {
            let times = instants(start, end, step);
            let mut slices = csv_slices(
                &settings.params,
                settings.seed,
                &members,
                start,
                &schedule,
                &settings.shape,
            );
            // Each instant's rows come as one large buffer, so no BufWriter: `Output` gathers
            // them into aligned blocks for direct I/O, or writes them as they come.
            std::thread::scope(|scope| {
                let mut out = output::Output::new(scope, temp.as_file(), temp.path());
                let rows = write_csv(&mut out, &mut slices, &settings.labels, times, tick)?;
                out.finish()?;
                Ok(rows)
            })
        }
        Format::OpenMetrics => {
            let timeline_of = |member: &Member| {
                FleetSpec::new(&settings.params, settings.seed, vec![member.clone()])
                    .schedule(schedule.clone())
                    .shape(settings.shape.clone())
                    .timeline(start)
            };
            let labels = scraped_labels(&settings.labels, &generate.job, &generate.instance)
                .map_err(Error::Usage)?;
            let grid = Grid {
                start_ms: start,
                end_ms: end,
                step_ms: step,
            };
            let file = std::io::BufWriter::with_capacity(1 << 20, temp.as_file());
            write_openmetrics(file, dir, &members, timeline_of, &labels, grid, tick)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> ConstLabels {
        ConstLabels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn scraped_series_get_the_target_labels_and_exposed_ones_are_renamed() {
        let plain = scraped_labels(&labels(&[("env", "lab")]), "fleetsim", "h:8000").unwrap();
        assert_eq!(
            plain.iter().collect::<Vec<_>>(),
            [("env", "lab"), ("instance", "h:8000"), ("job", "fleetsim")]
        );
        let exposed = labels(&[("job", "mine"), ("exported_job", "taken")]);
        let renamed = scraped_labels(&exposed, "fleetsim", "h:8000").unwrap();
        assert_eq!(
            renamed.iter().collect::<Vec<_>>(),
            [
                ("exported_exported_job", "mine"),
                ("exported_job", "taken"),
                ("instance", "h:8000"),
                ("job", "fleetsim")
            ]
        );
    }
}
