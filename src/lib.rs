//! fleetsim: a simulated server fleet for Prometheus.

pub mod model;
pub mod units;
pub mod exposition;
pub mod config;
pub mod cli;
pub mod error;
pub mod exporter;
pub mod history;
