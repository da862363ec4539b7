//! Every alert about a server fires on the default week of history. The history is written
//! as OpenMetrics, imported by promtool into TSDB blocks, and a real Prometheus is started
//! on them with the shipped alerts.yml loaded, so that the rules (expression and `for`) are
//! read from the file by Prometheus itself. Prometheus only evaluates rules at "now", so each
//! alert is evaluated here as the rule manager would have over the week: its expression at
//! every evaluation interval of the shipped prometheus.yml, firing once it has held on a
//! series at consecutive evaluations for its `for`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::{promtool, run};
use serde_json::Value;

/// Evaluations asked for in one range query: Prometheus refuses more than 11,000 points per
/// series, and the histogram quantile over a whole 11,000 takes seconds on a busy machine,
/// too near the test helpers' 10 s read timeout.
const POINTS_PER_QUERY: i64 = 2_880;

/// The budget of the whole test, history and import included, on two cores.
const BUDGET: Duration = Duration::from_secs(300);

/// Not about a server: it needs a failed scrape, which a backfilled history cannot have.
const NOT_IN_HISTORY: &str = "ExporterDown";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `global.evaluation_interval` of the shipped prometheus.yml, in seconds.
fn shipped_evaluation_interval_s() -> i64 {
    let path = root().join("prometheus.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut in_global = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            in_global = line.trim_end() == "global:";
            continue;
        }
        if let Some(value) = line.trim().strip_prefix("evaluation_interval:")
            && in_global
        {
            let interval = fleetsim::units::parse_positive_duration(value).unwrap();
            return interval.as_secs() as i64;
        }
    }
    panic!("{} has no global evaluation_interval", path.display());
}

/// The first and last instants (unix seconds) of `app_server_up`, the history's first
/// family: the range the history covers.
fn history_range_s(om: &Path) -> (i64, i64) {
    let file = std::fs::File::open(om).unwrap();
    let mut first = None;
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line.unwrap();
        if line.starts_with('#') {
            if first.is_some() {
                break;
            }
            continue;
        }
        assert!(
            line.starts_with("app_server_up{"),
            "unexpected line: {line}"
        );
        let t: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        first.get_or_insert(t);
        last = Some(t);
    }
    (first.unwrap(), last.unwrap())
}

/// An alerting rule as Prometheus loaded it.
struct Rule {
    name: String,
    expr: String,
    for_s: i64,
    interval_s: i64,
}

fn loaded_alerting_rules(prometheus: &Prometheus) -> Vec<Rule> {
    let data = prometheus.api("/api/v1/rules?type=alert");
    let mut rules = Vec::new();
    for group in data["groups"].as_array().unwrap() {
        let interval_s = group["interval"].as_f64().unwrap() as i64;
        for rule in group["rules"].as_array().unwrap() {
            rules.push(Rule {
                name: rule["name"].as_str().unwrap().to_string(),
                expr: rule["query"].as_str().unwrap().to_string(),
                for_s: rule["duration"].as_f64().unwrap() as i64,
                interval_s,
            });
        }
    }
    rules
}

/// The instants (unix seconds) at which `expr` returned each series, from `start_s` to
/// `end_s` every `step_s`, by the series' labels.
fn instants_by_series(
    prometheus: &Prometheus,
    expr: &str,
    start_s: i64,
    end_s: i64,
    step_s: i64,
) -> BTreeMap<BTreeMap<String, String>, Vec<i64>> {
    let mut by_series: BTreeMap<BTreeMap<String, String>, Vec<i64>> = BTreeMap::new();
    let mut chunk_start = start_s;
    while chunk_start <= end_s {
        let chunk_end = (chunk_start + (POINTS_PER_QUERY - 1) * step_s).min(end_s);
        let data =
            prometheus.query_range(expr, chunk_start as f64, chunk_end as f64, step_s as f64);
        for series in data["result"].as_array().unwrap() {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(series["metric"].clone()).unwrap();
            let instants = by_series.entry(labels).or_default();
            instants.extend(
                series["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|point: &Value| point[0].as_f64().unwrap() as i64),
            );
        }
        chunk_start = chunk_end + step_s;
    }
    by_series
}

/// The runs of consecutive evaluations in `instants` (sorted) that last at least `for_s`,
/// each as (first, last): the rule manager fires when an alert has been active for `for_s`.
fn firing_runs(instants: &[i64], step_s: i64, for_s: i64) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < instants.len() {
        let mut j = i;
        while j + 1 < instants.len() && instants[j + 1] - instants[j] == step_s {
            j += 1;
        }
        if instants[j] - instants[i] >= for_s {
            runs.push((instants[i], instants[j]));
        }
        i = j + 1;
    }
    runs
}

