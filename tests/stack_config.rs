//! The monitoring stack's configuration, checked by the tools that will load it:
//! `promtool` (prometheus.yml, alerts.yml and the rule unit tests in tests/promtool/),
//! `amtool` (alertmanager/alertmanager.yml, its routes) and `docker compose`
//! (docker-compose.yml). A missing tool fails its test, naming the package to install
//! (scripts/test installs them): these checks are never skipped.
//!
//! Then what the tools cannot judge, read from the shipped files with a small line-based
//! reader (no YAML crate is a dependency): every alert has a routable severity, annotations
//! naming the server and a description stating its `for`; every alert has unit tests that
//! see it fire and stay silent; a down server's other alerts are inhibited; each severity
//! reaches its receiver. the_checks_catch_what_they_are_for runs these checks on broken
//! files, so that they are known to fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The Debian package that has each tool.
fn package(tool: &str) -> &'static str {
    match tool {
        "promtool" => "prometheus",
        "amtool" => "prometheus-alertmanager",
        "docker" => "docker.io",
        _ => "docker-compose",
    }
}

/// Runs `tool args` in the crate root and returns its output, whatever its status. A tool
/// that is not installed fails the test: these checks are never skipped.
fn output(tool: &str, args: &[&str]) -> Output {
    Command::new(common::require_tool(tool, package(tool)))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running `{tool}`: {e}"))
}

fn describe(tool: &str, args: &[&str], out: &Output) -> String {
    format!(
        "`{tool} {}` exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `tool args` in the crate root, asserts that it succeeds, and returns its stdout.
fn check(tool: &str, args: &[&str]) -> String {
    let out = output(tool, args);
    assert!(out.status.success(), "{}", describe(tool, args, &out));
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------
// A line-based reader for alerts.yml: `groups: - name: … rules: - alert: …`.

#[derive(Debug, Default)]
struct Alert {
    name: String,
    expr: String,
    r#for: Option<String>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
}

impl Alert {
    fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        lookup(&self.annotations, key)
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A YAML scalar as written on one line: quotes removed, `\"` and `\\` unescaped in
/// double-quoted strings, `''` in single-quoted ones, a trailing comment dropped in plain ones.
fn scalar(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else {
        match raw.find(" #") {
            Some(i) => raw[..i].trim_end().to_string(),
            None => raw.to_string(),
        }
    }
}

/// Splits `key: value` (the value may be empty); None for anything else.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    let t = t.strip_prefix("- ").unwrap_or(t);
    if t.starts_with('#') {
        return None;
    }
    let (k, v) = t.split_once(':')?;
    let k = k.trim();
    if k.is_empty() || k.contains(' ') || k.contains('"') || k.contains('\'') {
        return None;
    }
    if !(v.is_empty() || v.starts_with(' ')) {
        return None;
    }
    Some((k, v.trim()))
}

/// Splits the inside of a one-line flow collection at its commas, but not at those in
/// quoted strings.
fn split_flow(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, ',') => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
}

/// `{a: x, b: "y"}`: the pairs, values unquoted; None for anything else.
fn flow_map(raw: &str) -> Option<Vec<(String, String)>> {
    let inner = raw.trim().strip_prefix('{')?.strip_suffix('}')?;
    split_flow(inner)
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (k, v) = item.split_once(':')?;
            Some((scalar(k), scalar(v)))
        })
        .collect()
}

/// The value of `key:` on `lines[*i]`, reading a block scalar (`|`, `>`, with their
/// chomping indicators) from the lines below it, more indented than the key; advances `*i`
/// past what it read.
fn value(lines: &[&str], i: &mut usize, raw: &str) -> String {
    let key_indent = indent(lines[*i]);
    *i += 1;
    if raw.starts_with('|') || raw.starts_with('>') {
        let mut block = Vec::new();
        while *i < lines.len() && (lines[*i].trim().is_empty() || indent(lines[*i]) > key_indent) {
            block.push(lines[*i].trim());
            *i += 1;
        }
        let joiner = if raw.starts_with('|') { "\n" } else { " " };
        return block.join(joiner).trim().to_string();
    }
    scalar(raw)
}

/// Every alerting rule in alerts.yml, in order.
fn alerts() -> Vec<Alert> {
    let alerts = parse_alerts(&read("alerts.yml"));
    assert!(!alerts.is_empty(), "no `- alert:` rule found in alerts.yml");
    alerts
}

