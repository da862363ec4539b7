//! fleetsim: a simulated server fleet for Prometheus.

pub mod model;
pub mod units;
