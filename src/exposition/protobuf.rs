//! The protobuf exposition: varint-delimited `io.prometheus.client.MetricFamily` messages
//! (client_model's `metrics.proto`), written by hand from the same series walk as the text
//! formats.
//!
//! Prometheus 2.x reads native histograms only from this format, so this is what a
//! Prometheus with `--enable-feature=native-histograms` asks for. The request-duration
//! histogram carries both forms: its classic buckets, exactly the text exposition's, and a
//! native (exponential) form derived from them at encode time (see [`NATIVE_SCHEMA`]).
//!
//! ```proto
//! message MetricFamily { string name = 1; string help = 2; MetricType type = 3;
//!                        repeated Metric metric = 4; }
//! message Metric       { repeated LabelPair label = 1; Gauge gauge = 2;
//!                        Counter counter = 3; Histogram histogram = 7; }
//! message Gauge        { double value = 1; }          // Counter too
//! message Histogram    { uint64 sample_count = 1; double sample_sum = 2;
//!                        repeated Bucket bucket = 3; sint32 schema = 5;
//!                        double zero_threshold = 6; uint64 zero_count = 7;
//!                        repeated BucketSpan positive_span = 12;
//!                        repeated sint64 positive_delta = 13; }
//! message Bucket       { uint64 cumulative_count = 1; double upper_bound = 2;
//!                        double cumulative_count_float = 4; }
//! message BucketSpan   { sint32 offset = 1; uint32 length = 2; }
//! ```

use std::sync::OnceLock;

use crate::model::Frame;
use crate::model::server::LATENCY_BUCKETS;
use crate::protobuf::{
    FIXED64, LEN, VARINT, encode_label, put_bytes, put_double, put_varint, tag, varint_len, zigzag,
};

use super::series::{
    BUCKET_COUNT, Extra, Family, HistogramSample, Kind, Part, STATUSES, SeriesSink, visit_family,
};
use super::text::FleetLabels;

pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

const FAMILY_NAME: u8 = tag(1, LEN);
const FAMILY_HELP: u8 = tag(2, LEN);
const FAMILY_TYPE: u8 = tag(3, VARINT);
const FAMILY_METRIC: u8 = tag(4, LEN);

const METRIC_GAUGE: u8 = tag(2, LEN);
const METRIC_COUNTER: u8 = tag(3, LEN);
const METRIC_HISTOGRAM: u8 = tag(7, LEN);

/// `Gauge.value` and `Counter.value`.
const VALUE: u8 = tag(1, FIXED64);

const SAMPLE_COUNT: u8 = tag(1, VARINT);
const SAMPLE_SUM: u8 = tag(2, FIXED64);
const BUCKET: u8 = tag(3, LEN);
const SCHEMA: u8 = tag(5, VARINT);
const ZERO_THRESHOLD: u8 = tag(6, FIXED64);
const POSITIVE_SPAN: u8 = tag(12, LEN);
const POSITIVE_DELTA: u8 = tag(13, LEN);

const CUMULATIVE_COUNT: u8 = tag(1, VARINT);
const UPPER_BOUND: u8 = tag(2, FIXED64);
const CUMULATIVE_COUNT_FLOAT: u8 = tag(4, FIXED64);

const SPAN_OFFSET: u8 = tag(1, VARINT);
const SPAN_LENGTH: u8 = tag(2, VARINT);

/// `MetricType` values.
const COUNTER: u64 = 0;
const GAUGE: u64 = 1;
const HISTOGRAM: u64 = 4;

/// The native histogram's schema: 2^3 = 8 buckets per doubling, each about 9% wide.
///
/// The native buckets hold no information the classic ones lack (they are a fixed split
/// of them), so finer buckets buy no accuracy; what the schema decides is how far a native
/// bucket can straddle a classic bound (0.005, 0.025, 2.5 are no powers of two), which is
/// how far a native quantile can stray past the classic bucket its rank falls in. Schema 3
/// keeps that under 9% (schema 2: 19%) for about 105 buckets a server, a few hundred bytes;
/// it is also what client libraries pick for their usual bucket factor of 1.1, so
/// dashboards see the resolution they would see from an instrumented service. Higher
/// schemas would double the buckets, and the counts lost to flooring each one, for
/// nothing.
pub const NATIVE_SCHEMA: i32 = 3;

