//! The remote write 1.0 `WriteRequest`, encoded by hand (no protoc):
//!
//! ```proto
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }
//! ```
//!
//! The fleet's series are the scrape's, walked from a `Frame` by the same walk as the text
//! exposition's. Each server's labels are encoded once; a series is then a few byte copies: its
//! name, the server's `dc`, an optional `le`, the server's `role` and `server`, an optional
//! `status` (in that order, which is the order of the names: the spec wants them sorted),
//! and one sample. Constant labels are merged into that order once per server.

use crate::exposition::{
    ConstLabels, Extra, Family, LabelCache, Part, RenderLabels, STATUSES, SeriesSink,
    bucket_bounds, visit_family,
};
use crate::model::{Frame, Member};
pub use crate::protobuf::encode_label;
use crate::protobuf::{FIXED64, LEN, VARINT, put_varint, tag, varint_len};

/// Field 1, length-delimited (`WriteRequest.timeseries`, `TimeSeries.labels`, `Label.name`).
const TAG_1_LEN: u8 = tag(1, LEN);
/// Field 2, length-delimited (`TimeSeries.samples`, `Label.value`).
const TAG_2_LEN: u8 = tag(2, LEN);
/// Field 1, 64-bit (`Sample.value`).
const TAG_1_FIXED64: u8 = tag(1, FIXED64);
/// Field 2, varint (`Sample.timestamp`).
const TAG_2_VARINT: u8 = tag(2, VARINT);

/// One `TimeSeries.samples` entry, tag included.
pub(super) fn encode_sample(value: f64, timestamp_ms: i64) -> ([u8; 22], usize) {
    let mut sample = Vec::with_capacity(20);
    sample.push(TAG_1_FIXED64);
    sample.extend_from_slice(&value.to_le_bytes());
    sample.push(TAG_2_VARINT);
    put_varint(&mut sample, timestamp_ms as u64);
    let mut out = [0u8; 22];
    out[0] = TAG_2_LEN;
    out[1] = sample.len() as u8;
    out[2..2 + sample.len()].copy_from_slice(&sample);
    (out, 2 + sample.len())
}

/// Writes `WriteRequest`s of at most `max_series` series each (receivers bound the size of
/// a request): each is the concatenation of its `timeseries` entries.
pub struct RequestWriter {
    max_series: usize,
    done: Vec<(Vec<u8>, usize)>,
    out: Vec<u8>,
    series: usize,
}

impl RequestWriter {
    pub fn new(max_series: usize) -> RequestWriter {
        RequestWriter {
            max_series: max_series.max(1),
            done: Vec::new(),
            out: Vec::new(),
            series: 0,
        }
    }

    /// One series: `labels` are encoded label entries in name order, `__name__` first.
    pub fn series(&mut self, labels: &[&[u8]], value: f64, timestamp_ms: i64) {
        if self.series == self.max_series {
            let full = std::mem::take(&mut self.out);
            self.done.push((full, self.series));
            self.series = 0;
        }
        let (sample, sample_len) = encode_sample(value, timestamp_ms);
        let len = labels.iter().map(|l| l.len()).sum::<usize>() + sample_len;
        self.out.reserve(len + 1 + varint_len(len as u64));
        self.out.push(TAG_1_LEN);
        put_varint(&mut self.out, len as u64);
        for l in labels {
            self.out.extend_from_slice(l);
        }
        self.out.extend_from_slice(&sample[..sample_len]);
        self.series += 1;
    }

    /// The encoded requests, each with its number of series (one sample each).
    pub fn finish(mut self) -> Vec<(Vec<u8>, usize)> {
        if self.series > 0 {
            self.done.push((self.out, self.series));
        }
        self.done
    }
}

/// Each server's labels as encoded `Label` entries, and the fleet's names, `le`s and
/// statuses, encoded once.
pub type SeriesLabels = LabelCache<WriteLabels>;

/// Renders remote write's labels, and keeps what every server's series share.
#[derive(Debug, Clone)]
pub struct WriteLabels {
    /// The constant labels, encoded, by name.
    consts: Vec<(String, Vec<u8>)>,
    /// The constant labels whose names sort before `__name__` (those that start with a
    /// capital letter), shared by every series.
    before_name: Vec<u8>,
    /// Per family: its `__name__` label for each [`Part`] but `Created` (a histogram's
    /// `_bucket`, `_sum`, `_count`).
    names: Vec<[Vec<u8>; 4]>,
    /// `le="0.005"` and so on, then `le="+Inf"`, as the text exposition writes them.
    buckets: Vec<Vec<u8>>,
    statuses: [Vec<u8>; 3],
}

/// One server's labels and the constant labels after `__name__`, in name order, cut where
/// a series' `le` and `status` go: `below_le`, `le`, `below_status`, `status`, `rest`.
#[derive(Debug, Clone, Default)]
pub struct ServerLabels {
    below_le: Vec<u8>,
    below_status: Vec<u8>,
    rest: Vec<u8>,
}

