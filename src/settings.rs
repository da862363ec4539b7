//! The validated settings of a run, apart from the flags they come from: each command
//! takes one of these, already merged (flags over file over defaults) and checked, so
//! that no work starts on settings that would fail later. Plain data: the one instant
//! they depend on ("now", for a history's default end) is read while they are made.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exposition::ConstLabels;
use crate::model::incidents::{IncidentSpec, Schedule};
use crate::model::{FleetParams, Member, ShapeSpec};
use crate::remote_write::{Endpoint, Protocol};
use crate::units;

pub const DEFAULT_SERVERS: u32 = 10;
pub const DEFAULT_SEED: u64 = 1;
/// A history's length when neither both ends nor a duration are given.
pub const DEFAULT_HISTORY_MS: i64 = 7 * 86_400_000;

/// What one run of the program does.
// One value per process, made once and moved into its command: the variants' sizes differ
// by the remote-write endpoint, which boxing would only hide behind an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Settings {
    Exporter(ExporterSettings),
    Generate(GenerateSettings),
    Report(ReportSettings),
}

/// `fleetsim exporter`.
#[derive(Debug, Clone)]
pub struct ExporterSettings {
    pub fleet: FleetSettings,
    /// Where `/metrics` is served, resolved.
    pub listen: SocketAddr,
    /// How often the served values are refreshed.
    pub tick: Duration,
    /// Where the admin API is served; off without it.
    pub admin: Option<SocketAddr>,
    /// The exporter-toolkit web config file (TLS, basic auth, headers); off without it.
    pub web_config: Option<PathBuf>,
    /// Where the series are pushed as well; off without it.
    pub remote_write: Option<RemoteWriteSettings>,
    pub log_level: LogLevel,
}

/// Pushing to a remote write receiver.
#[derive(Debug, Clone)]
pub struct RemoteWriteSettings {
    pub endpoint: Endpoint,
    pub protocol: Protocol,
    pub interval: Duration,
}

/// `fleetsim generate`.
#[derive(Debug, Clone)]
pub struct GenerateSettings {
    pub fleet: FleetSettings,
    pub out: PathBuf,
    /// As given, or from `out`'s extension.
    pub format: Format,
    /// The history is `[start_ms, end_ms)` in unix milliseconds, a row every `step_ms`.
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    /// Where the events of the range go (the answer key): `--events`, or beside `out`.
    pub events: PathBuf,
    /// The `job` and `instance` labels of the OpenMetrics history's series: the scrape job
    /// and target that serve the same fleet live, so that the history and the scrapes are
    /// one series each.
    pub job: String,
    pub instance: String,
}

/// The answer key's default place: `NAME.events.csv` beside the history `NAME.csv` (or
/// `NAME.om`, or any other extension).
pub fn events_path_beside(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.events.csv"))
}

/// `fleetsim report`.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// The history CSV to read.
    pub file: PathBuf,
    /// How many of the busiest servers to list.
    pub top: usize,
    /// How far back from a history's last row the trends of memory and disk are fitted.
    pub trend_window_ms: i64,
}

/// `--job`: the job name of prometheus.yml's scrape of the fleet.
pub const DEFAULT_JOB: &str = "fleetsim";
/// `--instance`: the target of that job, as Prometheus names its `instance`.
pub const DEFAULT_INSTANCE: &str = "host.docker.internal:8000";

/// The fleet to simulate, with every source merged: flags over file over defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    pub servers: u32,
    pub seed: u64,
    pub params: FleetParams,
    /// The server indices this process simulates (all of them unless sharded).
    pub range: Range<u32>,
    /// The config file's `[[incident]]` tables, and the file's name for errors.
    pub incidents: Vec<IncidentSpec>,
    pub origin: String,
    /// Constant labels of every series: the file's, then the flags'.
    pub labels: ConstLabels,
    /// The load-test modes and churn.
    pub shape: ShapeSpec,
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

/// One of N slices of the fleet, numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The server indices of this slice of a fleet of `size`: contiguous, and together the
    /// N slices cover the fleet exactly once.
    pub fn range(&self, size: u32) -> Range<u32> {
        let bound = |i: u32| (size as u64 * i as u64 / self.count as u64) as u32;
        bound(self.index - 1)..bound(self.index)
    }

    /// The servers of a fleet of `size` that the shard (or, without one, the whole fleet)
    /// simulates; an empty slice is an error, as a process with nothing to do is a mistake.
    pub fn servers_of(shard: Option<Shard>, size: u32) -> Result<Range<u32>> {
        let range = shard.map_or(0..size, |s| s.range(size));
        if range.is_empty() {
            return Err(Error::Usage(format!(
                "--shard {}/{} of {size} servers is empty: use at most {size} shards",
                shard.map_or(0, |s| s.index),
                shard.map_or(0, |s| s.count)
            )));
        }
        Ok(range)
    }
}

/// `--shard` as written: a slice named outright, or `auto/N`, whose index a process learns
/// where it runs (a StatefulSet's pods differ only in their ordinal, so one manifest serves
/// every shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto { count: u32 },
}

/// The variable that names a pod's ordinal (0-based) to `--shard auto/N`, where the host
/// name does not end in it.
pub const SHARD_ORDINAL_VAR: &str = "FLEETSIM_SHARD_ORDINAL";

