//! Command-line flags, turned into validated settings before any work starts.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clock;
use crate::config::{self, FileSettings};
use crate::error::{Error, Result};
use crate::exposition::ConstLabels;
use crate::model::{SeriesMode, ShapeSpec};
use crate::remote_write::Protocol;
use crate::settings::{
    DEFAULT_INSTANCE, DEFAULT_JOB, DEFAULT_SEED, DEFAULT_SERVERS, ExporterSettings, FleetSettings,
    Format, GenerateSettings, HistoryRange, LogLevel, RemoteWriteSettings, ReportSettings,
    Settings, Shard, ShardArg, events_path_beside,
};
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
    /// Write the fleet's history as CSV, and its events beside it.
    Generate(GenerateArgs),
    /// Summarise a history CSV as Markdown: thresholds crossed, trends, the busiest
    /// servers, availability.
    Report(ReportArgs),
}

/// Flags that say which fleet to simulate.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Number of servers (overrides the config file) [default: 10]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<u32>(1, config::MAX_SERVERS as i128))]
    pub servers: Option<u32>,
    /// TOML file of model parameters (see config/fleet.toml); built-in defaults without it
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Seed of every random walk and event: the same seed gives the same fleet [default: 1]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<u64>(0, u64::MAX as i128))]
    pub seed: Option<u64>,
    /// Simulate only the I-th of N equal slices of the fleet (1/4 to 4/4), with the same
    /// names and series as in the whole fleet: N processes share one fleet
    /// (auto/N: the I-th is this pod's StatefulSet ordinal plus one, from
    /// $FLEETSIM_SHARD_ORDINAL or the host name's trailing -<ordinal>)
    #[arg(long, value_name = "I/N", value_parser = ShardArg::from_str)]
    pub shard: Option<ShardArg>,
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
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<u32>(0, u32::MAX as i128))]
    pub min_servers: Option<u32>,
    /// gradual-change: servers joining or leaving per interval [default: a tenth of
    /// --servers]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<u32>(0, u32::MAX as i128))]
    pub series_change_rate: Option<u32>,
    /// spike: --servers over the fleet's size between spikes [default: 1.5]
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub spike_multiplier: Option<f64>,
    /// Share of the servers replaced by new machines (new `server` name, counters from
    /// zero) every --churn-interval, 0 to 1 [default: 0]
    #[arg(long, value_name = "SHARE", allow_negative_numbers = true)]
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
    /// Address of the admin API (incidents), e.g. 127.0.0.1:8001 (`:8001` means loopback
    /// only; 0.0.0.0:8001 every interface); off without it
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// TLS, basic authentication and response headers, in the exporter-toolkit's web
    /// config format (docs/web-config.md); re-read on SIGHUP
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<std::path::PathBuf>,
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
    pub remote_write_protocol: ProtocolArg,
    /// Log verbosity
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = LogLevelArg::Info)]
    pub log_level: LogLevelArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevelArg {
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
    pub format: Option<FormatArg>,
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
    /// Where to write the range's events (every deploy, restart, outage and incident, with
    /// the alert each should fire) [default: NAME.events.csv beside --out]
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,
    /// `job` label of every OpenMetrics series: the job_name of the Prometheus scrape of the
    /// live exporter, so the backfilled series are the ones it scrapes
    #[arg(long, value_name = "NAME", default_value = DEFAULT_JOB, value_parser = job_name)]
    pub job: String,
    /// `instance` label of every OpenMetrics series: the target of that scrape, as written
    /// in its static_configs
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_INSTANCE, value_parser = instance_address)]
    pub instance: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// History CSV to read (as `fleetsim generate` writes it)
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// How many of the busiest servers (by mean CPU) to list
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
    /// How far back from the last row the growth of memory and disk is fitted
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = units::parse_positive_duration)]
    pub trend_window: Duration,
}

/// `--job`: any name but an empty one, which Prometheus reads as no label.
fn job_name(text: &str) -> std::result::Result<String, String> {
    if text.is_empty() {
        return Err("the job name is empty".to_string());
    }
    Ok(text.to_string())
}

