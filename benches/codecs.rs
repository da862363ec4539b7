//! The hand-written codecs against the libraries they stand in for, in one run, at 10,000
//! servers: a hand-written part stays only where it is at least 1.5 times faster on a hot
//! path (the scrape; a remote-write push every interval for every series).
//!
//! - `protobuf_exposition`: `exposition::encode_fleet_protobuf` against the same
//!   `io.prometheus.client.MetricFamily` messages built as `prost` structs from the frame
//!   and encoded by `prost`;
//! - `remote_write_1`: `remote_write::write_requests` against `prost` `WriteRequest`s of
//!   the same series, chunked the same (snappy left out of both);
//! - `remote_write_2`: `remote_write::v2::write_requests` against `prost` 2.0 `Request`s
//!   of the same series, each with its own symbols interned in order of first use;
//! - `gzip`: the scrape's gzip (the line deflater, on one thread) against `flate2`
//!   (zlib-rs) at levels 1 and 6, on the same text pieces; the sizes are printed.
//!
//! Each protobuf group also times `prost_encode_only`: prost encoding structs built once,
//! the least a library-based encoder could cost.
//!
//! Each pair is checked in the setup to give the same bytes, or the same messages where
//! the wire legitimately differs, so that both sides do the same work.
//!
//! `cargo bench --bench codecs`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetsim::exposition::{
    self, BUCKET_COUNT, Extra, Family, FleetLabels, Kind, NATIVE_SCHEMA, Part, STATUSES,
    SeriesSink, TextFormat, native_counts, native_first_index, visit_family,
};
use fleetsim::gzip as body;
use fleetsim::model::server::LATENCY_BUCKETS;
use fleetsim::model::{FleetParams, FleetSpec, Frame, Member, members};
use fleetsim::remote_write::{self, SeriesLabels, SeriesSymbols};
use prost::Message;

const SERVERS: u32 = 10_000;
/// 2026-11-24T12:00:00Z, on the model's grid.
const T0: i64 = 1_795_521_600_000;

fn frame() -> (Frame, Vec<Member>) {
    let params = FleetParams::default();
    let mut tl = FleetSpec::new(&params, 1, members(&params, SERVERS, 0..SERVERS)).timeline(T0);
    let frame = tl.at(T0);
    (frame, tl.members().to_vec())
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group
}

// ------------------------------------------------------------ client_model, as prost

// `io.prometheus.client` from prometheus/client_model's metrics.proto (proto2: a field set
// to its default is still sent, hence the options), the fields fleetsim writes.

#[derive(Clone, PartialEq, prost::Message)]
struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Value>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPair {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// `Gauge` and `Counter`.
#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(double, optional, tag = "1")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    zero_threshold: Option<f64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "true", tag = "13")]
    positive_delta: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    upper_bound: Option<f64>,
    #[prost(double, optional, tag = "4")]
    cumulative_count_float: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    length: Option<u32>,
}

const COUNTER: i32 = 0;
const GAUGE: i32 = 1;
const HISTOGRAM: i32 = 4;

/// 2^-128, as the exposition's native histograms have it.
const NATIVE_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

fn label(name: &str, value: &str) -> LabelPair {
    LabelPair {
        name: Some(name.to_string()),
        value: Some(value.to_string()),
    }
}

/// Each server's `LabelPair`s, made once, as a library-based encoder would cache them.
fn server_label_pairs(members: &[Member]) -> Vec<Vec<LabelPair>> {
    members
        .iter()
        .map(|m| {
            vec![
                label("server", &m.name),
                label("dc", &m.dc),
                label("role", m.role.name()),
            ]
        })
        .collect()
}

/// The walk's series as prost `Metric`s of the family being written.
struct ProstMetrics<'a> {
    servers: &'a [Vec<LabelPair>],
    metrics: Vec<Metric>,
    cumulative: [f64; BUCKET_COUNT],
    sum: f64,
    native: Vec<u64>,
}

