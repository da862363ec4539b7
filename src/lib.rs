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

/// The cores this process may use, looked up once: `available_parallelism` reads the
/// cgroup's files on every call (tens of system calls), and a CSV history steps its fleet
/// thousands of times a second.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
