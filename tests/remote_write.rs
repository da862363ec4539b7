//! `exporter --remote-write`: the fleet's series pushed to real receivers (Prometheus with
//! its remote write receiver, VictoriaMetrics) and read back through their query APIs, and
//! the retry rules against a fake receiver here, all over loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::prometheus::{Prometheus, free_port};
use common::victoria::VictoriaMetrics;
use common::{Exporter, parse_exposition};

const FAMILIES: [&str; 12] = [
    "app_server_up",
    "app_cpu_usage",
    "app_memory_usage",
    "app_disk_usage",
    "app_requests_per_second",
    "app_requests_total",
    "app_request_duration_seconds_bucket",
    "app_request_duration_seconds_sum",
    "app_request_duration_seconds_count",
    "app_network_receive_bytes_total",
    "app_network_transmit_bytes_total",
    "app_last_deploy_timestamp_seconds",
];

/// The series a scrape and a remote write should both have.
const SELECTOR: &str = r#"{__name__=~"app_.+|fleetsim_incident_active"}"#;

type Labels = BTreeMap<String, String>;

// ---------------------------------------------------------------- protobuf, by hand

/// One decoded `TimeSeries`: labels in their order on the wire, and the samples.
#[derive(Debug, Clone)]
struct Series {
    labels: Vec<(String, String)>,
    samples: Vec<(f64, i64)>,
}

fn varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b < 0x80 {
            return v;
        }
    }
}

/// The fields of a message: (field number, wire type, bytes of a length-delimited field
/// or of a fixed64, or the varint's value as 8 little-endian bytes).
fn fields(bytes: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let key = varint(bytes, &mut at);
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => varint(bytes, &mut at).to_le_bytes().to_vec(),
            1 => {
                at += 8;
                bytes[at - 8..at].to_vec()
            }
            2 => {
                let len = varint(bytes, &mut at) as usize;
                at += len;
                bytes[at - len..at].to_vec()
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((field, wire, value));
    }
    out
}

fn decode_write_request(proto: &[u8]) -> Vec<Series> {
    fields(proto)
        .into_iter()
        .map(|(field, wire, ts)| {
            assert_eq!((field, wire), (1, 2), "WriteRequest.timeseries");
            let mut series = Series {
                labels: Vec::new(),
                samples: Vec::new(),
            };
            for (field, wire, part) in fields(&ts) {
                assert_eq!(wire, 2);
                let inner = fields(&part);
                match field {
                    1 => {
                        let text = |n: u64| {
                            let f = inner.iter().find(|f| f.0 == n).expect("label field");
                            String::from_utf8(f.2.clone()).unwrap()
                        };
                        series.labels.push((text(1), text(2)));
                    }
                    2 => {
                        let mut value = 0.0;
                        let mut timestamp = 0;
                        for (f, _, v) in inner {
                            let v: [u8; 8] = v.try_into().unwrap();
                            match f {
                                1 => value = f64::from_le_bytes(v),
                                2 => timestamp = i64::from_le_bytes(v),
                                f => panic!("unexpected Sample field {f}"),
                            }
                        }
                        series.samples.push((value, timestamp));
                    }
                    f => panic!("unexpected TimeSeries field {f}"),
                }
            }
            series
        })
        .collect()
}

// ---------------------------------------------------------------- a fake receiver

struct Received {
    at: Instant,
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn series(&self) -> Vec<Series> {
        let proto = snap::raw::Decoder::new()
            .decompress_vec(&self.body)
            .expect("the body is snappy block-compressed");
        decode_write_request(&proto)
    }

    /// The one timestamp of the batch.
    fn timestamp(&self) -> i64 {
        let stamps: BTreeSet<i64> = self
            .series()
            .iter()
            .flat_map(|s| s.samples.iter().map(|x| x.1))
            .collect();
        assert_eq!(stamps.len(), 1, "one timestamp per batch");
        *stamps.first().unwrap()
    }
}

