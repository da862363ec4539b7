//! Command-line flags, turned into validated settings before any work starts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, FileSettings};
use crate::error::{Error, Result};
use crate::exposition::ConstLabels;
use crate::model::incidents::{IncidentSpec, Schedule};
use crate::model::{FleetParams, Member, SeriesMode, ShapeSpec};
use crate::units;

/// Simulated server fleet for Prometheus: live on /metrics, or written as history.
#[derive(Debug, Parser)]
#[command(name = "fleetsim", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the live fleet on /metrics for Prometheus to scrape.
    Exporter(ExporterArgs),
    /// Write the fleet's history as CSV.
    Generate(GenerateArgs),
}

/// Flags that say which fleet to simulate.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Number of servers (overrides the config file) [default: 10]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=config::MAX_SERVERS as i64))]
    pub servers: Option<u32>,
    /// TOML file of model parameters (see config/fleet.toml); built-in defaults without it
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Seed of every random walk and event: the same seed gives the same fleet [default: 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Simulate only the I-th of N equal slices of the fleet (1/4 to 4/4), with the same
    /// names and series as in the whole fleet: N processes share one fleet
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Add the label NAME="VALUE" to every series of the fleet (repeatable; over the config
    /// file's [labels])
    #[arg(long = "label", visible_alias = "const-label", value_name = "NAME=VALUE", value_parser = crate::exposition::parse_label)]
    pub labels: Vec<(String, String)>,
    /// How the number of servers changes over time, every --series-change-interval:
    /// gradual-change ramps between --min-servers and --servers, double-halve alternates
    /// --servers and half of it, spike alternates --servers / --spike-multiplier and
    /// --servers (--servers is always the most there are) [default: disabled]
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        visible_alias = "series-operation-mode"
    )]
    pub series_mode: Option<SeriesModeArg>,
    /// How long each server count of --series-mode lasts (intervals aligned to the epoch)
    /// [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = units::parse_positive_duration)]
    pub series_change_interval: Option<Duration>,
    /// gradual-change: the fewest servers [default: a tenth of --servers]
    #[arg(long, value_name = "N")]
    pub min_servers: Option<u32>,
    /// gradual-change: servers joining or leaving per interval [default: a tenth of
    /// --servers]
    #[arg(long, value_name = "N")]
    pub series_change_rate: Option<u32>,
    /// spike: --servers over the fleet's size between spikes [default: 1.5]
    #[arg(long, value_name = "X")]
    pub spike_multiplier: Option<f64>,
    /// Share of the servers replaced by new machines (new `server` name, counters from
    /// zero) every --churn-interval, 0 to 1 [default: 0]
    #[arg(long, value_name = "SHARE")]
    pub churn: Option<f64>,
    /// How often --churn replaces machines (intervals aligned to the epoch) [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = units::parse_positive_duration)]
    pub churn_interval: Option<Duration>,
}

/// `--series-mode`, with avalanche's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeriesModeArg {
    Disabled,
    #[value(alias = "gradual")]
    GradualChange,
    DoubleHalve,
    Spike,
}

/// One of N slices of the fleet, numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The server indices of this slice of a fleet of `size`: contiguous, and together the
    /// N slices cover the fleet exactly once.
    pub fn range(&self, size: u32) -> std::ops::Range<u32> {
        let bound = |i: u32| (size as u64 * i as u64 / self.count as u64) as u32;
        bound(self.index - 1)..bound(self.index)
    }
}

fn parse_shard(text: &str) -> std::result::Result<Shard, String> {
    let bad = || format!("`{text}` is not a shard; write it like 2/4 (the second of four slices)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let index: u32 = i.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index == 0 || index > count {
        return Err(format!(
            "`{text}`: the shard must be 1 to N of N, with N at least 1"
        ));
    }
    Ok(Shard { index, count })
}

