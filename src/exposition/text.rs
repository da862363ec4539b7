use std::ops::Range;

use crate::model::{Frame, Member};
use crate::protobuf::encode_label;

use super::label_cache::{LabelCache, RenderLabels};
use super::labels::ConstLabels;
use super::series::{
    Extra, Family, Part, SeriesSink, bucket_bounds, visit_family, visit_family_servers,
};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Each server's labels, rendered once: `server="srv-01",dc="dc1",role="web"`, then the
/// constant labels, as text and as the protobuf exposition's `Metric.label` entries.
pub type FleetLabels = LabelCache<ScrapeLabels>;

/// One server's labels as the expositions copy them.
#[derive(Debug, Clone)]
pub struct ServerLabels {
    /// `server="srv-01",dc="dc1",role="web"` and the constant labels.
    text: Box<[u8]>,
    /// The same labels as the protobuf exposition's `Metric.label` entries, tags included.
    pub(super) protobuf: Box<[u8]>,
}

/// Renders the scrape's labels, and keeps what every server's series share.
#[derive(Debug, Clone)]
pub struct ScrapeLabels {
    /// Per family, its series' names by [`Part`]: looked up once, not per series.
    names: Vec<[&'static str; 5]>,
    /// `,le="0.005"` and so on, then `,le="+Inf"`.
    buckets: Vec<Box<[u8]>>,
    consts: ConstLabels,
    /// The constant labels as text, each with its leading comma: `,env="test"`.
    consts_text: String,
}

fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A server's own labels, in the order every exposition writes them (`name` is the
/// machine's: churn renames a slot).
fn label_pairs<'a>(m: &'a Member, name: &'a str) -> [(&'static str, &'a str); 3] {
    [("server", name), ("dc", &m.dc), ("role", m.role.name())]
}

/// `server="srv-01",dc="dc1",role="web"` and the constant labels.
fn render_server(m: &Member, name: &str, consts_text: &str) -> Box<[u8]> {
    let mut s = String::with_capacity(48 + consts_text.len());
    for (i, (label, value)) in label_pairs(m, name).into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(label);
        s.push_str("=\"");
        escape_label_value(value, &mut s);
        s.push('"');
    }
    s.push_str(consts_text);
    s.into_bytes().into_boxed_slice()
}

/// The same labels as protobuf `LabelPair`s.
fn encode_server(m: &Member, name: &str, consts: &ConstLabels) -> Box<[u8]> {
    label_pairs(m, name)
        .into_iter()
        .chain(consts.iter())
        .flat_map(|(label, value)| encode_label(label, value))
        .collect()
}

impl ScrapeLabels {
    pub fn new(consts: &ConstLabels) -> ScrapeLabels {
        let mut consts_text = String::new();
        for (name, value) in consts.iter() {
            consts_text.push(',');
            consts_text.push_str(name);
            consts_text.push_str("=\"");
            escape_label_value(value, &mut consts_text);
            consts_text.push('"');
        }
        let buckets = bucket_bounds()
            .map(|le| format!(",le=\"{le}\"").into_bytes().into_boxed_slice())
            .collect();
        let parts = [
            Part::Value,
            Part::Bucket,
            Part::Sum,
            Part::Count,
            Part::Created,
        ];
        ScrapeLabels {
            names: Family::ALL
                .iter()
                .map(|f| parts.map(|part| f.part_name(part)))
                .collect(),
            buckets,
            consts: consts.clone(),
            consts_text,
        }
    }

    /// The constant labels, protobuf-encoded, for series that have no server.
    pub(super) fn consts_protobuf(&self) -> Vec<u8> {
        self.consts
            .iter()
            .flat_map(|(label, value)| encode_label(label, value))
            .collect()
    }
}

impl RenderLabels for ScrapeLabels {
    type Rendered = ServerLabels;

    fn render(&mut self, member: &Member, name: &str) -> ServerLabels {
        ServerLabels {
            text: render_server(member, name, &self.consts_text),
            protobuf: encode_server(member, name, &self.consts),
        }
    }
}

impl LabelCache<ScrapeLabels> {
    pub fn new(members: &[Member]) -> FleetLabels {
        FleetLabels::with_labels(members, &ConstLabels::default())
    }

    /// The servers' labels with `consts` added to each.
    pub fn with_labels(members: &[Member], consts: &ConstLabels) -> FleetLabels {
        LabelCache::render(members, ScrapeLabels::new(consts))
    }
}

