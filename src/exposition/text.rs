use crate::model::server::{Counters, LATENCY_BUCKETS};
use crate::model::{Frame, Member, Snapshot};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Each server's labels, rendered once: `server="srv-01",dc="dc1",role="web"`.
#[derive(Debug, Clone)]
pub struct FleetLabels {
    servers: Vec<Box<[u8]>>,
    /// `,le="0.005"` and so on, then `,le="+Inf"`.
    buckets: Vec<Box<[u8]>>,
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

impl FleetLabels {
    pub fn new(members: &[Member]) -> FleetLabels {
        let servers = members
            .iter()
            .map(|m| {
                let mut s = String::with_capacity(48);
                for (i, (name, value)) in [
                    ("server", m.name.as_str()),
                    ("dc", &m.dc),
                    ("role", m.role.name()),
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(name);
                    s.push_str("=\"");
                    escape_label_value(value, &mut s);
                    s.push('"');
                }
                s.into_bytes().into_boxed_slice()
            })
            .collect();
        let mut buckets: Vec<Box<[u8]>> = LATENCY_BUCKETS
            .iter()
            .map(|le| format!(",le=\"{le}\"").into_bytes().into_boxed_slice())
            .collect();
        buckets.push(b",le=\"+Inf\"".to_vec().into_boxed_slice());
        FleetLabels { servers, buckets }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
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

/// Writes samples; `timestamp` (with its leading space) follows each value when the
/// samples are history rather than a scrape.
pub struct SampleWriter<'a> {
    out: &'a mut Vec<u8>,
    floats: ryu::Buffer,
    timestamp: &'a [u8],
    /// Also write OpenMetrics' `_created` samples.
    created: bool,
}

impl<'a> SampleWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>, timestamp: &'a [u8]) -> SampleWriter<'a> {
        SampleWriter {
            out,
            floats: ryu::Buffer::new(),
            timestamp,
            created: false,
        }
    }

    /// Writes OpenMetrics' `_created` sample after each counter and histogram.
    pub fn with_created(mut self) -> Self {
        self.created = true;
        self
    }

    #[inline]
    fn sample(&mut self, name: &str, labels: &[u8], extra: &[u8], value: f64) {
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'{');
        self.out.extend_from_slice(labels);
        self.out.extend_from_slice(extra);
        self.out.extend_from_slice(b"} ");
        if value == value.trunc() && value.abs() < 1e15 {
            // Whole numbers (flags, most counters' early values) print without ".0".
            let mut ints = itoa::Buffer::new();
            self.out
                .extend_from_slice(ints.format(value as i64).as_bytes());
        } else {
            self.out
                .extend_from_slice(self.floats.format(value).as_bytes());
        }
        self.out.extend_from_slice(self.timestamp);
        self.out.push(b'\n');
    }

    /// Every sample of `family` at `frame`. A server that is down has only
    /// `app_server_up 0`: its other series are absent, as they are for a dead host.
    pub fn family(&mut self, family: Family, frame: &Frame, labels: &FleetLabels) {
        let name = family.name();
        let created = family.created_name().filter(|_| self.created);
        let gauge = |s: &mut Self, signal: fn(&Snapshot) -> &Vec<f64>| {
            for (i, l) in labels.servers.iter().enumerate() {
                if frame.up(i) {
                    s.sample(name, l, b"", frame.value(i, signal));
                }
            }
        };
        let counter = |s: &mut Self, count: fn(&Counters) -> f64| {
            for (i, l) in labels.servers.iter().enumerate() {
                if frame.up(i) {
                    s.sample(name, l, b"", frame.counter(i, count));
                    if let Some(created) = created {
                        s.sample(created, l, b"", frame.counter(i, |c| c.created));
                    }
                }
            }
        };
        match family {
            Family::Up => {
                for (i, l) in labels.servers.iter().enumerate() {
                    self.sample(name, l, b"", if frame.up(i) { 1.0 } else { 0.0 });
                }
            }
            Family::Cpu => gauge(self, |s| &s.cpu),
            Family::Memory => gauge(self, |s| &s.memory),
            Family::Disk => gauge(self, |s| &s.disk),
            Family::RequestsPerSecond => gauge(self, |s| &s.rps),
            Family::Requests => {
                const STATUSES: [&[u8]; 3] =
                    [b",status=\"2xx\"", b",status=\"4xx\"", b",status=\"5xx\""];
                for (i, l) in labels.servers.iter().enumerate() {
                    if frame.up(i) {
                        for (class, status) in STATUSES.iter().enumerate() {
                            self.sample(name, l, status, frame.counter(i, |c| c.requests[class]));
                            if let Some(created) = created {
                                self.sample(created, l, status, frame.counter(i, |c| c.created));
                            }
                        }
                    }
                }
            }
            Family::RequestDuration => {
                for (i, l) in labels.servers.iter().enumerate() {
                    if !frame.up(i) {
                        continue;
                    }
                    for (b, le) in labels.buckets.iter().enumerate() {
                        let count = if b < LATENCY_BUCKETS.len() {
                            frame.counter(i, |c| c.duration_buckets[b])
                        } else {
                            frame.counter(i, |c| c.duration_count)
                        };
                        self.sample("app_request_duration_seconds_bucket", l, le, count);
                    }
                    let sum = frame.counter(i, |c| c.duration_sum);
                    self.sample("app_request_duration_seconds_sum", l, b"", sum);
                    let count = frame.counter(i, |c| c.duration_count);
                    self.sample("app_request_duration_seconds_count", l, b"", count);
                    if let Some(created) = created {
                        self.sample(created, l, b"", frame.counter(i, |c| c.created));
                    }
                }
            }
            Family::NetworkReceive => counter(self, |c| c.received_bytes),
            Family::NetworkTransmit => counter(self, |c| c.transmitted_bytes),
            Family::LastDeploy => {
                for (i, l) in labels.servers.iter().enumerate() {
                    if frame.up(i) {
                        self.sample(name, l, b"", frame.last_deploy(i));
                    }
                }
            }
            Family::IncidentActive => {
                // One series per kind and target, however many incidents share them.
                let mut seen: Vec<Vec<u8>> = Vec::new();
                for incident in frame.active_incidents() {
                    let mut l = String::from("kind=\"");
                    escape_label_value(incident.kind.name(), &mut l);
                    l.push_str("\",target=\"");
                    escape_label_value(&incident.target.to_string(), &mut l);
                    l.push('"');
                    let l = l.into_bytes();
                    if !seen.contains(&l) {
                        self.sample(name, &l, b"", 1.0);
                        seen.push(l);
                    }
                }
            }
        }
    }
}

/// Appends the fleet's series at `frame` to `out`, in the text format (0.0.4).
pub fn encode_fleet(out: &mut Vec<u8>, frame: &Frame, labels: &FleetLabels) {
    for family in Family::ALL {
        let name = family.name();
        for part in [
            "# HELP ",
            name,
            " ",
            family.help(),
            "\n# TYPE ",
            name,
            " ",
            family.kind(),
            "\n",
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        SampleWriter::new(out, b"").family(family, frame, labels);
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Appends the fleet's series at `frame` to `out` as OpenMetrics 1.0: counter families
/// named without `_total`, `_created` samples, and no `# EOF` (the caller ends the
/// exposition, after any other series).
pub fn encode_fleet_openmetrics(out: &mut Vec<u8>, frame: &Frame, labels: &FleetLabels) {
    for family in Family::ALL {
        let name = family.openmetrics_name();
        for part in [
            "# TYPE ",
            name,
            " ",
            family.kind(),
            "\n# HELP ",
            name,
            " ",
            family.help(),
            "\n",
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        SampleWriter::new(out, b"")
            .with_created()
            .family(family, frame, labels);
    }
}