/// `--instance`: a scrape target, `HOST:PORT` (`[::1]:8000` for an IPv6 address), which
/// Prometheus takes as the `instance` label as written.
fn instance_address(text: &str) -> std::result::Result<String, String> {
    let bad = |why: &str| Err(format!("{why}; write it like host.docker.internal:8000"));
    let Some((host, port)) = text.rsplit_once(':') else {
        return bad("no port");
    };
    if host.is_empty() || host == "[]" {
        return bad("no host");
    }
    if host.contains(char::is_whitespace) || (host.contains(':') && !host.starts_with('[')) {
        return bad("not a host name or address");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 && !port.starts_with('+') => Ok(text.to_string()),
        _ => bad("the port is not a number from 1 to 65535"),
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Csv,
    #[value(name = "openmetrics")]
    OpenMetrics,
}

/// `--remote-write-protocol`: named as the spec's versions, or as Prometheus's
/// `protobuf_message` setting names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// `prometheus.WriteRequest`, which every 1.x receiver accepts
    #[value(name = "1.0", alias = "prometheus.WriteRequest")]
    V1,
    /// `io.prometheus.write.v2.Request`: smaller, with metadata and created timestamps
    #[value(name = "2.0", alias = "io.prometheus.write.v2.Request")]
    V2,
}

impl Command {
    /// The command's settings, every flag and the config file checked. "Now" is read here,
    /// once, for a history's default end.
    pub fn settings(&self) -> Result<Settings> {
        Ok(match self {
            Command::Exporter(args) => Settings::Exporter(args.settings()?),
            Command::Generate(args) => Settings::Generate(args.settings(clock::unix_now_ms())?),
            Command::Report(args) => Settings::Report(args.settings()),
        })
    }
}

impl ExporterArgs {
    pub fn settings(&self) -> Result<ExporterSettings> {
        let fleet = self.fleet.resolve()?;
        let listen = listen_address(&self.listen)?;
        let admin = self
            .admin_listen
            .as_deref()
            .map(admin_listen_address)
            .transpose()?;
        let remote_write = self
            .remote_write
            .clone()
            .map(|endpoint| RemoteWriteSettings {
                endpoint,
                protocol: self.remote_write_protocol.into(),
                interval: self.remote_write_interval,
            });
        Ok(ExporterSettings {
            fleet,
            listen,
            tick: self.tick,
            admin,
            web_config: self.web_config_file.clone(),
            remote_write,
            log_level: self.log_level.into(),
        })
    }
}

impl GenerateArgs {
    /// The history's settings; a missing end is `now_ms`, rounded down to the step.
    pub fn settings(&self, now_ms: i64) -> Result<GenerateSettings> {
        let fleet = self.fleet.resolve()?;
        let range = HistoryRange {
            start_ms: self.start,
            end_ms: self.end,
            duration: self.duration,
        };
        let (start_ms, end_ms) = range.resolve(self.step, now_ms)?;
        let events = self
            .events
            .clone()
            .unwrap_or_else(|| events_path_beside(&self.out));
        if events == self.out {
            return Err(Error::Usage(format!(
                "--events `{}` is the history's own file; name another one",
                events.display()
            )));
        }
        Ok(GenerateSettings {
            fleet,
            out: self.out.clone(),
            format: self
                .format
                .map_or_else(|| Format::from_path(&self.out), Format::from),
            start_ms,
            end_ms,
            step_ms: self.step.as_millis() as i64,
            events,
            job: self.job.clone(),
            instance: self.instance.clone(),
        })
    }
}

