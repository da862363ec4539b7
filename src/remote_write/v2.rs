//! The remote write 2.0 `io.prometheus.write.v2.Request`, encoded by hand like 1.0's:
//!
//! ```proto
//! message Request    { reserved 1 to 3; repeated string symbols = 4;
//!                      repeated TimeSeries timeseries = 5; }
//! message TimeSeries { repeated uint32 labels_refs = 1; repeated Sample samples = 2;
//!                      Metadata metadata = 5; int64 created_timestamp = 6; }
//! message Sample     { double value = 1; int64 timestamp = 2; }
//! message Metadata   { MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }
//! ```
//!
//! Strings travel once per request, in `symbols`; a series names its labels by index. The
//! fleet's strings (names, `dc`, `role` and `server` values, `le`s, help texts) are fixed
//! for the run, so they are interned once into a [`SeriesSymbols`] and each series is
//! a handful of integer refs into it. A request does not carry that whole table: the walk
//! goes family by family, so at scale one request holds a slice of the servers (a
//! histogram's 15 series per server put about 670 of 10,000 servers in a request), and the
//! whole table would be most of every request's bytes (a million servers' names are
//! ~12 MB). Instead each request maps the global refs it meets to its own dense indices
//! and sends just those strings.

use std::collections::HashMap;

use crate::exposition::{
    ConstLabels, Extra, Family, Kind, LabelCache, Part, RenderLabels, STATUSES, SeriesSink,
    bucket_bounds, visit_family,
};
use crate::model::{Frame, Member};
use crate::protobuf::{LEN, VARINT, put_bytes, put_varint, tag, varint_len};

use super::proto::encode_sample;

/// `Request.symbols`.
const TAG_SYMBOLS: u8 = tag(4, LEN);
/// `Request.timeseries`.
const TAG_TIMESERIES: u8 = tag(5, LEN);
/// `TimeSeries.labels_refs`, packed.
const TAG_LABELS_REFS: u8 = tag(1, LEN);
/// `TimeSeries.metadata`.
const TAG_METADATA: u8 = tag(5, LEN);
/// `TimeSeries.created_timestamp`.
const TAG_CREATED: u8 = tag(6, VARINT);
/// `Metadata.type`, `Metadata.help_ref`.
const TAG_TYPE: u8 = tag(1, VARINT);
const TAG_HELP_REF: u8 = tag(3, VARINT);

/// `Metadata.MetricType` of a family's series (its `_bucket`, `_sum` and `_count` too).
fn metric_type(family: Family) -> u64 {
    match family.kind() {
        Kind::Counter => 1,
        Kind::Gauge => 2,
        Kind::Histogram => 3,
    }
}

/// The run's strings, each once; index 0 is the empty string, as the spec requires of
/// `symbols`.
#[derive(Debug, Clone)]
struct Interned {
    strings: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Interned {
    fn new() -> Interned {
        let mut t = Interned {
            strings: Vec::new(),
            index: HashMap::new(),
        };
        t.intern("");
        t
    }

    /// Forgets the strings interned after the first `len`.
    fn truncate(&mut self, len: usize) {
        for s in self.strings.drain(len.min(self.strings.len())..) {
            self.index.remove(&s);
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.into());
        self.index.insert(s.into(), i);
        i
    }
}

/// A label as two refs into the run's table: name, value.
type Pair = [u32; 2];

/// The fleet's labels and metadata as refs into strings interned once per run.
pub type SeriesSymbols = LabelCache<Symbols>;

/// Interns the run's strings: what every series shares, then each server's `dc`, `role`
/// and `server` values (a server's labels are the refs of those three).
#[derive(Debug, Clone)]
pub struct Symbols {
    table: Interned,
    /// How many of the table's strings are not a server's: those kept when churn makes
    /// every server be interned again.
    shared: usize,
    dc: u32,
    role: u32,
    server: u32,
    kind: u32,
    target: u32,
    /// Per family: its `__name__` label for each [`Part`] but `Created` (a histogram's
    /// `_bucket`, `_sum`, `_count`), and its help text.
    names: Vec<[Pair; 4]>,
    help: Vec<u32>,
    buckets: Vec<Pair>,
    statuses: [Pair; 3],
    consts: Vec<Pair>,
}

impl RenderLabels for Symbols {
    type Rendered = [u32; 3];

