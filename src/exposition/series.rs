//! The fleet's series at one frame, walked once for every encoder.
//!
//! Which series exist, in what order, and what each one's value is are the same for the
//! text exposition, OpenMetrics, the protobuf exposition and remote write; only the bytes
//! differ. So the walk lives here, and an encoder is a [`SeriesSink`]: it is told each
//! series as indices (server, part, extra label) into labels it rendered once, and never
//! decides anything about the fleet itself.

use crate::model::server::{Counters, LATENCY_BUCKETS};
use crate::model::timeline::whole;
use crate::model::{Frame, Incident};

pub use super::signals::{BUCKET_COUNT, Dimension, Family, Kind, Part, Read, STATUSES, Signal};

/// The label a series has beyond its server's (or its incident's) labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// `status="2xx"`, `"4xx"`, `"5xx"`: an index into [`STATUSES`].
    Status(usize),
    /// `le`: an index into [`LATENCY_BUCKETS`], or its length for `+Inf`.
    Le(usize),
}

/// The `le` label's values, `+Inf` last.
pub fn bucket_bounds() -> impl Iterator<Item = String> {
    LATENCY_BUCKETS
        .iter()
        .map(|le| le.to_string())
        .chain(std::iter::once("+Inf".to_string()))
}

/// One server's histogram at a frame, whole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSample {
    /// The cumulative counts of the `le` buckets, `+Inf` (the count) last: whole numbers,
    /// non-decreasing across the buckets.
    pub cumulative: [f64; BUCKET_COUNT],
    /// The same before they were made whole. A native histogram splits each classic
    /// bucket's own count into its buckets; split from these, every native bucket only
    /// grows, where a difference of two whole numbers can step back by one.
    pub cumulative_exact: [f64; BUCKET_COUNT],
    pub sum: f64,
    /// The count, whole.
    pub count: f64,
    /// When it started from zero, unix seconds, if the walk tells `_created`.
    pub created: Option<f64>,
}

/// An encoder of series.
pub trait SeriesSink {
    /// One series of server `server` (an index into the frame's members).
    fn server_series(
        &mut self,
        family: Family,
        server: usize,
        part: Part,
        extra: Extra,
        value: f64,
    );

    /// One server's histogram. The text formats and remote write see it as its series:
    /// the buckets, `_sum`, `_count`, then `_created` when told; an encoder with a
    /// histogram message takes it whole.
    #[inline]
    fn histogram_series(&mut self, family: Family, server: usize, h: &HistogramSample) {
        for (b, &count) in h.cumulative.iter().enumerate() {
            self.server_series(family, server, Part::Bucket, Extra::Le(b), count);
        }
        self.server_series(family, server, Part::Sum, Extra::None, h.sum);
        self.server_series(family, server, Part::Count, Extra::None, h.count);
        if let Some(at) = h.created {
            self.server_series(family, server, Part::Created, Extra::None, at);
        }
    }

    /// One `fleetsim_incident_active` series, labelled by kind and target.
    fn incident_series(&mut self, family: Family, kind: &str, target: &str, value: f64);
}

/// Tells `sink` every series of `family` at `frame`. A server that is down has only
/// `app_server_up 0`: its other series are absent, as they are for a dead host. A server
/// outside the fleet (the load-test modes) has no series at all. With
/// `created`, each counter and histogram is followed by its `_created` series.
pub fn visit_family(sink: &mut impl SeriesSink, family: Family, frame: &Frame, created: bool) {
    visit_family_servers(sink, family, frame, created, 0..frame.len());
}

/// [`visit_family`] for the servers in `servers` only (and the incident series with the
/// range that starts at 0): a family's series can be encoded in pieces, in order, on
/// several threads.
///
/// The family's table entry is read once; each way of reading the model has its own loop
/// over the servers, monomorphised for the sink.
pub fn visit_family_servers(
    sink: &mut impl SeriesSink,
    family: Family,
    frame: &Frame,
    created: bool,
    servers: std::ops::Range<usize>,
) {
    let servers = servers.start.min(frame.len())..servers.end.min(frame.len());
    let walk = Walk {
        family,
        frame,
        created,
        servers,
    };
    match family.signal().read {
        Read::Up => walk.up(sink),
        Read::Blended(signal) => walk.gauge(sink, |i| frame.value(i, signal)),
        Read::Held(signal) => walk.gauge(sink, |i| signal(&frame.before)[i]),
        Read::Counter(count) => walk.counter(sink, count),
        Read::Histogram => walk.histogram(sink),
        Read::Incidents => walk.incidents(sink),
    }
}

/// One family's walk over a range of servers.
struct Walk<'a> {
    family: Family,
    frame: &'a Frame,
    created: bool,
    servers: std::ops::Range<usize>,
}

