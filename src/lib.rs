//! fleetsim: a simulated server fleet for Prometheus.
//!
//! The modules form layers, each using only those below it:
//! - `machine`, `clock`, `units`, `protobuf`: leaves;
//! - `model`: the pure simulation;
//! - `exposition`, `gzip`, `remote_write`: encoding the model's frames;
//! - `config`, `error`, `settings`, `web_config`: the validated settings of a run, and the
//!   web config file (TLS, basic auth, headers);
//! - `exporter`, `history`, `report`: the commands, each taking its settings;
//! - `cli`: flags and the config file, turned into settings.

pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod exporter;
pub mod exposition;
pub mod gzip;
pub mod history;
pub mod machine;
pub mod model;
pub mod protobuf;
pub mod remote_write;
pub mod report;
pub mod settings;
pub mod units;
pub mod web_config;

/// Kept at the root for the model's callers: the function lives in [`machine`].
pub use machine::cores;