#[derive(Debug, Args)]
pub struct ExporterArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Address to listen on (`:8000` means every interface)
    #[arg(
        long,
        visible_alias = "web.listen-address",
        value_name = "ADDR",
        default_value = "0.0.0.0:8000"
    )]
    pub listen: String,
    /// How often the served values are refreshed
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::parse_positive_duration)]
    pub tick: Duration,
    /// Address of the admin API (incidents), e.g. 127.0.0.1:8001; off without it
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Also push the series to this Prometheus remote write receiver, e.g.
    /// http://localhost:9090/api/v1/write (http:// only); off without it
    #[arg(long, value_name = "URL", value_parser = crate::remote_write::Endpoint::parse)]
    pub remote_write: Option<crate::remote_write::Endpoint>,
    /// How often to push to --remote-write
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = units::parse_positive_duration, requires = "remote_write")]
    pub remote_write_interval: Duration,
    /// Remote write version to push as: 1.0 (prometheus.WriteRequest, what most receivers
    /// take) or 2.0 (io.prometheus.write.v2.Request, for receivers that accept it)
    #[arg(
        long,
        value_enum,
        value_name = "VERSION",
        default_value = "1.0",
        requires = "remote_write"
    )]
    pub remote_write_protocol: crate::remote_write::Protocol,
    /// Log verbosity
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// File to write (parent folders are created)
    #[arg(long, value_name = "PATH", default_value = "data/metriques.csv")]
    pub out: PathBuf,
    /// csv, or openmetrics (for promtool tsdb create-blocks-from openmetrics) [default: from
    /// the extension: .om and .openmetrics are OpenMetrics, anything else CSV]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// First instant of the history (RFC 3339)
    #[arg(long, value_name = "TIME", value_parser = units::parse_instant)]
    pub start: Option<i64>,
    /// End of the history, excluded (RFC 3339) [default: now, rounded down to the step]
    #[arg(long, value_name = "TIME", value_parser = units::parse_instant)]
    pub end: Option<i64>,
    /// Length of the history when --start or --end is missing [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = units::parse_positive_duration)]
    pub duration: Option<Duration>,
    /// Time between rows
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = units::parse_positive_duration)]
    pub step: Duration,
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    #[value(name = "openmetrics")]
    OpenMetrics,
}

impl Format {
    pub fn from_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("om" | "openmetrics") => Format::OpenMetrics,
            _ => Format::Csv,
        }
    }
}

/// The fleet to simulate, with every source merged: flags over file over defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    pub servers: u32,
    pub seed: u64,
    pub params: FleetParams,
    /// The server indices this process simulates (all of them unless sharded).
    pub range: std::ops::Range<u32>,
    /// The config file's `[[incident]]` tables, and the file's name for errors.
    pub incidents: Vec<IncidentSpec>,
    pub origin: String,
    /// Constant labels of every series: the file's, then the flags'.
    pub labels: ConstLabels,
    /// The load-test modes and churn.
    pub shape: ShapeSpec,
}

pub const DEFAULT_SERVERS: u32 = 10;
pub const DEFAULT_SEED: u64 = 1;