impl ProstMetrics<'_> {
    fn histogram(&mut self) -> Histogram {
        native_counts(&self.cumulative, &mut self.native);
        let sample_count = self.native.iter().fold(0u64, |a, &n| a.saturating_add(n));
        let bucket = self
            .cumulative
            .iter()
            .enumerate()
            .map(|(b, &cum)| Bucket {
                cumulative_count: Some(cum.floor() as u64),
                upper_bound: Some(LATENCY_BUCKETS.get(b).copied().unwrap_or(f64::INFINITY)),
                cumulative_count_float: Some(cum),
            })
            .collect();
        let lead = self.native.iter().position(|&n| n > 0);
        let trail = self.native.iter().rposition(|&n| n > 0);
        let (span, positive_delta) = match (lead, trail) {
            (Some(lead), Some(trail)) => {
                let buckets = &self.native[lead..=trail];
                let mut previous = 0u64;
                let deltas = buckets
                    .iter()
                    .map(|&n| {
                        let d = (n as i64).wrapping_sub(previous as i64);
                        previous = n;
                        d
                    })
                    .collect();
                let span = BucketSpan {
                    offset: Some(native_first_index() + lead as i32),
                    length: Some(buckets.len() as u32),
                };
                (span, deltas)
            }
            _ => (BucketSpan::default(), Vec::new()),
        };
        Histogram {
            sample_count: Some(sample_count),
            sample_sum: Some(self.sum),
            bucket,
            schema: Some(NATIVE_SCHEMA),
            zero_threshold: Some(NATIVE_ZERO_THRESHOLD),
            positive_span: vec![span],
            positive_delta,
        }
    }
}

fn value_metric(label: Vec<LabelPair>, counter: bool, value: f64) -> Metric {
    let value = Some(Value { value: Some(value) });
    let (gauge, counter) = if counter {
        (None, value)
    } else {
        (value, None)
    };
    Metric {
        label,
        gauge,
        counter,
        histogram: None,
    }
}

impl SeriesSink for ProstMetrics<'_> {
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        match part {
            Part::Value => {
                let mut labels = self.servers[server].clone();
                if let Extra::Status(class) = extra {
                    labels.push(label("status", STATUSES[class]));
                }
                let counter = family.kind() == Kind::Counter;
                self.metrics.push(value_metric(labels, counter, value));
            }
            Part::Bucket => {
                if let Extra::Le(b) = extra
                    && let Some(slot) = self.cumulative.get_mut(b)
                {
                    *slot = value;
                }
            }
            Part::Sum => self.sum = value,
            Part::Count => {
                let histogram = Some(self.histogram());
                self.metrics.push(Metric {
                    label: self.servers[server].clone(),
                    histogram,
                    ..Metric::default()
                });
            }
            Part::Created => {}
        }
    }

    fn incident_series(&mut self, _family: Family, kind: &str, target: &str, value: f64) {
        let labels = vec![label("kind", kind), label("target", target)];
        self.metrics.push(value_metric(labels, false, value));
    }
}

/// The protobuf exposition the library way: the frame's families as prost structs, each
/// encoded delimited.
fn prost_exposition(out: &mut Vec<u8>, frame: &Frame, servers: &[Vec<LabelPair>]) {
    let mut sink = ProstMetrics {
        servers,
        metrics: Vec::new(),
        cumulative: [0.0; BUCKET_COUNT],
        sum: 0.0,
        native: Vec::new(),
    };
    for family in Family::ALL {
        visit_family(&mut sink, family, frame, false);
        let kind = match family.kind() {
            Kind::Counter => COUNTER,
            Kind::Histogram => HISTOGRAM,
            Kind::Gauge => GAUGE,
        };
        let message = MetricFamily {
            name: Some(family.name().to_string()),
            help: Some(family.help().to_string()),
            r#type: Some(kind),
            metric: std::mem::take(&mut sink.metrics),
        };
        message.encode_length_delimited(out).expect("a Vec grows");
    }
    let time = MetricFamily {
        name: Some("fleetsim_model_time_seconds".to_string()),
        help: Some("Instant the fleet's values are for, unix seconds.".to_string()),
        r#type: Some(GAUGE),
        metric: vec![value_metric(
            Vec::new(),
            false,
            frame.time_ms as f64 / 1000.0,
        )],
    };
    time.encode_length_delimited(out).expect("a Vec grows");
}