    /// Churn renames a few machines an interval; interning every server again (a few
    /// milliseconds for 10,000 servers) keeps the table holding only the names in use,
    /// where adding to it would grow it for as long as the run.
    const RENDERS_ALL_AGAIN: bool = true;

    fn render(&mut self, member: &Member, name: &str) -> [u32; 3] {
        let t = &mut self.table;
        [
            t.intern(&member.dc),
            t.intern(member.role.name()),
            t.intern(name),
        ]
    }

    fn forget_servers(&mut self) {
        self.table.truncate(self.shared);
    }
}

impl LabelCache<Symbols> {
    pub fn new(members: &[Member]) -> SeriesSymbols {
        SeriesSymbols::with_labels(members, &ConstLabels::default())
    }

    /// The symbols of `members`, each series also labelled with `consts`.
    pub fn with_labels(members: &[Member], consts: &ConstLabels) -> SeriesSymbols {
        LabelCache::render(members, Symbols::new(consts))
    }
}

impl Symbols {
    fn new(const_labels: &ConstLabels) -> Symbols {
        let mut t = Interned::new();
        let name = t.intern("__name__");
        let named = |t: &mut Interned, n: &str| [name, t.intern(n)];
        let names = Family::ALL
            .iter()
            .map(|f| f.part_names().map(|n| named(&mut t, n)))
            .collect();
        let help = Family::ALL.iter().map(|f| t.intern(f.help())).collect();
        let le = t.intern("le");
        let buckets = bucket_bounds().map(|b| [le, t.intern(&b)]).collect();
        let status = t.intern("status");
        let statuses = STATUSES.map(|s| [status, t.intern(s)]);
        let (dc, role, server) = (t.intern("dc"), t.intern("role"), t.intern("server"));
        let (kind, target) = (t.intern("kind"), t.intern("target"));
        let consts = const_labels
            .iter()
            .map(|(n, v)| [t.intern(n), t.intern(v)])
            .collect();
        Symbols {
            shared: t.strings.len(),
            table: t,
            dc,
            role,
            server,
            kind,
            target,
            names,
            help,
            buckets,
            statuses,
            consts,
        }
    }

    /// Sorts the label pairs of `labels` by name, as the spec asks, when constant labels
    /// may have broken the fixed order.
    fn sort_if_needed(&self, labels: &mut [Sym]) {
        if self.consts.is_empty() {
            return;
        }
        let text = |sym: &Sym| match *sym {
            Sym::Fixed(g) => self.table.strings[g as usize].clone(),
            Sym::Text(t) => t.into(),
        };
        let mut pairs: Vec<[Sym; 2]> = labels.chunks(2).map(|p| [p[0], p[1]]).collect();
        pairs.sort_by_key(|p| text(&p[0]));
        for (slot, pair) in labels.chunks_mut(2).zip(pairs) {
            slot.copy_from_slice(&pair);
        }
    }
}

/// A label value the run's table may not have (an incident's target): found there, or
/// added to the request's own symbols.
#[derive(Clone, Copy)]
enum Sym<'a> {
    Fixed(u32),
    Text(&'a str),
}

/// Writes `Request`s of at most `max_series` series each, each with the symbols its
/// series reference and no others.
struct RequestWriter<'a> {
    symbols: &'a SeriesSymbols,
    max_series: usize,
    done: Vec<(Vec<u8>, usize)>,
    /// The request's `symbols` entries so far, `""` first.
    symbol_bytes: Vec<u8>,
    /// Its `timeseries` entries so far.
    series_bytes: Vec<u8>,
    series: usize,
    /// Per interned string: its index in this request's symbols, 0 while unsent (the
    /// empty string is 0 in both, and never needs mapping).
    local: Vec<u32>,
    /// The interned strings this request sent, to clear `local` for the next one.
    sent: Vec<u32>,
    /// Strings outside the table that this request sent, with their indices.
    extra: Vec<(String, u32)>,
    next: u32,
    refs: Vec<u8>,
}