/// Writes samples as text; `timestamp` (with its leading space) follows each value when
/// the samples are history rather than a scrape.
pub struct SampleWriter<'a> {
    out: &'a mut Vec<u8>,
    labels: &'a FleetLabels,
    /// Shortest round-trip digits, by the Żmij algorithm: the same digits as Ryū, in
    /// about 60% of its time on a scrape's values (exponents are written `1e+20`, as Go
    /// writes them).
    floats: zmij::Buffer,
    timestamp: &'a [u8],
    /// Also write OpenMetrics' `_created` samples.
    created: bool,
}

impl<'a> SampleWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>, labels: &'a FleetLabels, timestamp: &'a [u8]) -> Self {
        SampleWriter {
            out,
            labels,
            floats: zmij::Buffer::new(),
            timestamp,
            created: false,
        }
    }

    /// Writes OpenMetrics' `_created` sample after each counter and histogram.
    pub fn with_created(mut self) -> Self {
        self.created = true;
        self
    }

    /// Every sample of `family` at `frame`.
    pub fn family(&mut self, family: Family, frame: &Frame) {
        let created = self.created;
        visit_family(self, family, frame, created);
    }

    #[inline]
    fn sample(&mut self, name: &str, labels: &[u8], extra: &[u8], value: f64) {
        // Room for the whole line at once; empty parts are not copied (a copy of unknown
        // length is a call, even for nothing).
        self.out
            .reserve(name.len() + labels.len() + extra.len() + self.timestamp.len() + 40);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'{');
        self.out.extend_from_slice(labels);
        if !extra.is_empty() {
            self.out.extend_from_slice(extra);
        }
        self.out.extend_from_slice(b"} ");
        // The cast is exact for whole numbers below 2^63; `trunc` would be a libm call.
        let whole = value as i64;
        if whole as f64 == value && value.abs() < 1e15 {
            // Whole numbers (flags, most counters' early values) print without ".0".
            let mut ints = itoa::Buffer::new();
            self.out.extend_from_slice(ints.format(whole).as_bytes());
        } else {
            self.out
                .extend_from_slice(self.floats.format(value).as_bytes());
        }
        if !self.timestamp.is_empty() {
            self.out.extend_from_slice(self.timestamp);
        }
        self.out.push(b'\n');
    }
}

impl SeriesSink for SampleWriter<'_> {
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
        let name = labels.renderer().names[family as usize][part as usize];
        let extra: &[u8] = match extra {
            Extra::None => b"",
            Extra::Status(class) => STATUS_LABELS[class],
            Extra::Le(b) => &labels.renderer().buckets[b],
        };
        self.sample(name, &labels.server(server).text, extra, value);
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        let mut l = String::from("kind=\"");
        escape_label_value(kind, &mut l);
        l.push_str("\",target=\"");
        escape_label_value(target, &mut l);
        l.push('"');
        l.push_str(&self.labels.renderer().consts_text);
        self.sample(family.name(), l.as_bytes(), b"", value);
    }
}

const STATUS_LABELS: [&[u8]; 3] = [b",status=\"2xx\"", b",status=\"4xx\"", b",status=\"5xx\""];

/// The text format (0.0.4) or OpenMetrics 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Text,
    /// Counter families named without `_total`, `_created` samples, `# TYPE` first.
    OpenMetrics,
}

/// A part of the fleet's exposition: one family's series for a range of servers, with the
/// family's `# HELP` and `# TYPE` when the range is the family's first. Pieces in order are
/// the whole body; cutting it lets a scrape stream and compress it on several threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub family: Family,
    pub servers: Range<usize>,
}

impl Piece {
    /// About how many series the piece holds.
    pub fn series(&self) -> usize {
        self.family.series_per_server() * self.servers.len() + 1
    }
}

/// The fleet's body for `servers` servers, in pieces of about `series_per_piece` series.
pub fn pieces(servers: usize, series_per_piece: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for family in Family::ALL {
        let per_piece = (series_per_piece / family.series_per_server().max(1)).max(1);
        let mut start = 0usize;
        loop {
            let end = start.saturating_add(per_piece).min(servers);
            pieces.push(Piece {
                family,
                servers: start..end,
            });
            // A family without per-server series (the incidents') is one piece.
            if end >= servers || family.series_per_server() == 0 {
                break;
            }
            start = end;
        }
    }
    pieces
}