/// Breadth of the zero bucket. The model's durations are log-normal, never zero, so the
/// bucket stays empty; the threshold is positive only because that is what tells every
/// Prometheus version the histogram is native, even before its first request (an empty
/// histogram without it reads as a classic one). 2^-128, client libraries' default.
const NATIVE_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// How the classic buckets' counts are spread over native buckets.
struct NativeLayout {
    /// The index of the first native bucket: its upper bound is 2^(first / 2^schema).
    first: i32,
    /// Per native bucket, from `first` on: the classic buckets it takes a share of, and
    /// the share of each classic bucket's (non-cumulative) count.
    shares: Vec<Vec<(usize, f64)>>,
}

/// Each classic bucket's count is spread log-uniformly over its range: a native bucket
/// gets the fraction of the classic bucket's width, in log space, that it covers.
///
/// The model's durations are log-normal, a bell in log space; knowing only how many fell
/// in each classic bucket, a flat density in log space within each is the split that
/// invents no shape the classic counts cannot support, and it keeps every native
/// quantile inside the classic bucket its rank falls in (up to the one native bucket
/// that straddles each classic bound). The shares are fixed, so each native bucket is a
/// fixed non-negative mix of classic buckets' counts and grows when they grow.
///
/// The open ends get one octave each, (2.5 ms, 5 ms] and (10 s, 20 s]: the classic
/// histogram answers no more precisely there (interpolating from 0 in the first, the
/// largest finite bound for the last), and a native quantile then stays within a factor
/// of two of those edges.
fn native_layout() -> &'static NativeLayout {
    static LAYOUT: OnceLock<NativeLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let per_octave = f64::from(1u32 << NATIVE_SCHEMA);
        // A duration's place on the native buckets' scale: bucket i covers (i - 1, i].
        let position = |seconds: f64| libm::log2(seconds) * per_octave;
        let lowest = LATENCY_BUCKETS[0] / 2.0;
        let highest = LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] * 2.0;
        // Classic bucket c covers (edges[c], edges[c + 1]].
        let edges: Vec<f64> = std::iter::once(lowest)
            .chain(LATENCY_BUCKETS)
            .chain(std::iter::once(highest))
            .map(position)
            .collect();
        let first = edges[0].floor() as i32 + 1;
        let last = edges[BUCKET_COUNT].ceil() as i32;
        let shares = (first..=last)
            .map(|i| {
                let (lo, hi) = (f64::from(i - 1), f64::from(i));
                (0..BUCKET_COUNT)
                    .filter_map(|c| {
                        let (from, to) = (edges[c], edges[c + 1]);
                        let overlap = hi.min(to) - lo.max(from);
                        (overlap > 0.0).then(|| (c, overlap / (to - from)))
                    })
                    .collect()
            })
            .collect();
        NativeLayout { first, shares }
    })
}

/// The index of the first native bucket [`native_counts`] gives: its upper bound is
/// 2^(index / 2^schema).
pub fn native_first_index() -> i32 {
    native_layout().first
}

/// The native buckets' counts (from `native_layout().first` on) of a histogram whose
/// classic cumulative counts are `cumulative` (`+Inf` last).
///
/// Each count is the floor of its own share of the classic counts, never a difference of
/// floors: the share grows whenever the classic buckets grow, so its floor never goes
/// down, and Prometheus, which takes any native bucket going down for a counter reset,
/// sees a reset only when the server restarts. The counts' sum is the histogram's count
/// as sent, up to one less per native bucket than the classic count; the classic buckets
/// keep the exact values.
///
/// A classic bucket's own count is the difference of two cumulative counters, which is
/// non-decreasing up to their rounding (an ulp of the count); a native bucket could step
/// down only if its share sat within that of a whole number just as its classic buckets
/// stopped filling.
pub fn native_counts(cumulative: &[f64; BUCKET_COUNT], out: &mut Vec<u64>) {
    let mut own = [0.0; BUCKET_COUNT];
    let mut below = 0.0;
    for (count, &cum) in own.iter_mut().zip(cumulative) {
        // NaN, or a cumulative count below the previous one, counts as nothing.
        *count = (cum - below).max(0.0);
        below = cum;
    }
    out.clear();
    out.extend(native_layout().shares.iter().map(|shares| {
        let share: f64 = shares.iter().map(|&(c, w)| w * own[c]).sum();
        // Saturating: NaN and negatives are 0, and no count wraps.
        share.floor() as u64
    }));
}