impl<'a> RequestWriter<'a> {
    fn new(symbols: &'a SeriesSymbols, max_series: usize) -> RequestWriter<'a> {
        let mut w = RequestWriter {
            symbols,
            max_series: max_series.max(1),
            done: Vec::new(),
            symbol_bytes: Vec::new(),
            series_bytes: Vec::new(),
            series: 0,
            local: vec![0; symbols.renderer().table.strings.len()],
            sent: Vec::new(),
            extra: Vec::new(),
            next: 1,
            refs: Vec::with_capacity(32),
        };
        w.start();
        w
    }

    fn start(&mut self) {
        for g in self.sent.drain(..) {
            self.local[g as usize] = 0;
        }
        self.extra.clear();
        self.symbol_bytes.clear();
        put_bytes(&mut self.symbol_bytes, TAG_SYMBOLS, b"");
        self.next = 1;
        self.series = 0;
    }

    fn finish_request(&mut self) {
        let mut request = Vec::with_capacity(self.symbol_bytes.len() + self.series_bytes.len());
        request.extend_from_slice(&self.symbol_bytes);
        request.append(&mut self.series_bytes);
        self.done.push((request, self.series));
        self.start();
    }

    /// This request's index of `sym`, sending the string on first use.
    fn local(&mut self, sym: Sym) -> u32 {
        let global = match sym {
            Sym::Fixed(g) => g,
            Sym::Text(s) => match self.symbols.renderer().table.index.get(s) {
                Some(&g) => g,
                None => {
                    if let Some(&(_, i)) = self.extra.iter().find(|(e, _)| e == s) {
                        return i;
                    }
                    let i = self.next;
                    self.next += 1;
                    put_bytes(&mut self.symbol_bytes, TAG_SYMBOLS, s.as_bytes());
                    self.extra.push((s.to_string(), i));
                    return i;
                }
            },
        };
        if global == 0 {
            return 0;
        }
        let slot = &mut self.local[global as usize];
        if *slot == 0 {
            *slot = self.next;
            self.next += 1;
            self.sent.push(global);
            let text = &self.symbols.renderer().table.strings[global as usize];
            put_bytes(&mut self.symbol_bytes, TAG_SYMBOLS, text.as_bytes());
        }
        *slot
    }

    /// One series: `labels` as name, value refs in name order, one sample, its family's
    /// metadata, and the created time of a counter or histogram.
    fn series(
        &mut self,
        labels: &[Sym],
        family: Family,
        value: f64,
        timestamp_ms: i64,
        created_ms: Option<i64>,
    ) {
        if self.series == self.max_series {
            self.finish_request();
        }
        let mut refs = std::mem::take(&mut self.refs);
        refs.clear();
        for &l in labels {
            let i = self.local(l);
            put_varint(&mut refs, u64::from(i));
        }
        let help = self.local(Sym::Fixed(self.symbols.renderer().help[family as usize]));
        let kind = metric_type(family);
        let metadata_len = 2 + varint_len(kind) + varint_len(u64::from(help));
        let (sample, sample_len) = encode_sample(value, timestamp_ms);
        let mut len = 1 + varint_len(refs.len() as u64) + refs.len();
        len += sample_len + 2 + metadata_len;
        if let Some(ms) = created_ms {
            len += 1 + varint_len(ms as u64);
        }
        let out = &mut self.series_bytes;
        out.reserve(len + 1 + varint_len(len as u64));
        out.push(TAG_TIMESERIES);
        put_varint(out, len as u64);
        put_bytes(out, TAG_LABELS_REFS, &refs);
        out.extend_from_slice(&sample[..sample_len]);
        out.push(TAG_METADATA);
        out.push(metadata_len as u8);
        out.push(TAG_TYPE);
        put_varint(out, kind);
        out.push(TAG_HELP_REF);
        put_varint(out, u64::from(help));
        if let Some(ms) = created_ms {
            out.push(TAG_CREATED);
            put_varint(out, ms as u64);
        }
        self.refs = refs;
        self.series += 1;
    }

    fn finish(mut self) -> Vec<(Vec<u8>, usize)> {
        if self.series > 0 {
            self.finish_request();
        }
        self.done
    }
}

/// A counter's or histogram's series, held until the walk tells its created time.
#[derive(Clone, Copy)]
struct Pending {
    family: Family,
    server: usize,
    part: Part,
    extra: Extra,
    value: f64,
}

/// Turns the walk's series into `TimeSeries`, timestamped with the frame's time.
struct FrameWriter<'w, 'a> {
    requests: &'w mut RequestWriter<'a>,
    timestamp_ms: i64,
    pending: Vec<Pending>,
}

impl FrameWriter<'_, '_> {
    fn write(&mut self, p: Pending, created_ms: Option<i64>) {
        let cache = self.requests.symbols;
        let s = cache.renderer();
        let name = match p.part {
            Part::Created => return,
            part => s.names[p.family as usize][part as usize],
        };
        let [dc, role, server] = *cache.server(p.server);
        let f = Sym::Fixed;
        let mut labels = vec![f(0); 12 + 2 * s.consts.len()];
        let mut n = 0;
        let mut push = |pair: Pair| {
            labels[n] = f(pair[0]);
            labels[n + 1] = f(pair[1]);
            n += 2;
        };
        // Label names sorted, as the spec asks: __name__, dc, le, role, server, status.
        push(name);
        push([s.dc, dc]);
        if let Extra::Le(b) = p.extra {
            push(s.buckets[b]);
        }
        push([s.role, role]);
        push([s.server, server]);
        if let Extra::Status(class) = p.extra {
            push(s.statuses[class]);
        }
        for &pair in &s.consts {
            push(pair);
        }
        s.sort_if_needed(&mut labels[..n]);
        self.requests.series(
            &labels[..n],
            p.family,
            p.value,
            self.timestamp_ms,
            created_ms,
        );
    }