#[test]
fn firing_runs_need_consecutive_evaluations_for_the_whole_for() {
    // 0..=300 at 15 s is 5 minutes; a gap at 330 splits the second run.
    let held: Vec<i64> = (0..=20).map(|i| i * 15).chain([345, 360]).collect();
    assert_eq!(firing_runs(&held, 15, 300), vec![(0, 300)]);
    assert_eq!(firing_runs(&held, 15, 301), vec![]);
    assert_eq!(firing_runs(&held, 15, 15), vec![(0, 300), (345, 360)]);
    assert_eq!(firing_runs(&[], 15, 0), vec![]);
}

#[test]
fn every_alert_about_a_server_fires_on_the_default_week() {
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("h.om");
    let r = run(&[
        "generate",
        "--format",
        "openmetrics",
        "--out",
        om.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let generated = began.elapsed();
    let (start_s, end_s) = history_range_s(&om);
    assert!(
        end_s - start_s >= 7 * 86_400 - 3600,
        "the default history covers {}s, not a week",
        end_s - start_s
    );

    // promtool reads the whole file once per block it writes: at its default of 2h blocks a
    // week is 84 reads of the file. It rounds the maximum down to Prometheus's block ranges
    // (2h times a power of 3): 162h is shorter than a week, 486h holds it in one or two.
    let blocks = dir.path().join("blocks");
    let out = promtool()
        .args([
            "tsdb",
            "create-blocks-from",
            "--max-block-duration=486h",
            "openmetrics",
        ])
        .arg(&om)
        .arg(&blocks)
        .output()
        .expect("promtool is installed");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&om).unwrap();
    let imported = began.elapsed();

    let interval_s = shipped_evaluation_interval_s();
    let prom_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        prom_dir.path().join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: {interval_s}s\nrule_files:\n  - {}\n",
            root().join("alerts.yml").display()
        ),
    )
    .unwrap();
    let tsdb = format!("--storage.tsdb.path={}", blocks.display());
    let prometheus = Prometheus::start(prom_dir, &[&tsdb, "--storage.tsdb.retention.time=30d"]);

    let rules: Vec<Rule> = loaded_alerting_rules(&prometheus)
        .into_iter()
        .filter(|rule| rule.name != NOT_IN_HISTORY)
        .collect();
    assert!(
        !rules.is_empty(),
        "Prometheus loaded no alerting rule about servers from alerts.yml"
    );

    let mut silent = Vec::new();
    for rule in &rules {
        assert_eq!(
            rule.interval_s, interval_s,
            "{}: its group's interval",
            rule.name
        );
        // The rule manager's evaluations fall on a fixed grid of the interval.
        let first = (start_s + interval_s - 1) / interval_s * interval_s;
        let queried = Instant::now();
        let by_series = instants_by_series(&prometheus, &rule.expr, first, end_s, interval_s);
        let mut servers = BTreeSet::new();
        let mut firings = Vec::new();
        for (labels, instants) in &by_series {
            let server = labels.get("server").cloned().unwrap_or_default();
            for (from, to) in firing_runs(instants, interval_s, rule.for_s) {
                servers.insert(server.clone());
                firings.push(format!(
                    "{server} from {} for {}m",
                    fleetsim::units::format_instant(from * 1000),
                    (to - from) / 60
                ));
            }
        }
        let held_on: BTreeSet<&str> = by_series
            .keys()
            .filter_map(|labels| labels.get("server").map(String::as_str))
            .collect();
        println!(
            "{}: fired {} times (for {}s), on {:?}; held at some evaluation on {:?}; \
             queried in {:.1}s\n  {}",
            rule.name,
            firings.len(),
            rule.for_s,
            servers,
            held_on,
            queried.elapsed().as_secs_f64(),
            firings.join("\n  ")
        );
        if firings.is_empty() {
            silent.push(rule.name.as_str());
        }
    }
    let elapsed = began.elapsed();
    println!(
        "generate {:.1}s, promtool import {:.1}s, Prometheus and queries {:.1}s: {:.1}s in all",
        generated.as_secs_f64(),
        (imported - generated).as_secs_f64(),
        (elapsed - imported).as_secs_f64(),
        elapsed.as_secs_f64()
    );
    assert!(
        silent.is_empty(),
        "never fired on the default week: {silent:?}"
    );
    assert!(
        elapsed < BUDGET,
        "the test took {elapsed:?}, over {BUDGET:?}"
    );
}