/// Turns the walk's series into `Metric` messages of the family being written.
struct MetricWriter<'a> {
    labels: &'a FleetLabels,
    statuses: [Vec<u8>; 3],
    /// The current family's `metric` entries, tags included.
    metrics: Vec<u8>,
    metric: Vec<u8>,
    histogram: Vec<u8>,
    scratch: Vec<u8>,
    native: Vec<u64>,
}

impl<'a> MetricWriter<'a> {
    fn new(labels: &'a FleetLabels) -> Self {
        MetricWriter {
            labels,
            statuses: STATUSES.map(|s| encode_label("status", s)),
            metrics: Vec::new(),
            metric: Vec::with_capacity(128),
            histogram: Vec::with_capacity(512),
            scratch: Vec::with_capacity(256),
            native: Vec::new(),
        }
    }

    /// One `Metric` of `labels` (encoded `Metric.label` entries) whose value is the
    /// message `body` in field `field`.
    fn push_metric(&mut self, labels: &[&[u8]], field: u8, body: &[u8]) {
        self.metric.clear();
        for l in labels {
            self.metric.extend_from_slice(l);
        }
        put_bytes(&mut self.metric, field, body);
        put_bytes(&mut self.metrics, FAMILY_METRIC, &self.metric);
    }

    fn push_value(&mut self, labels: &[&[u8]], field: u8, value: f64) {
        let mut body = [0u8; 9];
        body[0] = VALUE;
        body[1..].copy_from_slice(&value.to_le_bytes());
        self.push_metric(labels, field, &body);
    }

    /// Server `server`'s histogram, classic and native.
    fn push_histogram(&mut self, server: usize, sample: &HistogramSample) {
        native_counts(&sample.cumulative_exact, &mut self.native);
        let h = &mut self.histogram;
        h.clear();
        let native_count = self.native.iter().fold(0u64, |a, &n| a.saturating_add(n));
        h.push(SAMPLE_COUNT);
        put_varint(h, native_count);
        put_double(h, SAMPLE_SUM, sample.sum);
        for (b, &cum) in sample.cumulative.iter().enumerate() {
            let upper = LATENCY_BUCKETS.get(b).copied().unwrap_or(f64::INFINITY);
            let s = &mut self.scratch;
            s.clear();
            s.push(CUMULATIVE_COUNT);
            put_varint(s, cum as u64);
            put_double(s, UPPER_BOUND, upper);
            // The same whole count, as the text exposition has it; Prometheus prefers it
            // to the integer when it is positive.
            put_double(s, CUMULATIVE_COUNT_FLOAT, cum);
            put_bytes(h, BUCKET, s);
        }
        h.push(SCHEMA);
        put_varint(h, zigzag(i64::from(NATIVE_SCHEMA)));
        put_double(h, ZERO_THRESHOLD, NATIVE_ZERO_THRESHOLD);
        // One span over the buckets from the first to the last non-empty one.
        let lead = self.native.iter().position(|&n| n > 0);
        let trail = self.native.iter().rposition(|&n| n > 0);
        let (lead, buckets) = match (lead, trail) {
            (Some(lead), Some(trail)) => (lead, &self.native[lead..=trail]),
            _ => (0, &self.native[..0]),
        };
        let s = &mut self.scratch;
        s.clear();
        if !buckets.is_empty() {
            let offset = i64::from(native_layout().first) + lead as i64;
            s.push(SPAN_OFFSET);
            put_varint(s, zigzag(offset));
            s.push(SPAN_LENGTH);
            put_varint(s, buckets.len() as u64);
        }
        // An empty span (no observations yet) still marks the histogram as native for
        // parsers that look for spans.
        put_bytes(h, POSITIVE_SPAN, s);
        if !buckets.is_empty() {
            s.clear();
            let mut previous = 0u64;
            for &n in buckets {
                put_varint(s, zigzag((n as i64).wrapping_sub(previous as i64)));
                previous = n;
            }
            put_bytes(h, POSITIVE_DELTA, s);
        }
        let histogram = std::mem::take(&mut self.histogram);
        let labels = self.labels;
        self.push_metric(
            &[&labels.server(server).protobuf],
            METRIC_HISTOGRAM,
            &histogram,
        );
        self.histogram = histogram;
    }
}

