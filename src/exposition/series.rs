//! The fleet's series at one frame, walked once for every encoder.
//!
//! Which series exist, in what order, and what each one's value is are the same for the
//! text exposition, OpenMetrics, the protobuf exposition and remote write; only the bytes
//! differ. So the walk lives here, and an encoder is a [`SeriesSink`]: it is told each
//! series as indices (server, part, extra label) into labels it rendered once, and never
//! decides anything about the fleet itself.

use crate::model::server::{Counters, LATENCY_BUCKETS};
use crate::model::{Frame, Incident, Snapshot};

/// Which of a family's names a series carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The family's own name (`app_cpu_usage`, `app_requests_total`).
    Value,
    /// A histogram's `_bucket`, `_sum` and `_count`.
    Bucket,
    Sum,
    Count,
    /// OpenMetrics' `_created`: when a counter or histogram started from zero.
    Created,
}

/// The label a series has beyond its server's (or its incident's) labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// `status="2xx"`, `"4xx"`, `"5xx"`: an index into [`STATUSES`].
    Status(usize),
    /// `le`: an index into [`LATENCY_BUCKETS`], or its length for `+Inf`.
    Le(usize),
}

pub const STATUSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// The number of `le` values, `+Inf` included.
pub const BUCKET_COUNT: usize = LATENCY_BUCKETS.len() + 1;

