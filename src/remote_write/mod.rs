//! Prometheus remote write: every interval, the latest published frame's series (the
//! scrape's) are sent to a receiver (Prometheus, Mimir, Thanos Receive, VictoriaMetrics)
//! as snappy-compressed protobuf over HTTP POST: 1.0's `prometheus.WriteRequest`, or
//! 2.0's `io.prometheus.write.v2.Request` (strings interned, metadata and created times),
//! which the receiver must be told to accept.
//!
//! Failures follow the spec: a 5xx or a 429 is retried with exponential backoff (250 ms
//! doubling to 10 s, or the receiver's `Retry-After`), until the next interval's batch is
//! due, when the old one is dropped; any other 4xx is logged and never retried.

mod client;
pub mod proto;
pub mod v2;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, Opts};
use tokio::time::{Instant, MissedTickBehavior};

pub use client::Endpoint;
use client::{Answer, Client};
pub use proto::{SeriesLabels, write_requests};
pub use v2::SeriesSymbols;

use crate::exposition::ConstLabels;
use crate::model::{Frame, Member};

/// Series per request: about 1.2 MB of protobuf, well under receivers' limits (32 MiB
/// for VictoriaMetrics, 100 MiB for Mimir) and about what Prometheus itself batches.
pub const MAX_SERIES_PER_REQUEST: usize = 10_000;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest one attempt may take (connect, send, answer), within the interval.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which remote write message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `prometheus.WriteRequest`, which every 1.x receiver accepts
    #[default]
    V1,
    /// `io.prometheus.write.v2.Request`: smaller, with metadata and created timestamps
    V2,
}

impl Protocol {
    pub fn content_type(self) -> &'static str {
        match self {
            // What 1.x receivers expect, as the 2.0 spec asks of senders talking to them.
            Protocol::V1 => "application/x-protobuf",
            Protocol::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        }
    }

    /// As `--remote-write-protocol` names it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "1.0",
            Protocol::V2 => "2.0",
        }
    }

    /// `X-Prometheus-Remote-Write-Version`.
    pub fn version(self) -> &'static str {
        match self {
            Protocol::V1 => "0.1.0",
            Protocol::V2 => "2.0.0",
        }
    }
}

/// The fleet's labels, encoded once for the protocol in use.
#[derive(Clone)]
enum Labels {
    V1(Arc<SeriesLabels>),
    V2(Arc<SeriesSymbols>),
}

impl Labels {
    fn is_current(&self, frame: &Frame) -> bool {
        match self {
            Labels::V1(l) => l.is_current(frame),
            Labels::V2(s) => s.is_current(frame),
        }
    }

    fn refresh(&mut self, frame: &Frame) {
        match self {
            Labels::V1(l) => Arc::make_mut(l).refresh(frame),
            Labels::V2(s) => Arc::make_mut(s).refresh(frame),
        }
    }

    fn write_requests(&self, frame: &Frame) -> Vec<(Vec<u8>, usize)> {
        match self {
            Labels::V1(l) => write_requests(frame, l, MAX_SERIES_PER_REQUEST),
            Labels::V2(s) => v2::write_requests(frame, s, MAX_SERIES_PER_REQUEST),
        }
    }
}

/// A frame's write requests, snappy-compressed as the spec asks, with their series counts.
fn compressed_requests(labels: &Labels, frame: &Frame) -> Vec<(Bytes, usize)> {
    labels
        .write_requests(frame)
        .into_iter()
        .map(|(proto, series)| {
            let compressed = snap::raw::Encoder::new()
                .compress_vec(&proto)
                .expect("snappy compresses any input under 4 GiB");
            (Bytes::from(compressed), series)
        })
        .collect()
}

/// The pusher's own series, served with the exporter's.
#[derive(Clone)]
struct Metrics {
    requests: IntCounterVec,
    samples: IntCounter,
}

pub struct Pusher {
    client: Client,
    protocol: Protocol,
    interval: Duration,
    labels: Labels,
    metrics: Metrics,
    /// Whether a 2.0 push answered without the written-samples header was logged.
    warned_unwritten: bool,
}

/// What became of one batch's request.
enum Outcome {
    Sent,
    /// A 4xx other than 429: the same request would fail again.
    Rejected,
    /// Still failing when the next batch is due.
    GaveUp,
}

impl Pusher {
    pub fn new(
        endpoint: Endpoint,
        protocol: Protocol,
        interval: Duration,
        members: &[Member],
        consts: &ConstLabels,
    ) -> Pusher {
        let requests = IntCounterVec::new(
            Opts::new(
                "fleetsim_remote_write_requests_total",
                "Remote write requests sent, by HTTP status (`error` when no answer).",
            ),
            &["code"],
        )
        .expect("valid metric");
        let samples = IntCounter::new(
            "fleetsim_remote_write_samples_total",
            "Samples the remote write receiver accepted (count).",
        )
        .expect("valid metric");
        let labels = match protocol {
            Protocol::V1 => Labels::V1(Arc::new(SeriesLabels::with_labels(members, consts))),
            Protocol::V2 => Labels::V2(Arc::new(SeriesSymbols::with_labels(members, consts))),
        };
        Pusher {
            client: Client::new(endpoint, protocol),
            protocol,
            interval,
            labels,
            metrics: Metrics { requests, samples },
            warned_unwritten: false,
        }
    }