/// Every alerting rule in a rule file's `text`, in order.
fn parse_alerts(text: &str) -> Vec<Alert> {
    let lines: Vec<&str> = text.lines().collect();
    let mut alerts: Vec<Alert> = Vec::new();
    // The indentation of the current rule's `- alert:` dash, and of its `labels:` or
    // `annotations:` key while reading one of those maps.
    let mut rule_indent: Option<usize> = None;
    let mut map: Option<(bool, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let ind = indent(line);
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alerts.push(Alert {
                name: scalar(name),
                ..Alert::default()
            });
            rule_indent = Some(ind);
            map = None;
            i += 1;
            continue;
        }
        // A line at or left of the rule's dash ends the rule (the next rule, group, …).
        if rule_indent.is_some_and(|r| ind <= r) {
            rule_indent = None;
            map = None;
        }
        let (Some(_), Some((key, raw))) = (rule_indent, key_value(line)) else {
            i += 1;
            continue;
        };
        let alert = alerts.last_mut().unwrap();
        if let Some((is_labels, map_indent)) = map {
            if ind > map_indent {
                let v = value(&lines, &mut i, raw);
                let pairs = if is_labels {
                    &mut alert.labels
                } else {
                    &mut alert.annotations
                };
                pairs.push((key.to_string(), v));
                continue;
            }
            map = None;
        }
        match key {
            "labels" | "annotations" => {
                if raw.is_empty() {
                    map = Some((key == "labels", ind));
                } else {
                    // A flow map on one line: `labels: {severity: warning}`.
                    let pairs = flow_map(raw).unwrap_or_default();
                    if key == "labels" {
                        alert.labels.extend(pairs);
                    } else {
                        alert.annotations.extend(pairs);
                    }
                }
                i += 1;
            }
            "expr" => alert.expr = value(&lines, &mut i, raw),
            "for" => alert.r#for = Some(value(&lines, &mut i, raw)),
            _ => {
                value(&lines, &mut i, raw);
            }
        }
    }
    alerts
}

/// What identifies the thing an alert is about: the server for the fleet's alerts, the
/// scrape target for the exporter's.
fn subject_label(alert: &str) -> &'static str {
    if alert == "ExporterDown" {
        "instance"
    } else {
        "server"
    }
}

fn receiver_for(severity: &str) -> &'static str {
    match severity {
        "critical" => "webhook-critical",
        "warning" => "webhook",
        other => panic!("no receiver expected for severity {other:?}"),
    }
}

fn promtool_test_files() -> Vec<PathBuf> {
    let dir = root().join("tests/promtool");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("alerts_test.yml")),
        "tests/promtool/alerts_test.yml is missing"
    );
    files
}

// ---------------------------------------------------------------------------------------
// The tools.

