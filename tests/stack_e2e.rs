//! End to end: the real exporter, scraped by a real Prometheus started from a copy of the
//! shipped prometheus.yml (only the target address changed), and every PromQL expression
//! of every dashboard panel, variable and annotation, and of every alert (without its
//! threshold), evaluated through Prometheus's HTTP API: each must return data.
//!
//! The expressions are read from the shipped files, so a panel added later is checked too.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Exporter;
use common::prometheus::{Prometheus, result_count};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Prometheus on the shipped config with the fleetsim target pointed at `target`, and the
/// shipped rules with their `for` set to 0s so that alerts fire at once.
fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(root().join("prometheus.yml")).unwrap();
    assert!(
        config.contains("host.docker.internal:8000"),
        "prometheus.yml no longer targets host.docker.internal:8000"
    );
    let config = config.replace("host.docker.internal:8000", &target.to_string());
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let rules = std::fs::read_to_string(root().join("alerts.yml")).unwrap();
    let rules: Vec<String> = rules
        .lines()
        .map(|l| match l.split_once("for:") {
            Some((indent, _)) if l.trim_start().starts_with("for:") => format!("{indent}for: 0s"),
            _ => l.to_string(),
        })
        .collect();
    std::fs::write(dir.path().join("alerts.yml"), rules.join("\n")).unwrap();
    Prometheus::start(dir, &[])
}

/// Grafana's variables replaced the way "All" and the defaults would.
fn substitute(expr: &str) -> String {
    let mut e = expr.to_string();
    for (var, value) in [
        ("${dc}", ".*"),
        ("${role}", ".*"),
        ("${server}", ".*"),
        ("$dc", ".*"),
        ("$role", ".*"),
        ("$server", ".*"),
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "1h"),
    ] {
        e = e.replace(var, value);
    }
    e
}

/// `label_values(selector, label)` is Grafana's, not PromQL: its selector is.
fn variable_expr(query: &str) -> String {
    let q = query.trim();
    match q.strip_prefix("label_values(") {
        Some(inner) => {
            let inner = inner.strip_suffix(')').unwrap_or(inner);
            match inner.rsplit_once(',') {
                Some((selector, _label)) => selector.trim().to_string(),
                None => format!("{{{inner}=~\".+\"}}"),
            }
        }
        None => q
            .strip_prefix("query_result(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(q)
            .to_string(),
    }
}

fn panel_exprs(panels: &[Value], source: &str, out: &mut Vec<(String, String)>) {
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push((
                    format!("{source}: panel '{title}' {}", t["refId"]),
                    expr.to_string(),
                ));
            }
        }
        if let Some(nested) = p["panels"].as_array() {
            panel_exprs(nested, source, out);
        }
    }
}

/// Every PromQL expression in every dashboard: panels, variables, annotations.
fn dashboard_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        panel_exprs(d["panels"].as_array().unwrap(), &name, &mut out);
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let query = match &v["query"] {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("query").and_then(Value::as_str).map(String::from),
                _ => None,
            };
            if let (Some("query"), Some(q)) = (v["type"].as_str(), query) {
                out.push((format!("{name}: variable {}", v["name"]), variable_expr(&q)));
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = a["expr"].as_str() {
                out.push((
                    format!("{name}: annotation {}", a["name"]),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

/// Strips a trailing `> 80`, `< 10`, `== 0` and the like.
fn without_threshold(expr: &str) -> String {
    let e = expr.trim_end();
    let number_start = e
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
        .len();
    if number_start == e.len() {
        return e.to_string();
    }
    let before = e[..number_start].trim_end();
    for op in ["==", "!=", ">=", "<=", ">", "<"] {
        if let Some(rest) = before.strip_suffix(op) {
            return rest.trim_end().to_string();
        }
    }
    e.to_string()
}

/// Every alert's expression in alerts.yml, without its threshold.
fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("alerts.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut alert = String::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            alert = name.trim().to_string();
        } else if let Some(value) = t.strip_prefix("expr:") {
            let value = value.trim();
            let expr = if value == "|" || value == ">" {
                let indent = line.len() - t.len();
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                value.to_string()
            };
            out.push((format!("alerts.yml: {alert}"), without_threshold(&expr)));
        }
    }
    out
}

#[test]
fn thresholds_are_stripped() {
    assert_eq!(without_threshold("app_cpu_usage > 80"), "app_cpu_usage");
    assert_eq!(
        without_threshold("up{job=\"fleetsim\"} == 0"),
        "up{job=\"fleetsim\"}"
    );
    assert_eq!(without_threshold("a / b > 0.05"), "a / b");
    assert_eq!(without_threshold("rate(x[5m])"), "rate(x[5m])");
    assert_eq!(
        variable_expr("label_values(app_server_up{dc=~\"$dc\"}, role)"),
        "app_server_up{dc=~\"$dc\"}"
    );
}

#[test]
fn every_dashboard_and_alert_expression_returns_data_from_a_real_prometheus() {
    let config = root().join("tests/fixtures/hot-cache.toml");
    let exporter = Exporter::start(&["--servers", "10", "--config", config.to_str().unwrap()]);
    let prometheus = start_prometheus(exporter.addr);

    // Several scrapes, so that rate() over a minute has samples to work with.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let data = prometheus.query("count_over_time(up{job=\"fleetsim\"}[5m])");
        let scrapes = data["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if scrapes >= 3.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 scrapes in 120s: {data}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let up = prometheus.query("up{job=\"fleetsim\"}");
    assert_eq!(
        up["result"][0]["value"][1], "1",
        "the fleetsim target is not up: {up}"
    );
    // Wait for the rules to have been evaluated on the data (every 15s, on their own
    // schedule): the hot servers' alerts fire then, and the alert annotation has data.
    let deadline = Instant::now() + Duration::from_secs(90);
    while result_count(&prometheus.query("ALERTS{alertstate=\"firing\"}")) == 0 {
        assert!(
            Instant::now() < deadline,
            "no alert fired within 90s of the third scrape"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    let mut exprs = dashboard_exprs();
    let from_dashboards = exprs.len();
    exprs.extend(alert_exprs());
    assert!(
        from_dashboards >= 10,
        "only {from_dashboards} dashboard expressions found"
    );
    assert!(
        exprs.len() - from_dashboards >= 7,
        "alerts.yml expressions not found"
    );

    let mut empty = Vec::new();
    for (source, expr) in &exprs {
        let promql = substitute(expr);
        let data = prometheus.query(&promql);
        if result_count(&data) == 0 {
            empty.push(format!("{source}: {promql}"));
        }
    }
    assert!(
        empty.is_empty(),
        "expressions with no data:\n{}",
        empty.join("\n")
    );

    // The hot cache servers make real alerts fire, which the alert annotation shows.
    let firing = prometheus
        .query("ALERTS{alertstate=\"firing\", alertname=\"HighCpuUsage\", role=\"cache\"}");
    assert!(
        result_count(&firing) > 0,
        "HighCpuUsage is not firing for the hot cache servers: {firing}"
    );
}
