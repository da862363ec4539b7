//! `generate`: the fleet's history, from the same model and timeline as the live exporter.

mod csv;
mod events;
mod openmetrics;
mod output;
mod temp;

use std::path::Path;

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

/// `fleetsim generate`: the history and its answer key, each written into a temporary
/// beside it, then both renamed into place, so that an interrupted or failed run leaves
/// the files of the last run that ended, or none.
pub fn run(settings: GenerateSettings) -> Result<()> {
    let run = temp::Run::start(&settings.out)?;
    let (history, rows) = write_file(&settings, &run)?;
    let (key, events) = events::write_events(&settings, &run)?;
    run.commit(vec![(history, &settings.out), (key, &settings.events)])?;
    eprintln!("fleetsim: wrote {rows} rows to {}", settings.out.display());
    eprintln!(
        "fleetsim: wrote {events} events to {}",
        settings.events.display()
    );
    Ok(())
}

/// "cannot write PATH: why", where why is said as a person would: a full disk is "no space
/// left on device", not an error number.
pub fn cannot_write(out: &Path, e: &std::io::Error) -> Error {
    let why = match e.kind() {
        std::io::ErrorKind::StorageFull => "no space left on device".to_string(),
        std::io::ErrorKind::QuotaExceeded => "disk quota exceeded".to_string(),
        _ => e.to_string(),
    };
    Error::Runtime(format!("cannot write {}: {why}", out.display()))
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

/// Writes the history to a temporary file beside `settings.out`, synced, for the run to
/// rename into place; returns it and how many rows it holds.
pub fn write_file(settings: &GenerateSettings, run: &temp::Run) -> Result<(NamedTempFile, u64)> {
    let out = &settings.out;
    let cannot = |e: std::io::Error| cannot_write(out, &e);
    let temp = run.temp_beside(out)?;
    let progress = progress_bar(settings);
    let tick = |n| {
        progress.inc(n);
        true
    };
    let rows = write_rows(settings, temp::folder_of(out), &temp, tick)?.map_err(cannot)?;
    progress.finish_and_clear();
    temp.as_file().sync_all().map_err(cannot)?;
    Ok((temp, rows))
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
