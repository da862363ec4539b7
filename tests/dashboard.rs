//! The Grafana dashboards in dashboards/, checked without Grafana: each `*.json` there is the
//! raw dashboard model that file provisioning loads, every panel and query names the
//! provisioned Prometheus datasource, and every query honours the dc, role and server
//! variables. Whether the queries are valid PromQL that returns data is for an end-to-end
//! test against a real Prometheus (tests/stack_e2e.rs); the Uptime panel's query is also
//! checked here against a live exporter, for what it must show: time since each server's
//! last start, back to 0 on a restart.
//!
//! The checks take a parsed dashboard and return the problems they find, so the tests at the
//! bottom feed them broken dashboards and check that each problem is reported.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::{Exporter, request};
use serde_json::{Value, json};

/// The variables every query must filter on.
const VARIABLES: [&str; 3] = ["dc", "role", "server"];
/// Panel types that query nothing: no targets needed.
const NO_QUERY_TYPES: [&str; 3] = ["row", "alertlist", "text"];
/// The home dashboard, which must show at least these kinds of panel.
const FLEET_OVERVIEW: &str = "fleet-overview.json";
const FLEET_OVERVIEW_TYPES: [&str; 7] = [
    "stat",
    "gauge",
    "barchart",
    "heatmap",
    "table",
    "timeseries",
    "alertlist",
];
const GRID_COLUMNS: u64 = 24;
/// The panel showing time since each server's process last started.
const UPTIME_TITLE: &str = "Uptime";
const START_TIME_METRIC: &str = "app_start_time_seconds";
/// Grafana units that render seconds as a duration.
const DURATION_UNITS: [&str; 2] = ["s", "dtdurations"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The files in `dir` whose names end with one of `extensions`, sorted.
fn files_in(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e))
        })
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The datasource that grafana/provisioning/datasources/ provisions.
#[derive(Debug, Clone, PartialEq)]
struct Datasource {
    uid: String,
    kind: String,
}

/// Strips one pair of matching quotes.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// The Prometheus datasource of a datasources provisioning file, by line parsing: each
/// `- ` item's own keys (the lines indented like its first key), so nested keys such as
/// `jsonData:`'s are not mistaken for the datasource's.
fn provisioned_datasource(yaml: &str) -> Result<Datasource, String> {
    let mut entries: Vec<BTreeMap<String, String>> = Vec::new();
    let mut key_indent: Option<usize> = None;
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let (indent, item) = match trimmed.strip_prefix("- ") {
            Some(rest) => {
                entries.push(BTreeMap::new());
                key_indent = Some(indent + 2);
                (indent + 2, rest)
            }
            None => (indent, trimmed),
        };
        match key_indent {
            Some(k) if indent == k => {
                if let Some((key, value)) = item.split_once(':') {
                    let value = value.split(" #").next().unwrap_or("");
                    entries
                        .last_mut()
                        .unwrap()
                        .insert(key.trim().to_string(), unquote(value).to_string());
                }
            }
            Some(k) if indent < k => key_indent = None,
            _ => {}
        }
    }
    let prometheus: Vec<_> = entries
        .iter()
        .filter(|e| e.get("type").map(String::as_str) == Some("prometheus"))
        .collect();
    match prometheus.as_slice() {
        [entry] => match entry.get("uid") {
            Some(uid) if !uid.is_empty() => Ok(Datasource {
                uid: uid.clone(),
                kind: "prometheus".to_string(),
            }),
            _ => Err("the Prometheus datasource has no `uid:`".to_string()),
        },
        [] => Err("no datasource of `type: prometheus`".to_string()),
        _ => Err("more than one datasource of `type: prometheus`".to_string()),
    }
}

