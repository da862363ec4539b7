//! The fleet's metric families, each declared once: its names, kind, unit, help, the label
//! its series add to a server's, and where its values come from in the model. Every
//! encoder (text, OpenMetrics, protobuf, remote write 1.0 and 2.0, the OpenMetrics
//! history) walks this table; none of them names a family's metadata itself, so a new
//! gauge family is one entry here.
//!
//! The CSV history is not a walk of families: its columns are a fixed schema of their own
//! (rates where the scrape has counters, latency percentiles, an error rate), which files
//! already written and their readers depend on, so a new family adds no CSV column.

use crate::model::Snapshot;
use crate::model::server::{Counters, LATENCY_BUCKETS};

/// What a family measures, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    /// The name the text formats' `# TYPE` lines give it.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }

    /// Counters and histograms start from zero at a known time (OpenMetrics' `_created`).
    pub const fn has_created(self) -> bool {
        !matches!(self, Kind::Gauge)
    }
}

/// The label a family's series have beyond their server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    None,
    /// `status`: one series per value of [`STATUSES`].
    Status,
    /// `le`: a histogram's buckets, [`BUCKET_COUNT`] of them.
    Le,
}

pub const STATUSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// The number of `le` values, `+Inf` included.
pub const BUCKET_COUNT: usize = LATENCY_BUCKETS.len() + 1;

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

/// Where a family's values come from in a frame of the model.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// `app_server_up`: 1 for a server that is up, 0 for one that is down; the only
    /// series a down server has.
    Up,
    /// A signal of the snapshots, blended between the two grid points around the frame.
    Blended(fn(&Snapshot) -> &Vec<f64>),
    /// A signal that holds from one grid point to the next (it steps, as a deploy's time).
    Held(fn(&Snapshot) -> &Vec<f64>),
    /// A counter, blended: for [`Dimension::Status`] it is told the status' index, else 0.
    Counter(fn(&Counters, usize) -> f64),
    /// The request-duration histogram: [`Counters`]' buckets, sum and count.
    Histogram,
    /// One series per kind and target of the incidents under way.
    Incidents,
}

/// One metric family.
#[derive(Debug)]
pub struct Signal {
    /// The name the text format gives it (a counter's with `_total`).
    pub name: &'static str,
    /// The name OpenMetrics gives it: a counter family's without `_total`.
    pub openmetrics_name: &'static str,
    pub kind: Kind,
    /// The unit, as its name's suffix says it (empty for ratios and flags).
    pub unit: &'static str,
    pub help: &'static str,
    pub dimension: Dimension,
    pub read: Read,
}

impl Signal {
    /// A gauge without extra labels, named the same in every format.
    const fn gauge(name: &'static str, unit: &'static str, help: &'static str, read: Read) -> Self {
        Signal {
            name,
            openmetrics_name: name,
            kind: Kind::Gauge,
            unit,
            help,
            dimension: Dimension::None,
            read,
        }
    }
}

/// Declares the families once: the enum that names them, in the order they are written,
/// and the table of what each one is.
macro_rules! families {
    ($($family:ident => $signal:expr,)*) => {
        /// The fleet's metric families, in the order they are written.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Family {
            $($family,)*
        }

        impl Family {
            pub const ALL: [Family; [$(Family::$family),*].len()] = [$(Family::$family),*];
        }

        static SIGNALS: [Signal; Family::ALL.len()] = [$($signal,)*];
    };
}

families! {
    Up => Signal::gauge(
        "app_server_up",
        "",
        "Whether the server is up: 1 up, 0 down.",
        Read::Up,
    ),
    Cpu => Signal::gauge(
        "app_cpu_usage",
        "",
        "CPU used, percent (0 to 100).",
        Read::Blended(|s| &s.cpu),
    ),
    Memory => Signal::gauge(
        "app_memory_usage",
        "",
        "Memory used, percent (0 to 100).",
        Read::Blended(|s| &s.memory),
    ),
    Disk => Signal::gauge(
        "app_disk_usage",
        "",
        "Disk space used, percent (0 to 100).",
        Read::Blended(|s| &s.disk),
    ),
    RequestsPerSecond => Signal::gauge(
        "app_requests_per_second",
        "",
        "Requests served, per second.",
        Read::Blended(|s| &s.rps),
    ),
    Requests => Signal {
        name: "app_requests_total",
        openmetrics_name: "app_requests",
        kind: Kind::Counter,
        unit: "",
        help: "Requests served, by status class (count).",
        dimension: Dimension::Status,
        read: Read::Counter(|c, status| c.requests[status]),
    },
    RequestDuration => Signal {
        name: "app_request_duration_seconds",
        openmetrics_name: "app_request_duration_seconds",
        kind: Kind::Histogram,
        unit: "seconds",
        help: "Request duration, seconds.",
        dimension: Dimension::Le,
        read: Read::Histogram,
    },
    NetworkReceive => Signal {
        name: "app_network_receive_bytes_total",
        openmetrics_name: "app_network_receive_bytes",
        kind: Kind::Counter,
        unit: "bytes",
        help: "Network bytes received (bytes).",
        dimension: Dimension::None,
        read: Read::Counter(|c, _| c.received_bytes),
    },
    NetworkTransmit => Signal {
        name: "app_network_transmit_bytes_total",
        openmetrics_name: "app_network_transmit_bytes",
        kind: Kind::Counter,
        unit: "bytes",
        help: "Network bytes sent (bytes).",
        dimension: Dimension::None,
        read: Read::Counter(|c, _| c.transmitted_bytes),
    },
    LastDeploy => Signal::gauge(
        "app_last_deploy_timestamp_seconds",
        "seconds",
        "Unix time of the last deploy of the server's role, seconds.",
        Read::Held(|s| &s.last_deploy),
    ),
    StartTime => Signal::gauge(
        "app_start_time_seconds",
        "seconds",
        "Unix time the server's process last started (a restart, deploy, reboot or the end of an outage), seconds.",
        Read::Held(|s| &s.start_time),
    ),
    IncidentActive => Signal::gauge(
        "fleetsim_incident_active",
        "",
        "Incidents under way, by kind and target: 1 while active.",
        Read::Incidents,
    ),
}

