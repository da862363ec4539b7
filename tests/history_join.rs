//! The OpenMetrics history continues the live series: the default week (10 servers, seed 1,
//! a row a minute) imported by promtool into a real Prometheus that then scrapes a live
//! exporter of the same default fleet, history and scrapes are one series per server, with
//! no gap and no second series at the boundary.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::prometheus::Prometheus;
use common::{Exporter, promtool, run};
use serde_json::Value;

/// The default fleet's size, which both the exporter and `generate` are left to choose.
const SERVERS: usize = 10;

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every value of every series of a range query's result, by the series' labels.
fn values(data: &Value) -> Vec<(Value, Vec<(f64, f64)>)> {
    data["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a matrix: {data}"))
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                    (p[0].as_f64().unwrap(), v)
                })
                .collect();
            (s["metric"].clone(), points)
        })
        .collect()
}

#[test]
fn backfilled_history_and_live_scrapes_are_one_series_per_server() {
    let exporter = Exporter::start(&[]);
    let instance = exporter.addr.to_string();

    // The default week, ending now, as the history profile writes it.
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("history.om");
    let end_s = now_s().floor() as i64;
    let end = fleetsim::units::format_instant(end_s * 1000);
    let args = vec![
        "generate",
        "--format",
        "openmetrics",
        "--out",
        om.to_str().unwrap(),
        "--end",
        &end,
        "--instance",
        &instance,
    ];
    let r = run(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // The file's first lines (a week is some hundreds of megabytes).
    let mut head = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::fs::File::open(&om).unwrap(), 64 * 1024),
        &mut head,
    )
    .unwrap();
    let labels = format!("instance=\"{instance}\",job=\"fleetsim\"");
    assert!(head.contains(&labels), "the history carries {labels}");

    let blocks = dir.path().join("blocks");
    let out = promtool()
        // One read of the file per block: 486h blocks hold the week in one or two.
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

    // prometheus.yml's scrape, on the live exporter: no honor_labels, no relabelling.
    let prom_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        prom_dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: fleetsim\n    static_configs:\n      - targets: [\"{instance}\"]\n"
        ),
    )
    .unwrap();
    let tsdb = format!("--storage.tsdb.path={}", blocks.display());
    let prometheus = Prometheus::start(prom_dir, &[&tsdb, "--storage.tsdb.retention.time=30d"]);

    // A few scrapes of the live fleet.
    let deadline = Instant::now() + Duration::from_secs(60);
    let scraped = "count_over_time(up{job=\"fleetsim\"}[1m])";
    loop {
        let data = prometheus.query(scraped);
        let scrapes = data["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if scrapes >= 5.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 5 scrapes of {instance} within 60s: {data}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let up = prometheus.query("up{job=\"fleetsim\"}");
    assert_eq!(
        up["result"][0]["value"][1], "1",
        "the scrapes succeed: {up}"
    );

    // From ten minutes of history, across its end, to the last scrape.
    let (start, stop, step) = ((end_s - 600) as f64, now_s().floor(), 1.0);
    let steps = ((stop - start) / step) as usize + 1;
    let at_every_step = |expr: &str, want: f64| {
        let data = prometheus.query_range(expr, start, stop, step);
        let found = values(&data);
        assert_eq!(found.len(), 1, "{expr}: {data}");
        let points = &found[0].1;
        assert_eq!(points.len(), steps, "{expr}: a value at every step");
        for &(t, v) in points {
            assert_eq!(v, want, "{expr} at {t} (history ends at {end_s})");
        }
    };
    at_every_step("count(app_server_up)", SERVERS as f64);
    at_every_step("count(count by (server) (app_server_up))", SERVERS as f64);
    at_every_step("max(count by (server) (app_server_up))", 1.0);

    let by_server =
        values(&prometheus.query_range("count by (server) (app_server_up)", start, stop, step));
    assert_eq!(by_server.len(), SERVERS, "{by_server:?}");
    for (labels, points) in &by_server {
        assert!(
            points.iter().all(|&(_, v)| v == 1.0),
            "{labels}: {points:?}"
        );
    }
    let by_job =
        values(&prometheus.query_range("count by (job) (app_server_up)", start, stop, step));
    assert_eq!(by_job.len(), 1, "{by_job:?}");
    assert_eq!(by_job[0].0["job"], "fleetsim");

    // The stored series themselves: the history's and the scrapes' are the same ones.
    let series = prometheus.api(&format!(
        "/api/v1/series?match[]=app_server_up&start={start}&end={stop}"
    ));
    let series = series.as_array().unwrap();
    assert_eq!(series.len(), SERVERS, "{series:?}");
    for s in series {
        assert_eq!(s["job"], "fleetsim", "{s}");
        assert_eq!(s["instance"], instance.as_str(), "{s}");
    }
    // The hour before the history's end holds its samples only, the time since its end
    // the scrapes' only: both are in those series.
    let min_samples = |window_s: i64, at: f64| {
        let expr = format!("min(count_over_time(app_server_up[{window_s}s] @ {at}))");
        let data = prometheus.query(&expr);
        let series = format!("count(count_over_time(app_server_up[{window_s}s] @ {at}))");
        let count = prometheus.query(&series);
        assert_eq!(
            count["result"][0]["value"][1],
            SERVERS.to_string(),
            "{series}"
        );
        data["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let history = min_samples(3600, (end_s - 1) as f64);
    assert!(
        history >= 59.0,
        "{history} history samples in an hour, a sample a minute"
    );
    let live = min_samples(stop as i64 - end_s, stop);
    assert!(
        live >= 3.0,
        "{live} scraped samples since the history's end"
    );
    drop(exporter);
}