fn datasource() -> Datasource {
    let path = repo().join("grafana/provisioning/datasources/prometheus.yml");
    provisioned_datasource(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.json` in dashboards/, parsed (a file that does not parse fails here).
fn dashboards() -> Vec<(String, Value)> {
    let files = files_in(&repo().join("dashboards"), &["json"]);
    assert!(!files.is_empty(), "no *.json in dashboards/");
    files
        .iter()
        .map(|path| {
            let value = serde_json::from_str(&read(path))
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
            (file_name(path), value)
        })
        .collect()
}

/// Every panel, with the panels of collapsed rows (kept in the row's own `panels`).
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `panel 3 "Servers down"`, for messages.
fn describe(panel: &Value) -> String {
    let id = match &panel["id"] {
        Value::Null => "without id".to_string(),
        id => id.to_string(),
    };
    match panel["title"].as_str() {
        Some(title) => format!("panel {id} {title:?}"),
        None => format!("panel {id}"),
    }
}

fn non_empty_str(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// None when `v` is the provisioned datasource, else what is wrong with it.
fn datasource_problem(v: &Value, ds: &Datasource) -> Option<String> {
    match (v["type"].as_str(), v["uid"].as_str()) {
        _ if v.is_null() => Some("has no datasource".to_string()),
        (Some(kind), Some(uid)) if kind == ds.kind && uid == ds.uid => None,
        _ => Some(format!(
            "has datasource {v}, not {{\"type\":{:?},\"uid\":{:?}}}",
            ds.kind, ds.uid
        )),
    }
}

/// The raw model, as file provisioning reads it: not the `{"dashboard": ...}` of the HTTP API.
fn check_raw_model(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if !d.is_object() {
        return vec!["the dashboard is not a JSON object".to_string()];
    }
    if d.get("dashboard").is_some() {
        problems.push(
            "has a top-level `dashboard` key: provisioning wants the raw model, not the HTTP API's wrapper"
                .to_string(),
        );
    }
    if non_empty_str(&d["title"]).is_none() {
        problems.push("has no top-level `title`".to_string());
    }
    match non_empty_str(&d["uid"]) {
        None => problems.push("has no top-level `uid`".to_string()),
        Some(uid) if uid.len() > 40 => problems.push(format!(
            "uid {uid:?} is longer than Grafana's 40 characters"
        )),
        Some(_) => {}
    }
    if !d["schemaVersion"].is_u64() {
        problems.push("has no numeric top-level `schemaVersion`".to_string());
    }
    if !d["panels"].is_array() {
        problems.push("has no top-level `panels` array".to_string());
    }
    problems
}

/// A panel's `gridPos` as (x, y, w, h), or what is wrong with it.
fn grid_pos(panel: &Value) -> Result<(u64, u64, u64, u64), String> {
    let pos = &panel["gridPos"];
    if !pos.is_object() {
        return Err("has no gridPos".to_string());
    }
    let field = |k: &str| {
        pos[k]
            .as_u64()
            .ok_or_else(|| format!("gridPos.{k} is not a non-negative integer: {}", pos[k]))
    };
    let (x, y, w, h) = (field("x")?, field("y")?, field("w")?, field("h")?);
    if w == 0 || h == 0 {
        return Err(format!("gridPos {pos} is empty"));
    }
    if w > GRID_COLUMNS || x + w > GRID_COLUMNS {
        return Err(format!(
            "gridPos {pos} is wider than the {GRID_COLUMNS}-column grid (x + w = {})",
            x + w
        ));
    }
    Ok((x, y, w, h))
}

/// Every panel: type, place on the grid, unique id, datasource; every target: datasource,
/// refId and expr.
fn check_panels(d: &Value, ds: &Datasource) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for panel in all_panels(d) {
        let at = describe(panel);
        if non_empty_str(&panel["type"]).is_none() {
            problems.push(format!("{at} has no type"));
        }
        match panel["id"].as_u64() {
            None => problems.push(format!("{at} has no integer id")),
            Some(id) if !ids.insert(id) => problems.push(format!("{at}: id {id} is not unique")),
            Some(_) => {}
        }
        if let Err(e) = grid_pos(panel) {
            problems.push(format!("{at} {e}"));
        }
        if let Some(e) = datasource_problem(&panel["datasource"], ds) {
            problems.push(format!("{at} {e}"));
        }
        let kind = panel["type"].as_str().unwrap_or("");
        let targets = match &panel["targets"] {
            Value::Null => &[][..],
            Value::Array(targets) => targets.as_slice(),
            _ => {
                problems.push(format!("{at}: targets is not an array"));
                continue;
            }
        };
        if targets.is_empty() && !NO_QUERY_TYPES.contains(&kind) {
            problems.push(format!("{at} has no targets"));
        }
        let mut ref_ids = BTreeSet::new();
        for (i, target) in targets.iter().enumerate() {
            let at = match target["refId"].as_str() {
                Some(r) => format!("{at} target {r}"),
                None => format!("{at} target #{i}"),
            };
            if let Some(e) = datasource_problem(&target["datasource"], ds) {
                problems.push(format!("{at} {e}"));
            }
            match non_empty_str(&target["refId"]) {
                None => problems.push(format!("{at} has no refId")),
                Some(r) if !ref_ids.insert(r) => {
                    problems.push(format!("{at}: refId {r} is used twice in the panel"))
                }
                Some(_) => {}
            }
            if non_empty_str(&target["expr"]).is_none() {
                problems.push(format!("{at} has no expr"));
            }
        }
    }
    problems
}

/// Top-level panels that cover the same grid cells (Grafana would push one down). The panels
/// of collapsed rows keep the places they had when the row was open, so they are left out.
fn check_overlaps(d: &Value) -> Vec<String> {
    let placed: Vec<_> = d["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| grid_pos(p).ok().map(|g| (p, g)))
        .collect();
    let mut problems = Vec::new();
    for (i, (a, (ax, ay, aw, ah))) in placed.iter().enumerate() {
        for (b, (bx, by, bw, bh)) in &placed[i + 1..] {
            if ax < &(bx + bw) && bx < &(ax + aw) && ay < &(by + bh) && by < &(ay + ah) {
                problems.push(format!("{} overlaps {}", describe(a), describe(b)));
            }
        }
    }
    problems
}

/// Every target's expr filters every `app_` metric on the three variables.
fn check_exprs(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for panel in all_panels(d) {
        for (i, target) in panel["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(expr) = target["expr"].as_str() {
                let at = match target["refId"].as_str() {
                    Some(r) => format!("{} target {r}", describe(panel)),
                    None => format!("{} target #{i}", describe(panel)),
                };
                problems.extend(
                    selector_problems(expr)
                        .into_iter()
                        .map(|e| format!("{at}: {e}")),
                );
            }
        }
    }
    problems
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// The index just past the string literal that opens at `start`.
fn skip_string(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The index of the `}` that closes the `{` at `start`, skipping string literals.
fn closing_brace(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b'}' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The label matchers between a selector's braces, as (label, operator, value).
fn matchers(inside: &str) -> Vec<(String, String, String)> {
    let b = inside.as_bytes();
    let mut parts = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b',' => {
                parts.push(&inside[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(&inside[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            let name_end = m.bytes().position(|c| !is_ident(c)).unwrap_or(m.len());
            let rest = m[name_end..].trim_start();
            let op_len = ["=~", "!~", "!=", "="]
                .iter()
                .find(|op| rest.starts_with(*op))
                .map_or(0, |op| op.len());
            let value = rest[op_len..].trim();
            let value = value
                .strip_prefix('`')
                .and_then(|v| v.strip_suffix('`'))
                .unwrap_or_else(|| unquote(value));
            (
                m[..name_end].to_string(),
                rest[..op_len].to_string(),
                value.to_string(),
            )
        })
        .collect()
}

