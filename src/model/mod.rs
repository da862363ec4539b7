//! The pure simulation: walks, coupling, events. No clock, no I/O: every value is a
//! function of the seed, the parameters, the server's index and the grid point.

pub mod effects;
pub mod event_log;
pub mod events;
pub mod fleet;
pub mod identity;
pub mod incidents;
pub mod noise;
pub mod params;
pub mod server;
pub mod shape;
pub mod spec;
pub mod timeline;
pub mod walk;

pub use event_log::{EventKind, FleetEvent};
pub use fleet::{Fleet, Snapshot};
pub use identity::{Member, members};
pub use incidents::{Incident, IncidentKind, IncidentSpec, Schedule, Target};
pub use params::{FleetParams, Role};
pub use server::Counting;
pub use shape::{Roster, SeriesMode, Shape, ShapeSpec};
pub use spec::FleetSpec;
pub use timeline::{Frame, Timeline};
#[cfg(test)]
mod properties;
