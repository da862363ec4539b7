//! The config file: TOML, every key optional, unknown keys rejected, laid over the model's
//! built-in defaults. Command-line flags are laid over the result by the CLI.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::exposition::ConstLabels;
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
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
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
            message,
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

/// The header on `line` when it is one (`[roles.web]`, `[[incident]]`), brackets kept.
fn table_on_line(text: &str, line: usize) -> Option<String> {
    let content = text.lines().nth(line - 1)?.trim();
    let header = content.split('#').next()?.trim();
    (header.starts_with('[') && header.ends_with(']')).then(|| header.to_string())
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
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

/// Checks what the model relies on; the message names the key.
pub fn validate(p: &FleetParams) -> Result<(), String> {
    if p.resolution.as_millis() < 1 {
        return Err("`resolution` must be at least 1ms".into());
    }
    if p.datacenters.is_empty() {
        return Err("`datacenters` must name at least one datacenter".into());
    }
    for (i, dc) in p.datacenters.iter().enumerate() {
        if dc.is_empty() {
            return Err("`datacenters` has an empty name".into());
        }
        if p.datacenters[..i].contains(dc) {
            return Err(format!("`datacenters` names `{dc}` twice"));
        }
    }
    let total: f64 = Role::ALL.iter().map(|&r| p.roles.get(r).weight).sum();
    if total.is_nan() || total <= 0.0 {
        return Err(
            "the roles' weights are all zero: at least one role needs a weight above 0".into(),
        );
    }
    for role in Role::ALL {
        validate_role(p.roles.get(role)).map_err(|e| format!("`roles.{}.{e}", role.name()))?;
    }
    non_negative("random_per_day", p.incidents.random_per_day)
        .map_err(|e| format!("`incidents.{e}"))?;
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

fn positive(key: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(format!("{key}` must be above 0, not {}", short(value)))
    }
}

fn non_negative(key: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key}` must be 0 or more, not {}", short(value)))
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

fn validate_walk(key: &str, w: &WalkParams) -> Result<(), String> {
    non_negative(&format!("{key}.stddev"), w.stddev)?;
    positive(&format!("{key}.reversion"), w.reversion.as_secs_f64())?;
    if !(w.min <= w.mean && w.mean <= w.max) {
        return Err(format!(
            "{key}` must have min <= mean <= max, not {} <= {} <= {}",
            w.min, w.mean, w.max
        ));
    }
    Ok(())
}

fn validate_role(r: &RoleParams) -> Result<(), String> {
    non_negative("weight", r.weight)?;
    non_negative("traffic.rps", r.traffic.rps)?;
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
    positive("cpu.saturation_rps", r.cpu.saturation_rps)?;
    validate_walk("cpu.noise", &r.cpu.noise)?;
    positive("latency.base_ms", r.latency.base_ms)?;
    positive("latency.spread", r.latency.spread)?;
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
    non_negative("memory.leak_per_hour", r.memory.leak_per_hour)?;
    range("memory.restart_at", r.memory.restart_at, 0.0, 100.0)?;
    validate_walk("memory.noise", &r.memory.noise)?;
    range("disk.base", r.disk.base, 0.0, 100.0)?;
    non_negative("disk.fill_per_day", r.disk.fill_per_day)?;
    positive("disk.rotate_every", r.disk.rotate_every.as_secs_f64())?;
    validate_walk("disk.noise", &r.disk.noise)?;
    non_negative("network.base_bps", r.network.base_bps)?;
    non_negative("network.request_bytes", r.network.request_bytes)?;
    non_negative("network.response_bytes", r.network.response_bytes)?;
    positive(
        "lifecycle.reboot_every",
        r.lifecycle.reboot_every.as_secs_f64(),
    )?;
    positive("lifecycle.mttr", r.lifecycle.mttr.as_secs_f64())?;
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
        assert!(e.message.contains("0 or more, not -1e300"), "{e}");
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
}