    /// Series whose created time never came (a walk without `_created`) go without it.
    fn flush(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.write(p, None);
        }
    }
}

/// `created_timestamp` from the walk's `_created` value (seconds); 0 would mean unset,
/// so the epoch itself is sent as 1 ms, as the spec asks.
fn created_ms(seconds: f64) -> Option<i64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(((seconds * 1000.0).round() as i64).max(1))
}

impl SeriesSink for FrameWriter<'_, '_> {
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    ) {
        let p = Pending {
            family,
            server,
            part,
            extra,
            value,
        };
        match part {
            // The walk tells a counter's or histogram's `_created` right after its series.
            Part::Created => {
                let created = created_ms(value);
                for p in std::mem::take(&mut self.pending) {
                    self.write(p, created);
                }
            }
            _ if family.created_name().is_some() => self.pending.push(p),
            _ => self.write(p, None),
        }
    }

    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64) {
        let s = self.requests.symbols.renderer();
        let [name, value_ref] = s.names[family as usize][Part::Value as usize];
        let mut labels = vec![
            Sym::Fixed(name),
            Sym::Fixed(value_ref),
            Sym::Fixed(s.kind),
            Sym::Text(kind),
            Sym::Fixed(s.target),
            Sym::Text(target),
        ];
        for &[n, v] in &s.consts {
            labels.extend([Sym::Fixed(n), Sym::Fixed(v)]);
        }
        s.sort_if_needed(&mut labels);
        self.requests
            .series(&labels, family, value, self.timestamp_ms, None);
    }
}