/// The `Metric` field of a value of `kind`.
fn value_field(kind: Kind) -> u8 {
    match kind {
        Kind::Counter => METRIC_COUNTER,
        Kind::Gauge | Kind::Histogram => METRIC_GAUGE,
    }
}

/// The `MetricFamily.type` of `kind`.
fn metric_type(kind: Kind) -> u64 {
    match kind {
        Kind::Counter => COUNTER,
        Kind::Gauge => GAUGE,
        Kind::Histogram => HISTOGRAM,
    }
}

impl SeriesSink for MetricWriter<'_> {
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        // A histogram comes whole (`histogram_series`), and the protobuf format's created
        // timestamps are not read by Prometheus 2.x: only values are written here.
        if part != Part::Value {
            return;
        }
        let field = value_field(family.kind());
        let server_labels: &[u8] = &self.labels.server(server).protobuf;
        match extra {
            Extra::Status(class) => {
                let status = std::mem::take(&mut self.statuses[class]);
                self.push_value(&[server_labels, &status], field, value);
                self.statuses[class] = status;
            }
            _ => self.push_value(&[server_labels], field, value),
        }
    }

    fn histogram_series(&mut self, _family: Family, server: usize, h: &HistogramSample) {
        self.push_histogram(server, h);
    }

    fn incident_series(&mut self, _family: Family, kind: &str, target: &str, value: f64) {
        let kind = encode_label("kind", kind);
        let target = encode_label("target", target);
        let consts = self.labels.renderer().consts_protobuf();
        self.push_value(&[&kind, &target, &consts], METRIC_GAUGE, value);
    }
}

/// One delimited `MetricFamily`: its length, name, help and type, then `metrics` (encoded
/// `metric` entries), copied once.
fn put_family(out: &mut Vec<u8>, name: &str, help: &str, kind: u64, metrics: &[u8]) {
    let mut head = Vec::with_capacity(name.len() + help.len() + 8);
    put_bytes(&mut head, FAMILY_NAME, name.as_bytes());
    put_bytes(&mut head, FAMILY_HELP, help.as_bytes());
    head.push(FAMILY_TYPE);
    put_varint(&mut head, kind);
    let len = (head.len() + metrics.len()) as u64;
    out.reserve(varint_len(len) + len as usize);
    put_varint(out, len);
    out.extend_from_slice(&head);
    out.extend_from_slice(metrics);
}

/// Appends the fleet's series at `frame` to `out` as delimited `MetricFamily` messages,
/// then `fleetsim_model_time_seconds`, the instant they are for.
pub fn encode_fleet_protobuf(out: &mut Vec<u8>, frame: &Frame, labels: &FleetLabels) {
    let mut w = MetricWriter::new(labels);
    for family in Family::ALL {
        w.metrics.clear();
        visit_family(&mut w, family, frame, false);
        let kind = metric_type(family.kind());
        put_family(out, family.name(), family.help(), kind, &w.metrics);
    }
    w.metrics.clear();
    w.push_value(&[], METRIC_GAUGE, frame.time_ms as f64 / 1000.0);
    put_family(
        out,
        "fleetsim_model_time_seconds",
        "Instant the fleet's values are for, unix seconds.",
        GAUGE,
        &w.metrics,
    );
}

#[cfg(test)]
mod tests {
    //! The encoder's bytes read back by a decoder written here from `metrics.proto` alone
    //! (field numbers and wire types), and compared with the text exposition of the same
    //! frame.

    use std::collections::BTreeMap;

    use super::*;
    use crate::exposition::encode_fleet;
    use crate::model::{FleetParams, FleetSpec, Timeline, members};

    /// A field's value as the wire has it.
    #[derive(Debug, Clone)]
    enum Wire {
        Varint(u64),
        Fixed64([u8; 8]),
        Bytes(Vec<u8>),
    }