fn decode_families(mut bytes: &[u8]) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    while !bytes.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut bytes).expect("valid protobuf"));
    }
    families
}

fn protobuf_exposition(c: &mut Criterion) {
    let (frame, members) = frame();
    let labels = FleetLabels::new(&members);
    let servers = server_label_pairs(&members);
    let mut hand = Vec::new();
    exposition::encode_fleet_protobuf(&mut hand, &frame, &labels);
    let mut library = Vec::new();
    prost_exposition(&mut library, &frame, &servers);
    if hand == library {
        eprintln!("protobuf_exposition: byte-identical, {} bytes", hand.len());
    } else {
        assert_eq!(
            decode_families(&hand),
            decode_families(&library),
            "the two encoders disagree"
        );
        eprintln!(
            "protobuf_exposition: equal messages, {} bytes by hand, {} by prost",
            hand.len(),
            library.len()
        );
    }
    let bytes = hand.len();
    let mut group = group(c, "protobuf_exposition");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("hand_written", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(bytes + bytes / 8);
            exposition::encode_fleet_protobuf(&mut out, black_box(&frame), &labels);
            black_box(out.len())
        })
    });
    group.bench_function("prost", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(bytes + bytes / 8);
            prost_exposition(&mut out, black_box(&frame), &servers);
            black_box(out.len())
        })
    });
    // prost's encoding alone, of structs built once: the least a library-based encoder
    // could cost, had it a way to keep its structs from one scrape to the next.
    let families = decode_families(&hand);
    group.bench_function("prost_encode_only", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(bytes + bytes / 8);
            for family in black_box(&families) {
                family
                    .encode_length_delimited(&mut out)
                    .expect("a Vec grows");
            }
            black_box(out.len())
        })
    });
    group.finish();
}

// ------------------------------------------------------------ remote write 1.0, as prost

// `prometheus.WriteRequest` from prometheus/prometheus's prompb/types.proto (proto3: a
// zero value is left out, where the hand-written encoder writes it).

#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

fn rw_label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// Each server's labels in name order, cut where `le` and `status` go: `[dc]`, `[role,
/// server]` (no constant labels in this bench).
struct RwServer {
    dc: Label,
    role: Label,
    server: Label,
}

struct RwNames {
    families: Vec<Label>,
    bucket: Label,
    sum: Label,
    count: Label,
    le: Vec<Label>,
    status: Vec<Label>,
}

/// The walk's series as prost `TimeSeries`, in requests of at most `max_series`.
struct ProstRequests<'a> {
    servers: &'a [RwServer],
    names: &'a RwNames,
    timestamp_ms: i64,
    max_series: usize,
    current: Vec<TimeSeries>,
    done: Vec<(Vec<u8>, usize)>,
}

impl ProstRequests<'_> {
    fn push(&mut self, labels: Vec<Label>, value: f64) {
        if self.current.len() == self.max_series {
            self.flush();
        }
        self.current.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value,
                timestamp: self.timestamp_ms,
            }],
        });
    }

    fn flush(&mut self) {
        let request = WriteRequest {
            timeseries: std::mem::take(&mut self.current),
        };
        let series = request.timeseries.len();
        self.done.push((request.encode_to_vec(), series));
    }
}

impl SeriesSink for ProstRequests<'_> {
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        let names = self.names;
        let name = match part {
            Part::Value => &names.families[family as usize],
            Part::Bucket => &names.bucket,
            Part::Sum => &names.sum,
            Part::Count => &names.count,
            Part::Created => return,
        };
        let s = &self.servers[server];
        let mut labels = Vec::with_capacity(6);
        labels.push(name.clone());
        labels.push(s.dc.clone());
        if let Extra::Le(b) = extra {
            labels.push(names.le[b].clone());
        }
        labels.push(s.role.clone());
        labels.push(s.server.clone());
        if let Extra::Status(class) = extra {
            labels.push(names.status[class].clone());
        }
        self.push(labels, value);
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        let labels = vec![
            self.names.families[family as usize].clone(),
            rw_label("kind", kind),
            rw_label("target", target),
        ];
        self.push(labels, value);
    }
}