impl Walk<'_> {
    fn servers_up(&self) -> impl Iterator<Item = usize> + '_ {
        self.servers.clone().filter(|&i| self.frame.up(i))
    }

    /// When server `i`'s counters started from zero, if the walk tells it.
    fn created_at(&self, i: usize) -> Option<f64> {
        self.created.then(|| self.frame.counter(i, |c| c.created))
    }

    /// Every server in the fleet, up or not.
    fn up(&self, sink: &mut impl SeriesSink) {
        for i in self.servers.clone().filter(|&i| self.frame.present(i)) {
            let up = if self.frame.up(i) { 1.0 } else { 0.0 };
            sink.server_series(self.family, i, Part::Value, Extra::None, up);
        }
    }

    fn gauge(&self, sink: &mut impl SeriesSink, value: impl Fn(usize) -> f64) {
        for i in self.servers_up() {
            sink.server_series(self.family, i, Part::Value, Extra::None, value(i));
        }
    }

    /// A counter's series per server (one per status for [`Dimension::Status`]), each
    /// followed by its `_created` when told.
    fn counter(&self, sink: &mut impl SeriesSink, count: fn(&Counters, usize) -> f64) {
        let by_status = self.family.dimension() == Dimension::Status;
        let values = if by_status { STATUSES.len() } else { 1 };
        for i in self.servers_up() {
            for v in 0..values {
                let extra = if by_status {
                    Extra::Status(v)
                } else {
                    Extra::None
                };
                let value = self.frame.count(i, |c| count(c, v));
                sink.server_series(self.family, i, Part::Value, extra, value);
                if let Some(at) = self.created_at(i) {
                    sink.server_series(self.family, i, Part::Created, extra, at);
                }
            }
        }
    }

    fn histogram(&self, sink: &mut impl SeriesSink) {
        for i in self.servers_up() {
            let exact_count = self.frame.counter(i, |c| c.duration_count);
            let mut cumulative_exact = [exact_count; BUCKET_COUNT];
            for (b, slot) in cumulative_exact
                .iter_mut()
                .enumerate()
                .take(LATENCY_BUCKETS.len())
            {
                *slot = self.frame.counter(i, |c| c.duration_buckets[b]);
            }
            // Whole, and never less than the bucket below (which the blend could break by
            // an ulp, and flooring by one).
            let mut cumulative = [0.0; BUCKET_COUNT];
            let mut below = 0.0;
            for (slot, &exact) in cumulative.iter_mut().zip(&cumulative_exact) {
                below = whole(exact).max(below);
                *slot = below;
            }
            let h = HistogramSample {
                cumulative,
                cumulative_exact,
                sum: self.frame.counter(i, |c| c.duration_sum),
                count: below,
                created: self.created_at(i),
            };
            sink.histogram_series(self.family, i, &h);
        }
    }

    /// The incidents' series go with the family's first piece.
    fn incidents(&self, sink: &mut impl SeriesSink) {
        if self.servers.start != 0 {
            return;
        }
        for (kind, target) in incident_series(self.frame.active_incidents()) {
            sink.incident_series(self.family, kind, &target, 1.0);
        }
    }
}

/// One series per kind and target, however many incidents share them, in the order they
/// first appear.
fn incident_series(incidents: &[Incident]) -> Vec<(&'static str, String)> {
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    for incident in incidents {
        let series = (incident.kind.name(), incident.target.to_string());
        if !seen.contains(&series) {
            seen.push(series);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::model::noise::Key;
    use crate::model::{FleetParams, FleetSpec, members};

    /// Every count a walk tells (requests, bytes, buckets, histogram counts), by series,
    /// with when its server's counters last started from zero.
    #[derive(Default)]
    struct Counts {
        values: BTreeMap<(usize, usize, usize, usize), f64>,
        created: BTreeMap<usize, f64>,
    }

    impl SeriesSink for Counts {
        fn server_series(
            &mut self,
            family: Family,
            server: usize,
            part: Part,
            extra: Extra,
            value: f64,
        ) {
            let counted = matches!(family.kind(), Kind::Counter | Kind::Histogram);
            if !counted || part == Part::Sum {
                return;
            }
            if part == Part::Created {
                self.created.insert(server, value);
                return;
            }
            let extra = match extra {
                Extra::None => usize::MAX,
                Extra::Status(i) | Extra::Le(i) => i,
            };
            self.values
                .insert((family as usize, server, part as usize, extra), value);
        }

        fn incident_series(&mut self, _: Family, _: &str, _: &str, _: f64) {}
    }

    #[test]
    fn counts_are_whole_and_only_grow_between_restarts_at_any_instant() {
        // Frequent restarts and outages, so that counters start again within the run.
        let mut params = FleetParams::default();
        params.roles.web.lifecycle.deploy_every = Duration::from_secs(3_600);
        params.roles.api.lifecycle.mtbf = Duration::from_secs(4 * 3_600);
        let servers = 12;
        let t0 = 1_795_521_600_000;
        let mut timeline =
            FleetSpec::new(&params, 5, members(&params, servers, 0..servers)).timeline(t0);
        let mut draws = Key::from_seed(11).draws(0);
        let (mut t, mut previous) = (t0, Counts::default());
        let (mut checked, mut restarts) = (0, 0);
        for _ in 0..4_000 {
            // Anywhere between grid points, a few seconds to half a minute on.
            t += 1 + (draws.uniform() * 30_000.0) as i64;
            let frame = timeline.at(t);
            let mut now = Counts::default();
            for family in Family::ALL {
                visit_family(&mut now, family, &frame, true);
            }
            for (&(family, server, part, extra), &value) in &now.values {
                let at = format!(
                    "{:?} part {part} {extra} of {server} at {t}",
                    Family::ALL[family]
                );
                assert_eq!(value, value.trunc(), "{at}: {value}");
                assert!(value >= 0.0, "{at}: {value}");
                if part == Part::Bucket as usize {
                    let count = now.values[&(family, server, Part::Count as usize, usize::MAX)];
                    assert!(value <= count, "{at}: {value} over the count {count}");
                    if extra > 0 {
                        let below = now.values[&(family, server, part, extra - 1)];
                        assert!(below <= value, "{at}: {below} in the bucket below");
                    }
                }
                let restarted = previous.created.get(&server) != now.created.get(&server);
                restarts += usize::from(restarted && part == Part::Count as usize);
                if let Some(&before) = previous.values.get(&(family, server, part, extra))
                    && !restarted
                {
                    assert!(before <= value, "{at}: {before} then {value}");
                    checked += 1;
                }
            }
            previous = now;
        }
        assert!(checked > 500_000, "{checked} checks");
        assert!(restarts > 10, "{restarts} restarts");
    }
}
