//! The real exporter binary, scraped over loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Exporter, Sample, parse_exposition};

const FAMILIES: [&str; 11] = [
    "app_cpu_usage",
    "app_memory_usage",
    "app_disk_usage",
    "app_requests_per_second",
    "app_requests_total",
    "app_request_duration_seconds",
    "app_network_receive_bytes_total",
    "app_network_transmit_bytes_total",
    "app_server_up",
    "app_last_deploy_timestamp_seconds",
    "app_start_time_seconds",
];

fn by_series(samples: &[Sample]) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect()
}

#[test]
fn serves_every_series_for_every_server_with_help_and_type() {
    let exporter = Exporter::start(&["--servers", "10", "--seed", "3"]);
    let r = exporter.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    for family in FAMILIES {
        assert!(
            r.body.contains(&format!("# HELP {family} ")),
            "no HELP for {family}"
        );
        assert!(
            r.body.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}"
        );
    }
    let samples = parse_exposition(&r.body);
    let app: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name.starts_with("app_"))
        .collect();
    let servers: BTreeSet<&str> = app.iter().map(|s| s.labels["server"].as_str()).collect();
    let expected: BTreeSet<String> = (1..=10).map(|i| format!("srv-{i:02}")).collect();
    assert_eq!(servers, expected.iter().map(String::as_str).collect());
    for s in &app {
        assert!(
            s.labels.contains_key("dc") && s.labels.contains_key("role"),
            "{s:?}"
        );
        assert!(s.value.is_finite(), "{s:?}");
    }
    let up: Vec<&&Sample> = app.iter().filter(|s| s.name == "app_server_up").collect();
    assert_eq!(up.len(), 10);
    for s in &app {
        match s.name.as_str() {
            "app_cpu_usage" | "app_memory_usage" | "app_disk_usage" => {
                assert!((0.0..=100.0).contains(&s.value), "{s:?}")
            }
            "app_server_up" => assert!(s.value == 0.0 || s.value == 1.0),
            _ => assert!(s.value >= 0.0, "{s:?}"),
        }
    }
    let statuses: BTreeSet<&str> = app
        .iter()
        .filter(|s| s.name == "app_requests_total")
        .map(|s| s.labels["status"].as_str())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["2xx", "4xx", "5xx"]));
    let les: BTreeSet<&str> = app
        .iter()
        .filter(|s| s.name == "app_request_duration_seconds_bucket")
        .map(|s| s.labels["le"].as_str())
        .collect();
    assert_eq!(les.len(), 12, "{les:?}");
    for own in [
        "fleetsim_build_info",
        "fleetsim_servers",
        "fleetsim_tick_duration_seconds_count",
        "process_resident_memory_bytes",
    ] {
        assert!(samples.iter().any(|s| s.name == own), "no {own}");
    }
    let servers = samples
        .iter()
        .find(|s| s.name == "fleetsim_servers")
        .unwrap();
    assert_eq!(servers.value, 10.0);
}

#[test]
fn values_move_between_scrapes_and_counters_never_go_down() {
    let exporter = Exporter::start(&["--servers", "10", "--tick", "200ms"]);
    let first = by_series(&parse_exposition(&exporter.get("/metrics").body));
    std::thread::sleep(Duration::from_millis(1_300));
    let second = by_series(&parse_exposition(&exporter.get("/metrics").body));
    let moved = first
        .iter()
        .filter(|(k, _)| k.starts_with("app_cpu_usage"))
        .filter(|(k, v)| second.get(*k).is_some_and(|w| w != *v))
        .count();
    assert!(moved >= 5, "only {moved} CPU series moved");
    for (key, before) in &first {
        let counter = key.starts_with("app_requests_total")
            || key.starts_with("app_network_")
            || key.starts_with("app_request_duration_seconds_");
        if let (true, Some(after)) = (counter, second.get(key)) {
            assert!(after >= before, "{key} went down: {before} -> {after}");
        }
    }
}

#[test]
fn promtool_finds_nothing_to_complain_about() {
    let exporter = Exporter::start(&["--servers", "12"]);
    common::promtool_check(&exporter.get("/metrics").body);
}

#[test]
fn landing_page_health_and_404() {
    let exporter = Exporter::start(&["--servers", "2"]);
    let home = exporter.get("/");
    assert_eq!(home.status, 200);
    assert!(
        home.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(home.body.contains("href=\"/metrics\""));
    assert_eq!(exporter.get("/-/healthy").status, 200);
    assert_eq!(exporter.get("/-/ready").status, 200);
    assert_eq!(exporter.get("/nope").status, 404);
    assert_eq!(exporter.get("/metrics/extra").status, 404);
}

#[test]
fn stops_cleanly_within_a_second_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let mut exporter = Exporter::start(&["--servers", "3"]);
        assert_eq!(exporter.get("/-/ready").status, 200);
        exporter.signal(signal);
        let status = exporter.wait_exit(Duration::from_secs(1));
        let status = status.unwrap_or_else(|| panic!("still running 1s after SIG{signal}"));
        assert!(status.success(), "SIG{signal}: {status}");
    }
}