    impl Wire {
        fn varint(&self) -> u64 {
            match self {
                Wire::Varint(v) => *v,
                w => panic!("not a varint: {w:?}"),
            }
        }
        fn double(&self) -> f64 {
            match self {
                Wire::Fixed64(b) => f64::from_le_bytes(*b),
                w => panic!("not a 64-bit field: {w:?}"),
            }
        }
        fn bytes(&self) -> &[u8] {
            match self {
                Wire::Bytes(b) => b,
                w => panic!("not length-delimited: {w:?}"),
            }
        }
        fn text(&self) -> String {
            String::from_utf8(self.bytes().to_vec()).expect("UTF-8")
        }
    }

    fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = bytes[*at];
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint longer than 10 bytes");
    }

    /// A message's fields in wire order: (field number, value).
    fn decode(bytes: &[u8]) -> Vec<(u64, Wire)> {
        let mut at = 0;
        let mut fields = Vec::new();
        while at < bytes.len() {
            let key = read_varint(bytes, &mut at);
            let value = match key & 7 {
                0 => Wire::Varint(read_varint(bytes, &mut at)),
                1 => {
                    let b: [u8; 8] = bytes[at..at + 8].try_into().unwrap();
                    at += 8;
                    Wire::Fixed64(b)
                }
                2 => {
                    let len = read_varint(bytes, &mut at) as usize;
                    at += len;
                    Wire::Bytes(bytes[at - len..at].to_vec())
                }
                w => panic!("wire type {w} is not written by this format"),
            };
            fields.push((key >> 3, value));
        }
        assert_eq!(at, bytes.len(), "a field overran its message");
        fields
    }

    fn unzigzag(v: u64) -> i64 {
        (v >> 1) as i64 ^ -((v & 1) as i64)
    }

    #[derive(Debug, Default)]
    struct Histogram {
        count: u64,
        sum: f64,
        /// (upper bound, cumulative count, cumulative count as a float)
        buckets: Vec<(f64, u64, f64)>,
        schema: i64,
        zero_threshold: f64,
        zero_count: u64,
        spans: Vec<(i64, u64)>,
        deltas: Vec<i64>,
    }

    impl Histogram {
        /// The native buckets by index, their counts rebuilt from the deltas; panics if a
        /// running count goes negative or spans and deltas disagree.
        fn native(&self) -> BTreeMap<i64, u64> {
            let mut out = BTreeMap::new();
            // The first span's offset is its first index; a later one's, the gap after
            // the span before it.
            let (mut index, mut running, mut deltas) = (0i64, 0i64, self.deltas.iter());
            for &(offset, len) in &self.spans {
                index += offset;
                for _ in 0..len {
                    running += deltas.next().expect("a delta per bucket");
                    assert!(running >= 0, "negative native bucket count");
                    out.insert(index, running as u64);
                    index += 1;
                }
            }
            assert!(deltas.next().is_none(), "more deltas than buckets");
            out
        }
    }

    #[derive(Debug)]
    struct Metric {
        labels: BTreeMap<String, String>,
        gauge: Option<f64>,
        counter: Option<f64>,
        histogram: Option<Histogram>,
    }

    #[derive(Debug)]
    struct MetricFamily {
        name: String,
        help: String,
        kind: u64,
        metrics: Vec<Metric>,
    }

    fn value_of(message: &[u8]) -> f64 {
        let fields = decode(message);
        assert!(fields.iter().all(|(f, _)| *f == 1), "{fields:?}");
        fields.last().map_or(0.0, |(_, v)| v.double())
    }

    fn histogram_of(message: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        for (field, v) in decode(message) {
            match field {
                1 => h.count = v.varint(),
                2 => h.sum = v.double(),
                3 => {
                    let mut b = (0.0, 0, 0.0);
                    for (f, v) in decode(v.bytes()) {
                        match f {
                            1 => b.1 = v.varint(),
                            2 => b.0 = v.double(),
                            4 => b.2 = v.double(),
                            f => panic!("Bucket field {f}"),
                        }
                    }
                    h.buckets.push(b);
                }
                5 => h.schema = unzigzag(v.varint()),
                6 => h.zero_threshold = v.double(),
                7 => h.zero_count = v.varint(),
                12 => {
                    let mut span = (0, 0);
                    for (f, v) in decode(v.bytes()) {
                        match f {
                            1 => span.0 = unzigzag(v.varint()),
                            2 => span.1 = v.varint(),
                            f => panic!("BucketSpan field {f}"),
                        }
                    }
                    h.spans.push(span);
                }
                13 => match v {
                    Wire::Varint(d) => h.deltas.push(unzigzag(d)),
                    Wire::Bytes(packed) => {
                        let mut at = 0;
                        while at < packed.len() {
                            h.deltas.push(unzigzag(read_varint(&packed, &mut at)));
                        }
                    }
                    w => panic!("positive_delta as {w:?}"),
                },
                f => panic!("Histogram field {f} is not expected here"),
            }
        }
        h
    }

    /// The delimited stream as its families; panics on anything malformed.
    fn families(mut stream: &[u8]) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        while !stream.is_empty() {
            let mut at = 0;
            let len = read_varint(stream, &mut at) as usize;
            let message = &stream[at..at + len];
            stream = &stream[at + len..];
            let mut family = MetricFamily {
                name: String::new(),
                help: String::new(),
                kind: 0,
                metrics: Vec::new(),
            };
            for (field, v) in decode(message) {
                match field {
                    1 => family.name = v.text(),
                    2 => family.help = v.text(),
                    3 => family.kind = v.varint(),
                    4 => {
                        let mut m = Metric {
                            labels: BTreeMap::new(),
                            gauge: None,
                            counter: None,
                            histogram: None,
                        };
                        for (f, v) in decode(v.bytes()) {
                            match f {
                                1 => {
                                    let pair = decode(v.bytes());
                                    let get = |n| {
                                        pair.iter()
                                            .find(|(f, _)| *f == n)
                                            .map(|(_, v)| v.text())
                                            .unwrap_or_default()
                                    };
                                    m.labels.insert(get(1), get(2));
                                }
                                2 => m.gauge = Some(value_of(v.bytes())),
                                3 => m.counter = Some(value_of(v.bytes())),
                                7 => m.histogram = Some(histogram_of(v.bytes())),
                                f => panic!("Metric field {f}"),
                            }
                        }
                        family.metrics.push(m);
                    }
                    f => panic!("MetricFamily field {f}"),
                }
            }
            out.push(family);
        }
        out
    }

    type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

    /// The text exposition's samples, and its families' (name, type, help).
    fn text_series(text: &str) -> (Series, Vec<(String, String, String)>) {
        let mut series = Series::new();
        let mut types = BTreeMap::new();
        let mut helps = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_string(), kind.to_string());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                helps.insert(name.to_string(), help.to_string());
            } else {
                let (series_text, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = series_text.split_once('{').unwrap();
                let labels = labels
                    .trim_end_matches('}')
                    .split("\",")
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap();
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                series.insert((name.to_string(), labels), value.parse().unwrap());
            }
        }
        let families = types
            .into_iter()
            .map(|(name, kind)| {
                let help = helps.remove(&name).unwrap_or_default();
                (name, kind, help)
            })
            .collect();
        (series, families)
    }

    fn kind_name(kind: u64) -> &'static str {
        match kind {
            0 => "counter",
            1 => "gauge",
            4 => "histogram",
            k => panic!("type {k} is not written here"),
        }
    }

    fn labels_with(m: &Metric, extra: Option<(&str, String)>) -> Vec<(String, String)> {
        let mut labels = m.labels.clone();
        if let Some((k, v)) = extra {
            labels.insert(k.to_string(), v);
        }
        labels.into_iter().collect()
    }

    /// The protobuf families as text-exposition series (the histogram's `_count` left
    /// out: it is the native count, checked on its own).
    fn as_text_series(families: &[MetricFamily]) -> Series {
        let mut series = Series::new();
        for f in families {
            for m in &f.metrics {
                match (f.kind, m.gauge, m.counter, &m.histogram) {
                    (1, Some(v), None, None) | (0, None, Some(v), None) => {
                        series.insert((f.name.clone(), labels_with(m, None)), v);
                    }
                    (4, None, None, Some(h)) => {
                        for &(upper, whole, float) in &h.buckets {
                            let le = if upper.is_infinite() {
                                "+Inf".to_string()
                            } else {
                                upper.to_string()
                            };
                            assert_eq!(whole, float.floor() as u64, "{f:?}");
                            let key = (
                                format!("{}_bucket", f.name),
                                labels_with(m, Some(("le", le))),
                            );
                            series.insert(key, float);
                        }
                        series.insert((format!("{}_sum", f.name), labels_with(m, None)), h.sum);
                    }
                    _ => panic!("{} has a metric of the wrong type: {m:?}", f.name),
                }
            }
        }
        series
    }

    fn timeline(servers: u32, at: i64) -> Timeline {
        let params = FleetParams::default();
        FleetSpec::new(&params, 7, members(&params, servers, 0..servers)).timeline(at)
    }

    /// 2026-11-24T12:00:00Z.
    const T0: i64 = 1_795_521_600_000;

    #[test]
    fn a_frame_decodes_to_what_the_text_exposition_shows() {
        let mut tl = timeline(6, T0);
        let labels = FleetLabels::new(tl.members());
        for at in [T0 + 7_500, T0 + 3_600_000] {
            let frame = tl.at(at);
            let mut proto = Vec::new();
            encode_fleet_protobuf(&mut proto, &frame, &labels);
            let mut text = Vec::new();
            encode_fleet(&mut text, &frame, &labels);
            let (mut want, want_families) = text_series(&String::from_utf8(text).unwrap());

            let families = families(&proto);
            let (model_time, fleet) = families.split_last().unwrap();
            assert_eq!(model_time.name, "fleetsim_model_time_seconds");
            assert_eq!(kind_name(model_time.kind), "gauge");
            assert_eq!(model_time.metrics.len(), 1);
            assert_eq!(model_time.metrics[0].gauge, Some(at as f64 / 1000.0));

            let got_families: Vec<_> = fleet
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        kind_name(f.kind).to_string(),
                        f.help.clone(),
                    )
                })
                .collect();
            let mut sorted = got_families.clone();
            sorted.sort();
            assert_eq!(sorted, want_families);

            // The histogram's count is the native buckets' sum: a little under the
            // classic count, which the `+Inf` bucket keeps exactly.
            let native_buckets = native_layout().shares.len() as f64;
            let histograms = &fleet[Family::RequestDuration as usize];
            for m in &histograms.metrics {
                let h = m.histogram.as_ref().unwrap();
                let key = (
                    "app_request_duration_seconds_count".to_string(),
                    labels_with(m, None),
                );
                let classic = want.remove(&key).expect("the text has the count");
                assert!(h.count as f64 <= classic && classic - (h.count as f64) < native_buckets);
            }
            assert_eq!(as_text_series(fleet), want);
        }
    }

    fn server_histograms(frame: &Frame, labels: &FleetLabels) -> BTreeMap<String, Histogram> {
        let mut proto = Vec::new();
        encode_fleet_protobuf(&mut proto, frame, labels);
        let mut families = families(&proto);
        let histograms = families.swap_remove(Family::RequestDuration as usize);
        assert_eq!(histograms.name, "app_request_duration_seconds");
        histograms
            .metrics
            .into_iter()
            .map(|m| (m.labels["server"].clone(), m.histogram.unwrap()))
            .collect()
    }

    #[test]
    fn native_buckets_sum_to_the_count_and_only_grow_between_restarts() {
        let mut tl = timeline(12, T0);
        let labels = FleetLabels::new(tl.members());
        let mut previous: BTreeMap<String, (f64, BTreeMap<i64, u64>)> = BTreeMap::new();
        let (mut compared, mut grew) = (0, 0);
        // Frames between grid points and on them, over a few hours of the default grid.
        for step in 0..400 {
            let frame = tl.at(T0 + step * 5_500);
            for (server, h) in server_histograms(&frame, &labels) {
                assert_eq!(h.schema, i64::from(NATIVE_SCHEMA));
                assert!(h.zero_threshold > 0.0 && h.zero_count == 0);
                let native = h.native();
                assert_eq!(native.values().sum::<u64>(), h.count, "{server}");
                let classic = h.buckets.last().unwrap().2;
                if let Some((before, was)) = previous.get(&server)
                    && classic >= *before
                {
                    compared += 1;
                    for (index, &count) in was {
                        let now = native.get(index).copied().unwrap_or(0);
                        assert!(now >= count, "{server}: native bucket {index} went down");
                    }
                    if native.values().sum::<u64>() > was.values().sum::<u64>() {
                        grew += 1;
                    }
                }
                previous.insert(server, (classic, native));
            }
        }
        assert!(compared > 1000 && grew > compared / 2, "{compared} {grew}");
    }

    /// `q`'s quantile by linear interpolation in the buckets (upper bound, count) from
    /// `lowest` up, as Prometheus interpolates; with the rank's bucket's bounds.
    fn quantile(q: f64, lowest: f64, buckets: &[(f64, f64)]) -> (f64, f64, f64) {
        let total: f64 = buckets.iter().map(|b| b.1).sum();
        let rank = q * total;
        let (mut below, mut lo) = (0.0, lowest);
        for &(hi, count) in buckets {
            if below + count >= rank && count > 0.0 {
                return (lo + (hi - lo) * (rank - below) / count, lo, hi);
            }
            below += count;
            lo = hi;
        }
        (lo, lo, lo)
    }

    #[test]
    fn native_quantiles_stay_in_the_classic_bucket_of_their_rank() {
        let mut tl = timeline(12, T0);
        let labels = FleetLabels::new(tl.members());
        let width = libm::exp2(1.0 / f64::from(1u32 << NATIVE_SCHEMA));
        let mut checked = 0;
        for step in [40, 400, 2_000] {
            for h in server_histograms(&tl.at(T0 + step * 15_000), &labels).values() {
                let mut below = 0.0;
                let classic: Vec<(f64, f64)> = h
                    .buckets
                    .iter()
                    .map(|&(upper, _, cum)| {
                        let upper = if upper.is_infinite() { 20.0 } else { upper };
                        let own = cum - below;
                        below = cum;
                        (upper, own)
                    })
                    .collect();
                let native: Vec<(f64, f64)> = h
                    .native()
                    .into_iter()
                    .map(|(i, n)| {
                        (
                            libm::exp2(i as f64 / f64::from(1u32 << NATIVE_SCHEMA)),
                            n as f64,
                        )
                    })
                    .collect();
                let native_lowest = native[0].0 / width;
                for q in [0.5, 0.9, 0.99] {
                    let (_, lo, hi) = quantile(q, 0.0, &classic);
                    let (estimate, _, _) = quantile(q, native_lowest, &native);
                    assert!(
                        estimate >= lo / width && estimate <= hi * width,
                        "q{q}: native {estimate} outside the classic bucket ({lo}, {hi}]"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 90);
    }

    #[test]
    fn an_empty_histogram_is_still_native_and_bad_counts_do_not_panic() {
        let mut out = Vec::new();
        native_counts(&[0.0; BUCKET_COUNT], &mut out);
        assert!(out.iter().all(|&n| n == 0));
        let mut bad = [f64::NAN; BUCKET_COUNT];
        bad[3] = f64::INFINITY;
        bad[5] = -4.0;
        native_counts(&bad, &mut out);
        assert_eq!(out.len(), native_layout().shares.len());

        let m = &members(&FleetParams::default(), 1, 0..1);
        let labels = FleetLabels::new(m);
        let mut w = MetricWriter::new(&labels);
        let empty = HistogramSample {
            cumulative: [0.0; BUCKET_COUNT],
            cumulative_exact: [0.0; BUCKET_COUNT],
            sum: 0.0,
            count: 0.0,
            created: None,
        };
        w.push_histogram(0, &empty);
        let metric = decode(&w.metrics[..]).pop().unwrap().1;
        let h = decode(metric.bytes())
            .into_iter()
            .find(|(f, _)| *f == 7)
            .map(|(_, v)| histogram_of(v.bytes()))
            .unwrap();
        assert_eq!(h.count, 0);
        assert!(h.zero_threshold > 0.0);
        assert_eq!(h.spans, vec![(0, 0)]);
        assert!(h.native().is_empty());
    }

    #[test]
    fn each_classic_bucket_is_spread_whole() {
        let layout = native_layout();
        let mut total = [0.0; BUCKET_COUNT];
        for shares in &layout.shares {
            assert!(!shares.is_empty() && shares.len() <= 2, "{shares:?}");
            for &(c, w) in shares {
                assert!(w > 0.0);
                total[c] += w;
            }
        }
        for (c, t) in total.iter().enumerate() {
            assert!((t - 1.0).abs() < 1e-12, "classic bucket {c}: {t}");
        }
    }
}