impl ServerLabels {
    fn new(m: &Member, name: &str, consts: &[(String, Vec<u8>)]) -> ServerLabels {
        let own = [
            ("dc", encode_label("dc", &m.dc)),
            ("role", encode_label("role", m.role.name())),
            ("server", encode_label("server", name)),
        ];
        let mut all: Vec<(&str, &[u8])> = own.iter().map(|(n, l)| (*n, l.as_slice())).collect();
        all.extend(
            consts
                .iter()
                .filter(|(n, _)| n.as_str() > "__name__")
                .map(|(n, l)| (n.as_str(), l.as_slice())),
        );
        all.sort_by_key(|&(n, _)| n);
        let mut labels = ServerLabels::default();
        for (n, l) in all {
            let part = if n < "le" {
                &mut labels.below_le
            } else if n < "status" {
                &mut labels.below_status
            } else {
                &mut labels.rest
            };
            part.extend_from_slice(l);
        }
        labels
    }
}

impl WriteLabels {
    /// What every series shares, with `consts` merged into name order.
    pub fn new(consts: &ConstLabels) -> WriteLabels {
        let consts: Vec<(String, Vec<u8>)> = consts
            .iter()
            .map(|(n, v)| (n.to_string(), encode_label(n, v)))
            .collect();
        let before_name = consts
            .iter()
            .filter(|(n, _)| n.as_str() < "__name__")
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        let name = |n: &str| encode_label("__name__", n);
        WriteLabels {
            consts,
            before_name,
            names: Family::ALL
                .iter()
                .map(|f| f.part_names().map(name))
                .collect(),
            buckets: bucket_bounds().map(|le| encode_label("le", &le)).collect(),
            statuses: STATUSES.map(|s| encode_label("status", s)),
        }
    }
}

impl RenderLabels for WriteLabels {
    type Rendered = ServerLabels;

    fn render(&mut self, member: &Member, name: &str) -> ServerLabels {
        ServerLabels::new(member, name, &self.consts)
    }
}

impl LabelCache<WriteLabels> {
    pub fn new(members: &[Member]) -> SeriesLabels {
        SeriesLabels::with_labels(members, &ConstLabels::default())
    }

    /// The servers' labels with `consts` added to each, merged into name order.
    pub fn with_labels(members: &[Member], consts: &ConstLabels) -> SeriesLabels {
        LabelCache::render(members, WriteLabels::new(consts))
    }
}

/// Turns the walk's series into `TimeSeries`, timestamped with the frame's time.
struct FrameWriter<'a> {
    requests: &'a mut RequestWriter,
    labels: &'a SeriesLabels,
    timestamp_ms: i64,
}

impl SeriesSink for FrameWriter<'_> {
    #[inline]
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        let labels = self.labels.renderer();
        let name = match part {
            // Remote write has no `_created` series: the receiver sees resets itself.
            Part::Created => return,
            part => &labels.names[family as usize][part as usize],
        };
        let s = self.labels.server(server);
        let before = &labels.before_name;
        // Label names sorted, as the spec asks: the server's and the constant labels,
        // with `le` or `status` merged in at their place.
        let t = self.timestamp_ms;
        match extra {
            Extra::None => self.requests.series(
                &[before, name, &s.below_le, &s.below_status, &s.rest],
                value,
                t,
            ),
            Extra::Le(b) => self.requests.series(
                &[
                    before,
                    name,
                    &s.below_le,
                    &labels.buckets[b],
                    &s.below_status,
                    &s.rest,
                ],
                value,
                t,
            ),
            Extra::Status(class) => self.requests.series(
                &[
                    before,
                    name,
                    &s.below_le,
                    &s.below_status,
                    &labels.statuses[class],
                    &s.rest,
                ],
                value,
                t,
            ),
        }
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        let labels = self.labels.renderer();
        let name = &labels.names[family as usize][Part::Value as usize];
        let kind = encode_label("kind", kind);
        let target = encode_label("target", target);
        let mut all: Vec<(&str, &[u8])> =
            vec![("__name__", name), ("kind", &kind), ("target", &target)];
        all.extend(
            labels
                .consts
                .iter()
                .map(|(n, l)| (n.as_str(), l.as_slice())),
        );
        all.sort_by_key(|&(n, _)| n);
        let labels: Vec<&[u8]> = all.into_iter().map(|(_, l)| l).collect();
        self.requests.series(&labels, value, self.timestamp_ms);
    }
}

/// Writes every series of `family` at `frame`: the scrape's series, with the same labels.
pub fn write_family(w: &mut RequestWriter, family: Family, frame: &Frame, labels: &SeriesLabels) {
    let mut sink = FrameWriter {
        requests: w,
        labels,
        timestamp_ms: frame.time_ms,
    };
    visit_family(&mut sink, family, frame, false);
}

