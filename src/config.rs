//! The config file: TOML, every key optional, unknown keys rejected, laid over the model's
//! built-in defaults. Command-line flags are laid over the result by the CLI.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::exposition::{ConstLabels, check_text};
use crate::model::incidents::IncidentSpec;
use crate::model::params::{
    FleetParams, FleetPatch, IncidentsPatch, Patchable, RoleParams, RolesPatch, WalkParams,
};
use crate::model::{Role, Schedule, SeriesMode, ShapeSpec};
use crate::units::Humane;

/// The most servers one process simulates.
pub const MAX_SERVERS: u32 = 1_000_000;

/// A config problem, located: `file:line: what` (the line when it is known).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (origin, message) = (printable(&self.origin), printable(&self.message));
        match self.line {
            Some(line) => write!(f, "{origin}:{line}: {message}"),
            None => write!(f, "{origin}: {message}"),
        }
    }
}

/// `text` with its control characters escaped (`\r`, `\u{1b}`): an error quotes what a
/// file or a flag holds, and must stay one line that a terminal shows as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl std::error::Error for ConfigError {}

/// The file's own top-level keys; the rest are the fleet's parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    servers: Option<u64>,
    seed: Option<u64>,
    resolution: Option<Humane>,
    datacenters: Option<Vec<String>>,
    roles: Option<RolesPatch>,
    incidents: Option<IncidentsPatch>,
    /// `[[incident]]` tables.
    incident: Option<Vec<IncidentSpec>>,
    /// `[labels]`: constant labels added to every series.
    labels: Option<std::collections::BTreeMap<String, String>>,
    /// `[load_test]`: series modes and churn.
    load_test: Option<LoadTestFile>,
}

/// The `[load_test]` table: each key is the flag of the same name (flags win).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTestFile {
    pub series_mode: Option<SeriesMode>,
    pub series_change_interval: Option<Humane>,
    pub min_servers: Option<u32>,
    pub series_change_rate: Option<u32>,
    pub spike_multiplier: Option<f64>,
    pub churn: Option<f64>,
    pub churn_interval: Option<Humane>,
}

impl LoadTestFile {
    /// `spec` with the keys the file gives.
    pub fn applied_to(&self, spec: ShapeSpec) -> ShapeSpec {
        ShapeSpec {
            mode: self.series_mode.unwrap_or(spec.mode),
            change_interval: self
                .series_change_interval
                .map_or(spec.change_interval, |d| d.0),
            min_servers: self.min_servers.or(spec.min_servers),
            change_rate: self.series_change_rate.or(spec.change_rate),
            spike_multiplier: self.spike_multiplier.unwrap_or(spec.spike_multiplier),
            churn: self.churn.unwrap_or(spec.churn),
            churn_interval: self.churn_interval.map_or(spec.churn_interval, |d| d.0),
        }
    }
}

/// What a config file says, over the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSettings {
    pub servers: Option<u32>,
    pub seed: Option<u64>,
    pub fleet: FleetParams,
    /// The `[[incident]]` tables, checked (kinds, targets' form, durations, intensities)
    /// but not resolved: resolve them with `Schedule::from_specs` once the run's start is
    /// known, and check their targets against the fleet with `Schedule::check_targets`.
    pub incidents: Vec<IncidentSpec>,
    /// The `[labels]` table, checked.
    pub labels: ConstLabels,
    /// The `[load_test]` table, its values checked (against the fleet once flags are in).
    pub load_test: LoadTestFile,
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<FileSettings, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        line: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(&text, &origin)
}

/// Parses and validates config text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<FileSettings, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let mut message = plain_type_error(e.message().trim().replace('\n', " "));
        // Type errors name the value, not the key: name the key from the line.
        if let Some(table) = line.and_then(|l| table_on_line(text, l)) {
            message = table_hint(&table).unwrap_or_else(|| format!("`{table}`: {message}"));
        } else if let Some(key) = line.and_then(|l| key_on_line(text, l))
            && !message.contains(&format!("`{key}`"))
        {
            message = format!("`{key}`: {message}");
        }
        ConfigError {
            origin: origin.to_string(),
            line,
            message: at_most(&elide_quotes(&printable(&message)), MESSAGE_CHARS),
        }
    })?;
    let invalid = |message: String| ConfigError {
        origin: origin.to_string(),
        line: None,
        message,
    };
    let servers = match file.servers {
        None => None,
        Some(n) if (1..=MAX_SERVERS as u64).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(invalid(format!(
                "`servers` must be 1 to {MAX_SERVERS}, not {n}"
            )));
        }
    };
    let fleet = FleetParams::default().patched(&FleetPatch {
        resolution: file.resolution,
        datacenters: file.datacenters,
        roles: file.roles,
        incidents: file.incidents,
    });
    validate(&fleet).map_err(invalid)?;
    let incidents = file.incident.unwrap_or_default();
    if incidents.len() > bounds::SCHEDULED_INCIDENTS {
        return Err(invalid(format!(
            "`[[incident]]`: at most {} scheduled incidents, not {}",
            bounds::SCHEDULED_INCIDENTS,
            incidents.len()
        )));
    }
    // Resolved against any instant, to find what is wrong in them now rather than later:
    // `incident 2: target: ...`.
    Schedule::from_specs(&incidents, 0, 0).map_err(invalid)?;
    let labels = ConstLabels::new(file.labels.unwrap_or_default())
        .map_err(|e| invalid(format!("`labels`: {e}")))?;
    let load_test = file.load_test.unwrap_or_default();
    load_test
        .applied_to(ShapeSpec::default())
        .check_values(|key| format!("`load_test.{key}`"))
        .map_err(invalid)?;
    Ok(FileSettings {
        servers,
        seed: file.seed,
        fleet,
        incidents,
        labels,
        load_test,
    })
}