/// What is wrong with the `app_` selectors of one PromQL expression: each must have braces
/// holding `dc=~"$dc"`, `role=~"$role"` and `server=~"$server"` (`${dc}` also does).
/// String literals, comments and the insides of other selectors' braces are skipped.
fn selector_problems(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let mut problems = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => match closing_brace(b, i) {
                Some(end) => i = end + 1,
                None => {
                    problems.push(format!("unclosed `{{` in {expr:?}"));
                    break;
                }
            },
            c if c.is_ascii_digit() => {
                // A number or a duration (5m, 1e-9): not a metric name.
                while i < b.len() && (is_ident(b[i]) || b[i] == b'.') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let name = &expr[start..i];
                if !name.starts_with("app_") {
                    continue;
                }
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j >= b.len() || b[j] != b'{' {
                    problems.push(format!(
                        "`{name}` has no label matchers: it ignores $dc, $role and $server"
                    ));
                    continue;
                }
                let Some(end) = closing_brace(b, j) else {
                    problems.push(format!("unclosed `{{` after `{name}`"));
                    break;
                };
                let found = matchers(&expr[j + 1..end]);
                for var in VARIABLES {
                    let ok = found.iter().any(|(label, op, value)| {
                        label == var
                            && op == "=~"
                            && (*value == format!("${var}") || *value == format!("${{{var}}}"))
                    });
                    if !ok {
                        problems.push(format!("`{}` lacks {var}=~\"${var}\"", &expr[start..=end]));
                    }
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    problems
}

/// The dc, role and server variables: queries on the datasource, multi-value, with an All
/// that means `.*` (what an end-to-end test substitutes for them).
fn check_variables(d: &Value, ds: &Datasource) -> Vec<String> {
    let list = d["templating"]["list"].as_array();
    let mut problems = Vec::new();
    for var in VARIABLES {
        let Some(v) = list
            .into_iter()
            .flatten()
            .find(|v| v["name"].as_str() == Some(var))
        else {
            problems.push(format!("has no template variable `{var}`"));
            continue;
        };
        if v["type"].as_str() != Some("query") {
            problems.push(format!("variable {var} is not of type query"));
        }
        if let Some(e) = datasource_problem(&v["datasource"], ds) {
            problems.push(format!("variable {var} {e}"));
        }
        for flag in ["multi", "includeAll"] {
            if v[flag].as_bool() != Some(true) {
                problems.push(format!("variable {var} has no `{flag}: true`"));
            }
        }
        if v["allValue"].as_str() != Some(".*") {
            problems.push(format!("variable {var}'s allValue is not \".*\""));
        }
        let query = v["query"].as_str().or_else(|| v["query"]["query"].as_str());
        if query.is_none_or(|q| q.trim().is_empty()) {
            problems.push(format!("variable {var} has no query"));
        }
    }
    problems
}

/// Every check that applies to any dashboard.
fn check_dashboard(d: &Value, ds: &Datasource) -> Vec<String> {
    let mut problems = check_raw_model(d);
    if d.is_object() {
        problems.extend(check_panels(d, ds));
        problems.extend(check_overlaps(d));
        problems.extend(check_exprs(d));
        problems.extend(check_variables(d, ds));
    }
    problems
}

/// What the fleet overview, the home dashboard, must show besides.
fn check_fleet_overview(d: &Value, ds: &Datasource) -> Vec<String> {
    let mut problems = Vec::new();
    let annotations = d["annotations"]["list"].as_array();
    for (wanted, name) in [
        ("app_last_deploy_timestamp_seconds", "deploys"),
        ("ALERTS", "firing alerts"),
    ] {
        let found = annotations
            .into_iter()
            .flatten()
            .find(|a| a["expr"].as_str().is_some_and(|e| e.contains(wanted)));
        let Some(a) = found else {
            problems.push(format!(
                "has no annotation of {name} (an expr with {wanted})"
            ));
            continue;
        };
        if let Some(e) = datasource_problem(&a["datasource"], ds) {
            problems.push(format!("the annotation of {name} {e}"));
        }
        if a["enable"].as_bool() != Some(true) {
            problems.push(format!("the annotation of {name} is not enabled"));
        }
        if wanted.starts_with("app_") && a["useValueForTime"].as_bool() != Some(true) {
            problems.push(format!(
                "the annotation of {name} does not use the value (the deploy time) for its time"
            ));
        }
    }
    let panels = all_panels(d);
    let types: BTreeSet<&str> = panels.iter().filter_map(|p| p["type"].as_str()).collect();
    for wanted in FLEET_OVERVIEW_TYPES {
        if !types.contains(wanted) {
            problems.push(format!("has no panel of type {wanted}"));
        }
    }
    let shown = panels
        .iter()
        .filter(|p| p["type"].as_str() != Some("row"))
        .count();
    if shown < 6 {
        problems.push(format!("has {shown} panels besides rows, fewer than 6"));
    }
    problems.extend(check_uptime_panel(d));
    problems
}

/// The panel titled [`UPTIME_TITLE`], if there is one.
fn uptime_panel(d: &Value) -> Option<&Value> {
    all_panels(d)
        .into_iter()
        .find(|p| p["title"].as_str() == Some(UPTIME_TITLE))
}

/// The Uptime panel: `time() - app_start_time_seconds` per server, in seconds, drawn over
/// time so that a restart shows as a drop to 0.
fn check_uptime_panel(d: &Value) -> Vec<String> {
    let Some(panel) = uptime_panel(d) else {
        return vec![format!("has no panel titled {UPTIME_TITLE:?}")];
    };
    let at = describe(panel);
    let mut problems = Vec::new();
    if panel["type"].as_str() != Some("timeseries") {
        problems.push(format!(
            "{at} is of type {}, not timeseries: a restart would not show as a drop",
            panel["type"]
        ));
    }
    let exprs: Vec<&str> = panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect();
    match exprs.iter().find(|e| e.contains(START_TIME_METRIC)) {
        None => problems.push(format!("{at} does not query {START_TIME_METRIC}")),
        Some(expr)
            if !expr
                .replace(' ', "")
                .contains("time()-app_start_time_seconds") =>
        {
            problems.push(format!(
                "{at}: {expr:?} is not time() - {START_TIME_METRIC}, the time since the start"
            ))
        }
        Some(_) => {}
    }
    let unit = panel["fieldConfig"]["defaults"]["unit"].as_str();
    if !unit.is_some_and(|u| DURATION_UNITS.contains(&u)) {
        problems.push(format!(
            "{at} has unit {unit:?}, not one of {DURATION_UNITS:?} (seconds shown as a duration)"
        ));
    }
    problems
}

/// The container paths of the compose file's `./dashboards:<path>` mounts.
fn dashboard_mounts(compose: &str) -> Vec<String> {
    compose
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .map(unquote)
        .filter_map(|volume| volume.strip_prefix("./dashboards:"))
        .map(|rest| {
            rest.split(':')
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

/// The dashboard providers' `path:`s match the compose file's dashboards mount, and the
/// home dashboard Grafana is told to open is one of dashboards/'s files.
fn check_provisioning(
    compose: &str,
    providers: &[(String, String)],
    files: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mounts = dashboard_mounts(compose);
    if mounts.is_empty() {
        problems.push("docker-compose.yml does not mount ./dashboards".to_string());
    }
    for (name, yaml) in providers {
        let paths: Vec<&str> = yaml
            .lines()
            .filter_map(|l| l.trim().strip_prefix("path:"))
            .map(|p| unquote(p.split(" #").next().unwrap()).trim_end_matches('/'))
            .collect();
        if paths.is_empty() {
            problems.push(format!("{name} has no `path:`"));
        }
        for path in paths {
            if !mounts.iter().any(|m| m == path) {
                problems.push(format!(
                    "{name}: path {path} is not where docker-compose.yml mounts ./dashboards ({mounts:?})"
                ));
            }
        }
    }
    for line in compose.lines() {
        let Some(home) = line
            .trim()
            .strip_prefix("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH:")
        else {
            continue;
        };
        let home = unquote(home);
        let found = mounts.iter().any(|m| {
            home.strip_prefix(m.as_str())
                .and_then(|f| f.strip_prefix('/'))
                .is_some_and(|f| files.iter().any(|file| file == f))
        });
        if !found {
            problems.push(format!(
                "the home dashboard {home} is not a file of the mounted dashboards/ ({files:?})"
            ));
        }
    }
    problems
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_dashboard_is_a_valid_provisioned_model() {
    let ds = datasource();
    let dashboards = dashboards();
    let mut failures = Vec::new();
    let mut uids = BTreeMap::new();
    for (name, d) in &dashboards {
        let mut problems = check_dashboard(d, &ds);
        if let Some(uid) = d["uid"].as_str()
            && let Some(other) = uids.insert(uid, name)
        {
            problems.push(format!("uid {uid:?} is also {other}'s"));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fleet_overview_shows_what_the_fleet_needs() {
    let ds = datasource();
    let dashboards = dashboards();
    let (_, d) = dashboards
        .iter()
        .find(|(name, _)| name == FLEET_OVERVIEW)
        .unwrap_or_else(|| panic!("dashboards/{FLEET_OVERVIEW} is missing"));
    assert_no_problems(FLEET_OVERVIEW, &check_fleet_overview(d, &ds));
}

#[test]
fn provisioning_loads_the_dashboards_directory() {
    let compose = read(&repo().join("docker-compose.yml"));
    let providers: Vec<(String, String)> = files_in(
        &repo().join("grafana/provisioning/dashboards"),
        &["yml", "yaml"],
    )
    .iter()
    .map(|p| (file_name(p), read(p)))
    .collect();
    assert!(
        !providers.is_empty(),
        "no dashboard provider in grafana/provisioning/dashboards/"
    );
    let files: Vec<String> = files_in(&repo().join("dashboards"), &["json"])
        .iter()
        .map(|p| file_name(p))
        .collect();
    assert_no_problems(
        "dashboard provisioning",
        &check_provisioning(&compose, &providers, &files),
    );
}

// The checks themselves, on small dashboards made to break them.

fn test_ds() -> Datasource {
    Datasource {
        uid: "fleetsim-prometheus".to_string(),
        kind: "prometheus".to_string(),
    }
}

fn good_dashboard() -> Value {
    let ds = json!({"type": "prometheus", "uid": "fleetsim-prometheus"});
    let var = |name: &str| {
        json!({
            "name": name, "type": "query", "datasource": ds,
            "query": format!("label_values(app_server_up, {name})"),
            "multi": true, "includeAll": true, "allValue": ".*",
        })
    };
    json!({
        "title": "T", "uid": "t", "schemaVersion": 39,
        "templating": {"list": [var("dc"), var("role"), var("server")]},
        "panels": [
            {"type": "row", "id": 1, "datasource": ds, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}},
            {
                "type": "timeseries", "id": 2, "datasource": ds,
                "gridPos": {"h": 8, "w": 12, "x": 0, "y": 1},
                "targets": [{
                    "refId": "A", "datasource": ds,
                    "expr": "sum by (server) (rate(app_requests_total{dc=~\"$dc\", role=~\"$role\", server=~\"${server}\", status=\"5xx\"}[$__rate_interval]))",
                }],
            },
        ],
    })
}

fn assert_reported(problems: &[String], wanted: &str) {
    assert!(
        problems.iter().any(|p| p.contains(wanted)),
        "no problem mentions {wanted:?}; the problems:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_good_dashboard_has_no_problems() {
    assert_no_problems(
        "good dashboard",
        &check_dashboard(&good_dashboard(), &test_ds()),
    );
}

#[test]
fn a_broken_dashboard_has_its_problems_reported() {
    let ds = json!({"type": "prometheus", "uid": "fleetsim-prometheus"});
    let mut d = good_dashboard();
    d["templating"]["list"][2]["multi"] = json!(false);
    d["templating"]["list"].as_array_mut().unwrap().remove(1);
    let panels = d["panels"].as_array_mut().unwrap();
    panels.push(json!({
        // No datasource; wider than the grid; an id already taken.
        "type": "stat", "id": 2, "title": "no datasource",
        "gridPos": {"h": 4, "w": 6, "x": 20, "y": 9},
        "targets": [{"refId": "A", "datasource": ds, "expr": "sum(app_server_up)"}],
    }));
    panels.push(json!({
        "type": "row", "id": 4, "collapsed": true, "datasource": ds,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": 13},
        "panels": [{
            // Inside a collapsed row: a datasource other than the provisioned one, a target
            // without refId or datasource, a selector missing role.
            "type": "timeseries", "id": 5, "title": "nested",
            "datasource": {"type": "prometheus", "uid": "other"},
            "gridPos": {"h": 8, "w": 12, "x": 0, "y": 14},
            "targets": [{"expr": "app_cpu_usage{dc=~\"$dc\", server=~\"$server\"}"}],
        }],
    }));
    panels.push(json!({
        "type": "gauge", "id": 6, "title": "no targets", "datasource": ds,
        "gridPos": {"h": 8, "w": 12, "x": 6, "y": 1},
    }));
    let problems = check_dashboard(&d, &test_ds());
    for wanted in [
        "panel 2 \"no datasource\" has no datasource",
        "panel 2 \"no datasource\": id 2 is not unique",
        "wider than the 24-column grid",
        "`app_server_up` has no label matchers",
        "panel 5 \"nested\" has datasource",
        "panel 5 \"nested\" target #0 has no datasource",
        "panel 5 \"nested\" target #0 has no refId",
        "lacks role=~\"$role\"",
        "panel 6 \"no targets\" has no targets",
        "panel 2 overlaps panel 6 \"no targets\"",
        "has no template variable `role`",
        "variable server has no `multi: true`",
    ] {
        assert_reported(&problems, wanted);
    }
    assert_eq!(problems.len(), 12, "{problems:#?}");
    // The real home dashboard's requirements fail on this one too.
    let problems = check_fleet_overview(&d, &test_ds());
    assert_reported(&problems, "no annotation of deploys");
    assert_reported(&problems, "no annotation of firing alerts");
    assert_reported(&problems, "no panel of type heatmap");
    assert_reported(&problems, "fewer than 6");
    assert_reported(&problems, "no panel titled \"Uptime\"");
}

#[test]
fn an_uptime_panel_that_misses_the_start_time_or_its_unit_is_reported() {
    let ds = json!({"type": "prometheus", "uid": "fleetsim-prometheus"});
    let uptime = |kind: &str, expr: &str, unit: &str| {
        let mut d = good_dashboard();
        d["panels"].as_array_mut().unwrap().push(json!({
            "type": kind, "id": 3, "title": "Uptime", "datasource": ds,
            "gridPos": {"h": 8, "w": 12, "x": 12, "y": 1},
            "targets": [{"refId": "A", "datasource": ds, "expr": expr}],
            "fieldConfig": {"defaults": {"unit": unit}},
        }));
        check_uptime_panel(&d)
    };
    let good = r#"time() - app_start_time_seconds{dc=~"$dc", role=~"$role", server=~"$server"}"#;
    assert_no_problems("good uptime panel", &uptime("timeseries", good, "s"));
    assert_reported(
        &uptime("timeseries", r#"app_server_up{server=~"$server"}"#, "s"),
        "does not query app_start_time_seconds",
    );
    assert_reported(
        &uptime(
            "timeseries",
            r#"app_start_time_seconds{server=~"$server"}"#,
            "s",
        ),
        "is not time() - app_start_time_seconds",
    );
    assert_reported(&uptime("timeseries", good, "percent"), "has unit");
    assert_reported(&uptime("stat", good, "s"), "not timeseries");
}

/// A dashboard expression with every variable at "All".
fn with_all_selected(expr: &str) -> String {
    VARIABLES.iter().fold(expr.to_string(), |e, var| {
        e.replace(&format!("${{{var}}}"), ".*")
            .replace(&format!("${var}"), ".*")
    })
}

/// Prometheus on a copy of the shipped config, scraping `target` every second rather than
/// every 15 seconds, so that a restart shows within seconds.
fn prometheus_scraping(target: std::net::SocketAddr) -> Prometheus {
    let config = read(&repo().join("prometheus.yml"));
    for shipped in ["host.docker.internal:8000", "scrape_interval: 15s"] {
        assert!(
            config.contains(shipped),
            "prometheus.yml no longer has {shipped:?}"
        );
    }
    let config = config
        .replace("host.docker.internal:8000", &target.to_string())
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    fs::copy(repo().join("alerts.yml"), dir.path().join("alerts.yml")).unwrap();
    Prometheus::start(dir, &[])
}

/// The uptime `expr` gives at Prometheus's current time: (evaluation time, server, seconds).
fn uptimes(prometheus: &Prometheus, expr: &str) -> Vec<(f64, String, f64)> {
    let data = prometheus.query(expr);
    data["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{expr}: not a vector: {data}"))
        .iter()
        .map(|s| {
            let number = |v: &Value| v.as_f64().or_else(|| v.as_str()?.parse().ok()).unwrap();
            let server = s["metric"]["server"]
                .as_str()
                .unwrap_or_else(|| panic!("{expr}: a series without server: {s}"));
            (
                number(&s["value"][0]),
                server.to_string(),
                number(&s["value"][1]),
            )
        })
        .collect()
}

#[test]
fn the_uptime_panel_counts_from_each_servers_last_start_and_restarts_from_zero() {
    let dashboards = dashboards();
    let (_, d) = dashboards
        .iter()
        .find(|(name, _)| name == FLEET_OVERVIEW)
        .unwrap_or_else(|| panic!("dashboards/{FLEET_OVERVIEW} is missing"));
    let panel = uptime_panel(d).unwrap_or_else(|| panic!("no panel titled {UPTIME_TITLE:?}"));
    let expr = panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .find(|e| e.contains(START_TIME_METRIC))
        .map(with_all_selected)
        .unwrap_or_else(|| panic!("the Uptime panel does not query {START_TIME_METRIC}"));

    let grid = repo().join("tests/fixtures/fast-grid.toml");
    let exporter = Exporter::start(&[
        "--servers",
        "5",
        "--config",
        grid.to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let prometheus = prometheus_scraping(exporter.addr);

    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        let now = uptimes(&prometheus, &expr);
        if now.len() == 5 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "{expr} gave {} series within 60s, not one per server: {now:?}",
            now.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for (_, server, seconds) in &before {
        assert!(*seconds >= 0.0, "{server} has a negative uptime: {seconds}");
    }
    let srv03_before = before.iter().find(|(_, s, _)| s == "srv-03").unwrap().2;

    let r = request(
        exporter.admin.unwrap(),
        "POST",
        "/api/v1/incidents",
        r#"{"kind": "outage", "target": "server=srv-03", "duration": "5s"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let incident: Value = serde_json::from_str(&r.body).unwrap();
    let restarted_s =
        fleetsim::units::parse_instant(incident["end"].as_str().unwrap()).unwrap() as f64 / 1000.0;

    // Restarted: the uptime is the time since the outage's end, give or take the
    // fixture's one-second grid (the process starts at the first grid point from the end). Read a few seconds after it, so that
    // an uptime counted at the wrong pace is told from the right one.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (at, after) = loop {
        let now = uptimes(&prometheus, &expr);
        if let Some((at, _, seconds)) = now.iter().find(|(_, s, _)| s == "srv-03")
            && *at > restarted_s + 4.0
            && *seconds < srv03_before
        {
            break (*at, *seconds);
        }
        assert!(
            Instant::now() < deadline,
            "srv-03's uptime did not drop within 60s of an outage ending at {restarted_s}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let expected = at - restarted_s;
    assert!(
        after >= 0.0 && (after - expected).abs() <= 1.5,
        "srv-03's uptime {after}s at {at} is not the time since its restart at {restarted_s} ({expected}s)"
    );
}

#[test]
fn a_dashboard_wrapped_for_the_http_api_is_refused() {
    let wrapped = json!({"dashboard": good_dashboard(), "overwrite": true});
    let problems = check_dashboard(&wrapped, &test_ds());
    assert_reported(&problems, "top-level `dashboard` key");
    assert_reported(&problems, "no top-level `title`");
    assert_reported(&problems, "no top-level `panels` array");
}

#[test]
fn selectors_must_filter_on_every_variable() {
    let all = r#"dc=~"$dc", role=~"$role", server=~"$server""#;
    for good in [
        format!("sum(rate(app_requests_total{{{all}}}[5m])) * 60"),
        format!("count(app_server_up{{{all}}} == 0) or vector(0)"),
        format!("100 - app_memory_usage{{ {all} }}"),
        format!("ALERTS{{alertname=\"app_x\"}} + app_cpu_usage{{{all}}}"),
        format!(r#"label_replace(app_cpu_usage{{{all}}}, "app_y", "$1", "server", "(.*)")"#),
        "vector(1) # app_cpu_usage".to_string(),
        "up{job=\"fleetsim\"}".to_string(),
    ] {
        assert_eq!(selector_problems(&good), Vec::<String>::new(), "{good}");
    }
    for (bad, wanted) in [
        ("app_cpu_usage", "has no label matchers"),
        ("avg(app_cpu_usage [5m])", "has no label matchers"),
        ("app_cpu_usage{}", "lacks dc=~\"$dc\""),
        (
            r#"app_cpu_usage{dc="$dc", role=~"$role", server=~"$server"}"#,
            "lacks dc",
        ),
        (
            r#"app_cpu_usage{dc=~"dc1", role=~"$role", server=~"$server"}"#,
            "lacks dc",
        ),
        (
            r#"app_disk_usage{dc=~"$dc", role=~"$role", server=~"$server"} / app_cpu_usage{dc=~"$dc", role=~"$role"}"#,
            "`app_cpu_usage{dc=~\"$dc\", role=~\"$role\"}` lacks server",
        ),
        (r#"app_cpu_usage{dc=~"$dc""#, "unclosed"),
    ] {
        assert_reported(&selector_problems(bad), wanted);
    }
}

#[test]
fn the_datasource_uid_is_read_not_assumed() {
    let yaml = "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    uid: \"abc\"\n    type: prometheus\n    jsonData:\n      uid: nested\n";
    assert_eq!(
        provisioned_datasource(yaml),
        Ok(Datasource {
            uid: "abc".to_string(),
            kind: "prometheus".to_string()
        })
    );
    let no_uid = "datasources:\n  - name: Prometheus\n    type: prometheus\n    jsonData:\n      uid: nested\n";
    assert!(
        provisioned_datasource(no_uid)
            .unwrap_err()
            .contains("no `uid:`")
    );
    assert!(provisioned_datasource("datasources: []\n").is_err());
}

#[test]
fn a_provider_path_off_the_mount_is_reported() {
    let compose = "services:\n  grafana:\n    environment:\n      GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /d/home.json\n    volumes:\n      - ./dashboards:/d:ro\n";
    let provider = |path: &str| {
        vec![(
            "p.yml".to_string(),
            format!("    options:\n      path: {path}\n"),
        )]
    };
    let files = vec!["home.json".to_string()];
    assert_no_problems(
        "matching",
        &check_provisioning(compose, &provider("/d"), &files),
    );
    assert_reported(
        &check_provisioning(compose, &provider("/elsewhere"), &files),
        "path /elsewhere is not where",
    );
    assert_reported(
        &check_provisioning(compose, &provider("/d"), &["other.json".to_string()]),
        "the home dashboard /d/home.json",
    );
    assert_reported(
        &check_provisioning("services: {}\n", &provider("/d"), &files),
        "does not mount ./dashboards",
    );
}