impl ReportArgs {
    pub fn settings(&self) -> ReportSettings {
        ReportSettings {
            file: self.file.clone(),
            top: self.top as usize,
            trend_window_ms: i64::try_from(self.trend_window.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// A whole-number flag outside its range, or not a whole number: said as
/// `--servers must be at least 1 (got -3)` by [`one_line`], which names the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadNumber {
    got: String,
    min: i128,
    max: i128,
}

impl std::fmt::Display for BadNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let got = &self.got;
        match self.got.trim().parse::<i128>() {
            Ok(n) if n < self.min => write!(f, "must be at least {} (got {got})", self.min),
            Ok(_) => write!(f, "must be at most {} (got {got})", self.max),
            Err(_) => write!(f, "must be a whole number (got {got})"),
        }
    }
}

impl std::error::Error for BadNumber {}

/// A value parser for a whole number from `min` to `max`, negative numbers included, so
/// that `-3` is reported as out of range rather than as an unknown flag.
fn whole_number<T>(
    min: i128,
    max: i128,
) -> impl Fn(&str) -> std::result::Result<T, BadNumber> + Clone
where
    T: TryFrom<i128>,
{
    move |text| {
        let bad = || BadNumber {
            got: text.to_string(),
            min,
            max,
        };
        let n: i128 = text.trim().parse().map_err(|_| bad())?;
        if !(min..=max).contains(&n) {
            return Err(bad());
        }
        T::try_from(n).map_err(|_| bad())
    }
}

/// Resolves `--listen`: `host:port`, or `:port` for every interface (Prometheus in a
/// container scrapes the host through its bridge, not its loopback).
pub fn listen_address(text: &str) -> Result<SocketAddr> {
    resolve_address(text, "0.0.0.0", "--listen", "0.0.0.0:8000 or :8000")
}

/// Resolves `--admin-listen`: `host:port`, or `:port` for loopback only. The admin API can
/// take the whole fleet down, so a bare port keeps it to this machine; another address
/// must be written out.
pub fn admin_listen_address(text: &str) -> Result<SocketAddr> {
    resolve_address(
        text,
        "127.0.0.1",
        "--admin-listen",
        "127.0.0.1:8001, :8001 (the same) or 0.0.0.0:8001 (every interface)",
    )
}

/// `host:port`, or `:port` on `bare_host`; errors name `flag` and show `examples`.
fn resolve_address(text: &str, bare_host: &str, flag: &str, examples: &str) -> Result<SocketAddr> {
    let full = if text.starts_with(':') {
        format!("{bare_host}{text}")
    } else {
        text.to_string()
    };
    let bad =
        |why: String| Error::Usage(format!("{flag} `{text}`: {why}; write it like {examples}"));
    full.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

impl FleetArgs {
    /// The fleet of the flags laid over the config file's over the defaults.
    pub fn resolve(&self) -> Result<FleetSettings> {
        let file = match &self.config {
            Some(path) => config::load(path)?,
            None => FileSettings::default(),
        };
        let size = self.servers.or(file.servers).unwrap_or(DEFAULT_SERVERS);
        let shard = self.shard.map(ShardArg::resolve_here).transpose()?;
        let range = Shard::servers_of(shard, size)?;
        let origin = self
            .config
            .as_ref()
            .map_or_else(|| "the config".to_string(), |p| p.display().to_string());
        let flags = ConstLabels::new(self.labels.iter().cloned())
            .map_err(|e| Error::Usage(format!("--label: {e}")))?;
        let labels = file.labels.overridden_by(&flags);
        let shape = self.shape(&file, size)?;
        Ok(FleetSettings {
            servers: size,
            seed: self.seed.or(file.seed).unwrap_or(DEFAULT_SEED),
            params: file.fleet,
            range,
            incidents: file.incidents,
            origin,
            labels,
            shape,
        })
    }

    /// The load-test modes and churn: flags over the file over the defaults, knob by knob.
    fn shape(&self, file: &FileSettings, size: u32) -> Result<ShapeSpec> {
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
        spec.check(size, file.fleet.resolution)
            .map_err(Error::Usage)?;
        Ok(spec)
    }
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Format {
        match arg {
            FormatArg::Csv => Format::Csv,
            FormatArg::OpenMetrics => Format::OpenMetrics,
        }
    }
}

impl From<ProtocolArg> for Protocol {
    fn from(arg: ProtocolArg) -> Protocol {
        match arg {
            ProtocolArg::V1 => Protocol::V1,
            ProtocolArg::V2 => Protocol::V2,
        }
    }
}

impl From<LogLevelArg> for LogLevel {
    fn from(arg: LogLevelArg) -> LogLevel {
        match arg {
            LogLevelArg::Error => LogLevel::Error,
            LogLevelArg::Warn => LogLevel::Warn,
            LogLevelArg::Info => LogLevel::Info,
            LogLevelArg::Debug => LogLevel::Debug,
            LogLevelArg::Trace => LogLevel::Trace,
        }
    }
}

/// Parses the arguments; help and version go to stdout as usual, errors become one line.
pub fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// clap's error as one line: its first paragraph, without the "error: " prefix (a
/// missing argument is named on the lines after the first), and its tips ("a similar
/// argument exists: '--servers'") in brackets; the usage and the pointer to --help are
/// left out. A whole number out of range is `--servers must be at least 1 (got -3)`.
pub fn one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let bad_number = std::error::Error::source(e).and_then(|s| s.downcast_ref::<BadNumber>());
    if let (Some(bad), Some(ContextValue::String(arg))) =
        (bad_number, e.get(ContextKind::InvalidArg))
    {
        let flag = arg.split_whitespace().next().unwrap_or(arg);
        return format!("{flag} {bad}");
    }
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
    // clap lists similar names from the least to the most alike (the best next to the
    // prompt); on one line only the best is worth reading.
    let best = |kind| match e.get(kind) {
        Some(ContextValue::Strings(names)) => names.last().cloned(),
        Some(ContextValue::String(name)) => Some(name.clone()),
        _ => None,
    };
    let similar = best(ContextKind::SuggestedSubcommand)
        .map(|name| format!("a similar subcommand exists: '{name}'"))
        .or_else(|| {
            best(ContextKind::SuggestedArg)
                .map(|name| format!("a similar argument exists: '{name}'"))
        });
    let tips: Vec<String> = similar
        .into_iter()
        .chain(
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("tip:"))
                .map(str::trim)
                .filter(|tip| !tip.contains(" similar "))
                .map(str::to_string),
        )
        .collect();
    let message = paragraph.join(" ");
    let message = message.trim_start_matches("error: ").trim();
    if tips.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", tips.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn settings(args: &[&str], now_ms: i64) -> Result<Settings> {
        let cli = parse(std::iter::once("fleetsim").chain(args.iter().copied())).unwrap();
        match &cli.command {
            Command::Exporter(args) => args.settings().map(Settings::Exporter),
            Command::Generate(args) => args.settings(now_ms).map(Settings::Generate),
            Command::Report(args) => Ok(Settings::Report(args.settings())),
        }
    }

    fn generate(args: &[&str], now_ms: i64) -> GenerateSettings {
        match settings(args, now_ms).unwrap() {
            Settings::Generate(s) => s,
            _ => unreachable!(),
        }
    }

    fn exporter(args: &[&str]) -> ExporterSettings {
        match settings(args, 0).unwrap() {
            Settings::Exporter(s) => s,
            _ => unreachable!(),
        }
    }

    #[test]
    fn without_flags_a_history_is_the_week_before_now_on_the_minute() {
        let now = 1_800_000_030_000;
        let s = generate(&["generate"], now);
        assert_eq!(
            (s.fleet.servers, s.fleet.seed),
            (DEFAULT_SERVERS, DEFAULT_SEED)
        );
        assert_eq!(s.fleet.range, 0..DEFAULT_SERVERS);
        assert_eq!(s.format, Format::Csv);
        assert_eq!(s.step_ms, 60_000);
        assert_eq!(s.end_ms, 1_800_000_000_000);
        assert_eq!(s.end_ms - s.start_ms, crate::settings::DEFAULT_HISTORY_MS);
    }

    #[test]
    fn the_format_follows_the_extension_unless_a_flag_says() {
        assert_eq!(
            generate(&["generate", "--out", "h.om"], 0).format,
            Format::OpenMetrics
        );
        assert_eq!(
            generate(&["generate", "--out", "h.om", "--format", "csv"], 0).format,
            Format::Csv
        );
    }

    #[test]
    fn the_history_is_labelled_as_the_scrape_of_prometheus_yml_unless_told() {
        let s = generate(&["generate"], 0);
        assert_eq!(
            (s.job.as_str(), s.instance.as_str()),
            (DEFAULT_JOB, DEFAULT_INSTANCE)
        );
        let s = generate(
            &["generate", "--job", "fleet", "--instance", "[::1]:9100"],
            0,
        );
        assert_eq!(
            (s.job.as_str(), s.instance.as_str()),
            ("fleet", "[::1]:9100")
        );
        for (bad, says) in [
            ("localhost", "no port"),
            (":8000", "no host"),
            ("a b:8000", "not a host"),
            ("::1:8000", "not a host"),
            ("host:0", "the port"),
            ("host:http", "the port"),
            ("host:70000", "the port"),
        ] {
            let e = parse(["fleetsim", "generate", "--instance", bad]).unwrap_err();
            let line = one_line(&e);
            assert!(line.contains(says), "{bad}: {line}");
        }
        let e = parse(["fleetsim", "generate", "--job", ""]).unwrap_err();
        assert!(one_line(&e).contains("empty"), "{}", one_line(&e));
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_defaults() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "servers = 5\nseed = 3").unwrap();
        let path = file.path().to_str().unwrap();
        let s = generate(&["generate", "--config", path, "--servers", "7"], 0);
        assert_eq!((s.fleet.servers, s.fleet.seed), (7, 3));
        assert_eq!(s.fleet.origin, path);
        let s = generate(&["generate", "--config", path, "--shard", "2/2"], 0);
        assert_eq!(s.fleet.range, 2..5);
    }

    #[test]
    fn the_events_go_beside_the_history_unless_told_where() {
        let s = generate(&["generate", "--out", "d/h.om"], 0);
        assert_eq!(s.events, PathBuf::from("d/h.events.csv"));
        let s = generate(&["generate", "--events", "key.csv"], 0);
        assert_eq!(s.events, PathBuf::from("key.csv"));
        let e = settings(&["generate", "--out", "a.csv", "--events", "a.csv"], 0).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
    }

    #[test]
    fn a_report_takes_its_file_and_defaults() {
        match settings(&["report", "h.csv"], 0).unwrap() {
            Settings::Report(r) => {
                assert_eq!(r.file, PathBuf::from("h.csv"));
                assert_eq!((r.top, r.trend_window_ms), (5, 6 * 3_600_000));
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn exporter_addresses_are_resolved_and_named_by_their_flag() {
        let s = exporter(&["exporter", "--listen", ":9100", "--admin-listen", ":9101"]);
        assert_eq!(s.listen, "0.0.0.0:9100".parse().unwrap());
        assert_eq!(
            s.admin,
            Some("127.0.0.1:9101".parse().unwrap()),
            "a bare admin port is loopback only"
        );
        for (given, bound) in [
            ("0.0.0.0:9101", "0.0.0.0:9101"),
            ("[::]:9101", "[::]:9101"),
            ("[::1]:9101", "[::1]:9101"),
            ("192.0.2.7:9101", "192.0.2.7:9101"),
        ] {
            let s = exporter(&["exporter", "--admin-listen", given]);
            assert_eq!(s.admin, Some(bound.parse().unwrap()), "{given}");
        }
        assert!(s.remote_write.is_none());
        assert_eq!(s.log_level, LogLevel::Info);
        let e = settings(&["exporter", "--admin-listen", "nowhere"], 0).unwrap_err();
        assert!(e.to_string().starts_with("--admin-listen `nowhere`"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn remote_write_flags_become_one_setting() {
        let s = exporter(&[
            "exporter",
            "--remote-write",
            "http://127.0.0.1:9090/api/v1/write",
            "--remote-write-protocol",
            "io.prometheus.write.v2.Request",
            "--remote-write-interval",
            "5s",
        ]);
        let remote_write = s.remote_write.unwrap();
        assert_eq!(remote_write.protocol, Protocol::V2);
        assert_eq!(remote_write.interval, Duration::from_secs(5));
    }

    #[test]
    fn a_bad_config_is_a_usage_error_located_in_its_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "servers = 5\nnonsense = 1").unwrap();
        let path = file.path().to_str().unwrap();
        let e = settings(&["generate", "--config", path], 0).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{path}:2: ")), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
