//! `exporter --remote-write`: the fleet's series pushed to real receivers (Prometheus with
//! its remote write receiver, VictoriaMetrics) and read back through their query APIs, and
//! the retry rules against a fake receiver here, all over loopback. Remote write 2.0, which
//! neither real receiver here speaks, is decoded by prost and checked against 1.0's series.

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

// ---------------------------------------------------------------- 2.0, by prost

// `io.prometheus.write.v2.Request` as prometheus/prometheus's
// prompb/io/prometheus/write/v2/types.proto defines it (the fields fleetsim sends), decoded
// by prost: a decoder that shares nothing with fleetsim's encoder.

#[derive(Clone, PartialEq, prost::Message)]
struct V2Request {
    #[prost(string, repeated, tag = "4")]
    symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    timeseries: Vec<V2Series>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct V2Series {
    #[prost(uint32, repeated, tag = "1")]
    labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<V2Sample>,
    #[prost(message, repeated, tag = "3")]
    histograms: Vec<V2Ignored>,
    #[prost(message, repeated, tag = "4")]
    exemplars: Vec<V2Ignored>,
    #[prost(message, optional, tag = "5")]
    metadata: Option<V2Metadata>,
    #[prost(int64, tag = "6")]
    created_timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct V2Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct V2Metadata {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(uint32, tag = "3")]
    help_ref: u32,
    #[prost(uint32, tag = "4")]
    unit_ref: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct V2Ignored {}

/// 1.0's `prometheus.WriteRequest`, to see what a 1.x receiver makes of a 2.0 body.
#[derive(Clone, PartialEq, prost::Message)]
struct V1Request {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<V2Ignored>,
}

use prost::Message as _;

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
        FakeReceiver::serve(status, false)
    }