/// The names of a histogram's samples beyond its own: `_bucket`, `_sum`, `_count`, and
/// OpenMetrics' `_created` of counters and histograms. Built once from the table, so that
/// encoders index them rather than format them per series.
struct SampleNames {
    bucket: String,
    sum: String,
    count: String,
    created: Option<String>,
}

fn sample_names() -> &'static [SampleNames] {
    static NAMES: std::sync::OnceLock<Vec<SampleNames>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        SIGNALS
            .iter()
            .map(|s| SampleNames {
                bucket: format!("{}_bucket", s.name),
                sum: format!("{}_sum", s.name),
                count: format!("{}_count", s.name),
                created: s
                    .kind
                    .has_created()
                    .then(|| format!("{}_created", s.openmetrics_name)),
            })
            .collect()
    })
}

impl Family {
    /// What the family is: its entry in the table.
    #[inline]
    pub fn signal(self) -> &'static Signal {
        &SIGNALS[self as usize]
    }

    /// The name as the text format's HELP and TYPE lines give it (counters with `_total`).
    #[inline]
    pub fn name(self) -> &'static str {
        self.signal().name
    }

    /// The name as OpenMetrics gives it: a counter family is named without `_total`.
    pub fn openmetrics_name(self) -> &'static str {
        self.signal().openmetrics_name
    }

    pub fn kind(self) -> Kind {
        self.signal().kind
    }

    pub fn help(self) -> &'static str {
        self.signal().help
    }

    pub fn unit(self) -> &'static str {
        self.signal().unit
    }

    pub fn dimension(self) -> Dimension {
        self.signal().dimension
    }

    /// OpenMetrics' `_created` sample of a counter or histogram: when it started from zero.
    pub fn created_name(self) -> Option<&'static str> {
        sample_names()[self as usize].created.as_deref()
    }

    /// The names of its series by [`Part`], `Created` aside: its own, then a histogram's
    /// `_bucket`, `_sum` and `_count` (for other kinds, its own name again).
    #[inline]
    pub fn part_names(self) -> [&'static str; 4] {
        let n = &sample_names()[self as usize];
        match self.kind() {
            Kind::Histogram => [self.name(), &n.bucket, &n.sum, &n.count],
            Kind::Gauge | Kind::Counter => [self.name(); 4],
        }
    }

    /// The name of its series of `part`.
    #[inline]
    pub fn part_name(self, part: Part) -> &'static str {
        match part {
            Part::Created => self.created_name().unwrap_or(self.name()),
            part => self.part_names()[part as usize],
        }
    }

    /// About how many series a server has in this family, to cut a body into pieces of
    /// similar size.
    pub fn series_per_server(self) -> usize {
        match (self.signal().read, self.dimension()) {
            (Read::Incidents, _) => 0,
            (_, Dimension::None) => 1,
            (_, Dimension::Status) => STATUSES.len(),
            (_, Dimension::Le) => BUCKET_COUNT + 2,
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

    #[test]
    fn each_entry_is_consistent() {
        for family in Family::ALL {
            let s = family.signal();
            let counted = matches!(s.read, Read::Counter(_));
            assert_eq!(counted, s.kind == Kind::Counter, "{family:?}");
            let histogram = matches!(s.read, Read::Histogram);
            assert_eq!(histogram, s.kind == Kind::Histogram, "{family:?}");
            assert_eq!(histogram, s.dimension == Dimension::Le, "{family:?}");
            if s.dimension == Dimension::Status {
                assert!(counted, "{family:?}: only counters are read by status");
            }
            match s.kind {
                Kind::Counter => {
                    assert_eq!(s.name, format!("{}_total", s.openmetrics_name));
                }
                _ => assert_eq!(s.name, s.openmetrics_name, "{family:?}"),
            }
            if !s.unit.is_empty() {
                assert!(s.openmetrics_name.ends_with(s.unit), "{family:?}");
            }
        }
        assert_eq!(
            Family::RequestDuration.created_name(),
            Some("app_request_duration_seconds_created")
        );
        assert_eq!(
            Family::Requests.created_name(),
            Some("app_requests_created")
        );
        assert_eq!(Family::Cpu.created_name(), None);
        assert_eq!(
            Family::RequestDuration.part_name(Part::Count),
            "app_request_duration_seconds_count"
        );
        assert_eq!(Family::Cpu.part_name(Part::Value), "app_cpu_usage");
    }
}