fn prost_write_requests(
    frame: &Frame,
    servers: &[RwServer],
    names: &RwNames,
    max_series: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut sink = ProstRequests {
        servers,
        names,
        timestamp_ms: frame.time_ms,
        max_series,
        current: Vec::new(),
        done: Vec::new(),
    };
    for family in Family::ALL {
        visit_family(&mut sink, family, frame, false);
    }
    if !sink.current.is_empty() {
        sink.flush();
    }
    sink.done
}

fn remote_write_1(c: &mut Criterion) {
    let (frame, members) = frame();
    let labels = SeriesLabels::new(&members);
    let servers: Vec<RwServer> = members
        .iter()
        .map(|m| RwServer {
            dc: rw_label("dc", &m.dc),
            role: rw_label("role", m.role.name()),
            server: rw_label("server", &m.name),
        })
        .collect();
    let names = RwNames {
        families: Family::ALL
            .iter()
            .map(|f| rw_label("__name__", f.name()))
            .collect(),
        bucket: rw_label("__name__", "app_request_duration_seconds_bucket"),
        sum: rw_label("__name__", "app_request_duration_seconds_sum"),
        count: rw_label("__name__", "app_request_duration_seconds_count"),
        le: exposition::bucket_bounds()
            .map(|le| rw_label("le", &le))
            .collect(),
        status: STATUSES.iter().map(|s| rw_label("status", s)).collect(),
    };
    let max = remote_write::MAX_SERIES_PER_REQUEST;
    bench_requests::<WriteRequest>(
        c,
        "remote_write_1",
        || remote_write::write_requests(black_box(&frame), &labels, max),
        || prost_write_requests(black_box(&frame), &servers, &names, max),
    );
}

/// Checks that the hand-written requests and the library's carry equal messages, then
/// benches both, and prost's encoding alone of structs built once (a lower bound for any
/// library encoder, whose structs change with every frame).
fn bench_requests<M: prost::Message + Default + PartialEq>(
    c: &mut Criterion,
    name: &str,
    hand_written: impl Fn() -> Vec<(Vec<u8>, usize)>,
    library: impl Fn() -> Vec<(Vec<u8>, usize)>,
) {
    let decode = |bytes: &[u8]| M::decode(bytes).expect("valid protobuf");
    let hand = hand_written();
    let lib = library();
    assert_eq!(hand.len(), lib.len(), "as many requests");
    let mut identical = true;
    for ((h, hn), (l, ln)) in hand.iter().zip(&lib) {
        assert_eq!(hn, ln, "as many series in each request");
        if h != l {
            identical = false;
            assert!(decode(h) == decode(l), "the two encoders disagree");
        }
    }
    let bytes: usize = hand.iter().map(|(r, _)| r.len()).sum();
    let series: usize = hand.iter().map(|(_, n)| n).sum();
    let library_bytes: usize = lib.iter().map(|(r, _)| r.len()).sum();
    eprintln!(
        "{name}: {} requests, {series} series, {bytes} bytes by hand, {library_bytes} by prost ({})",
        hand.len(),
        if identical {
            "byte-identical"
        } else {
            "equal messages; proto3 leaves zero values out"
        }
    );
    let mut group = group(c, name);
    group.throughput(Throughput::Elements(series as u64));
    group.bench_function("hand_written", |b| b.iter(|| black_box(hand_written())));
    group.bench_function("prost", |b| b.iter(|| black_box(library())));
    let structs: Vec<M> = hand.iter().map(|(r, _)| decode(r)).collect();
    group.bench_function("prost_encode_only", |b| {
        b.iter(|| {
            let encoded: Vec<Vec<u8>> = black_box(&structs)
                .iter()
                .map(|r| r.encode_to_vec())
                .collect();
            black_box(encoded)
        })
    });
    group.finish();
}

