//! Prometheus remote write 1.0: every interval, the latest published frame's series (the
//! scrape's) are sent to a receiver (Prometheus, Mimir, Thanos Receive, VictoriaMetrics)
//! as snappy-compressed protobuf `WriteRequest`s over HTTP POST.
//!
//! Failures follow the spec: a 5xx or a 429 is retried with exponential backoff (250 ms
//! doubling to 10 s, or the receiver's `Retry-After`), until the next interval's batch is
//! due, when the old one is dropped; any other 4xx is logged and never retried.

mod client;
pub mod proto;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, Opts};
use tokio::time::{Instant, MissedTickBehavior};

pub use client::Endpoint;
use client::{Answer, Client};
pub use proto::{SeriesLabels, write_requests};

use crate::exposition::ConstLabels;
use crate::model::{Frame, Member};

/// Series per request: about 1.2 MB of protobuf, well under receivers' limits (32 MiB
/// for VictoriaMetrics, 100 MiB for Mimir) and about what Prometheus itself batches.
pub const MAX_SERIES_PER_REQUEST: usize = 10_000;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest one attempt may take (connect, send, answer), within the interval.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The pusher's own series, served with the exporter's.
#[derive(Clone)]
struct Metrics {
    requests: IntCounterVec,
    samples: IntCounter,
}

pub struct Pusher {
    client: Client,
    interval: Duration,
    labels: Arc<SeriesLabels>,
    metrics: Metrics,
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
        Pusher {
            client: Client::new(endpoint),
            interval,
            labels: Arc::new(SeriesLabels::with_labels(members, consts)),
            metrics: Metrics { requests, samples },
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
            "remote write to {} every {}",
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
                Arc::make_mut(&mut self.labels).refresh(&frame);
            }
            let labels = self.labels.clone();
            let encode = tokio::task::spawn_blocking(move || {
                write_requests(&frame, &labels, MAX_SERIES_PER_REQUEST)
                    .into_iter()
                    .map(|(proto, series)| {
                        let compressed = snap::raw::Encoder::new()
                            .compress_vec(&proto)
                            .expect("snappy compresses any input under 4 GiB");
                        (Bytes::from(compressed), series)
                    })
                    .collect::<Vec<_>>()
            });
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
            let deadline = due + self.interval;
            let send = async {
                for (body, series) in batch {
                    match self.send(body, series, deadline).await {
                        Outcome::Sent => {}
                        // The rest of the batch would fare the same.
                        Outcome::Rejected | Outcome::GaveUp => break,
                    }
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = send => {}
            }
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
                    body: text,
                })) => {
                    self.metrics
                        .requests
                        .with_label_values(&[status.as_str()])
                        .inc();
                    if status.is_success() {
                        self.metrics.samples.inc_by(series as u64);
                        tracing::debug!(series, "remote write: {status}");
                        return Outcome::Sent;
                    }
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        tracing::warn!(
                            "remote write to {} rejected ({status}), not retried: {text}",
                            self.client.endpoint()
                        );
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