    /// As a 2.0 receiver: a success says how many samples it wrote.
    fn start_v2(status: fn(usize) -> (u16, &'static str)) -> FakeReceiver {
        FakeReceiver::serve(status, true)
    }

    fn serve(status: fn(usize) -> (u16, &'static str), v2: bool) -> FakeReceiver {
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
                let written = match v2 {
                    true => {
                        let samples = snap::raw::Decoder::new()
                            .decompress_vec(&body)
                            .ok()
                            .and_then(|proto| V2Request::decode(proto.as_slice()).ok())
                            .map_or(0, |r| r.timeseries.iter().map(|t| t.samples.len()).sum());
                        format!("X-Prometheus-Remote-Write-Samples-Written: {samples}\r\n")
                    }
                    false => String::new(),
                };
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
                let written = if code < 300 { written.as_str() } else { "" };
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                     {retry_after}{written}Connection: close\r\n\r\n{text}",
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
        // Without a receiver these would do nothing: say so rather than ignore them.
        &["--remote-write-interval", "5s"],
        &["--remote-write-protocol", "2.0"],
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

// ---------------------------------------------------------------- remote write 2.0

/// Encoded requests, each with its number of series.
type Requests = Vec<(Vec<u8>, usize)>;

/// A frame with an outage (a server down) and an incident on a role (a label value that
/// is no server's, dc's or role's), as both protocols encode it.
fn both_encodings() -> (i64, Requests, Requests) {
    use fleetsim::model::{FleetParams, FleetSpec, IncidentSpec, Schedule, members};
    use fleetsim::remote_write::{SeriesLabels, SeriesSymbols, v2, write_requests};
    let params = FleetParams::default();
    let t0 = 1_795_521_600_000;
    let fleet = members(&params, 40, 0..40);
    let spec = |kind: &str, target: String| IncidentSpec {
        kind: kind.into(),
        target,
        start: None,
        duration: "1h".into(),
        intensity: None,
        ramp: None,
    };
    let specs = [
        spec("outage", format!("server={}", fleet[3].name)),
        spec("cpu_spike", "role=db".into()),
    ];
    let schedule = Schedule::from_specs(&specs, t0, t0).unwrap();
    let mut timeline = FleetSpec::new(&params, 1, fleet)
        .schedule(schedule)
        .timeline(t0);
    let frame = timeline.at(t0 + 7_500);
    assert!(!frame.active_incidents().is_empty());
    assert!((0..frame.len()).any(|i| !frame.up(i)), "a server is down");
    let v1 = write_requests(&frame, &SeriesLabels::new(timeline.members()), 300);
    let v2 = v2::write_requests(&frame, &SeriesSymbols::new(timeline.members()), 300);
    (frame.time_ms, v1, v2)
}

/// A 2.0 request's series as label maps, checked against the spec on the way.
fn v2_series(request: &V2Request) -> Vec<(Labels, &V2Series)> {
    let symbols = &request.symbols;
    assert_eq!(symbols.first().map(String::as_str), Some(""), "symbols[0]");
    let unique: BTreeSet<&String> = symbols.iter().collect();
    assert_eq!(unique.len(), symbols.len(), "symbols are deduplicated");
    let mut referenced = BTreeSet::from([0u32]);
    let series = request
        .timeseries
        .iter()
        .map(|ts| {
            let refs = &ts.labels_refs;
            assert!(refs.len() % 2 == 0 && !refs.is_empty(), "{refs:?}");
            assert!(
                refs.iter().all(|&r| (r as usize) < symbols.len()),
                "{refs:?}"
            );
            referenced.extend(refs.iter().copied());
            let pairs: Vec<(String, String)> = refs
                .chunks(2)
                .map(|p| {
                    (
                        symbols[p[0] as usize].clone(),
                        symbols[p[1] as usize].clone(),
                    )
                })
                .collect();
            assert!(
                pairs.windows(2).all(|w| w[0].0 < w[1].0),
                "names sorted and unique: {pairs:?}"
            );
            assert!(pairs.iter().all(|(n, v)| !n.is_empty() && !v.is_empty()));
            assert!(ts.histograms.is_empty() && ts.exemplars.is_empty());
            let metadata = ts.metadata.as_ref().expect("metadata");
            referenced.insert(metadata.help_ref);
            referenced.insert(metadata.unit_ref);
            let labels: Labels = pairs.into_iter().collect();
            assert!(labels.contains_key("__name__"), "{labels:?}");
            (labels, ts)
        })
        .collect();
    assert_eq!(
        referenced.len(),
        symbols.len(),
        "every symbol sent is referenced"
    );
    series
}

fn decode_v2(proto: &[u8]) -> V2Request {
    V2Request::decode(proto).expect("a valid io.prometheus.write.v2.Request")
}

#[test]
fn a_2_0_request_decodes_independently_to_the_1_0_series_with_metadata() {
    use fleetsim::exposition::Family;
    let (time_ms, v1, v2) = both_encodings();
    assert!(v2.len() > 1, "split into several requests");
    let mut expected = BTreeMap::new();
    for (proto, _) in &v1 {
        for s in decode_write_request(proto) {
            expected.insert(s.labels.into_iter().collect::<Labels>(), s.samples[0].0);
        }
    }
    // Each family's series, by name, with the metadata type 2.0 gives them.
    let mut family_of = BTreeMap::new();
    for f in Family::ALL {
        if f == Family::RequestDuration {
            for part in ["_bucket", "_sum", "_count"] {
                family_of.insert(format!("{}{part}", f.name()), f);
            }
        } else {
            family_of.insert(f.name().to_string(), f);
        }
    }
    let mut got = BTreeMap::new();
    let mut created_by_server: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut incidents = 0;
    for (proto, count) in &v2 {
        let request = decode_v2(proto);
        assert_eq!(request.timeseries.len(), *count);
        for (labels, ts) in v2_series(&request) {
            assert_eq!(ts.samples.len(), 1, "{labels:?}");
            assert_eq!(ts.samples[0].timestamp, time_ms, "{labels:?}");
            let name = labels["__name__"].as_str();
            let family = family_of[name];
            let metadata = ts.metadata.as_ref().unwrap();
            let kind = match family.kind().name() {
                "counter" => 1,
                "gauge" => 2,
                "histogram" => 3,
                k => panic!("{k}"),
            };
            assert_eq!(metadata.r#type, kind, "{labels:?}");
            assert_eq!(request.symbols[metadata.help_ref as usize], family.help());
            assert_eq!(metadata.unit_ref, 0);
            if kind == 2 {
                assert_eq!(ts.created_timestamp, 0, "a gauge has no created time");
            } else {
                let created = ts.created_timestamp;
                assert!(created > 0 && created <= time_ms, "{labels:?}: {created}");
                let server = labels["server"].clone();
                created_by_server.entry(server).or_default().insert(created);
            }
            if name == "fleetsim_incident_active" {
                incidents += 1;
            }
            let value = ts.samples[0].value;
            assert!(got.insert(labels, value).is_none(), "a series twice");
        }
        // A 1.x receiver, which reads the body as a `WriteRequest`, finds no series.
        let as_v1 = V1Request::decode(proto.as_slice()).unwrap();
        assert!(as_v1.timeseries.is_empty());
    }
    assert!(incidents >= 2, "{incidents} incident series");
    assert_eq!(got.len(), expected.len());
    for (labels, value) in &expected {
        let v = got
            .get(labels)
            .unwrap_or_else(|| panic!("missing {labels:?}"));
        assert!(v == value || (v.is_nan() && value.is_nan()), "{labels:?}");
    }
    // A server's counters all started together: one created time per server.
    assert!(!created_by_server.is_empty());
    for (server, times) in &created_by_server {
        assert_eq!(times.len(), 1, "{server}: {times:?}");
    }
}

fn v2_exporter(url: &str, servers: &str, interval: &str) -> Exporter {
    Exporter::start(&[
        "--servers",
        servers,
        "--remote-write",
        url,
        "--remote-write-interval",
        interval,
        "--remote-write-protocol",
        "2.0",
    ])
}

#[test]
fn a_2_0_push_sends_its_headers_retries_5xx_and_counts_what_was_written() {
    let receiver = FakeReceiver::start_v2(|n| match n {
        0 => (503, "busy"),
        _ => (204, ""),
    });
    let exporter = v2_exporter(&receiver.url(), "5", "3s");
    assert!(receiver.wait_for(2, Duration::from_secs(10)));
    let all = receiver.received.lock().unwrap();
    let gap = all[1].at - all[0].at;
    assert!(
        gap >= Duration::from_millis(200) && gap < Duration::from_secs(3),
        "{gap:?}"
    );
    assert_eq!(all[0].body, all[1].body, "the same request, retried");
    for r in all.iter() {
        assert_eq!(r.request_line, "POST /api/v1/write HTTP/1.1");
        assert_eq!(r.header("content-encoding"), Some("snappy"));
        assert_eq!(
            r.header("content-type"),
            Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")
        );
        assert_eq!(r.header("x-prometheus-remote-write-version"), Some("2.0.0"));
        let agent = format!("fleetsim/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(r.header("user-agent"), Some(agent.as_str()));
    }
    let proto = snap::raw::Decoder::new()
        .decompress_vec(&all[1].body)
        .unwrap();
    let request = decode_v2(&proto);
    let series = v2_series(&request);
    let up = series
        .iter()
        .filter(|(l, _)| l["__name__"] == "app_server_up")
        .count();
    assert_eq!(up, 5);
    drop(all);
    thread::sleep(Duration::from_millis(300));
    let code = |c: &str| {
        metric(
            &exporter,
            &format!("fleetsim_remote_write_requests_total{{code=\"{c}\"}}"),
        )
    };
    assert_eq!(code("503"), Some(1.0));
    assert!(code("204").unwrap() >= 1.0);
    // The samples the receiver said it wrote: its header, here every series sent.
    let written = metric(&exporter, "fleetsim_remote_write_samples_total").unwrap();
    assert!(written >= series.len() as f64, "{written}");
    let warned: Vec<String> = exporter
        .stderr
        .try_iter()
        .filter(|l| l.contains("WARN"))
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
}

#[test]
fn a_415_to_a_2_0_push_is_not_retried_and_names_the_fix() {
    let receiver = FakeReceiver::start(|_| (415, "unsupported content type"));
    let exporter = v2_exporter(&receiver.url(), "3", "1s");
    assert!(receiver.wait_for(3, Duration::from_secs(10)));
    let all = receiver.received.lock().unwrap();
    let stamps: Vec<i64> = all
        .iter()
        .map(|r| {
            let proto = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
            let request = decode_v2(&proto);
            request.timeseries[0].samples[0].timestamp
        })
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "a new batch each time: {stamps:?}"
    );
    for pair in all.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(800), "not retried: {gap:?}");
    }
    drop(all);
    let warned = exporter
        .stderr
        .try_iter()
        .find(|l| l.contains("WARN") && l.contains("415"))
        .expect("a warning naming the 415");
    assert!(warned.contains("--remote-write-protocol 1.0"), "{warned}");
    assert!(warned.contains("unsupported content type"), "{warned}");
}

#[test]
fn a_2_0_success_without_the_written_header_warns_once_and_counts_nothing() {
    let receiver = FakeReceiver::start(|_| (204, ""));
    let exporter = v2_exporter(&receiver.url(), "3", "1s");
    assert!(receiver.wait_for(3, Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(300));
    let warned: Vec<String> = exporter
        .stderr
        .try_iter()
        .filter(|l| l.contains("WARN"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("X-Prometheus-Remote-Write-Samples-Written")
            && warned[0].contains("--remote-write-protocol 1.0"),
        "{warned:?}"
    );
    assert_eq!(
        metric(&exporter, "fleetsim_remote_write_samples_total"),
        Some(0.0)
    );
}

#[test]
fn a_bad_protocol_is_a_usage_error_naming_the_flag() {
    for bad in ["3.0", "v2", ""] {
        let out = common::run(&[
            "exporter",
            "--listen",
            "127.0.0.1:0",
            "--remote-write",
            "http://h/x",
            "--remote-write-protocol",
            bad,
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{bad:?}: {stderr}");
        assert!(stderr.contains("--remote-write-protocol"), "{stderr}");
    }
    let help = common::run(&["exporter", "--help"]);
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("--remote-write-protocol"), "{help}");
}

#[test]
fn prometheus_protobuf_message_names_choose_the_protocol_too() {
    let dead = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    for (name, version) in [
        ("io.prometheus.write.v2.Request", "2.0"),
        ("prometheus.WriteRequest", "1.0"),
    ] {
        let exporter = Exporter::start(&[
            "--servers",
            "1",
            "--remote-write",
            &dead,
            "--remote-write-protocol",
            name,
        ]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let started = loop {
            let line = exporter
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the pusher's first log line");
            if line.contains("INFO remote write") {
                break line;
            }
        };
        assert!(
            started.contains(&format!("remote write {version} to")),
            "{started}"
        );
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

/// A real Prometheus that takes remote writes and scrapes nothing, and its write URL.
fn receiving_prometheus() -> (Prometheus, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .unwrap();
    let prometheus = Prometheus::start(dir, &["--web.enable-remote-write-receiver"]);
    let url = format!("http://{}/api/v1/write", prometheus.addr);
    (prometheus, url)
}

/// The exporter logged no warning about remote write (a rejected or failed push).
fn assert_no_remote_write_warnings(exporter: &Exporter) {
    let rejected: Vec<String> = exporter
        .stderr
        .try_iter()
        .filter(|l| l.contains("remote write") && l.contains("WARN"))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

#[test]
fn prometheus_receives_the_fleet_as_scraped() {
    let (prometheus, url) = receiving_prometheus();
    let exporter = Exporter::start(&[
        "--servers",
        "5",
        "--remote-write",
        &url,
        "--remote-write-interval",
        "1s",
    ]);
    check_receiver("prometheus", &exporter, &|q| prometheus.query(q));
    assert_no_remote_write_warnings(&exporter);
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
    assert_no_remote_write_warnings(&exporter);
}

/// Prometheus before 2.54 (as the one these tests run) speaks only 1.0. It reads a 2.0 body as a 1.0 `WriteRequest`
/// (the 2.0 message reserves 1.0's field numbers for this), finds no series, and answers
/// success without the written-samples header: fleetsim says so and stores nothing.
#[test]
fn a_1_0_only_prometheus_stores_nothing_of_a_2_0_push_and_the_log_names_the_fix() {
    let (prometheus, url) = receiving_prometheus();
    let exporter = v2_exporter(&url, "3", "1s");
    let answered = |c: &str| {
        metric(
            &exporter,
            &format!("fleetsim_remote_write_requests_total{{code=\"{c}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while answered("204") < 3.0 {
        assert!(Instant::now() < deadline, "no three pushes answered 204");
        thread::sleep(Duration::from_millis(200));
    }
    // Success, and not a series stored: a 1.0 push would be queryable by now.
    let stored = prometheus.query(r#"count({__name__=~".+"})"#);
    assert_eq!(stored["result"], serde_json::json!([]), "{stored}");
    assert_eq!(
        metric(&exporter, "fleetsim_remote_write_samples_total"),
        Some(0.0)
    );
    let warned: Vec<String> = exporter
        .stderr
        .try_iter()
        .filter(|l| l.contains("WARN"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("--remote-write-protocol 1.0"),
        "{warned:?}"
    );
}