// ------------------------------------------------------------ remote write 2.0, as prost

// `io.prometheus.write.v2.Request` from prometheus/prometheus's
// prompb/io/prometheus/write/v2/types.proto (proto3), the fields fleetsim sends.

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
    samples: Vec<Sample>,
    #[prost(message, optional, tag = "5")]
    metadata: Option<V2Metadata>,
    #[prost(int64, tag = "6")]
    created_timestamp: i64,
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

/// A request's symbols, each string once in order of first use, `""` first: as a sender
/// built on prost structs would intern them.
struct Symbols {
    strings: Vec<String>,
    index: std::collections::HashMap<String, u32>,
}

impl Symbols {
    fn new() -> Symbols {
        let mut symbols = Symbols {
            strings: Vec::new(),
            index: std::collections::HashMap::new(),
        };
        symbols.intern("");
        symbols
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// One series waiting for its counter's or histogram's created time.
struct V2Pending {
    family: Family,
    server: usize,
    part: Part,
    extra: Extra,
    value: f64,
}

/// The walk's series as prost 2.0 `TimeSeries`, in requests of at most `max_series`.
struct ProstV2<'a> {
    members: &'a [Member],
    le: &'a [String],
    timestamp_ms: i64,
    max_series: usize,
    symbols: Symbols,
    current: Vec<V2Series>,
    pending: Vec<V2Pending>,
    done: Vec<(Vec<u8>, usize)>,
}

fn v2_type(family: Family) -> i32 {
    match family.kind() {
        Kind::Counter => 1,
        Kind::Gauge => 2,
        Kind::Histogram => 3,
    }
}

fn v2_created_ms(seconds: f64) -> i64 {
    if !seconds.is_finite() || seconds < 0.0 {
        return 0;
    }
    ((seconds * 1000.0).round() as i64).max(1)
}

impl ProstV2<'_> {
    fn push(&mut self, labels: &[(&str, &str)], family: Family, value: f64, created: i64) {
        if self.current.len() == self.max_series {
            self.flush();
        }
        let mut labels_refs = Vec::with_capacity(2 * labels.len());
        for (name, value) in labels {
            labels_refs.push(self.symbols.intern(name));
            labels_refs.push(self.symbols.intern(value));
        }
        let help_ref = self.symbols.intern(family.help());
        self.current.push(V2Series {
            labels_refs,
            samples: vec![Sample {
                value,
                timestamp: self.timestamp_ms,
            }],
            metadata: Some(V2Metadata {
                r#type: v2_type(family),
                help_ref,
                unit_ref: 0,
            }),
            created_timestamp: created,
        });
    }

    fn write(&mut self, p: V2Pending, created: i64) {
        let name = match p.part {
            Part::Value => p.family.name(),
            Part::Bucket => "app_request_duration_seconds_bucket",
            Part::Sum => "app_request_duration_seconds_sum",
            Part::Count => "app_request_duration_seconds_count",
            Part::Created => return,
        };
        let (members, le) = (self.members, self.le);
        let m = &members[p.server];
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(6);
        labels.push(("__name__", name));
        labels.push(("dc", &m.dc));
        if let Extra::Le(b) = p.extra {
            labels.push(("le", &le[b]));
        }
        labels.push(("role", m.role.name()));
        labels.push(("server", &m.name));
        if let Extra::Status(class) = p.extra {
            labels.push(("status", STATUSES[class]));
        }
        self.push(&labels, p.family, p.value, created);
    }

    fn flush(&mut self) {
        let request = V2Request {
            symbols: std::mem::replace(&mut self.symbols, Symbols::new()).strings,
            timeseries: std::mem::take(&mut self.current),
        };
        let series = request.timeseries.len();
        self.done.push((request.encode_to_vec(), series));
    }
}