/// The fleet's series at `frame` as encoded `WriteRequest`s of at most `max_series`
/// series each, with their series counts.
pub fn write_requests(
    frame: &Frame,
    labels: &SeriesLabels,
    max_series: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut w = RequestWriter::new(max_series);
    for family in Family::ALL {
        write_family(&mut w, family, frame, labels);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_encoded_as_protobuf_says() {
        let mut w = RequestWriter::new(2);
        w.series(&[&encode_label("__name__", "up")], 1.0, 1000);
        let mut expected = vec![0x0a, 30, 0x0a, 14, 0x0a, 8];
        expected.extend(b"__name__");
        expected.extend([0x12, 2]);
        expected.extend(b"up");
        expected.extend([0x12, 12, 0x09]);
        expected.extend(1.0f64.to_le_bytes());
        expected.extend([0x10, 0xe8, 0x07]);
        assert_eq!(w.finish(), vec![(expected, 1)]);
    }

    /// The label names of each series of a request, in their order on the wire.
    fn label_names(mut proto: &[u8]) -> Vec<Vec<(String, String)>> {
        fn varint(b: &mut &[u8]) -> usize {
            let (mut v, mut shift) = (0usize, 0);
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= ((byte & 0x7f) as usize) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        }
        fn field<'a>(b: &mut &'a [u8]) -> (u8, &'a [u8]) {
            let tag = b[0];
            *b = &b[1..];
            let len = varint(b);
            let (value, rest) = b.split_at(len);
            *b = rest;
            (tag, value)
        }
        let mut all = Vec::new();
        while !proto.is_empty() {
            let (_, mut series) = field(&mut proto);
            let mut labels = Vec::new();
            while !series.is_empty() {
                let (tag, mut label) = field(&mut series);
                if tag != TAG_1_LEN {
                    continue;
                }
                let (_, name) = field(&mut label);
                let (_, value) = field(&mut label);
                labels.push((
                    String::from_utf8(name.to_vec()).unwrap(),
                    String::from_utf8(value.to_vec()).unwrap(),
                ));
            }
            all.push(labels);
        }
        all
    }

    #[test]
    fn constant_labels_are_merged_in_name_order() {
        use crate::model::{FleetParams, FleetSpec, members};
        let params = FleetParams::default();
        let fleet = members(&params, 3, 0..3);
        let consts = ConstLabels::new(
            [("env", "test"), ("Zone", "eu"), ("team", "x"), ("zz", "y")]
                .map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .unwrap();
        let labels = SeriesLabels::with_labels(&fleet, &consts);
        let mut timeline = FleetSpec::new(&params, 1, fleet).timeline(1_800_000_000_000);
        let frame = timeline.at(1_800_000_000_000);
        let requests = write_requests(&frame, &labels, usize::MAX);
        let all = label_names(&requests[0].0);
        assert!(all.len() > 50, "{}", all.len());
        for series in &all {
            let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{series:?}");
            for (n, v) in consts.iter() {
                assert!(
                    series.contains(&(n.to_string(), v.to_string())),
                    "{series:?}"
                );
            }
        }
        assert!(
            all.iter()
                .any(|s| s.iter().any(|(n, _)| n == "le") && s.iter().any(|(n, _)| n == "zz"))
        );
    }

    #[test]
    fn new_machines_are_pushed_under_their_new_names() {
        use crate::model::{FleetParams, FleetSpec, SeriesMode, ShapeSpec, members, shape};
        let params = FleetParams::default();
        let fleet = members(&params, 10, 0..10);
        let spec = ShapeSpec {
            mode: SeriesMode::DoubleHalve,
            churn: 0.5,
            ..ShapeSpec::default()
        };
        // An even ten-minute interval (a multiple of 20 minutes): every server is in.
        let t = 1_800_000_000_000;
        assert_eq!(t % 1_200_000, 0);
        let mut timeline = FleetSpec::new(&params, 1, fleet.clone())
            .shape(spec)
            .timeline(t);
        let frame = timeline.at(t);
        let mut labels = SeriesLabels::new(&fleet);
        assert!(!labels.is_current(&frame));
        labels.refresh(&frame);
        let requests = write_requests(&frame, &labels, usize::MAX);
        let mut pushed: Vec<String> = label_names(&requests[0].0)
            .into_iter()
            .filter(|s| s[0].1 == "app_server_up")
            .map(|s| s.into_iter().find(|(n, _)| n == "server").unwrap().1)
            .collect();
        pushed.sort();
        let mut expected: Vec<String> = (0..10)
            .map(|i| shape::identity(&fleet[i].name, frame.born_ms(i)))
            .collect();
        expected.sort();
        assert_eq!(pushed, expected);
        assert!(pushed.iter().any(|n| n.len() > 6), "{pushed:?}");
    }

    #[test]
    fn requests_are_split_at_max_series() {
        let mut w = RequestWriter::new(2);
        let name = encode_label("__name__", "up");
        for t in 0..5 {
            w.series(&[&name], 1.0, t);
        }
        let counts: Vec<usize> = w.finish().iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 2, 1]);
    }
}