/// The longest message of the TOML parser passed on, in characters: its own words are
/// far shorter, the rest is what it quotes of the file.
const MESSAGE_CHARS: usize = 300;

/// `text` cut to `chars` characters, with an ellipsis when cut.
fn at_most(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The longest quoted text a message repeats whole, in characters.
const QUOTE_CHARS: usize = 60;

/// `message` with each long `quoted` text cut to its ends (a key or value of the file can
/// be kilobytes long; the message stays a line one reads).
fn elide_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let chars = part.chars().count();
        if i % 2 == 1 && chars > QUOTE_CHARS {
            let head: String = part.chars().take(QUOTE_CHARS / 2).collect();
            let tail: String = part.chars().skip(chars - QUOTE_CHARS / 4).collect();
            out.push_str(&format!("{head}…{tail}"));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The header on `line` when it is one (`[roles.web]`, `[[incident]]`), brackets kept.
fn table_on_line(text: &str, line: usize) -> Option<String> {
    let content = text.lines().nth(line - 1)?.trim();
    let header = content.split('#').next()?.trim();
    (header.starts_with('[') && header.ends_with(']') && quotable(header))
        .then(|| header.to_string())
}

/// What a header that looks like one of ours but is not means to say.
fn table_hint(header: &str) -> Option<String> {
    match header.replace(' ', "").as_str() {
        "[[incidents]]" => Some(
            "`[[incidents]]`: a scheduled incident is an `[[incident]]` table (singular, one \
             per incident); `[incidents]` (single brackets) holds `random_per_day`"
                .to_string(),
        ),
        "[incident]" => Some(
            "`[incident]`: write each scheduled incident as an `[[incident]]` table (double \
             brackets)"
                .to_string(),
        ),
        _ => None,
    }
}

/// serde's "invalid type: string \"ten\", expected u64" in the words of the file:
/// "expected a whole number, found the string \"ten\"", with a huge number shortened.
fn plain_type_error(message: String) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message;
    };
    let Some((found, expected)) = rest.rsplit_once(", expected ") else {
        return message;
    };
    let expected = match expected {
        "u64" | "u32" | "u16" | "u8" | "usize" | "i64" | "i32" => "a whole number (like 10)",
        "f64" | "f32" => "a number (like 2.5)",
        other => other,
    };
    let found = match found.strip_prefix("floating point `") {
        Some(number) => {
            let number = number.trim_end_matches('`');
            match number.parse::<f64>() {
                Ok(x) if number.len() > 20 => format!("the number {x:e}"),
                _ => format!("the number {number}"),
            }
        }
        None => found.replace("integer `", "the number `"),
    };
    format!("expected {expected}, found {found}")
}

fn key_on_line(text: &str, line: usize) -> Option<String> {
    let content = text.lines().nth(line - 1)?;
    let (key, _) = content.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('#') && quotable(key)).then(|| key.to_string())
}

/// Whether a text of the file can be shown between backticks: none of its own, nothing a
/// terminal would act on.
fn quotable(text: &str) -> bool {
    !text.contains('`') && !text.chars().any(char::is_control)
}

/// The bounds of the config's values. Each keeps the model within what it computes in
/// reasonable time (a warm start in milliseconds a server, a simulated hour in a fraction
/// of a second for ten servers) and within what its values mean, as a demanding user
/// would push them; the README's config section lists them.
pub mod bounds {
    use std::time::Duration;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }
    const MINUTE: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    /// The grid. Every signal is computed at every grid point, so a simulated hour costs
    /// 1/resolution steps a server: at 100ms, 36,000 (a week of ten servers in about ten
    /// seconds); below it a scrape interval of Prometheus (1s at the least) sees nothing
    /// more. Past an hour the daily wave has fewer than 24 points and an outage of minutes
    /// lasts a whole step.
    pub const RESOLUTION: (Duration, Duration) = (Duration::from_millis(100), secs(HOUR));

    /// A walk's reversion. A warm start leaps the walks from 20 reversions back, one
    /// five-minute node at a time: 7d is 40,000 leaps a walk, a few milliseconds a server.
    /// Under a second the walk is white noise at any grid.
    pub const REVERSION: (Duration, Duration) = (secs(1), secs(7 * DAY));

    /// Mean times between random events (`0s`: never). Events are drawn per slot of a
    /// 24th of the mean, and a warm start looks back over the reboot period for the last
    /// one, slot by slot. The floors keep the slots at 24 grid points or more at the finest
    /// grid; the ceiling keeps every grid index far from overflow.
    pub const MEAN_TIME_MAX: Duration = secs(3650 * DAY);
    /// Deploys restart every server of the role, cleanups empty the disk: more often than
    /// every 10 minutes, `rate(...[5m])` has nothing to read between two.
    pub const DEPLOY_EVERY_MIN: Duration = secs(10 * MINUTE);
    pub const CLEANUP_EVERY_MIN: Duration = secs(10 * MINUTE);
    /// Failures: at least an hour apart, and at least 24 grid steps, so that an outage does
    /// not start at nearly every grid point; a server failing more often is flapping,
    /// which an incident or a short `mttr` shows better.
    pub const MTBF_MIN: Duration = secs(HOUR);
    pub const MTBF_MIN_STEPS: u32 = 24;
    /// Repairs: the mean outage. Outages overlap when repairs outlast failures; at four
    /// times the mtbf a server is up 2% of the time, and past it its down spells chain
    /// without end, which a warm start walks back through to find the server's last up.
    pub const MTTR: (Duration, Duration) = (secs(1), secs(365 * DAY));
    pub const MTTR_PER_MTBF: u32 = 4;

    /// Periods of scheduled events (reboots, log rotations). The reboot period is how far
    /// back a warm start looks for a restart and sums the counters since, and how far back
    /// random incidents are drawn: a year (105,000 five-minute nodes a server) at most. At
    /// least two grid steps, so that a server is up for a whole step between two.
    pub const PERIOD: (Duration, Duration) = (secs(HOUR), secs(366 * DAY));
    pub const PERIOD_MIN_STEPS: u32 = 2;

    /// Bursts of CPU: each lies in a slot twice the longest, so bursts come at most every
    /// `2 * burst_max`; a burst of a day is a regime, not a burst.
    pub const BURST_LEN: (Duration, Duration) = (secs(1), secs(DAY));

    /// Random incidents a day across the fleet (`0`: none). A warm start applies each to
    /// its server over the whole reboot period it looks back over, so a small fleet with
    /// many pays for them all: at 288 a day (two rounds of the six kinds an hour) and a
    /// reboot period of a year, 105,000 incidents, an hour of ten servers in seconds. At
    /// least one in a hundred days, so that the slot of one stays a number of ms.
    pub const RANDOM_PER_DAY: (f64, f64) = (0.01, 288.0);

    /// `[[incident]]` tables: every frame checks each against its servers.
    pub const SCHEDULED_INCIDENTS: usize = 1000;

    /// Datacenters: each is a label value of every series of its servers.
    pub const DATACENTERS: usize = 1000;

    /// A datacenter's name, like a label's name and value: at most this many bytes.
    pub use crate::exposition::MAX_TEXT_BYTES as NAME_BYTES;
}