    /// The pusher's own series, for the exporter's registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.metrics.requests.clone()),
            Box::new(self.metrics.samples.clone()),
        ]
    }

    /// Sends `latest()` every interval until `stop` resolves (at once, even mid-request).
    pub async fn run(mut self, latest: impl Fn() -> Arc<Frame>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        tracing::info!(
            "remote write {} to {} every {}",
            self.protocol.name(),
            self.client.endpoint(),
            humantime::format_duration(self.interval)
        );
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_sent = None;
        loop {
            let due = tokio::select! {
                _ = &mut stop => return,
                due = ticks.tick() => due,
            };
            let frame = latest();
            if last_sent == Some(frame.time_ms) {
                // No new tick since the last batch (an interval shorter than --tick).
                continue;
            }
            last_sent = Some(frame.time_ms);
            if !self.labels.is_current(&frame) {
                self.labels.refresh(&frame);
            }
            let labels = self.labels.clone();
            let encode = tokio::task::spawn_blocking(move || compressed_requests(&labels, &frame));
            let batch = tokio::select! {
                _ = &mut stop => return,
                batch = encode => match batch {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::error!("remote write: encoding failed: {e}");
                        continue;
                    }
                },
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = self.send_batch(batch, due + self.interval) => {}
            }
        }
    }

    /// Sends a batch's requests in order, until one fails for good or `deadline` passes.
    async fn send_batch(&mut self, batch: Vec<(Bytes, usize)>, deadline: Instant) {
        for (body, series) in batch {
            match self.send(body, series, deadline).await {
                Outcome::Sent => {}
                // The rest of the batch would fare the same.
                Outcome::Rejected | Outcome::GaveUp => break,
            }
        }
    }

    /// The samples a successful request wrote: all of them for 1.0, whose receivers do
    /// not say; for 2.0, what the receiver's header says, and none without it.
    fn written(&mut self, header: Option<u64>, series: usize, status: StatusCode) -> u64 {
        match (self.protocol, header) {
            (Protocol::V1, _) => series as u64,
            (Protocol::V2, Some(n)) => n,
            (Protocol::V2, None) => {
                // A 1.x receiver reads a 2.0 body as an empty 1.0 request (the fields
                // differ) and answers success, having stored nothing.
                if !std::mem::replace(&mut self.warned_unwritten, true) {
                    tracing::warn!(
                        "remote write to {} answered {status} without X-Prometheus-Remote-Write-Samples-Written: it may not speak remote write 2.0 and have stored nothing; if so, use --remote-write-protocol 1.0",
                        self.client.endpoint()
                    );
                }
                0
            }
        }
    }

    fn log_rejection(&self, status: StatusCode, text: &str) {
        let endpoint = self.client.endpoint();
        match (self.protocol, status.as_u16()) {
            (Protocol::V2, 415) => tracing::warn!(
                "remote write to {endpoint} refused remote write 2.0 ({status}): the receiver does not accept io.prometheus.write.v2.Request; use --remote-write-protocol 1.0 (not retried): {text}"
            ),
            // The spec's word for what a 1.x receiver answers a 2.0 request.
            (Protocol::V2, 400) => tracing::warn!(
                "remote write to {endpoint} rejected ({status}), not retried: {text} (a receiver that only speaks remote write 1.0 answers 400 too: then use --remote-write-protocol 1.0)"
            ),
            _ => tracing::warn!(
                "remote write to {endpoint} rejected ({status}), not retried: {text}"
            ),
        }
    }

    /// Sends one request, retrying 5xx, 429 and network errors until `deadline`.
    async fn send(&mut self, body: Bytes, series: usize, deadline: Instant) -> Outcome {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt =
                tokio::time::timeout(left.min(REQUEST_TIMEOUT), self.client.send(body.clone()));
            let (why, retry_after) = match attempt.await {
                Ok(Ok(Answer {
                    status,
                    retry_after,
                    samples_written,
                    body: text,
                })) => {
                    self.metrics
                        .requests
                        .with_label_values(&[status.as_str()])
                        .inc();
                    if status.is_success() {
                        let written = self.written(samples_written, series, status);
                        self.metrics.samples.inc_by(written);
                        tracing::debug!(series, written, "remote write: {status}");
                        return Outcome::Sent;
                    }
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        self.log_rejection(status, &text);
                        return Outcome::Rejected;
                    }
                    (format!("{status}: {text}"), retry_after)
                }
                Ok(Err(e)) => {
                    self.metrics.requests.with_label_values(&["error"]).inc();
                    (e, None)
                }
                Err(_) => {
                    self.metrics.requests.with_label_values(&["error"]).inc();
                    let why = if left < REQUEST_TIMEOUT {
                        "no answer before the next batch was due".to_string()
                    } else {
                        format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
                    };
                    (why, None)
                }
            };
            let wait = retry_after.unwrap_or(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if Instant::now() + wait >= deadline {
                tracing::warn!(
                    "remote write to {} failed ({why}); dropping the batch ({series} samples in this request), the next one is due",
                    self.client.endpoint()
                );
                return Outcome::GaveUp;
            }
            tracing::debug!(
                "remote write to {} failed ({why}); retrying in {}",
                self.client.endpoint(),
                humantime::format_duration(wait)
            );
            tokio::time::sleep(wait).await;
        }
    }
}
