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
//! and one sample.

use crate::exposition::{Extra, Family, Part, STATUSES, SeriesSink, bucket_bounds, visit_family};
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
#[derive(Debug, Clone)]
pub struct SeriesLabels {
    /// Per server: its `dc` label, then its `role` and `server` labels together.
    servers: Vec<(Vec<u8>, Vec<u8>)>,
    names: Vec<Vec<u8>>,
    /// `le="0.005"` and so on, then `le="+Inf"`, as the text exposition writes them.
    buckets: Vec<Vec<u8>>,
    statuses: [Vec<u8>; 3],
    bucket_name: Vec<u8>,
    sum_name: Vec<u8>,
    count_name: Vec<u8>,
}

impl SeriesLabels {
    pub fn new(members: &[Member]) -> SeriesLabels {
        let servers = members
            .iter()
            .map(|m| {
                let mut role_server = encode_label("role", m.role.name());
                role_server.extend(encode_label("server", &m.name));
                (encode_label("dc", &m.dc), role_server)
            })
            .collect();
        let name = |n: &str| encode_label("__name__", n);
        let histogram = Family::RequestDuration.name();
        SeriesLabels {
            servers,
            names: Family::ALL.iter().map(|f| name(f.name())).collect(),
            buckets: bucket_bounds().map(|le| encode_label("le", &le)).collect(),
            statuses: STATUSES.map(|s| encode_label("status", s)),
            bucket_name: name(&format!("{histogram}_bucket")),
            sum_name: name(&format!("{histogram}_sum")),
            count_name: name(&format!("{histogram}_count")),
        }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
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
        let labels = self.labels;
        let name = match part {
            Part::Value => &labels.names[family as usize],
            Part::Bucket => &labels.bucket_name,
            Part::Sum => &labels.sum_name,
            Part::Count => &labels.count_name,
            // Remote write has no `_created` series: the receiver sees resets itself.
            Part::Created => return,
        };
        let (dc, role_server) = &labels.servers[server];
        // Label names sorted, as the spec asks: __name__, dc, le, role, server, status.
        match extra {
            Extra::None => self
                .requests
                .series(&[name, dc, role_server], value, self.timestamp_ms),
            Extra::Le(b) => {
                let le = &labels.buckets[b];
                self.requests
                    .series(&[name, dc, le, role_server], value, self.timestamp_ms)
            }
            Extra::Status(class) => {
                let status = &labels.statuses[class];
                self.requests
                    .series(&[name, dc, role_server, status], value, self.timestamp_ms)
            }
        }
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        let name = &self.labels.names[family as usize];
        let kind = encode_label("kind", kind);
        let target = encode_label("target", target);
        self.requests
            .series(&[name, &kind, &target], value, self.timestamp_ms);
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
