//! fleetsim: a simulated server fleet for Prometheus.

pub mod cli;
pub mod config;
pub mod error;
pub mod exporter;
pub mod exposition;
pub mod history;
pub mod model;
pub mod protobuf;
pub mod remote_write;
pub mod units;