/// The fleet's series at `frame` as encoded `Request`s of at most `max_series` series
/// each, with their series counts: the same series as 1.0's, with metadata and created
/// times.
pub fn write_requests(
    frame: &Frame,
    symbols: &SeriesSymbols,
    max_series: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut w = RequestWriter::new(symbols, max_series);
    let mut sink = FrameWriter {
        requests: &mut w,
        timestamp_ms: frame.time_ms,
        pending: Vec::new(),
    };
    for family in Family::ALL {
        visit_family(&mut sink, family, frame, true);
        sink.flush();
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FleetParams, FleetSpec, members};

    fn frame(servers: u32) -> (Frame, SeriesSymbols) {
        let params = FleetParams::default();
        let t0 = 1_795_521_600_000;
        let mut tl = FleetSpec::new(&params, 1, members(&params, servers, 0..servers)).timeline(t0);
        let symbols = SeriesSymbols::new(tl.members());
        (tl.at(t0 + 7_500), symbols)
    }

    /// The strings of an encoded request's `symbols`, in order.
    fn symbols_of(request: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < request.len() && request[at] == TAG_SYMBOLS {
            at += 1;
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                let b = request[at];
                at += 1;
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            out.push(String::from_utf8(request[at..at + len].to_vec()).unwrap());
            at += len;
        }
        out
    }

    #[test]
    fn a_series_is_encoded_as_protobuf_says() {
        let symbols = SeriesSymbols::new(&[]);
        let mut w = RequestWriter::new(&symbols, 10);
        let [name, up] = symbols.renderer().names[Family::Up as usize][Part::Value as usize];
        w.series(
            &[Sym::Fixed(name), Sym::Fixed(up)],
            Family::Up,
            1.0,
            1000,
            None,
        );
        let w2 = w.finish();
        let (request, 1) = &w2[0] else {
            panic!("one series")
        };
        let help = Family::Up.help();
        assert_eq!(symbols_of(request), ["", "__name__", "app_server_up", help]);
        let mut expected = vec![0x22, 0];
        put_bytes(&mut expected, 0x22, b"__name__");
        put_bytes(&mut expected, 0x22, b"app_server_up");
        put_bytes(&mut expected, 0x22, help.as_bytes());
        // timeseries: refs [1, 2]; sample 1.0 at 1000; metadata gauge, help 3.
        expected.extend([0x2a, 24, 0x0a, 2, 1, 2, 0x12, 12, 0x09]);
        expected.extend(1.0f64.to_le_bytes());
        expected.extend([0x10, 0xe8, 0x07, 0x2a, 4, 0x08, 2, 0x18, 3]);
        assert_eq!(request, &expected);
    }

    #[test]
    fn each_request_sends_only_the_symbols_it_uses_once_each() {
        let (frame, symbols) = frame(200);
        let requests = write_requests(&frame, &symbols, 1_000);
        assert!(requests.len() > 3, "{} requests", requests.len());
        for (request, _) in &requests {
            let sent = symbols_of(request);
            assert_eq!(sent[0], "");
            let unique: std::collections::BTreeSet<&String> = sent.iter().collect();
            assert_eq!(unique.len(), sent.len(), "deduplicated");
            // Fewer than all 200 servers' names in a request of 1,000 series: a slice.
            assert!(
                sent.len() < symbols.renderer().table.strings.len(),
                "{}",
                sent.len()
            );
        }
    }

    #[test]
    fn created_times_are_milliseconds_and_never_zero() {
        assert_eq!(created_ms(1.5), Some(1500));
        assert_eq!(created_ms(0.0), Some(1));
        assert_eq!(created_ms(f64::NAN), None);
        assert_eq!(created_ms(-1.0), None);
    }
}
