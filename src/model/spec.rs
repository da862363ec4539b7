//! Everything a fleet is made from, named: where a fleet or a timeline starts.
//!
//! `FleetSpec::new(&params, seed, members)` is the fleet with the random incidents of
//! `params` only, every server always present, counting; `.schedule(..)`, `.shape(..)` and
//! `.counting(..)` change one of those, and `.timeline(time_ms)`, `.fleet_at_grid(grid)` or
//! `.fleet_at_time(time_ms)` build it (those live beside what they build).

use super::identity::Member;
use super::incidents::Schedule;
use super::params::FleetParams;
use super::server::Counting;
use super::shape::ShapeSpec;

/// The inputs of a fleet: with the same spec, the same values at every instant.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub params: FleetParams,
    pub seed: u64,
    pub members: Vec<Member>,
    /// The users' incidents, as if they had always been scheduled: those in the past of
    /// the start are replayed (an outage restarts the server, as it would have).
    pub schedule: Schedule,
    /// Servers joining and leaving, machines replaced, as if it had always been so.
    pub shape: ShapeSpec,
    /// Without the counters a warm start is far shorter, and every step cheaper.
    pub counting: Counting,
}

impl FleetSpec {
    pub fn new(params: &FleetParams, seed: u64, members: Vec<Member>) -> FleetSpec {
        FleetSpec {
            params: params.clone(),
            seed,
            members,
            schedule: Schedule::default(),
            shape: ShapeSpec::default(),
            counting: Counting::On,
        }
    }

    pub fn schedule(self, schedule: Schedule) -> FleetSpec {
        FleetSpec { schedule, ..self }
    }

    pub fn shape(self, shape: ShapeSpec) -> FleetSpec {
        FleetSpec { shape, ..self }
    }

    pub fn counting(self, counting: Counting) -> FleetSpec {
        FleetSpec { counting, ..self }
    }
}