/// Answers the n-th request (from 0) with `status(n)`, and keeps every request.
struct FakeReceiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeReceiver {
    fn start(status: fn(usize) -> (u16, &'static str)) -> FakeReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (received.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        headers.push((n.trim().to_string(), v.trim().to_string()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let n = {
                    let mut all = kept.lock().unwrap();
                    all.push(Received {
                        at: Instant::now(),
                        request_line: request_line.trim().to_string(),
                        headers,
                        body,
                    });
                    all.len() - 1
                };
                let (code, text) = status(n);
                // A 429 asks for a second's pause.
                let retry_after = if code == 429 {
                    "Retry-After: 1\r\n"
                } else {
                    ""
                };
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                     {retry_after}Connection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        FakeReceiver {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until at least `n` requests came, at most `limit`.
    fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.count() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.count() >= n
    }
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn metric(exporter: &Exporter, series: &str) -> Option<f64> {
    let body = exporter.get("/metrics").body;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

// ---------------------------------------------------------------- the retry rules

#[test]
fn retries_5xx_with_backoff_and_sends_the_headers_and_a_valid_write_request() {
    let receiver = FakeReceiver::start(|n| match n {
        0 | 1 => (503, "busy"),
        _ => (204, ""),
    });
    let url = receiver.url();
    let exporter = Exporter::start(&[
        "--servers",
        "5",
        "--remote-write",
        &url,
        "--remote-write-interval",
        "3s",
    ]);
    assert!(
        receiver.wait_for(4, Duration::from_secs(10)),
        "{} requests",
        receiver.count()
    );
    let all = receiver.received.lock().unwrap();
    // The first batch: sent three times, 250 ms then 500 ms apart, within its interval.
    let (t0, t1, t2) = (all[0].at, all[1].at, all[2].at);
    assert!(t1 - t0 >= Duration::from_millis(200), "{:?}", t1 - t0);
    assert!(t2 - t1 >= Duration::from_millis(400), "{:?}", t2 - t1);
    assert!(t2 - t0 < Duration::from_secs(3), "{:?}", t2 - t0);
    assert_eq!(all[0].body, all[1].body);
    assert_eq!(all[1].body, all[2].body);
    // The next batch is the next interval's, with a later frame.
    assert!(all[3].at - t0 >= Duration::from_millis(2500));
    assert!(all[3].timestamp() > all[0].timestamp());

    for r in all.iter() {
        assert_eq!(r.request_line, "POST /api/v1/write HTTP/1.1");
        assert_eq!(r.header("content-encoding"), Some("snappy"));
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(r.header("x-prometheus-remote-write-version"), Some("0.1.0"));
        let agent = format!("fleetsim/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(r.header("user-agent"), Some(agent.as_str()));
        assert_eq!(r.header("host"), Some(receiver.addr.to_string().as_str()));
    }
    let series = all[2].series();
    assert!(!series.is_empty());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for s in &series {
        let names: Vec<&str> = s.labels.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(names[0], "__name__", "{s:?}");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {s:?}");
        assert!(s.labels.iter().all(|l| !l.1.is_empty()), "{s:?}");
        assert_eq!(s.samples.len(), 1, "{s:?}");
        let (value, ts) = s.samples[0];
        assert!(value.is_finite() && value >= 0.0, "{s:?}");
        assert!((now_ms - ts).abs() < 60_000, "{s:?}");
    }
    let up = series
        .iter()
        .filter(|s| s.labels[0].1 == "app_server_up")
        .count();
    assert_eq!(up, 5);
    drop(all);

    assert_eq!(
        metric(
            &exporter,
            "fleetsim_remote_write_requests_total{code=\"503\"}"
        ),
        Some(2.0)
    );
    assert!(
        metric(
            &exporter,
            "fleetsim_remote_write_requests_total{code=\"204\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        metric(&exporter, "fleetsim_remote_write_samples_total").unwrap() >= series.len() as f64
    );
}

#[test]
fn retries_429_after_the_receivers_retry_after() {
    let receiver = FakeReceiver::start(|n| match n {
        0 => (429, "slow down"),
        _ => (204, ""),
    });
    let url = receiver.url();
    let _exporter = Exporter::start(&[
        "--servers",
        "2",
        "--remote-write",
        &url,
        "--remote-write-interval",
        "3s",
    ]);
    assert!(receiver.wait_for(2, Duration::from_secs(10)));
    let all = receiver.received.lock().unwrap();
    let gap = all[1].at - all[0].at;
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_millis(2500),
        "Retry-After: 1 honoured, not the 250 ms backoff: {gap:?}"
    );
    assert_eq!(all[0].body, all[1].body, "the same batch, retried");
}

#[test]
fn never_retries_a_4xx_and_logs_it() {
    let receiver = FakeReceiver::start(|_| (400, "out of order sample"));
    let url = receiver.url();
    let exporter = Exporter::start(&[
        "--servers",
        "3",
        "--remote-write",
        &url,
        "--remote-write-interval",
        "1s",
    ]);
    assert!(receiver.wait_for(3, Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(500));
    let all = receiver.received.lock().unwrap();
    // One request per interval, each a new batch.
    let stamps: Vec<i64> = all.iter().map(Received::timestamp).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    for pair in all.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(800), "{gap:?}");
    }
    let n = all.len();
    drop(all);
    let warned = exporter
        .stderr
        .try_iter()
        .find(|l| l.contains("WARN") && l.contains("400") && l.contains("out of order sample"));
    assert!(warned.is_some(), "no warning naming the 400 and its body");
    let rejected = metric(
        &exporter,
        "fleetsim_remote_write_requests_total{code=\"400\"}",
    )
    .unwrap();
    assert!(rejected >= n as f64, "{rejected} < {n}");
}

#[test]
fn a_dead_receiver_does_not_delay_shutdown() {
    let dead = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let mut exporter = Exporter::start(&["--servers", "2", "--remote-write", &dead]);
    thread::sleep(Duration::from_millis(600));
    assert_eq!(exporter.get("/-/healthy").status, 200);
    exporter.signal("TERM");
    let status = exporter.wait_exit(Duration::from_secs(3));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn bad_urls_and_intervals_are_usage_errors_naming_the_flag() {
    for args in [
        &["--remote-write", "ftp://x"][..],
        &["--remote-write", "not a url"],
        &["--remote-write", "https://mimir.example/api/v1/push"],
        &["--remote-write", "http://"],
        &[
            "--remote-write",
            "http://h/x",
            "--remote-write-interval",
            "0s",
        ],
        &[
            "--remote-write",
            "http://h/x",
            "--remote-write-interval",
            "soon",
        ],
    ] {
        let mut all = vec!["exporter", "--listen", "127.0.0.1:0"];
        all.extend(args);
        let out = common::run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("--remote-write"), "{args:?}: {stderr}");
        if args[1].contains("://x") || args[1].starts_with("https") {
            assert!(stderr.contains("only http://"), "{stderr}");
        }
    }
}

// ---------------------------------------------------------------- real receivers

/// A series as name and labels, `__name__` included.
fn series_of(result: &Value) -> BTreeMap<Labels, f64> {
    result["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels: Labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect()
}

fn scraped(exporter: &Exporter) -> BTreeMap<Labels, f64> {
    parse_exposition(&exporter.get("/metrics").body)
        .into_iter()
        .filter(|s| s.name.starts_with("app_") || s.name == "fleetsim_incident_active")
        .map(|s| {
            let mut labels = s.labels;
            labels.insert("__name__".into(), s.name);
            (labels, s.value)
        })
        .collect()
}

fn scalar(data: &Value) -> f64 {
    let result = &data["result"];
    match result.as_array() {
        Some(v) if v.is_empty() => f64::NAN,
        Some(v) => v[0]["value"][1].as_str().unwrap().parse().unwrap(),
        None => result[1].as_str().unwrap().parse().unwrap(),
    }
}

/// The checks both receivers pass: what they received is what a scrape shows.
fn check_receiver(name: &str, exporter: &Exporter, query: &dyn Fn(&str) -> Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&query("count(app_server_up)")) != 5.0 {
        assert!(
            Instant::now() < deadline,
            "{name}: count(app_server_up) never reached 5"
        );
        thread::sleep(Duration::from_millis(300));
    }
    // Let a few batches land, then compare with a scrape taken just after the query:
    // the same series (a server could go down in between: try again then).
    thread::sleep(Duration::from_secs(2));
    let mut attempts = 0;
    let (stored, scrape) = loop {
        let stored = series_of(&query(SELECTOR));
        let scrape = scraped(exporter);
        let same: bool = stored.keys().eq(scrape.keys());
        attempts += 1;
        if same || attempts == 3 {
            break (stored, scrape);
        }
        thread::sleep(Duration::from_secs(1));
    };
    let stored_keys: BTreeSet<&Labels> = stored.keys().collect();
    let scrape_keys: BTreeSet<&Labels> = scrape.keys().collect();
    assert_eq!(
        stored_keys,
        scrape_keys,
        "{name}: only stored {:?}, only scraped {:?}",
        stored_keys.difference(&scrape_keys).collect::<Vec<_>>(),
        scrape_keys.difference(&stored_keys).collect::<Vec<_>>()
    );

    let of = |family: &str| -> Vec<(&Labels, f64)> {
        stored
            .iter()
            .filter(|(l, _)| l["__name__"] == family)
            .map(|(l, v)| (l, *v))
            .collect()
    };
    let up: Vec<String> = of("app_server_up")
        .iter()
        .filter(|(_, v)| *v == 1.0)
        .map(|(l, _)| l["server"].clone())
        .collect();
    assert!(!up.is_empty(), "{name}: no server up");
    for family in FAMILIES {
        let servers: BTreeSet<&str> = of(family)
            .iter()
            .map(|(l, _)| l["server"].as_str())
            .collect();
        for server in &up {
            assert!(
                servers.contains(server.as_str()),
                "{name}: {family} missing for {server}"
            );
        }
        for (l, _) in of(family) {
            assert!(l.contains_key("dc") && l.contains_key("role"), "{l:?}");
        }
    }
    let statuses: BTreeSet<&str> = of("app_requests_total")
        .iter()
        .map(|(l, _)| l["status"].as_str())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["2xx", "4xx", "5xx"]), "{name}");
    let les: BTreeSet<&str> = of("app_request_duration_seconds_bucket")
        .iter()
        .map(|(l, _)| l["le"].as_str())
        .collect();
    assert_eq!(les.len(), 12, "{name}: {les:?}");
    assert!(les.contains("+Inf") && les.contains("0.005") && les.contains("10"));

    // Values: the stored ones are an earlier frame's than the scrape's. Flags and deploy
    // times are the same; counters can only have grown since; gauges are in range.
    for (labels, &value) in &stored {
        let now = scrape[labels];
        let name = labels["__name__"].as_str();
        match name {
            "app_server_up" | "app_last_deploy_timestamp_seconds" | "fleetsim_incident_active" => {
                assert_eq!(value, now, "{labels:?}")
            }
            "app_cpu_usage" | "app_memory_usage" | "app_disk_usage" => {
                assert!((0.0..=100.0).contains(&value), "{labels:?} {value}")
            }
            _ if name.ends_with("_total")
                || name.ends_with("_bucket")
                || name.ends_with("_sum")
                || name.ends_with("_count") =>
            {
                assert!(value <= now * (1.0 + 1e-9), "{labels:?}: {value} > {now}");
                assert!(value >= 0.0);
            }
            _ => assert!(value >= 0.0, "{labels:?}"),
        }
    }
    // The newest sample is a frame of the last few seconds.
    let age = scalar(&query("time() - max(timestamp(app_server_up))"));
    assert!(
        (0.0..10.0).contains(&age),
        "{name}: newest sample {age}s old"
    );
}

#[test]
fn prometheus_receives_the_fleet_as_scraped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .unwrap();
    let prometheus = Prometheus::start(dir, &["--web.enable-remote-write-receiver"]);
    let url = format!("http://{}/api/v1/write", prometheus.addr);
    let exporter = Exporter::start(&[
        "--servers",
        "5",
        "--remote-write",
        &url,
        "--remote-write-interval",
        "1s",
    ]);
    check_receiver("prometheus", &exporter, &|q| prometheus.query(q));
    let rejected: Vec<String> = exporter
        .stderr
        .try_iter()
        .filter(|l| l.contains("remote write") && l.contains("WARN"))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

#[test]
fn victoria_metrics_receives_the_fleet_as_scraped() {
    let vm = VictoriaMetrics::start();
    let url = format!("http://{}/api/v1/write", vm.addr);
    let exporter = Exporter::start(&[
        "--servers",
        "5",
        "--remote-write",
        &url,
        "--remote-write-interval",
        "1s",
    ]);
    check_receiver("victoria-metrics", &exporter, &|q| {
        vm.flush();
        vm.query(q)
    });
    let rejected: Vec<String> = exporter
        .stderr
        .try_iter()
        .filter(|l| l.contains("remote write") && l.contains("WARN"))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}
