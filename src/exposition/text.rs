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

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    floats: ryu::Buffer,
}

impl Writer<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        for part in [
            "# HELP ",
            name,
            " ",
            help,
            "\n# TYPE ",
            name,
            " ",
            kind,
            "\n",
        ] {
            self.out.extend_from_slice(part.as_bytes());
        }
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
        self.out.push(b'\n');
    }
}

/// A gauge read from one of the snapshot's arrays.
fn gauge(
    w: &mut Writer,
    frame: &Frame,
    labels: &FleetLabels,
    name: &str,
    help: &str,
    signal: fn(&Snapshot) -> &Vec<f64>,
) {
    w.header(name, "gauge", help);
    for (i, l) in labels.servers.iter().enumerate() {
        if frame.up(i) {
            w.sample(name, l, b"", frame.value(i, signal));
        }
    }
}

fn counter(
    w: &mut Writer,
    frame: &Frame,
    labels: &FleetLabels,
    name: &str,
    help: &str,
    count: fn(&Counters) -> f64,
) {
    w.header(name, "counter", help);
    for (i, l) in labels.servers.iter().enumerate() {
        if frame.up(i) {
            w.sample(name, l, b"", frame.counter(i, count));
        }
    }
}

/// Appends the fleet's series at `frame` to `out`. A server that is down shows only
/// `app_server_up 0`: its other series are absent, as they are for a dead host.
pub fn encode_fleet(out: &mut Vec<u8>, frame: &Frame, labels: &FleetLabels) {
    let mut w = Writer {
        out,
        floats: ryu::Buffer::new(),
    };
    let w = &mut w;

    w.header(
        "app_server_up",
        "gauge",
        "Whether the server is up: 1 up, 0 down.",
    );
    for (i, l) in labels.servers.iter().enumerate() {
        w.sample("app_server_up", l, b"", if frame.up(i) { 1.0 } else { 0.0 });
    }
    gauge(
        w,
        frame,
        labels,
        "app_cpu_usage",
        "CPU used, percent (0 to 100).",
        |s| &s.cpu,
    );
    gauge(
        w,
        frame,
        labels,
        "app_memory_usage",
        "Memory used, percent (0 to 100).",
        |s| &s.memory,
    );
    gauge(
        w,
        frame,
        labels,
        "app_disk_usage",
        "Disk space used, percent (0 to 100).",
        |s| &s.disk,
    );
    gauge(
        w,
        frame,
        labels,
        "app_requests_per_second",
        "Requests served, per second.",
        |s| &s.rps,
    );

    w.header(
        "app_requests_total",
        "counter",
        "Requests served, by status class (count).",
    );
    const STATUSES: [&[u8]; 3] = [b",status=\"2xx\"", b",status=\"4xx\"", b",status=\"5xx\""];
    for (i, l) in labels.servers.iter().enumerate() {
        if frame.up(i) {
            for (class, status) in STATUSES.iter().enumerate() {
                w.sample(
                    "app_requests_total",
                    l,
                    status,
                    frame.counter(i, |c| c.requests[class]),
                );
            }
        }
    }

    w.header(
        "app_request_duration_seconds",
        "histogram",
        "Request duration, seconds.",
    );
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
            w.sample("app_request_duration_seconds_bucket", l, le, count);
        }
        w.sample(
            "app_request_duration_seconds_sum",
            l,
            b"",
            frame.counter(i, |c| c.duration_sum),
        );
        w.sample(
            "app_request_duration_seconds_count",
            l,
            b"",
            frame.counter(i, |c| c.duration_count),
        );
    }

    counter(
        w,
        frame,
        labels,
        "app_network_receive_bytes_total",
        "Network bytes received (bytes).",
        |c| c.received_bytes,
    );
    counter(
        w,
        frame,
        labels,
        "app_network_transmit_bytes_total",
        "Network bytes sent (bytes).",
        |c| c.transmitted_bytes,
    );

    w.header(
        "app_last_deploy_timestamp_seconds",
        "gauge",
        "Unix time of the last deploy of the server's role, seconds.",
    );
    for (i, l) in labels.servers.iter().enumerate() {
        if frame.up(i) {
            w.sample(
                "app_last_deploy_timestamp_seconds",
                l,
                b"",
                frame.last_deploy(i),
            );
        }
    }
}