/// Waits for the exporter to log `needle`, at most `limit`.
fn wait_for_log(exporter: &Exporter, needle: &str, limit: Duration) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match exporter.stderr.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("the exporter did not log `{needle}` within {limit:?}"),
        }
    }
}

/// Health at once, readiness once the fleet is served: what Kubernetes' probes and a load
/// test that restarts exporters rely on. The fleet is large enough that the warm-up takes
/// far longer than a request on loopback.
#[test]
fn healthy_at_once_ready_and_scraped_once_the_first_frame_is_served() {
    let exporter = Exporter::start_warming_up(&["--servers", "2000"]);
    let healthy = exporter.get("/-/healthy");
    assert_eq!(healthy.status, 200, "{}", healthy.body);
    for path in ["/-/ready", "/metrics"] {
        let r = exporter.get(path);
        assert_eq!(r.status, 503, "{path} while warming up: {}", r.body);
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
        assert!(r.body.contains("warming up 2000 servers"), "{}", r.body);
    }
    wait_for_log(&exporter, "fleet ready", Duration::from_secs(120));
    assert_eq!(exporter.get("/-/ready").status, 200);
    let scrape = exporter.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert!(scrape.body.contains("app_server_up{server=\"srv-2000\""));
}

#[test]
fn a_signal_during_the_warm_up_stops_it_within_a_second() {
    let mut exporter = Exporter::start_warming_up(&["--servers", "20000"]);
    assert_eq!(exporter.get("/-/ready").status, 503);
    exporter.signal("TERM");
    let status = exporter.wait_exit(Duration::from_secs(1));
    let status = status.expect("still warming up 1s after SIGTERM");
    assert!(status.success(), "{status}");
    wait_for_log(
        &exporter,
        "stopped during the warm-up",
        Duration::from_secs(1),
    );
}

#[test]
fn a_port_in_use_is_one_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = common::run(&["exporter", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fleetsim: cannot listen on ") && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn down_servers_show_only_their_up_series() {
    // Short failures and long repairs: most servers are down at any time.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    let mut text = String::new();
    for role in ["web", "api", "db", "cache", "worker"] {
        text.push_str(&format!(
            "[roles.{role}.lifecycle]\nmtbf = \"1h\"\nmttr = \"3h\"\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    let exporter = Exporter::start(&["--servers", "20", "--config", config.to_str().unwrap()]);
    let samples = parse_exposition(&exporter.get("/metrics").body);
    let down: BTreeSet<String> = samples
        .iter()
        .filter(|s| s.name == "app_server_up" && s.value == 0.0)
        .map(|s| s.labels["server"].clone())
        .collect();
    assert!(!down.is_empty(), "no server down with mtbf 1h, mttr 3h");
    for s in samples
        .iter()
        .filter(|s| s.name.starts_with("app_") && s.name != "app_server_up")
    {
        assert!(!down.contains(&s.labels["server"]), "down server has {s:?}");
    }
}

#[test]
fn prometheus_gets_openmetrics_with_created_and_eof() {
    let exporter = Exporter::start(&["--servers", "3"]);
    let accept = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let (head, body) = common::get_raw(exporter.addr, accept);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let body = String::from_utf8(body).unwrap();
    assert!(body.ends_with("# EOF\n"), "no # EOF at the end");
    assert_eq!(body.matches("# EOF").count(), 1);
    assert!(body.contains("# TYPE app_requests counter\n"));
    assert!(body.contains("# TYPE fleetsim_scrapes counter\n"));
    assert!(body.contains("\napp_requests_total{server=\"srv-01\""));
    assert!(body.contains("\napp_requests_created{server=\"srv-01\""));
    assert!(body.contains("\napp_request_duration_seconds_created{server=\"srv-01\""));
    // Without asking, the text format, as curl and browsers get it.
    let (head, body) = common::get_raw(exporter.addr, "Accept: */*\r\n");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(!String::from_utf8(body).unwrap().contains("# EOF"));
}

#[test]
fn gzip_when_asked_and_the_same_exposition_inside() {
    use std::io::Read;
    let exporter = Exporter::start(&["--servers", "5", "--tick", "1h"]);
    let (head, zipped) = common::get_raw(exporter.addr, "Accept-Encoding: gzip\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut text)
        .unwrap();
    let (head, plain) = common::get_raw(exporter.addr, "");
    assert!(!head.contains("content-encoding"), "{head}");
    let plain = String::from_utf8(plain).unwrap();
    // The fleet's series are the same (the tick is an hour: no new frame in between).
    let fleet = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("app_"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(fleet(&text), fleet(&plain));
    assert!(
        zipped.len() * 3 < plain.len(),
        "gzip saved little: {} of {}",
        zipped.len(),
        plain.len()
    );
}