/// Checks what the model relies on; the message names the key.
pub fn validate(p: &FleetParams) -> Result<(), String> {
    let (low, high) = bounds::RESOLUTION;
    duration_in("resolution", p.resolution, low, high).map_err(|e| format!("`{e}"))?;
    if p.datacenters.is_empty() {
        return Err("`datacenters` must name at least one datacenter".into());
    }
    if p.datacenters.len() > bounds::DATACENTERS {
        return Err(format!(
            "`datacenters` must name at most {} datacenters, not {}",
            bounds::DATACENTERS,
            p.datacenters.len()
        ));
    }
    for (i, dc) in p.datacenters.iter().enumerate() {
        if dc.is_empty() {
            return Err("`datacenters` has an empty name".into());
        }
        check_text(dc).map_err(|e| format!("`datacenters`: name {} {e}", i + 1))?;
        if p.datacenters[..i].contains(dc) {
            return Err(format!("`datacenters` names `{dc}` twice"));
        }
    }
    for role in Role::ALL {
        let weight = p.roles.get(role).weight;
        range("weight", weight, 0.0, 1e6).map_err(|e| format!("`roles.{}.{e}", role.name()))?;
    }
    let total: f64 = Role::ALL.iter().map(|&r| p.roles.get(r).weight).sum();
    if total.is_nan() || total <= 0.0 {
        return Err(
            "the roles' weights are all zero: at least one role needs a weight above 0".into(),
        );
    }
    for role in Role::ALL {
        validate_role(p.roles.get(role), p.resolution)
            .map_err(|e| format!("`roles.{}.{e}", role.name()))?;
    }
    let per_day = p.incidents.random_per_day;
    let (low, high) = bounds::RANDOM_PER_DAY;
    if !(per_day == 0.0 || (per_day.is_finite() && (low..=high).contains(&per_day))) {
        return Err(format!(
            "`incidents.random_per_day` must be 0 (none) or {} to {}, not {}",
            short(low),
            short(high),
            short(per_day)
        ));
    }
    Ok(())
}

fn range(key: &str, value: f64, low: f64, high: f64) -> Result<(), String> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key}` must be {} to {}, not {}",
            short(low),
            short(high),
            short(value)
        ))
    }
}

/// Above `low` (excluded) up to `high`.
fn above(key: &str, value: f64, low: f64, high: f64) -> Result<(), String> {
    if value.is_finite() && value > low && value <= high {
        Ok(())
    } else {
        Err(format!(
            "{key}` must be above {} and at most {}, not {}",
            short(low),
            short(high),
            short(value)
        ))
    }
}

/// A number as a person reads it in one line: `1e300`, not three hundred digits.
fn short(x: f64) -> String {
    if x.is_finite() && x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// A duration as the config writes it: `100ms`, `15s`, `6m`, `1h`, `3650d`, in the largest
/// unit that holds it whole.
pub fn humane(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms > 0 && d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{ms}ms");
    }
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// `value` within `[low, high]`; the message says `key` and the range (`key` as the config
/// writes it, its opening backtick left to the caller, as for the numbers).
fn duration_in(key: &str, value: Duration, low: Duration, high: Duration) -> Result<(), String> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key}` must be {} to {}, not {}",
            humane(low),
            humane(high),
            humane(value)
        ))
    }
}

/// `value` zero (never) or within `[low, high]`, where `low` may be set by the grid
/// (`steps` grid steps, said in the message when they are what sets it).
fn mean_time(
    key: &str,
    value: Duration,
    floor: Duration,
    grid: Option<(u32, Duration)>,
) -> Result<(), String> {
    let by_grid = grid.map(|(steps, resolution)| resolution * steps);
    let low = by_grid.map_or(floor, |g| g.max(floor));
    let high = bounds::MEAN_TIME_MAX;
    if value.is_zero() || (low..=high).contains(&value) {
        return Ok(());
    }
    let why = match (grid, by_grid) {
        (Some((steps, resolution)), Some(g)) if g > floor => {
            format!(" ({steps} steps of `resolution` {})", humane(resolution))
        }
        _ => String::new(),
    };
    Err(format!(
        "{key}` must be 0s (never) or {} to {}{why}, not {}",
        humane(low),
        humane(high),
        humane(value)
    ))
}