impl SeriesSink for ProstV2<'_> {
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        let p = V2Pending {
            family,
            server,
            part,
            extra,
            value,
        };
        match part {
            Part::Created => {
                let created = v2_created_ms(value);
                for p in std::mem::take(&mut self.pending) {
                    self.write(p, created);
                }
            }
            _ if family.created_name().is_some() => self.pending.push(p),
            _ => self.write(p, 0),
        }
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        let labels = [
            ("__name__", family.name()),
            ("kind", kind),
            ("target", target),
        ];
        self.push(&labels, family, value, 0);
    }
}

fn prost_v2_requests(
    frame: &Frame,
    members: &[Member],
    le: &[String],
    max_series: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut sink = ProstV2 {
        members,
        le,
        timestamp_ms: frame.time_ms,
        max_series,
        symbols: Symbols::new(),
        current: Vec::new(),
        pending: Vec::new(),
        done: Vec::new(),
    };
    for family in Family::ALL {
        visit_family(&mut sink, family, frame, true);
        for p in std::mem::take(&mut sink.pending) {
            sink.write(p, 0);
        }
    }
    if !sink.current.is_empty() {
        sink.flush();
    }
    sink.done
}

fn remote_write_2(c: &mut Criterion) {
    let (frame, members) = frame();
    let symbols = SeriesSymbols::new(&members);
    let le: Vec<String> = exposition::bucket_bounds().collect();
    let max = remote_write::MAX_SERIES_PER_REQUEST;
    bench_requests::<V2Request>(
        c,
        "remote_write_2",
        || remote_write::v2::write_requests(black_box(&frame), &symbols, max),
        || prost_v2_requests(black_box(&frame), &members, &le, max),
    );
}

// ------------------------------------------------------------ gzip of the text scrape

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut text)
        .expect("valid gzip");
    text
}

/// `flate2` on the same pieces, each copied into a buffer first as the scrape's encoder
/// would write it (the line deflater's side copies them too).
fn flate2_gzip(pieces: &[Vec<u8>], level: flate2::Compression) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(8 << 20), level);
    let mut piece = Vec::new();
    for p in pieces {
        piece.clear();
        piece.extend_from_slice(p);
        gz.write_all(&piece).expect("a Vec grows");
    }
    gz.finish().expect("a Vec grows")
}

fn line_deflater_gzip(weights: &[usize], encode: &body::EncodePiece) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 << 20);
    body::stream_gzip(weights, 1, encode, &mut |chunk| {
        out.extend_from_slice(&chunk);
        true
    });
    out
}

fn gzip(c: &mut Criterion) {
    let (frame, members) = frame();
    let labels = FleetLabels::new(&members);
    let cut = exposition::pieces(frame.len(), 4096);
    let pieces: Vec<Vec<u8>> = cut
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            exposition::encode_piece(&mut out, p, &frame, &labels, TextFormat::Text);
            out
        })
        .collect();
    let weights: Vec<usize> = cut.iter().map(|p| p.series()).collect();
    let text: Vec<u8> = pieces.concat();
    let encode = |k: usize, out: &mut Vec<u8>| out.extend_from_slice(&pieces[k]);
    let levels = [
        ("flate2_fast", flate2::Compression::fast()),
        ("flate2_6", flate2::Compression::new(6)),
    ];
    let lines = line_deflater_gzip(&weights, &encode);
    assert!(
        gunzip(&lines) == text,
        "the line deflater's gzip reads back"
    );
    eprintln!(
        "gzip: {} bytes of text; line deflater {} bytes",
        text.len(),
        lines.len()
    );
    for (name, level) in levels {
        let zipped = flate2_gzip(&pieces, level);
        assert!(gunzip(&zipped) == text, "{name}'s gzip reads back");
        eprintln!("gzip: {name} {} bytes", zipped.len());
    }
    let mut group = group(c, "gzip");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("line_deflater", |b| {
        b.iter(|| black_box(line_deflater_gzip(&weights, &encode).len()))
    });
    for (name, level) in levels {
        group.bench_function(name, |b| {
            b.iter(|| black_box(flate2_gzip(black_box(&pieces), level).len()))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    protobuf_exposition,
    remote_write_1,
    remote_write_2,
    gzip
);
criterion_main!(benches);