#[test]
fn promtool_accepts_prometheus_yml() {
    let out = check("promtool", &["check", "config", "prometheus.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_accepts_alerts_yml() {
    let out = check("promtool", &["check", "rules", "alerts.yml"]);
    let expected = format!("SUCCESS: {} rules found", alerts().len());
    assert!(
        out.contains(&expected),
        "promtool and this file's reader disagree on the number of rules: expected \
         {expected:?} in\n{out}"
    );
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    for file in promtool_test_files() {
        let file = file.strip_prefix(root()).unwrap().to_str().unwrap();
        let out = check("promtool", &["test", "rules", file]);
        assert!(out.contains("SUCCESS"), "{out}");
    }
}

#[test]
fn amtool_accepts_alertmanager_yml() {
    check("amtool", &["check-config", "alertmanager/alertmanager.yml"]);
}

/// `docker compose -f docker-compose.yml ARGS` (the compose plugin if Docker has it, else
/// the standalone docker-compose), which must succeed; its stdout.
fn compose(args: &[&str]) -> String {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut all = vec!["-f", "docker-compose.yml"];
    all.extend(args);
    if plugin {
        all.insert(0, "compose");
        check("docker", &all)
    } else {
        if common::find_on_path("docker-compose").is_none() {
            panic!(
                "{} (nor has Docker its compose plugin, `docker compose`)",
                common::missing_tool("docker-compose", package("docker-compose"))
            );
        }
        check("docker-compose", &all)
    }
}

#[test]
fn docker_compose_accepts_docker_compose_yml() {
    compose(&["config", "-q"]);
    compose(&[
        "--profile",
        "fleetsim",
        "--profile",
        "history",
        "config",
        "-q",
    ]);
}

#[test]
fn a_missing_tool_is_named_in_one_line_with_its_package() {
    let tool = "fleetsim-no-such-tool";
    assert_eq!(common::find_on_path(tool), None);
    let said = std::panic::catch_unwind(|| common::require_tool(tool, "no-such-package"))
        .expect_err("a missing tool fails the test");
    let said = said.downcast_ref::<String>().expect("a formatted message");
    assert_eq!(said.lines().count(), 1, "{said}");
    for part in [
        "`fleetsim-no-such-tool`",
        "Debian's `no-such-package` package",
        "scripts/test installs it",
    ] {
        assert!(said.contains(part), "{part} in {said}");
    }
    // A tool that is there is found where it is.
    let sh = common::require_tool("sh", "dash");
    assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
}

// ---------------------------------------------------------------------------------------
// What the tools do not check.

#[test]
fn the_reader_understands_alerts_yml() {
    // A guard on the guard: the checks below are only as good as this reader (which
    // the_checks_catch_what_they_are_for tries on every construct it handles). promtool
    // counted the same rules (promtool_accepts_alerts_yml).
    let alerts = alerts();
    let mut names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        alerts.len(),
        "duplicate alert names: {alerts:#?}"
    );
    for alert in &alerts {
        assert!(
            !alert.expr.is_empty() && !alert.expr.starts_with(['|', '>']),
            "{}: expr read as {:?}",
            alert.name,
            alert.expr
        );
        assert!(
            !alert.labels.is_empty() && !alert.annotations.is_empty(),
            "{alert:#?}"
        );
    }
}

/// Alerts without a severity alertmanager.yml routes, or without annotations naming what
/// they are about.
fn annotation_problems(alerts: &[Alert]) -> Vec<String> {
    let mut problems = Vec::new();
    for alert in alerts {
        let name = &alert.name;
        match alert.label("severity") {
            Some("warning" | "critical") => {}
            other => problems.push(format!(
                "{name}: severity {other:?}, not \"warning\" or \"critical\" (alertmanager.yml \
                 routes those two)"
            )),
        }
        let subject = format!("$labels.{}", subject_label(name));
        for key in ["summary", "description"] {
            match alert.annotation(key) {
                None => problems.push(format!("{name}: no `{key}` annotation")),
                Some(text) if text.trim().is_empty() => {
                    problems.push(format!("{name}: empty `{key}` annotation"))
                }
                // The exporter's summary may leave the target to the description: there
                // is one fleetsim target.
                Some(_) if key == "summary" && name == "ExporterDown" => {}
                Some(text) if !text.contains(&subject) => problems.push(format!(
                    "{name}: `{key}` does not mention {{{{ {subject} }}}}: {text:?}"
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

/// Alerts without a `for`, or whose description does not state it ("for 5 minutes" must
/// not outlive a change of `for: 5m`).
fn for_window_problems(alerts: &[Alert]) -> Vec<String> {
    let mut problems = Vec::new();
    for alert in alerts {
        let name = &alert.name;
        let Some(window) = alert.r#for.as_deref() else {
            problems.push(format!("{name}: no `for`: it would fire on one bad scrape"));
            continue;
        };
        let words = match window.strip_suffix('m').and_then(|n| n.parse::<u32>().ok()) {
            Some(1) => "a minute".to_string(),
            Some(n) => format!("{n} minutes"),
            None => {
                problems.push(format!(
                    "{name}: `for: {window}` is not whole minutes, which this test can word"
                ));
                continue;
            }
        };
        let description = alert.annotation("description").unwrap_or_default();
        if !description.contains(&words) {
            problems.push(format!(
                "{name}: `for: {window}` but the description does not say {words:?}: \
                 {description:?}"
            ));
        }
    }
    problems
}

/// One `alert_rule_test` case of a promtool test file: the alert it checks, the
/// alertnames among its expected alerts' labels (none: the alert must be silent then), and
/// whether it checks annotations.
#[derive(Debug)]
struct Case {
    alertname: String,
    fired: Vec<String>,
    annotated: bool,
}

fn cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut case_indent = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let ind = indent(line);
        if trimmed.starts_with("- eval_time:") {
            case_indent = Some(ind);
            cases.push(Case {
                alertname: String::new(),
                fired: Vec::new(),
                annotated: false,
            });
            continue;
        }
        match case_indent {
            Some(c) if ind > c => {}
            _ => {
                case_indent = None;
                continue;
            }
        }
        let case = cases.last_mut().unwrap();
        if let Some(v) = trimmed.strip_prefix("alertname:") {
            if case.alertname.is_empty() {
                case.alertname = scalar(v);
            } else {
                case.fired.push(scalar(v));
            }
        } else if trimmed.starts_with("exp_annotations:") {
            case.annotated = true;
        }
    }
    // promql_expr_test cases may start with eval_time, but have no alertname.
    cases.retain(|c| !c.alertname.is_empty());
    cases
}

/// Alerts without a unit test that sees them fire (labels and annotations checked) and one
/// that sees them stay silent.
fn unit_test_problems(alerts: &[Alert], cases: &[Case]) -> Vec<String> {
    let mut problems = Vec::new();
    for alert in alerts {
        let name = &alert.name;
        let mine: Vec<&Case> = cases.iter().filter(|c| &c.alertname == name).collect();
        if mine.is_empty() {
            problems.push(format!(
                "{name}: no `alert_rule_test` case in tests/promtool/ (add some to \
                 tests/promtool/alerts_test.yml)"
            ));
            continue;
        }
        if !mine
            .iter()
            .any(|c| c.fired.iter().any(|f| f == name) && c.annotated)
        {
            problems.push(format!(
                "{name}: no case in tests/promtool/ where it fires with its labels and \
                 annotations checked"
            ));
        }
        if !mine.iter().any(|c| c.fired.is_empty()) {
            problems.push(format!(
                "{name}: no case in tests/promtool/ where it must not fire (`exp_alerts: []`)"
            ));
        }
    }
    problems
}

#[test]
fn every_alert_has_a_routable_severity_and_annotations_naming_what_it_is_about() {
    let problems = annotation_problems(&alerts());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn descriptions_state_the_for_window() {
    let problems = for_window_problems(&alerts());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_alert_has_unit_tests_that_see_it_fire_and_stay_silent() {
    let mut all = Vec::new();
    for file in promtool_test_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        if file.ends_with("alerts_test.yml") {
            assert!(
                text.lines().any(|l| {
                    let l = l.trim();
                    l == "- ../../alerts.yml" || l == "- \"../../alerts.yml\""
                }),
                "tests/promtool/alerts_test.yml does not load ../../alerts.yml"
            );
        }
        all.extend(cases(&text));
    }
    let problems = unit_test_problems(&alerts(), &all);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// alertmanager.yml: inhibition and routing.

/// The lines of the top-level `key:` block of a YAML file, the key's own line excluded;
/// None without one.
fn top_level_block<'a>(text: &'a str, key: &str) -> Option<Vec<&'a str>> {
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim_end() != format!("{key}:"));
    lines.next()?;
    Some(
        lines
            .take_while(|l| l.trim().is_empty() || l.starts_with(' ') || l.starts_with('#'))
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .collect(),
    )
}

/// `[a, b]` or `['a', "b"]`: the items, unquoted; None for anything else.
fn flow_list(raw: &str) -> Option<Vec<String>> {
    let inner = raw.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(
        split_flow(inner)
            .into_iter()
            .map(scalar)
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// What is wrong with the inhibition of a down server's other alerts in an Alertmanager
/// config's `text`: there must be a rule with `ServerDown` as its source, `equal: [server]`,
/// and as targets every other alert about a server (so that an alert added later is
/// inhibited too), nothing else.
fn inhibition_problems(text: &str, alerts: &[Alert]) -> Vec<String> {
    let Some(block) = top_level_block(text, "inhibit_rules") else {
        return vec!["no top-level `inhibit_rules:`".into()];
    };
    // Split into rules at their dashes.
    let mut rules: Vec<Vec<&str>> = Vec::new();
    for line in block {
        if line.trim_start().starts_with("- ")
            && rules.last().is_none_or(|r| indent(r[0]) >= indent(line))
        {
            rules.push(Vec::new());
        }
        match rules.last_mut() {
            Some(rule) => rule.push(line),
            None => {
                return vec![format!(
                    "inhibit_rules does not start with a list item: {line:?}"
                )];
            }
        }
    }
    let field = |rule: &[&str], key: &str| -> Option<Vec<String>> {
        rule.iter()
            .filter_map(|l| key_value(l))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| flow_list(v))
    };
    let Some(rule) = rules.iter().find(|r| {
        field(r, "source_matchers")
            .is_some_and(|m| m.iter().any(|m| m == "alertname=\"ServerDown\""))
    }) else {
        return vec!["no inhibit rule with source_matchers: ['alertname=\"ServerDown\"']".into()];
    };
    let mut problems = Vec::new();
    let equal = field(rule, "equal");
    if equal.as_deref() != Some(&["server".to_string()][..]) {
        problems.push(format!(
            "the ServerDown inhibit rule has equal: {equal:?}, not [server]: it must silence \
             the alerts of the down server only, and all of them"
        ));
    }
    let targets = field(rule, "target_matchers").unwrap_or_default();
    let names: Vec<&str> = match targets.as_slice() {
        [one] => match one
            .strip_prefix("alertname=~\"")
            .and_then(|t| t.strip_suffix('"'))
        {
            Some(names) => names.split('|').collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    if names.is_empty() {
        problems.push(format!(
            "the ServerDown inhibit rule's target_matchers are not one alertname=~\"A|B|…\": \
             {targets:?}"
        ));
        return problems;
    }
    for alert in alerts {
        let about_a_server = subject_label(&alert.name) == "server" && alert.name != "ServerDown";
        let inhibited = names.contains(&alert.name.as_str());
        if inhibited != about_a_server {
            problems.push(format!(
                "{}: inhibited by ServerDown: {inhibited}, expected {about_a_server}",
                alert.name
            ));
        }
    }
    for name in names {
        if !alerts.iter().any(|a| a.name == name) {
            problems.push(format!(
                "the ServerDown inhibit rule targets {name}, which alerts.yml does not define"
            ));
        }
    }
    problems
}

#[test]
fn a_down_server_inhibits_its_other_alerts() {
    let problems = inhibition_problems(&read("alertmanager/alertmanager.yml"), &alerts());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The checks above, on files with what they are meant to catch.

const BAD_RULES: &str = r#"
groups:
  - name: bad
    rules:
      - alert: NoSeverity
        expr: x > 1
        for: 5m
        labels:
          team: a
        annotations:
          summary: "x on {{ $labels.server }}"
          description: "{{ $labels.instance }} has had x for 10 minutes."
      - record: not:an_alert
        expr: sum(x)
      - alert: Untested
        expr: |
          y
            > 1
        labels:
          severity: page
        annotations:
          summary: >-
            y on
            {{ $labels.server }}
  - name: more
    rules:
      - alert: HalfTested
        expr: z > 1
        for: 1m
        labels: {severity: critical}
        annotations:
          summary: 'z on {{ $labels.server }}'
          description: '{{ $labels.server }} has had z for more than a minute.'
"#;

const BAD_TESTS: &str = r#"
tests:
  - interval: 1m
    input_series: []
    alert_rule_test:
      - eval_time: 5m
        alertname: NoSeverity
        exp_alerts: []
      - eval_time: 10m
        alertname: NoSeverity
        exp_alerts:
          - exp_labels:
              alertname: NoSeverity
            exp_annotations:
              summary: x
      - eval_time: 10m
        alertname: HalfTested
        exp_alerts:
          - exp_labels:
              alertname: HalfTested
    promql_expr_test:
      - eval_time: 1m
        expr: z
        exp_samples: []
"#;

const BAD_ALERTMANAGER: &str = r#"
route:
  receiver: webhook
inhibit_rules:
  # Not this one.
  - source_matchers: ['alertname="Other"']
    target_matchers: ['alertname=~"NoSeverity"']
    equal: [server]
  - source_matchers: ['alertname="ServerDown"']
    target_matchers: ['alertname=~"NoSeverity|Gone"']
    equal: [server, dc]
receivers:
  - name: webhook
"#;

#[test]
fn the_checks_catch_what_they_are_for() {
    let alerts = parse_alerts(BAD_RULES);
    let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["NoSeverity", "Untested", "HalfTested"]);
    assert_eq!(alerts[1].expr, "y\n> 1");
    assert_eq!(
        alerts[1].annotation("summary"),
        Some("y on {{ $labels.server }}")
    );
    assert_eq!(alerts[1].r#for, None);
    assert_eq!(
        alerts[2].annotation("description").map(|d| &d[..5]),
        Some("{{ $l")
    );

    let problems = annotation_problems(&alerts);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0].starts_with("NoSeverity: severity None"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("NoSeverity: `description` does not mention"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("Untested: severity Some(\"page\")"),
        "{problems:#?}"
    );
    assert_eq!(problems[3], "Untested: no `description` annotation");

    let problems = for_window_problems(&alerts);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0]
            .starts_with("NoSeverity: `for: 5m` but the description does not say \"5 minutes\""),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("Untested: no `for`"),
        "{problems:#?}"
    );

    let problems = unit_test_problems(&alerts, &cases(BAD_TESTS));
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("Untested: no `alert_rule_test` case"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("HalfTested: no case in tests/promtool/ where it fires"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("HalfTested: no case in tests/promtool/ where it must not fire"),
        "{problems:#?}"
    );

    let mut with_down = parse_alerts(BAD_RULES);
    with_down.push(Alert {
        name: "ServerDown".into(),
        ..Alert::default()
    });
    let problems = inhibition_problems(BAD_ALERTMANAGER, &with_down);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0]
            .starts_with("the ServerDown inhibit rule has equal: Some([\"server\", \"dc\"])"),
        "{problems:#?}"
    );
    assert_eq!(
        problems[1],
        "Untested: inhibited by ServerDown: false, expected true"
    );
    assert_eq!(
        problems[2],
        "HalfTested: inhibited by ServerDown: false, expected true"
    );
    assert!(
        problems[3].contains("targets Gone, which alerts.yml does not define"),
        "{problems:#?}"
    );
    assert_eq!(
        inhibition_problems("route:\n  receiver: x\n", &with_down),
        ["no top-level `inhibit_rules:`"]
    );
}

fn route(labels: &[String]) -> String {
    let mut args = vec![
        "config",
        "routes",
        "test",
        "--config.file=alertmanager/alertmanager.yml",
    ];
    args.extend(labels.iter().map(String::as_str));
    check("amtool", &args).trim().to_string()
}

#[test]
fn alerts_route_to_the_receiver_of_their_severity() {
    assert_eq!(route(&["severity=critical".into()]), "webhook-critical");
    assert_eq!(route(&["severity=warning".into()]), "webhook");
    // Each shipped alert, with the labels it fires with.
    for alert in alerts() {
        let severity = alert.label("severity").expect("a severity");
        let mut labels = vec![
            format!("alertname={}", alert.name),
            format!("severity={severity}"),
        ];
        if subject_label(&alert.name) == "server" {
            labels.extend(["server=srv-01", "dc=dc1", "role=web"].map(String::from));
        } else {
            labels.extend(["job=fleetsim", "instance=host.docker.internal:8000"].map(String::from));
        }
        assert_eq!(
            route(&labels),
            receiver_for(severity),
            "{} ({severity}) is routed elsewhere",
            alert.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// alertmanager.yml: where the alerts go.

/// Where the shipped receivers post: fleetsim's webhook on its admin port (8001, as the
/// README's examples), on the host as the containers see it.
const FLEETSIM_WEBHOOK: &str = "http://host.docker.internal:8001/api/v1/alerts";

/// A receiver of an Alertmanager config as written: its webhook URLs, whether they send
/// resolutions, and the `*_configs:` keys written under it as comments (examples).
#[derive(Debug, Default)]
struct Receiver {
    name: String,
    webhook_urls: Vec<String>,
    send_resolved: bool,
    commented: Vec<String>,
}

/// Every receiver in an Alertmanager config's `text`, in order.
fn receivers(text: &str) -> Vec<Receiver> {
    let mut out: Vec<Receiver> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_end() == "receivers:" {
            inside = true;
            continue;
        }
        let t = line.trim();
        if !inside || t.is_empty() {
            continue;
        }
        if !line.starts_with(' ') && !t.starts_with('#') {
            break;
        }
        if let Some(name) = t.strip_prefix("- name:") {
            out.push(Receiver {
                name: scalar(name),
                ..Receiver::default()
            });
            continue;
        }
        let Some(receiver) = out.last_mut() else {
            continue;
        };
        if let Some(comment) = t.strip_prefix('#') {
            let key = comment.trim().trim_end_matches(':');
            if key.ends_with("_configs") && !key.contains(' ') {
                receiver.commented.push(key.to_string());
            }
            continue;
        }
        match key_value(line) {
            Some(("url", v)) => receiver.webhook_urls.push(scalar(v)),
            Some(("send_resolved", v)) => receiver.send_resolved = scalar(v) == "true",
            _ => {}
        }
    }
    out
}

/// What is wrong with the receivers named in `routed` (the receivers the severities reach):
/// each must post to fleetsim's webhook only, with resolutions, and carry commented e-mail
/// and Slack examples to start from.
fn receiver_problems(text: &str, routed: &[&str]) -> Vec<String> {
    let all = receivers(text);
    let mut problems = Vec::new();
    for name in routed {
        let Some(r) = all.iter().find(|r| r.name == *name) else {
            problems.push(format!("no receiver named {name}"));
            continue;
        };
        if r.webhook_urls != [FLEETSIM_WEBHOOK] {
            problems.push(format!(
                "{name} posts to {:?}, not to fleetsim's webhook {FLEETSIM_WEBHOOK} alone",
                r.webhook_urls
            ));
        }
        if !r.send_resolved {
            problems.push(format!(
                "{name} does not send resolutions: the score would not see alerts end"
            ));
        }
        for example in ["email_configs", "slack_configs"] {
            if !r.commented.iter().any(|c| c == example) {
                problems.push(format!("{name} has no commented `{example}` example"));
            }
        }
    }
    problems
}

/// `text` with its commented YAML lines (`# key:`, `# - key:`) uncommented, prose left.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            match line.trim_start().strip_prefix("# ") {
                Some(rest) if key_value(rest).is_some() => format!("{indent}{rest}"),
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn both_severities_reach_fleetsims_webhook_with_e_mail_and_slack_examples() {
    let routed = ["critical", "warning"].map(|s| route(&[format!("severity={s}")]));
    let routed: Vec<&str> = routed.iter().map(String::as_str).collect();
    let text = read("alertmanager/alertmanager.yml");
    let problems = receiver_problems(&text, &routed);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_commented_examples_are_a_valid_config_once_uncommented() {
    let text = uncommented(&read("alertmanager/alertmanager.yml"));
    let examples = receivers(&text);
    // Uncommented, the examples are keys of their own: none is left as a comment.
    assert!(
        examples.iter().all(|r| r.commented.is_empty()) && text.contains("slack_configs:"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, &text).unwrap();
    let out = check("amtool", &["check-config", path.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

const BAD_RECEIVERS: &str = r#"
route:
  receiver: webhook
receivers:
  - name: webhook
    webhook_configs:
      - url: "http://host.docker.internal:5001/alerts"
    # slack_configs:
    #   - api_url: "https://hooks.slack.com/services/T000/B000/XXXX"
  - name: webhook-critical
    webhook_configs:
      - url: "http://host.docker.internal:8001/api/v1/alerts"
        send_resolved: true
      - url: "http://elsewhere/"
    # Not an example, prose: email_configs are possible.
"#;

#[test]
fn the_receiver_checks_catch_what_they_are_for() {
    let problems = receiver_problems(BAD_RECEIVERS, &["webhook", "webhook-critical", "pager"]);
    assert_eq!(problems.len(), 7, "{problems:#?}");
    assert!(
        problems[0].starts_with("webhook posts to [\"http://host.docker.internal:5001/alerts\"]"),
        "{problems:#?}"
    );
    assert!(problems[1].starts_with("webhook does not send resolutions"));
    assert_eq!(
        problems[2],
        "webhook has no commented `email_configs` example"
    );
    assert!(
        problems[3].starts_with("webhook-critical posts to"),
        "{problems:#?}"
    );
    assert_eq!(
        problems[4],
        "webhook-critical has no commented `email_configs` example"
    );
    assert_eq!(
        problems[5],
        "webhook-critical has no commented `slack_configs` example"
    );
    assert_eq!(problems[6], "no receiver named pager");
    let plain = uncommented(BAD_RECEIVERS);
    assert!(
        plain.contains("\n    slack_configs:\n      - api_url: \"https"),
        "{plain}"
    );
    assert!(plain.contains("# Not an example, prose"), "{plain}");
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml: the Docker-only path.

/// The lines of service `name` in a resolved compose config (`docker compose config`),
/// its own line excluded.
fn service_block<'a>(resolved: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = resolved.lines().skip_while(|l| l.trim_end() != "services:");
    lines.next();
    let header = format!("{name}:");
    let mut lines = lines.skip_while(|l| !(indent(l) == 2 && l.trim_end().trim() == header));
    lines.next();
    lines
        .take_while(|l| l.trim().is_empty() || indent(l) > 2)
        .collect()
}

/// The items of the list under `key:` in a service's block, unquoted; nested maps (the
/// long forms of ports and volumes) as their `k=v` pairs joined by commas.
fn service_list(block: &[&str], key: &str) -> Vec<String> {
    let Some(at) = block.iter().position(|l| l.trim() == format!("{key}:")) else {
        return Vec::new();
    };
    let key_indent = indent(block[at]);
    let mut items: Vec<String> = Vec::new();
    // A block list may sit at its key's indentation (`key:\n- a`), as docker-compose 1.x
    // writes it.
    let inside = |l: &&&str| {
        indent(l) > key_indent || (indent(l) == key_indent && l.trim_start().starts_with("- "))
    };
    for line in block[at + 1..].iter().take_while(inside) {
        let t = line.trim();
        match t.strip_prefix("- ") {
            Some(item) => items.push(match key_value(item) {
                Some((k, v)) => format!("{k}={}", scalar(v)),
                None => scalar(item),
            }),
            None => {
                if let (Some(last), Some((k, v))) = (items.last_mut(), key_value(t)) {
                    last.push_str(&format!(",{k}={}", scalar(v)));
                }
            }
        }
    }
    items
}

/// The value a command gives `flag`, as `--flag=value` or `--flag value`.
fn flag_value<'a>(command: &'a [String], flag: &str) -> Option<&'a str> {
    command
        .iter()
        .enumerate()
        .find_map(|(k, arg)| match arg.strip_prefix(flag) {
            Some(rest) if rest.starts_with('=') => Some(&rest[1..]),
            Some("") => command.get(k + 1).map(String::as_str),
            _ => None,
        })
}

/// What keeps the `fleetsim` service from running the course without Rust: the admin API
/// on every interface of the container and published on the host at the port the shipped
/// alertmanager.yml posts to, and the config file mounted read-only and read.
fn fleetsim_service_problems(resolved: &str) -> Vec<String> {
    let block = service_block(resolved, "fleetsim");
    if block.is_empty() {
        return vec!["no `fleetsim` service".into()];
    }
    let command = service_list(&block, "command");
    let mut problems = Vec::new();
    match flag_value(&command, "--admin-listen") {
        Some("0.0.0.0:8001") => {}
        other => problems.push(format!(
            "fleetsim's --admin-listen is {other:?}, not 0.0.0.0:8001: Alertmanager could not \
             reach the webhook"
        )),
    }
    let ports = service_list(&block, "ports");
    // The short form ("8001:8001") or the long one (published=8001,target=8001).
    let published = ports.iter().any(|p| {
        p == "8001:8001"
            || (p.split(',').any(|kv| kv == "published=8001")
                && p.split(',').any(|kv| kv == "target=8001"))
    });
    if !published {
        problems.push(format!(
            "fleetsim does not publish port 8001 as 8001: {ports:?}"
        ));
    }
    let volumes = service_list(&block, "volumes");
    match flag_value(&command, "--config") {
        None => problems.push("fleetsim is not given --config".into()),
        Some(path) => {
            let mounted = volumes.iter().any(|v| {
                let short = v.ends_with(&format!("config/fleet.toml:{path}:ro"));
                let long = v.contains("config/fleet.toml")
                    && v.split(',').any(|kv| kv == format!("target={path}"))
                    && v.split(',').any(|kv| kv == "read_only=true");
                short || long
            });
            if !mounted {
                problems.push(format!(
                    "fleetsim reads --config {path}, which is not config/fleet.toml mounted \
                     read-only: {volumes:?}"
                ));
            }
        }
    }
    problems
}

#[test]
fn the_fleetsim_service_serves_the_admin_api_and_reads_the_config_file() {
    let resolved = compose(&["--profile", "fleetsim", "config"]);
    let problems = fleetsim_service_problems(&resolved);
    assert!(problems.is_empty(), "{}\n{resolved}", problems.join("\n"));
}

/// The `fleetsim` service's command as compose resolves it, run as it is but on loopback
/// (the admin API on an ephemeral port, the mounted config read from the repository):
/// incidents and the score work on the Docker-only path, with no flag of the test's own.
#[test]
fn the_fleetsim_services_own_command_takes_incidents_and_scores_alerts() {
    let resolved = compose(&["--profile", "fleetsim", "config"]);
    let command = service_list(&service_block(&resolved, "fleetsim"), "command");
    assert_eq!(
        command.first().map(String::as_str),
        Some("exporter"),
        "{command:?}"
    );
    let config = root().join("config/fleet.toml");
    let args: Vec<String> = command[1..]
        .iter()
        .map(|arg| match arg.split_once('=') {
            Some(("--config", _)) => format!("--config={}", config.display()),
            Some(("--admin-listen", _)) => "--admin-listen=127.0.0.1:0".into(),
            _ => arg.clone(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = common::Exporter::start(&args);
    let admin = exporter
        .admin
        .expect("the service's command starts the admin API");

    let posted = common::request(
        admin,
        "POST",
        "/api/v1/incidents",
        r#"{"kind": "outage", "target": "server=srv-02", "duration": "10m"}"#,
    );
    assert_eq!(posted.status, 201, "{}", posted.body);
    let incident: serde_json::Value = serde_json::from_str(&posted.body).unwrap();
    let start_ms = fleetsim::units::parse_instant(incident["start"].as_str().unwrap()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fleetsim::clock::unix_now_ms() <= start_ms {
        assert!(
            std::time::Instant::now() < deadline,
            "the incident never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Alertmanager's notification of ServerDown on srv-02, a minute after the start.
    let notification = serde_json::json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"ServerDown\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "webhook-critical",
        "groupLabels": {"alertname": "ServerDown"},
        "commonLabels": {"alertname": "ServerDown", "server": "srv-02"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "ServerDown", "server": "srv-02", "severity": "critical"},
            "startsAt": fleetsim::units::format_instant(start_ms + 60_000),
            "annotations": {},
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "ServerDown-srv-02",
        }],
    });
    let delivered = common::request(admin, "POST", "/api/v1/alerts", &notification.to_string());
    assert_eq!(delivered.status, 200, "{}", delivered.body);
    let score: serde_json::Value =
        serde_json::from_str(&common::get(admin, "/api/v1/score").body).unwrap();
    let caught = score["caught"]
        .as_array()
        .expect("a list of caught incidents");
    assert!(
        caught
            .iter()
            .any(|c| c["incident"]["id"] == incident["id"]
                && c["alert"]["alertname"] == "ServerDown"),
        "{score:#}"
    );
}

#[test]
fn the_fleetsim_service_checks_catch_what_they_are_for() {
    // As docker-compose 1.x resolves a service, and as Compose 2 does (long forms).
    let v1 = "services:\n  fleetsim:\n    command:\n    - exporter\n    - --admin-listen\n    \
              - 127.0.0.1:8001\n    ports:\n    - published: 8001\n      target: 8000\n    \
              volumes:\n    - /src/config/fleet.toml:/etc/fleetsim/fleet.toml\n    \
              command_was: x\n  grafana:\n    ports:\n    - 8001:8001\n";
    let problems = fleetsim_service_problems(v1);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("Some(\"127.0.0.1:8001\")"),
        "{problems:#?}"
    );
    assert!(problems[1].starts_with("fleetsim does not publish port 8001"));
    assert_eq!(problems[2], "fleetsim is not given --config");

    let v2 = "services:\n  fleetsim:\n    command:\n      - exporter\n      - \
              --admin-listen=0.0.0.0:8001\n      - --config=/etc/fleetsim/fleet.toml\n    \
              ports:\n      - mode: ingress\n        target: 8001\n        published: \"8001\"\n    \
              volumes:\n      - type: bind\n        source: /src/config/fleet.toml\n        \
              target: /etc/fleetsim/fleet.toml\n";
    let problems = fleetsim_service_problems(v2);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("not config/fleet.toml mounted read-only"),
        "{problems:#?}"
    );
    let read_only = v2.replace(
        "target: /etc/fleetsim/fleet.toml\n",
        "target: /etc/fleetsim/fleet.toml\n        read_only: true\n",
    );
    assert_eq!(fleetsim_service_problems(&read_only), Vec::<String>::new());
    assert_eq!(
        fleetsim_service_problems("services:\n  grafana:\n"),
        ["no `fleetsim` service"]
    );
}

// ---------------------------------------------------------------------------------------
// The history's labels.

/// A scrape job of a prometheus.yml: its name, its targets, and the keys that would give
/// its series other labels than `job` and `instance` (relabelling, static labels,
/// honor_labels).
#[derive(Debug, Default, PartialEq)]
struct ScrapeJob {
    name: String,
    targets: Vec<String>,
    relabelling: Vec<String>,
}

fn scrape_jobs(text: &str) -> Vec<ScrapeJob> {
    let mut jobs: Vec<ScrapeJob> = Vec::new();
    let mut job_indent = None;
    for line in text.lines() {
        let Some((key, raw)) = key_value(line) else {
            continue;
        };
        if key == "job_name" {
            job_indent = Some(indent(line));
            jobs.push(ScrapeJob {
                name: scalar(raw),
                ..ScrapeJob::default()
            });
            continue;
        }
        let Some(job) = jobs.last_mut() else { continue };
        if job_indent.is_some_and(|at| indent(line) < at) {
            job_indent = None;
        }
        if job_indent.is_none() {
            continue;
        }
        match key {
            "targets" => job.targets.extend(flow_list(raw).unwrap_or_default()),
            "labels" | "relabel_configs" | "metric_relabel_configs" | "honor_labels" => {
                job.relabelling.push(key.to_string())
            }
            _ => {}
        }
    }
    jobs
}

/// What is wrong with `text`'s fleetsim job for a history labelled `job`, `instance`.
fn history_label_problems(text: &str, job: &str, instance: &str) -> Vec<String> {
    let jobs = scrape_jobs(text);
    let Some(fleet) = jobs.iter().find(|j| j.name == job) else {
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        return vec![format!("no scrape job is named {job} (jobs: {names:?})")];
    };
    let mut problems = Vec::new();
    if fleet.targets != [instance] {
        problems.push(format!(
            "the {job} job scrapes {:?}, the history's instance is {instance}",
            fleet.targets
        ));
    }
    if !fleet.relabelling.is_empty() {
        problems.push(format!(
            "the {job} job has {:?}: its series' labels are not the history's",
            fleet.relabelling
        ));
    }
    problems
}

#[test]
fn the_history_is_labelled_as_prometheus_yml_labels_the_scrape() {
    let cli = fleetsim::cli::parse(["fleetsim", "generate"]).unwrap();
    let fleetsim::cli::Command::Generate(args) = cli.command else {
        unreachable!()
    };
    assert_eq!(
        history_label_problems(&read("prometheus.yml"), &args.job, &args.instance),
        Vec::<String>::new()
    );
    let problems = |text: &str| history_label_problems(text, "fleetsim", "h:8000");
    let job = "scrape_configs:\n  - job_name: fleetsim\n    static_configs:\n";
    assert!(problems(&format!("{job}      - targets: [\"h:8000\"]\n")).is_empty());
    let moved = problems(&format!("{job}      - targets: [\"h:9000\"]\n"));
    assert!(
        moved[0].contains("the history's instance is h:8000"),
        "{moved:?}"
    );
    let labelled = problems(&format!(
        "{job}      - targets: [\"h:8000\"]\n        labels: {{env: lab}}\n"
    ));
    assert!(labelled[0].contains("[\"labels\"]"), "{labelled:?}");
    let later = problems(&format!(
        "{job}      - targets: [\"h:8000\"]\n  - job_name: other\n    honor_labels: true\n"
    ));
    assert!(later.is_empty(), "{later:?}");
    let renamed = problems("scrape_configs:\n  - job_name: fleet\n");
    assert!(
        renamed[0].contains("no scrape job is named fleetsim"),
        "{renamed:?}"
    );
}