/// Appends `piece` of the fleet's series at `frame` to `out`.
pub fn encode_piece(
    out: &mut Vec<u8>,
    piece: &Piece,
    frame: &Frame,
    labels: &FleetLabels,
    format: TextFormat,
) {
    let family = piece.family;
    if piece.servers.start == 0 {
        let (name, first, second) = match format {
            TextFormat::Text => (family.name(), "# HELP ", "\n# TYPE "),
            TextFormat::OpenMetrics => (family.openmetrics_name(), "# TYPE ", "\n# HELP "),
        };
        let (a, b) = match format {
            TextFormat::Text => (family.help(), family.kind().name()),
            TextFormat::OpenMetrics => (family.kind().name(), family.help()),
        };
        for part in [first, name, " ", a, second, name, " ", b, "\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    let mut writer = SampleWriter::new(out, labels, b"");
    writer.created = format == TextFormat::OpenMetrics;
    let created = writer.created;
    visit_family_servers(&mut writer, family, frame, created, piece.servers.clone());
}

/// Appends the fleet's series at `frame` to `out`, in the text format (0.0.4).
pub fn encode_fleet(out: &mut Vec<u8>, frame: &Frame, labels: &FleetLabels) {
    for piece in pieces(frame.len(), usize::MAX) {
        encode_piece(out, &piece, frame, labels, TextFormat::Text);
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Appends the fleet's series at `frame` to `out` as OpenMetrics 1.0: counter families
/// named without `_total`, `_created` samples, and no `# EOF` (the caller ends the
/// exposition, after any other series).
pub fn encode_fleet_openmetrics(out: &mut Vec<u8>, frame: &Frame, labels: &FleetLabels) {
    for piece in pieces(frame.len(), usize::MAX) {
        encode_piece(out, &piece, frame, labels, TextFormat::OpenMetrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FleetParams, FleetSpec, members};

    #[test]
    fn pieces_of_any_size_join_to_the_whole_body() {
        let params = FleetParams::default();
        let servers = 37;
        let t0 = 1_795_521_600_000;
        let mut timeline =
            FleetSpec::new(&params, 3, members(&params, servers, 0..servers)).timeline(t0);
        let frame = timeline.at(t0 + 4_000);
        let labels = FleetLabels::new(timeline.members());
        for format in [TextFormat::Text, TextFormat::OpenMetrics] {
            let mut whole = Vec::new();
            for piece in pieces(frame.len(), usize::MAX) {
                encode_piece(&mut whole, &piece, &frame, &labels, format);
            }
            assert_eq!(pieces(frame.len(), usize::MAX).len(), Family::ALL.len());
            for size in [1, 7, 100] {
                let cut = pieces(frame.len(), size);
                assert!(cut.len() > Family::ALL.len(), "{size}");
                let mut joined = Vec::new();
                for piece in &cut {
                    encode_piece(&mut joined, piece, &frame, &labels, format);
                }
                assert_eq!(
                    String::from_utf8_lossy(&joined),
                    String::from_utf8_lossy(&whole),
                    "{format:?} in pieces of {size} series"
                );
            }
        }
    }
}

#[cfg(test)]
mod churn_tests {
    use super::*;
    use crate::model::{FleetParams, FleetSpec, ShapeSpec, members, shape};

    #[test]
    fn only_the_servers_with_a_new_machine_are_rendered_again() {
        let params = FleetParams::default();
        let fleet = members(&params, 40, 0..40);
        let spec = ShapeSpec {
            churn: 0.2,
            churn_interval: std::time::Duration::from_secs(600),
            ..ShapeSpec::default()
        };
        let t0 = 1_800_000_000_000;
        let mut timeline = FleetSpec::new(&params, 3, fleet.clone())
            .shape(spec)
            .timeline(t0);
        let mut labels = FleetLabels::with_labels(&fleet, &ConstLabels::default());
        let frame = timeline.at(t0);
        assert!(!labels.is_current(&frame));
        labels.refresh(&frame);
        assert!(labels.is_current(&frame));
        let pointers: Vec<*const u8> = labels.servers().iter().map(|s| s.text.as_ptr()).collect();
        let born_before = labels.born_ms().to_vec();
        // Ten minutes on, a churn interval has begun.
        let frame = timeline.at(t0 + 600_000);
        labels.refresh(&frame);
        let mut renamed = 0;
        for i in 0..fleet.len() {
            let text = String::from_utf8(labels.server(i).text.to_vec()).unwrap();
            let name = shape::identity(&fleet[i].name, frame.born_ms(i));
            assert!(text.starts_with(&format!("server=\"{name}\",")), "{text}");
            let same = labels.server(i).text.as_ptr() == pointers[i];
            let changed = born_before[i] != frame.born_ms(i);
            assert_eq!(same, !changed, "server {i}");
            renamed += changed as usize;
        }
        assert!((2..=20).contains(&renamed), "{renamed} renamed");
    }
}
