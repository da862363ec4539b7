//! The wall clock, read in one place: the model takes instants as arguments and never reads
//! the time itself, so only the edges (the exporter's ticks, remote write's `Retry-After`,
//! the history's default end) call this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in unix milliseconds; 0 on a clock set before 1970.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