/// A period within `bounds::PERIOD`, and at least `PERIOD_MIN_STEPS` grid steps.
fn period(key: &str, value: Duration, resolution: Duration) -> Result<(), String> {
    let (floor, high) = bounds::PERIOD;
    let by_grid = resolution * bounds::PERIOD_MIN_STEPS;
    let low = floor.max(by_grid);
    if (low..=high).contains(&value) {
        return Ok(());
    }
    let why = if by_grid > floor {
        format!(
            " ({} steps of `resolution` {})",
            bounds::PERIOD_MIN_STEPS,
            humane(resolution)
        )
    } else {
        String::new()
    };
    Err(format!(
        "{key}` must be {} to {}{why}, not {}",
        humane(low),
        humane(high),
        humane(value)
    ))
}

fn validate_walk(key: &str, w: &WalkParams) -> Result<(), String> {
    // A walk's values are percentage points, load factors or log factors: a million is
    // past every one, and keeps their sums finite.
    for (name, value) in [("mean", w.mean), ("min", w.min), ("max", w.max)] {
        range(&format!("{key}.{name}"), value, -1e6, 1e6)?;
    }
    range(&format!("{key}.stddev"), w.stddev, 0.0, 1e6)?;
    let (low, high) = bounds::REVERSION;
    duration_in(&format!("{key}.reversion"), w.reversion, low, high)?;
    if !(w.min <= w.mean && w.mean <= w.max) {
        return Err(format!(
            "{key}` must have min <= mean <= max, not {} <= {} <= {}",
            w.min, w.mean, w.max
        ));
    }
    Ok(())
}