/// The `le` label's values, `+Inf` last.
pub fn bucket_bounds() -> impl Iterator<Item = String> {
    LATENCY_BUCKETS
        .iter()
        .map(|le| le.to_string())
        .chain(std::iter::once("+Inf".to_string()))
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
pub fn visit_family_servers(
    sink: &mut impl SeriesSink,
    family: Family,
    frame: &Frame,
    created: bool,
    servers: std::ops::Range<usize>,
) {
    let servers = servers.start.min(frame.len())..servers.end.min(frame.len());
    let gauge = |sink: &mut _, signal: fn(&Snapshot) -> &Vec<f64>| {
        for i in servers.clone().filter(|&i| frame.up(i)) {
            SeriesSink::server_series(
                sink,
                family,
                i,
                Part::Value,
                Extra::None,
                frame.value(i, signal),
            );
        }
    };
    let counter = |sink: &mut _, count: fn(&Counters) -> f64| {
        for i in servers.clone().filter(|&i| frame.up(i)) {
            SeriesSink::server_series(
                sink,
                family,
                i,
                Part::Value,
                Extra::None,
                frame.counter(i, count),
            );
            if created {
                let at = frame.counter(i, |c| c.created);
                SeriesSink::server_series(sink, family, i, Part::Created, Extra::None, at);
            }
        }
    };
    match family {
        Family::Up => {
            for i in servers.filter(|&i| frame.present(i)) {
                let up = if frame.up(i) { 1.0 } else { 0.0 };
                sink.server_series(family, i, Part::Value, Extra::None, up);
            }
        }
        Family::Cpu => gauge(sink, |s| &s.cpu),
        Family::Memory => gauge(sink, |s| &s.memory),
        Family::Disk => gauge(sink, |s| &s.disk),
        Family::RequestsPerSecond => gauge(sink, |s| &s.rps),
        Family::Requests => {
            for i in servers.clone().filter(|&i| frame.up(i)) {
                for class in 0..STATUSES.len() {
                    let count = frame.counter(i, |c| c.requests[class]);
                    sink.server_series(family, i, Part::Value, Extra::Status(class), count);
                    if created {
                        let at = frame.counter(i, |c| c.created);
                        sink.server_series(family, i, Part::Created, Extra::Status(class), at);
                    }
                }
            }
        }
        Family::RequestDuration => {
            for i in servers.clone().filter(|&i| frame.up(i)) {
                for b in 0..BUCKET_COUNT {
                    let count = match LATENCY_BUCKETS.get(b) {
                        Some(_) => frame.counter(i, |c| c.duration_buckets[b]),
                        None => frame.counter(i, |c| c.duration_count),
                    };
                    sink.server_series(family, i, Part::Bucket, Extra::Le(b), count);
                }
                let sum = frame.counter(i, |c| c.duration_sum);
                sink.server_series(family, i, Part::Sum, Extra::None, sum);
                let count = frame.counter(i, |c| c.duration_count);
                sink.server_series(family, i, Part::Count, Extra::None, count);
                if created {
                    let at = frame.counter(i, |c| c.created);
                    sink.server_series(family, i, Part::Created, Extra::None, at);
                }
            }
        }
        Family::NetworkReceive => counter(sink, |c| c.received_bytes),
        Family::NetworkTransmit => counter(sink, |c| c.transmitted_bytes),
        Family::LastDeploy => {
            for i in servers.clone().filter(|&i| frame.up(i)) {
                sink.server_series(family, i, Part::Value, Extra::None, frame.last_deploy(i));
            }
        }
        Family::IncidentActive if servers.start == 0 => {
            for (kind, target) in incident_series(frame.active_incidents()) {
                sink.incident_series(family, kind, &target, 1.0);
            }
        }
        Family::IncidentActive => {}
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

/// The fleet's metric families, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Up,
    Cpu,
    Memory,
    Disk,
    RequestsPerSecond,
    Requests,
    RequestDuration,
    NetworkReceive,
    NetworkTransmit,
    LastDeploy,
    IncidentActive,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Up,
        Family::Cpu,
        Family::Memory,
        Family::Disk,
        Family::RequestsPerSecond,
        Family::Requests,
        Family::RequestDuration,
        Family::NetworkReceive,
        Family::NetworkTransmit,
        Family::LastDeploy,
        Family::IncidentActive,
    ];

    /// The name as the text format's HELP and TYPE lines give it (counters with `_total`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Up => "app_server_up",
            Family::Cpu => "app_cpu_usage",
            Family::Memory => "app_memory_usage",
            Family::Disk => "app_disk_usage",
            Family::RequestsPerSecond => "app_requests_per_second",
            Family::Requests => "app_requests_total",
            Family::RequestDuration => "app_request_duration_seconds",
            Family::NetworkReceive => "app_network_receive_bytes_total",
            Family::NetworkTransmit => "app_network_transmit_bytes_total",
            Family::LastDeploy => "app_last_deploy_timestamp_seconds",
            Family::IncidentActive => "fleetsim_incident_active",
        }
    }

    /// The name as OpenMetrics gives it: a counter family is named without `_total`.
    pub fn openmetrics_name(self) -> &'static str {
        let name = self.name();
        match self.kind() {
            "counter" => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        }
    }

    /// OpenMetrics' `_created` sample of a counter or histogram: when it started from zero.
    pub fn created_name(self) -> Option<&'static str> {
        match self {
            Family::Requests => Some("app_requests_created"),
            Family::RequestDuration => Some("app_request_duration_seconds_created"),
            Family::NetworkReceive => Some("app_network_receive_bytes_created"),
            Family::NetworkTransmit => Some("app_network_transmit_bytes_created"),
            _ => None,
        }
    }

    /// About how many series a server has in this family, to cut a body into pieces of
    /// similar size.
    pub fn series_per_server(self) -> usize {
        match self {
            Family::Requests => STATUSES.len(),
            Family::RequestDuration => BUCKET_COUNT + 2,
            Family::IncidentActive => 0,
            _ => 1,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Family::Requests | Family::NetworkReceive | Family::NetworkTransmit => "counter",
            Family::RequestDuration => "histogram",
            _ => "gauge",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Family::Up => "Whether the server is up: 1 up, 0 down.",
            Family::Cpu => "CPU used, percent (0 to 100).",
            Family::Memory => "Memory used, percent (0 to 100).",
            Family::Disk => "Disk space used, percent (0 to 100).",
            Family::RequestsPerSecond => "Requests served, per second.",
            Family::Requests => "Requests served, by status class (count).",
            Family::RequestDuration => "Request duration, seconds.",
            Family::NetworkReceive => "Network bytes received (bytes).",
            Family::NetworkTransmit => "Network bytes sent (bytes).",
            Family::LastDeploy => "Unix time of the last deploy of the server's role, seconds.",
            Family::IncidentActive => "Incidents under way, by kind and target: 1 while active.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_familys_discriminant_is_its_place_in_all() {
        // Encoders index their per-family tables with `family as usize`.
        for (i, family) in Family::ALL.iter().enumerate() {
            assert_eq!(*family as usize, i, "{family:?}");
        }
    }
}