impl FleetArgs {
    pub fn resolve(&self) -> Result<FleetSettings> {
        let file = match &self.config {
            Some(path) => config::load(path)?,
            None => FileSettings::default(),
        };
        let resolution = file.fleet.resolution;
        Ok(FleetSettings {
            servers: self.servers.or(file.servers).unwrap_or(DEFAULT_SERVERS),
            seed: self.seed.or(file.seed).unwrap_or(DEFAULT_SEED),
            params: file.fleet,
            range: {
                let size = self.servers.or(file.servers).unwrap_or(DEFAULT_SERVERS);
                let range = self.shard.map_or(0..size, |s| s.range(size));
                if range.is_empty() {
                    return Err(Error::Usage(format!(
                        "--shard {}/{} of {size} servers is empty: use at most {size} shards",
                        self.shard.map_or(0, |s| s.index),
                        self.shard.map_or(0, |s| s.count)
                    )));
                }
                range
            },
            incidents: file.incidents,
            origin: self
                .config
                .as_ref()
                .map_or_else(|| "the config".to_string(), |p| p.display().to_string()),
            labels: {
                let flags = ConstLabels::new(self.labels.iter().cloned())
                    .map_err(|e| Error::Usage(format!("--label: {e}")))?;
                file.labels.overridden_by(&flags)
            },
            shape: {
                // Flags over the file over the defaults, knob by knob.
                let spec = file.load_test.applied_to(ShapeSpec::default());
                let spec = ShapeSpec {
                    mode: match self.series_mode {
                        None => spec.mode,
                        Some(SeriesModeArg::Disabled) => SeriesMode::Off,
                        Some(SeriesModeArg::GradualChange) => SeriesMode::GradualChange,
                        Some(SeriesModeArg::DoubleHalve) => SeriesMode::DoubleHalve,
                        Some(SeriesModeArg::Spike) => SeriesMode::Spike,
                    },
                    change_interval: self.series_change_interval.unwrap_or(spec.change_interval),
                    min_servers: self.min_servers.or(spec.min_servers),
                    change_rate: self.series_change_rate.or(spec.change_rate),
                    spike_multiplier: self.spike_multiplier.unwrap_or(spec.spike_multiplier),
                    churn: self.churn.unwrap_or(spec.churn),
                    churn_interval: self.churn_interval.unwrap_or(spec.churn_interval),
                };
                let size = self.servers.or(file.servers).unwrap_or(DEFAULT_SERVERS);
                spec.check(size, resolution).map_err(Error::Usage)?;
                spec
            },
        })
    }
}

impl FleetSettings {
    /// The config file's incidents, resolved against a run that starts at `run_start_ms`
    /// and checked against the fleet: each must hit at least one server.
    pub fn schedule(&self, run_start_ms: i64, members: &[Member]) -> Result<Schedule> {
        let bad = |e: String| Error::Usage(format!("{}: {e}", self.origin));
        let schedule =
            Schedule::from_specs(&self.incidents, run_start_ms, run_start_ms).map_err(bad)?;
        schedule.check_targets(members, self.seed).map_err(bad)?;
        Ok(schedule)
    }
}

/// The time range of `generate`, in unix milliseconds: `[start, end)`.
pub fn history_range(args: &GenerateArgs, now_ms: i64) -> Result<(i64, i64)> {
    let step = args.step.as_millis() as i64;
    let duration = args.duration.map(|d| d.as_millis() as i64);
    let (start, end) = match (args.start, args.end) {
        (Some(_), Some(_)) if duration.is_some() => {
            return Err(Error::Usage(
                "give --duration or both --start and --end, not all three".into(),
            ));
        }
        (Some(start), Some(end)) => (start, end),
        (Some(start), None) => (start, start + duration.unwrap_or(DEFAULT_HISTORY_MS)),
        (None, Some(end)) => (end - duration.unwrap_or(DEFAULT_HISTORY_MS), end),
        (None, None) => {
            let end = now_ms.div_euclid(step) * step;
            (end - duration.unwrap_or(DEFAULT_HISTORY_MS), end)
        }
    };
    if end <= start {
        return Err(Error::Usage(format!(
            "--end ({}) must be after --start ({})",
            units::format_instant(end),
            units::format_instant(start)
        )));
    }
    Ok((start, end))
}

const DEFAULT_HISTORY_MS: i64 = 7 * 86_400_000;

/// Parses the arguments; help and version go to stdout as usual, errors become one line.
pub fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// clap's error as one line: its first paragraph, without the "error: " prefix (a
/// missing argument is named on the lines after the first).
pub fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let paragraph: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if paragraph.is_empty() {
        return "invalid arguments".to_string();
    }
    paragraph
        .join(" ")
        .trim_start_matches("error: ")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_fleet_once() {
        for (size, count) in [(10, 3), (10_000, 7), (5, 5), (1, 1)] {
            let mut next = 0;
            for index in 1..=count {
                let r = Shard { index, count }.range(size);
                assert_eq!(r.start, next, "{size} servers, shard {index}/{count}");
                next = r.end;
            }
            assert_eq!(next, size);
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
        assert!(parse_shard("2").unwrap_err().contains("like 2/4"));
        assert!(parse_shard("a/b").is_err());
    }
}