fn validate_role(r: &RoleParams, resolution: Duration) -> Result<(), String> {
    range("traffic.rps", r.traffic.rps, 0.0, 1e7)?;
    range(
        "traffic.daily_amplitude",
        r.traffic.daily_amplitude,
        0.0,
        1.0,
    )?;
    range("traffic.peak_hour", r.traffic.peak_hour, 0.0, 24.0)?;
    validate_walk("traffic.load", &r.traffic.load)?;
    if r.traffic.load.min < 0.0 {
        return Err(format!(
            "traffic.load.min` must be 0 or more, not {}",
            r.traffic.load.min
        ));
    }
    range("cpu.idle", r.cpu.idle, 0.0, 100.0)?;
    above("cpu.saturation_rps", r.cpu.saturation_rps, 0.0, 1e9)?;
    validate_walk("cpu.noise", &r.cpu.noise)?;
    let (shortest, longest) = bounds::BURST_LEN;
    duration_in("cpu.burst_max", r.cpu.burst_max, shortest, longest)?;
    duration_in("cpu.burst_min", r.cpu.burst_min, shortest, r.cpu.burst_max)
        .map_err(|e| format!("{e} (at most `burst_max`)"))?;
    // A burst lies in a slot twice the longest: they cannot come more often.
    let slot = r.cpu.burst_max * 2;
    if !(r.cpu.burst_every.is_zero() || (slot..=bounds::MEAN_TIME_MAX).contains(&r.cpu.burst_every))
    {
        return Err(format!(
            "cpu.burst_every` must be 0s (never) or {} (twice `burst_max`) to {}, not {}",
            humane(slot),
            humane(bounds::MEAN_TIME_MAX),
            humane(r.cpu.burst_every)
        ));
    }
    range("cpu.burst_height", r.cpu.burst_height, 0.0, 100.0)?;
    above("cpu.deploy_cost_low", r.cpu.deploy_cost_low, 0.0, 10.0)?;
    range(
        "cpu.deploy_cost_high",
        r.cpu.deploy_cost_high,
        r.cpu.deploy_cost_low,
        10.0,
    )
    .map_err(|e| format!("{e} (at least `deploy_cost_low`)"))?;
    // Up to a minute at an idle server, and a spread that keeps the p99 of a saturated one
    // (e^(2.33 * 1.5 * spread)) a finite number of seconds.
    above("latency.base_ms", r.latency.base_ms, 0.0, 60_000.0)?;
    above("latency.spread", r.latency.spread, 0.0, 10.0)?;
    validate_walk("latency.noise", &r.latency.noise)?;
    range(
        "errors.server_error_pct",
        r.errors.server_error_pct,
        0.0,
        100.0,
    )?;
    range(
        "errors.saturation_error_pct",
        r.errors.saturation_error_pct,
        0.0,
        100.0,
    )?;
    range(
        "errors.client_error_pct",
        r.errors.client_error_pct,
        0.0,
        100.0,
    )?;
    validate_walk("errors.noise", &r.errors.noise)?;
    range("memory.base", r.memory.base, 0.0, 100.0)?;
    // A hundred points an hour fills any memory within the hour: a leak, not a stampede.
    range("memory.leak_per_hour", r.memory.leak_per_hour, 0.0, 100.0)?;
    // The process restarts when its memory reaches this: at or below the level it
    // restarts at, it would restart for ever.
    if !(r.memory.restart_at > r.memory.base && r.memory.restart_at <= 100.0) {
        return Err(format!(
            "memory.restart_at` must be above `memory.base` ({}) and at most 100, not {}",
            short(r.memory.base),
            short(r.memory.restart_at)
        ));
    }
    validate_walk("memory.noise", &r.memory.noise)?;
    range("disk.base", r.disk.base, 0.0, 100.0)?;
    range("disk.fill_per_day", r.disk.fill_per_day, 0.0, 2400.0)?;
    mean_time(
        "disk.cleanup_every",
        r.disk.cleanup_every,
        bounds::CLEANUP_EVERY_MIN,
        None,
    )?;
    period("disk.rotate_every", r.disk.rotate_every, resolution)?;
    validate_walk("disk.noise", &r.disk.noise)?;
    range("network.base_bps", r.network.base_bps, 0.0, 1e12)?;
    range("network.request_bytes", r.network.request_bytes, 0.0, 1e9)?;
    range("network.response_bytes", r.network.response_bytes, 0.0, 1e9)?;
    let life = &r.lifecycle;
    mean_time(
        "lifecycle.deploy_every",
        life.deploy_every,
        bounds::DEPLOY_EVERY_MIN,
        None,
    )?;
    period("lifecycle.reboot_every", life.reboot_every, resolution)?;
    mean_time(
        "lifecycle.mtbf",
        life.mtbf,
        bounds::MTBF_MIN,
        Some((bounds::MTBF_MIN_STEPS, resolution)),
    )?;
    let (low, high) = bounds::MTTR;
    duration_in("lifecycle.mttr", life.mttr, low, high)?;
    let most = life.mtbf * bounds::MTTR_PER_MTBF;
    if !life.mtbf.is_zero() && life.mttr > most {
        return Err(format!(
            "lifecycle.mttr` must be at most {} times `mtbf` ({}), not {}: the server would be down for good",
            bounds::MTTR_PER_MTBF,
            humane(most),
            humane(life.mttr)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(parse("", "f.toml"), Ok(FileSettings::default()));
    }

    #[test]
    fn keys_override_defaults_and_leave_the_rest() {
        let s = parse(
            "servers = 25\nseed = 9\n[roles.db.cpu]\nidle = 12.5\n[roles.web.cpu.noise]\nstddev = 1\n",
            "f.toml",
        )
        .unwrap();
        assert_eq!(s.servers, Some(25));
        assert_eq!(s.seed, Some(9));
        let d = FleetParams::default();
        assert_eq!(s.fleet.roles.db.cpu.idle, 12.5);
        assert_eq!(
            s.fleet.roles.db.cpu.saturation_rps,
            d.roles.db.cpu.saturation_rps
        );
        assert_eq!(s.fleet.roles.web.cpu.noise.stddev, 1.0);
        assert_eq!(
            s.fleet.roles.web.cpu.noise.reversion,
            d.roles.web.cpu.noise.reversion
        );
        assert_eq!(s.fleet.roles.api, d.roles.api);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("servers = 3\n\n[roles.web.cpu]\nidel = 3\n", "fleet.toml").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().starts_with("fleet.toml:4: "), "{e}");
        assert!(e.message.contains("idel"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse("[roles.api.traffic]\nrps = \"lots\"\n", "f.toml").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("`rps`"), "{e}");
    }

    #[test]
    fn type_errors_say_what_was_expected_in_plain_words() {
        let e = parse("servers = \"ten\"\n", "f.toml").unwrap_err();
        assert_eq!(
            e.message,
            "`servers`: expected a whole number (like 10), found string \"ten\""
        );
        let e = parse("[roles.web.cpu]\nidle = \"4\"\n", "f.toml").unwrap_err();
        assert!(e.message.contains("expected a number (like 2.5)"), "{e}");
        let e = parse("servers = 1e300\n", "f.toml").unwrap_err();
        assert!(e.message.contains("the number 1e300"), "{e}");
        assert!(e.message.len() < 100, "a short line: {e}");
    }

    #[test]
    fn range_errors_print_short_numbers() {
        let e = parse("[roles.web.traffic]\nrps = -1e300\n", "f.toml").unwrap_err();
        assert!(e.message.contains("0 to 10000000, not -1e300"), "{e}");
        assert!(e.message.len() < 80, "a short line: {e}");
    }

    #[test]
    fn a_misspelt_incident_table_says_which_is_meant() {
        let text = "[[incidents]]\nkind = \"outage\"\ntarget = \"role=db\"\nduration = \"5m\"\n";
        let e = parse(text, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("`[[incident]]`"), "{e}");
        let e = parse("[incident]\nkind = \"outage\"\n", "f.toml").unwrap_err();
        assert!(e.message.contains("double brackets"), "{e}");
    }

    #[test]
    fn bad_durations_and_values_are_named() {
        let e = parse("resolution = \"soon\"\n", "f.toml").unwrap_err();
        assert!(e.message.contains("not a duration"), "{e}");
        let e = parse("servers = 0\n", "f.toml").unwrap_err();
        assert!(e.message.contains("`servers`"), "{e}");
        let e = parse("[roles.web.cpu]\nidle = 120\n", "f.toml").unwrap_err();
        assert!(e.message.contains("roles.web.cpu.idle"), "{e}");
        let e = parse("[roles.db.memory.noise]\nmin = 10\n", "f.toml").unwrap_err();
        assert!(e.message.contains("roles.db.memory.noise"), "{e}");
        let e = parse("datacenters = []\n", "f.toml").unwrap_err();
        assert!(e.message.contains("datacenters"), "{e}");
    }

    #[test]
    fn labels_are_read_and_checked() {
        let s = parse("[labels]\nenv = \"test\"\nZone = \"a b\"\n", "f.toml").unwrap();
        assert_eq!(
            s.labels.iter().collect::<Vec<_>>(),
            [("Zone", "a b"), ("env", "test")]
        );
        for (bad, says) in [
            ("\"1x\" = \"a\"", "must match"),
            ("server = \"a\"", "fleet's own"),
            ("__x = \"a\"", "reserves"),
            ("env = \"\"", "empty"),
        ] {
            let e = parse(&format!("[labels]\n{bad}\n"), "f.toml").unwrap_err();
            let e = e.to_string();
            assert!(
                e.starts_with("f.toml: `labels`: ") && e.contains(says),
                "{e}"
            );
        }
        let e = parse("[labels]\nenv = 3\n", "f.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn load_test_keys_are_read_and_checked() {
        let s = parse(
            "[load_test]\nseries_mode = \"double-halve\"\nchurn = 0.25\nchurn_interval = \"5m\"\n",
            "f.toml",
        )
        .unwrap();
        let spec = s.load_test.applied_to(ShapeSpec::default());
        assert_eq!(spec.mode, SeriesMode::DoubleHalve);
        assert_eq!(spec.churn, 0.25);
        assert_eq!(spec.churn_interval, std::time::Duration::from_secs(300));
        let s = parse("[load_test]\nseries_mode = \"gradual\"\n", "f.toml").unwrap();
        assert_eq!(s.load_test.series_mode, Some(SeriesMode::GradualChange));
        let e = parse("[load_test]\nchurn = 2.0\n", "f.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.toml: `load_test.churn` must be"),
            "{e}"
        );
        let e = parse("[load_test]\nseries_mode = \"often\"\n", "f.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = parse("[load_test]\nchrun = 0.1\n", "f.toml").unwrap_err();
        assert!(e.message.contains("chrun"), "{e}");
    }

    #[test]
    fn the_shipped_config_has_the_default_load_test_knobs() {
        let s = parse(include_str!("../config/fleet.toml"), "config/fleet.toml").unwrap();
        assert_eq!(
            s.load_test.applied_to(ShapeSpec::default()),
            ShapeSpec::default(),
            "config/fleet.toml's [load_test] drifted from the built-in defaults"
        );
        assert!(s.labels.is_empty());
    }

    #[test]
    fn the_shipped_config_is_the_defaults() {
        let text = include_str!("../config/fleet.toml");
        let s = parse(text, "config/fleet.toml").unwrap();
        assert_eq!(
            s.fleet,
            FleetParams::default(),
            "config/fleet.toml drifted from the built-in defaults"
        );
        assert_eq!(s.servers, Some(10));
        assert_eq!(s.incidents, [], "config/fleet.toml schedules incidents");
    }

    #[test]
    fn the_shipped_config_documents_incidents_that_parse() {
        let text = include_str!("../config/fleet.toml");
        let (head, example) = text
            .split_once("# Scheduled incidents")
            .expect("config/fleet.toml has an example of scheduled incidents");
        let uncommented: String = example
            .lines()
            .skip(1)
            .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let s = parse(&format!("{head}{uncommented}"), "config/fleet.toml").unwrap();
        assert_eq!(s.incidents.len(), 2, "{uncommented}");
        assert_eq!(s.incidents[0].intensity, Some(0.5));
        let schedule = Schedule::from_specs(&s.incidents, 0, 0).unwrap();
        assert_eq!(schedule.incidents[1].start_ms, 3_600_000);
    }

    const TWO_INCIDENTS: &str = "\
servers = 5

[incidents]
random_per_day = 2.5

[[incident]]
kind = \"outage\"
target = \"server=srv-03\"
start = \"2h\"
duration = \"10m\"

[[incident]]
kind = \"error_burst\"
target = \"share=0.25\"
start = \"2026-11-24T12:00:00Z\"
duration = \"30m\"
intensity = 0.5
";

    #[test]
    fn incidents_are_read_in_order() {
        let s = parse(TWO_INCIDENTS, "f.toml").unwrap();
        assert_eq!(s.fleet.incidents.random_per_day, 2.5);
        assert_eq!(s.incidents.len(), 2);
        assert_eq!(s.incidents[0].kind, "outage");
        assert_eq!(s.incidents[0].start.as_deref(), Some("2h"));
        assert_eq!(s.incidents[1].intensity, Some(0.5));
        let schedule = Schedule::from_specs(&s.incidents, 1_000, 2_000).unwrap();
        assert_eq!(schedule.incidents[0].start_ms, 1_000 + 7_200_000);
        assert_eq!(schedule.incidents[1].id, 2);
    }

    #[test]
    fn incident_errors_name_the_file_the_incident_and_the_field() {
        // Unknown keys and wrong types: file, line and key, from toml.
        let bad = TWO_INCIDENTS.replace("intensity = 0.5", "intensty = 0.5");
        let e = parse(&bad, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(17), "{e}");
        assert!(e.message.contains("intensty"), "{e}");
        let bad = TWO_INCIDENTS.replace("intensity = 0.5", "intensity = \"high\"");
        let e = parse(&bad, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(17), "{e}");
        assert!(e.message.contains("`intensity`"), "{e}");
        let bad = TWO_INCIDENTS.replace("duration = \"10m\"", "duration = 10");
        let e = parse(&bad, "f.toml").unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("`duration`"), "{e}");
        let bad = TWO_INCIDENTS.replace("duration = \"10m\"\n", "");
        let e = parse(&bad, "f.toml").unwrap_err();
        assert!(e.message.contains("duration"), "{e}");

        // What only fleetsim knows: `file: incident N: field: ...`.
        for (from, to, says) in [
            ("share=0.25", "share=0", "f.toml: incident 2: target: "),
            ("server=srv-03", "srv-03", "f.toml: incident 1: target: "),
            (
                "\"error_burst\"",
                "\"errors\"",
                "f.toml: incident 2: kind: unknown kind `errors`",
            ),
            ("\"10m\"", "\"-10m\"", "f.toml: incident 1: duration: "),
            ("\"30m\"", "\"0s\"", "f.toml: incident 2: duration: "),
            ("\"2h\"", "\"later\"", "f.toml: incident 1: start: "),
            (
                "intensity = 0.5",
                "intensity = 2.0",
                "f.toml: incident 2: intensity: ",
            ),
        ] {
            let bad = TWO_INCIDENTS.replace(from, to);
            let e = parse(&bad, "f.toml").unwrap_err().to_string();
            assert!(e.starts_with(says), "{from} -> {to}: {e}");
        }

        let e = parse("[incidents]\nrandom_per_day = -1\n", "f.toml").unwrap_err();
        assert!(e.message.contains("`incidents.random_per_day`"), "{e}");
        let e = parse("[incidents]\nrandom_per_dy = 1\n", "f.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
    /// Asserts `text` is accepted.
    fn accepted(text: &str) {
        if let Err(e) = parse(text, "f.toml") {
            panic!("{text:?} refused: {e}");
        }
    }

    /// Asserts `text` is refused in one line that names `key` and says `range`.
    fn refused(text: &str, key: &str, range: &str) {
        let e = match parse(text, "f.toml") {
            Ok(_) => panic!("{text:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(!e.contains('\n'), "{e:?}");
        assert!(e.contains(&format!("`{key}` must be")), "{text:?}: {e}");
        assert!(e.contains(range), "{text:?}: {e} does not say {range:?}");
    }

    #[test]
    fn the_grid_is_100ms_to_1h() {
        for ok in ["100ms", "1h", "15s", "1s"] {
            accepted(&format!("resolution = \"{ok}\"\n"));
        }
        for bad in ["99ms", "1ms", "3601s", "100000d"] {
            refused(
                &format!("resolution = \"{bad}\"\n"),
                "resolution",
                &format!("100ms to 1h, not {bad}"),
            );
        }
        // The defaults hold at either end of the grid.
        accepted("resolution = \"100ms\"\n");
        accepted("resolution = \"1h\"\n");
    }

    #[test]
    fn mean_times_are_never_or_within_their_bounds() {
        for (table, key, floor) in [
            ("lifecycle", "deploy_every", "10m"),
            ("disk", "cleanup_every", "10m"),
            ("lifecycle", "mtbf", "1h"),
        ] {
            let at = |value: &str| format!("[roles.db.{table}]\n{key} = \"{value}\"\n");
            let name = format!("roles.db.{table}.{key}");
            let range = format!("0s (never) or {floor} to 3650d");
            for ok in ["0s", floor, "3650d"] {
                accepted(&at(ok));
            }
            let below = if floor == "1h" { "3599s" } else { "599s" };
            for bad in [below, "1ms", "3651d"] {
                refused(&at(bad), &name, &format!("{range}, not {bad}"));
            }
        }
        // Failures at least 24 grid steps apart.
        let grid =
            |mtbf: &str| format!("resolution = \"5m\"\n[roles.web.lifecycle]\nmtbf = \"{mtbf}\"\n");
        accepted(&grid("2h"));
        refused(
            &grid("119m"),
            "roles.web.lifecycle.mtbf",
            "0s (never) or 2h to 3650d (24 steps of `resolution` 5m), not 119m",
        );
    }

    #[test]
    fn repairs_are_bounded_and_outlast_failures_by_four_at_most() {
        let at = |mtbf: &str, mttr: &str| {
            format!("[roles.api.lifecycle]\nmtbf = \"{mtbf}\"\nmttr = \"{mttr}\"\n")
        };
        for (mtbf, mttr) in [
            ("30d", "1s"),
            ("100d", "365d"),
            ("1h", "4h"),
            ("0s", "365d"),
        ] {
            accepted(&at(mtbf, mttr));
        }
        refused(
            &at("30d", "999ms"),
            "roles.api.lifecycle.mttr",
            "1s to 365d, not 999ms",
        );
        refused(
            &at("0s", "366d"),
            "roles.api.lifecycle.mttr",
            "1s to 365d, not 366d",
        );
        refused(
            &at("1h", "14401s"),
            "roles.api.lifecycle.mttr",
            "at most 4 times `mtbf` (4h), not 14401s",
        );
    }

    #[test]
    fn periods_are_an_hour_to_a_year_and_two_grid_steps() {
        for (table, key) in [("lifecycle", "reboot_every"), ("disk", "rotate_every")] {
            let at = |grid: &str, value: &str| {
                format!("resolution = \"{grid}\"\n[roles.cache.{table}]\n{key} = \"{value}\"\n")
            };
            let name = format!("roles.cache.{table}.{key}");
            for ok in ["1h", "366d"] {
                accepted(&at("15s", ok));
            }
            for bad in ["3599s", "0s", "367d"] {
                refused(&at("15s", bad), &name, &format!("1h to 366d, not {bad}"));
            }
            accepted(&at("1h", "2h"));
            refused(
                &at("1h", "1h"),
                &name,
                "2h to 366d (2 steps of `resolution` 1h), not 1h",
            );
        }
    }

    #[test]
    fn bursts_are_a_second_to_a_day_and_fit_their_slots() {
        let at = |every: &str, min: &str, max: &str| {
            format!(
                "[roles.worker.cpu]\nburst_every = \"{every}\"\nburst_min = \"{min}\"\nburst_max = \"{max}\"\n"
            )
        };
        for (every, min, max) in [
            ("0s", "1s", "1s"),
            ("2s", "1s", "1s"),
            ("8m", "1m", "4m"),
            ("2d", "1d", "1d"),
            ("3650d", "1m", "4m"),
        ] {
            accepted(&at(every, min, max));
        }
        let key = "roles.worker.cpu";
        refused(
            &at("8m", "999ms", "4m"),
            &format!("{key}.burst_min"),
            "1s to 4m, not 999ms",
        );
        refused(
            &at("8m", "5m", "4m"),
            &format!("{key}.burst_min"),
            "1s to 4m, not 5m",
        );
        refused(
            &at("3d", "1m", "86401s"),
            &format!("{key}.burst_max"),
            "1s to 1d, not 86401s",
        );
        refused(
            &at("479s", "1m", "4m"),
            &format!("{key}.burst_every"),
            "0s (never) or 8m (twice `burst_max`) to 3650d, not 479s",
        );
        refused(
            &at("3651d", "1m", "4m"),
            &format!("{key}.burst_every"),
            "to 3650d, not 3651d",
        );
    }

    #[test]
    fn walks_revert_within_a_second_to_a_week_and_stay_finite() {
        let at = |value: &str| format!("[roles.web.traffic.load]\n{value}\n");
        accepted(&at("reversion = \"1s\""));
        accepted(&at("reversion = \"7d\""));
        let key = "roles.web.traffic.load.reversion";
        refused(&at("reversion = \"999ms\""), key, "1s to 7d, not 999ms");
        refused(&at("reversion = \"604801s\""), key, "1s to 7d, not 604801s");
        refused(
            &at("max = inf"),
            "roles.web.traffic.load.max",
            "-1000000 to 1000000",
        );
        refused(&at("mean = nan"), "roles.web.traffic.load.mean", "not NaN");
    }

    #[test]
    fn restarts_happen_above_the_memory_a_restart_leaves() {
        let at = |v: &str| format!("[roles.web.memory]\nbase = 35\nrestart_at = {v}\n");
        for ok in ["35.001", "80", "100"] {
            accepted(&at(ok));
        }
        for bad in ["35", "0", "-1", "100.5"] {
            refused(
                &at(bad),
                "roles.web.memory.restart_at",
                &format!("above `memory.base` (35) and at most 100, not {bad}"),
            );
        }
    }

    #[test]
    fn random_incidents_are_none_or_up_to_one_every_five_minutes() {
        let at = |v: &str| format!("[incidents]\nrandom_per_day = {v}\n");
        for ok in ["0", "0.01", "288"] {
            accepted(&at(ok));
        }
        for bad in ["0.0099", "1e-300", "288.5", "1440", "inf"] {
            refused(
                &at(bad),
                "incidents.random_per_day",
                "0 (none) or 0.01 to 288, not",
            );
        }
    }

    #[test]
    fn names_are_short_printable_and_few() {
        let dc = |name: &str| format!("datacenters = [\"{name}\"]\n");
        accepted(&dc(&"d".repeat(128)));
        accepted(&dc("Zürich ☃"));
        let e = parse(&dc(&"d".repeat(60_000)), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`datacenters`") && e.contains("60000 bytes") && e.len() < 120,
            "{e}"
        );
        let e = parse(&dc(&"d".repeat(129)), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("129 bytes") && e.contains("128"), "{e}");
        let e = parse(&dc("a\\u0007b"), "f.toml").unwrap_err().to_string();
        assert!(e.contains("control character"), "{e}");
        let many = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("\"d{i}\"")).collect();
            format!("datacenters = [{}]\n", names.join(","))
        };
        accepted(&many(1000));
        let e = parse(&many(1001), "f.toml").unwrap_err().to_string();
        assert!(e.contains("at most 1000 datacenters, not 1001"), "{e}");
        let e = parse(
            &format!("[labels]\nenv = \"{}\"\n", "v".repeat(129)),
            "f.toml",
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.starts_with("f.toml: `labels`: ") && e.contains("129 bytes"),
            "{e}"
        );
        // A long key is cut in the message, not repeated.
        let e = parse(&format!("{} = 1\n", "k".repeat(60_000)), "f.toml").unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
        let incidents = |n: usize| {
            "[[incident]]\nkind = \"outage\"\ntarget = \"role=db\"\nduration = \"5m\"\n".repeat(n)
        };
        accepted(&incidents(1000));
        let e = parse(&incidents(1001), "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("at most 1000 scheduled incidents, not 1001"),
            "{e}"
        );
    }

    #[test]
    fn deploy_costs_and_other_numbers_stay_finite() {
        refused(
            "[roles.web.cpu]\ndeploy_cost_low = 1.2\ndeploy_cost_high = 1.1\n",
            "roles.web.cpu.deploy_cost_high",
            "1.2 to 10, not 1.1",
        );
        refused(
            "[roles.web.cpu]\ndeploy_cost_low = 0\n",
            "roles.web.cpu.deploy_cost_low",
            "above 0",
        );
        refused(
            "[roles.web]\nweight = 1e300\n",
            "roles.web.weight",
            "0 to 1000000",
        );
        refused(
            "[roles.web.latency]\nspread = inf\n",
            "roles.web.latency.spread",
            "at most 10",
        );
        refused(
            "[load_test]\nchurn_interval = \"367d\"\n",
            "load_test.churn_interval",
            "at most 366d",
        );
        accepted("[load_test]\nchurn_interval = \"366d\"\nseries_change_interval = \"366d\"\n");
    }
}
