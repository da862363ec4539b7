//! What incidents do to a server's signals: the overrides of the table in `incidents.rs`,
//! combined when several hit one server at once.

use super::incidents::{Incident, IncidentKind};

/// What a server's active incidents do to it at one instant, combined.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Effects {
    /// An outage: the server is down.
    pub down: bool,
    /// Percent CPU at least.
    pub cpu_floor: Option<f64>,
    pub memory: Option<Push>,
    pub disk: Option<Push>,
    /// p99 latency at least, seconds.
    pub p99_floor: Option<f64>,
    /// Share of requests answered 5xx at least, 0 to 1.
    pub server_error_floor: Option<f64>,
}

/// A signal pushed toward `level`: `ramp` (0 to 1) of the way there from its own value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Push {
    pub level: f64,
    pub ramp: f64,
}

impl Push {
    /// The pushed value of a signal whose own value is `value`; never below it.
    pub fn apply(&self, value: f64) -> f64 {
        self.apply_with(value, 0.0)
    }

    /// Same, toward `level + wiggle`.
    pub fn apply_with(&self, value: f64, wiggle: f64) -> f64 {
        value.max(value + (self.level + wiggle - value) * self.ramp)
    }

    /// Two pushes at once: the higher level, the further ramp (at least each alone).
    fn and(self, other: Option<Push>) -> Push {
        match other {
            None => self,
            Some(o) => Push {
                level: self.level.max(o.level),
                ramp: self.ramp.max(o.ramp),
            },
        }
    }
}

fn floor(current: Option<f64>, value: f64) -> Option<f64> {
    Some(current.map_or(value, |c| c.max(value)))
}

impl Effects {
    /// The effects at `time_ms` of those of `incidents` active then.
    pub fn of<'a>(incidents: impl IntoIterator<Item = &'a Incident>, time_ms: i64) -> Effects {
        let mut fx = Effects::default();
        for inc in incidents {
            if !inc.active_at(time_ms) {
                continue;
            }
            let i = inc.intensity;
            // Linear from the server's own value: a trend over the whole ramp, not a jump.
            let ramp = if inc.ramp_ms <= 0 {
                1.0
            } else {
                ((time_ms - inc.start_ms) as f64 / inc.ramp_ms as f64).clamp(0.0, 1.0)
            };
            match inc.kind {
                IncidentKind::CpuSpike => fx.cpu_floor = floor(fx.cpu_floor, 85.0 + 15.0 * i),
                IncidentKind::MemoryLeak => {
                    let push = Push {
                        level: 92.0 + 8.0 * i,
                        ramp,
                    };
                    fx.memory = Some(push.and(fx.memory));
                }
                IncidentKind::DiskFill => {
                    let push = Push {
                        level: 92.0 + 8.0 * i,
                        ramp,
                    };
                    fx.disk = Some(push.and(fx.disk));
                }
                IncidentKind::LatencySpike => fx.p99_floor = floor(fx.p99_floor, 2.5 + 5.0 * i),
                IncidentKind::ErrorBurst => {
                    fx.server_error_floor = floor(fx.server_error_floor, 0.08 + 0.4 * i)
                }
                IncidentKind::Outage => fx.down = true,
            }
        }
        fx
    }
}