impl ShardArg {
    /// The shard, `auto` resolved from `ordinal_var` (the value of `SHARD_ORDINAL_VAR`)
    /// or else from the trailing `-<n>` of `hostname` (a StatefulSet's pod `<set>-<n>`):
    /// ordinal n is shard n+1 of N.
    pub fn resolve(self, ordinal_var: Option<&str>, hostname: Option<&str>) -> Result<Shard> {
        let count = match self {
            ShardArg::Fixed(shard) => return Ok(shard),
            ShardArg::Auto { count } => count,
        };
        let usage = |why: String| Error::Usage(format!("--shard auto/{count}: {why}"));
        let ordinal = match (ordinal_var, hostname) {
            (Some(value), _) => value.trim().parse::<u32>().map_err(|_| {
                usage(format!(
                    "{SHARD_ORDINAL_VAR}=`{value}` is not an ordinal; it must be 0 to {}",
                    count - 1
                ))
            })?,
            (None, Some(host)) => host
                .trim()
                .rsplit_once('-')
                .and_then(|(_, n)| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    usage(format!(
                        "the host name `{}` does not end in -<ordinal> as a StatefulSet's pods do; set {SHARD_ORDINAL_VAR} (0 to {})",
                        host.trim(),
                        count - 1
                    ))
                })?,
            (None, None) => {
                return Err(usage(format!(
                    "no host name to read the ordinal from; set {SHARD_ORDINAL_VAR} (0 to {})",
                    count - 1
                )));
            }
        };
        if ordinal >= count {
            return Err(usage(format!(
                "ordinal {ordinal} is past the last of {count} shards (0 to {}): raise N with the replicas",
                count - 1
            )));
        }
        Ok(Shard {
            index: ordinal + 1,
            count,
        })
    }

    /// `resolve` from this process's environment and host name.
    pub fn resolve_here(self) -> Result<Shard> {
        let ordinal = std::env::var(SHARD_ORDINAL_VAR).ok();
        let hostname = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok());
        self.resolve(ordinal.as_deref(), hostname.as_deref())
    }
}

impl FromStr for ShardArg {
    type Err = String;

    /// `I/N`, or `auto/N`.
    fn from_str(text: &str) -> std::result::Result<ShardArg, String> {
        match text.trim().strip_prefix("auto/") {
            Some(n) => match n.trim().parse::<u32>() {
                Ok(count) if count > 0 => Ok(ShardArg::Auto { count }),
                _ => Err(format!(
                    "`{text}`: auto/N needs N, the number of shards, at least 1"
                )),
            },
            None => text.parse().map(ShardArg::Fixed),
        }
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`, the I-th of N slices.
    fn from_str(text: &str) -> std::result::Result<Shard, String> {
        let bad = || {
            format!(
                "`{text}` is not a shard; write it like 2/4 (the second of four slices) or auto/4"
            )
        };
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
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    OpenMetrics,
}

impl Format {
    /// From the extension: `.om` and `.openmetrics` are OpenMetrics, anything else CSV.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("om" | "openmetrics") => Format::OpenMetrics,
            _ => Format::Csv,
        }
    }
}

/// How much the exporter logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

/// A history's time range as asked for: either end, or both, and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryRange {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub duration: Option<Duration>,
}

impl HistoryRange {
    /// `[start, end)` in unix milliseconds. A missing end is `now_ms` rounded down to the
    /// step, so that the rows of two runs fall on the same instants.
    pub fn resolve(&self, step: Duration, now_ms: i64) -> Result<(i64, i64)> {
        let step = step.as_millis() as i64;
        let duration = self.duration.map(|d| d.as_millis() as i64);
        let (start, end) = match (self.start_ms, self.end_ms) {
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
    fn the_events_go_beside_the_history() {
        for (out, events) in [
            ("data/metriques.csv", "data/metriques.events.csv"),
            ("x.om", "x.events.csv"),
            ("history", "history.events.csv"),
        ] {
            assert_eq!(events_path_beside(Path::new(out)), Path::new(events));
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert!("0/4".parse::<Shard>().is_err());
        assert!("5/4".parse::<Shard>().is_err());
        assert!("2".parse::<Shard>().unwrap_err().contains("like 2/4"));
        assert!("a/b".parse::<Shard>().is_err());
        assert_eq!("auto/4".parse(), Ok(ShardArg::Auto { count: 4 }));
        assert_eq!(
            "3/4".parse(),
            Ok(ShardArg::Fixed(Shard { index: 3, count: 4 }))
        );
        assert!("auto/0".parse::<ShardArg>().is_err());
    }

    #[test]
    fn an_auto_shard_is_the_pods_ordinal_plus_one() {
        let auto = ShardArg::Auto { count: 4 };
        let shard = |index| Some(Shard { index, count: 4 });
        assert_eq!(auto.resolve(None, Some("fleetsim-0")).ok(), shard(1));
        assert_eq!(auto.resolve(None, Some("my-fleet-sim-3\n")).ok(), shard(4));
        assert_eq!(auto.resolve(Some("2"), Some("fleetsim-0")).ok(), shard(3));
        let refused = |var: Option<&str>, host: Option<&str>| match auto.resolve(var, host) {
            Err(Error::Usage(why)) => why,
            other => panic!("{var:?} {host:?}: {other:?}"),
        };
        assert!(refused(None, Some("fleetsim-4")).contains("past the last of 4"));
        assert!(refused(None, Some("laptop")).contains("FLEETSIM_SHARD_ORDINAL"));
        assert!(refused(Some("-1"), None).contains("not an ordinal"));
        assert!(refused(None, None).contains("no host name"));
    }

    #[test]
    fn a_history_ends_now_rounded_down_to_the_step() {
        let range = HistoryRange {
            duration: Some(Duration::from_secs(120)),
            ..HistoryRange::default()
        };
        assert_eq!(
            range
                .resolve(Duration::from_secs(60), 1_000_059_999)
                .unwrap(),
            (999_900_000, 1_000_020_000)
        );
    }
}
