//! The events of a range of time, listed: every deploy, restart, outage and incident that
//! hits a server, as the fleet's steps will play them.
//!
//! It is what a course's answer key shows. The list is found from the same event processes
//! the servers step through (deploys, reboots, outages, memory running out, the schedule
//! and the random incidents), never by stepping, so it costs little next to the history it
//! describes; a test holds it against a stepped fleet.

use super::events::Poisson;
use super::fleet::{RANDOM_MARGIN_MS, resolution_ms, role_deploy_events, server_plans};
use super::incidents::{Incident, IncidentKind, RandomIncidents};
use super::noise::Key;
use super::params::Role;
use super::server::RestartCause;
use super::shape::{Restarts, Shape, identity};
use super::spec::FleetSpec;

/// What happened to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// Its role's deploy restarted it.
    Deploy,
    /// Its process started again without a deploy: the scheduled reboot, memory at the
    /// role's `restart_at`, its joining the fleet or a new machine in its slot. (Coming
    /// back from an outage restarts it too: that is the outage's end.)
    Restart,
    /// It failed on its own (an outage incident is an `Incident`).
    Outage,
    Incident(IncidentKind),
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Deploy => "deploy",
            EventKind::Restart => "restart",
            EventKind::Outage => "outage",
            EventKind::Incident(kind) => kind.name(),
        }
    }
}

/// One event of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEvent {
    pub kind: EventKind,
    /// The server's position in the spec's members.
    pub position: usize,
    /// The machine's name when the event starts (the slot's name unless churn replaced it).
    pub server: String,
    /// `[start_ms, end_ms)`, unix milliseconds. A deploy or restart happens at a grid point
    /// and lasts one grid step.
    pub start_ms: i64,
    pub end_ms: i64,
    /// An incident's intensity, 0 to 1.
    pub intensity: Option<f64>,
}

/// The first grid point at or after `ms`.
fn grid_at_or_after(ms: i64, step_ms: i64) -> i64 {
    -(-ms).div_euclid(step_ms)
}

impl FleetSpec {
    /// The events overlapping `[from_ms, to_ms)` of the servers present when they start,
    /// ordered by start, then server, then kind.
    pub fn events_between(&self, from_ms: i64, to_ms: i64) -> Vec<FleetEvent> {
        let step_ms = resolution_ms(&self.params);
        let step_secs = step_ms as f64 / 1000.0;
        let members = &self.members;
        let size = members.first().map_or(0, |m| m.fleet_size);
        let shape = Shape::new(&self.shape, size, self.seed, step_ms);
        let fleet_key = Key::from_seed(self.seed);
        let plans = server_plans(self, fleet_key, step_secs);
        let deploys: Vec<Poisson> = Role::ALL
            .iter()
            .map(|&role| role_deploy_events(&self.params, fleet_key, step_secs, role))
            .collect();
        let (from, to) = (
            grid_at_or_after(from_ms, step_ms),
            grid_at_or_after(to_ms, step_ms),
        );
        // Outage incidents before the range move its first restarts: as far back as a
        // warm start looks.
        let replay = plans.iter().map(|p| p.replay_steps()).max().unwrap_or(0);
        let random =
            RandomIncidents::new(&self.params, self.seed, members).following(&self.schedule);
        let mut incidents: Vec<Incident> = self.schedule.incidents.clone();
        incidents.extend(random.between(
            members,
            (from - replay) * step_ms - RANDOM_MARGIN_MS,
            to_ms,
        ));
        let mut hits: Vec<Vec<&Incident>> = vec![Vec::new(); members.len()];
        for incident in &incidents {
            for p in incident.targets(members, self.seed) {
                hits[p].push(incident);
            }
        }

        let mut events = Vec::new();
        for (p, m) in members.iter().enumerate() {
            let role_deploys = &deploys[m.role.index()];
            let restarts = Restarts {
                deploys: role_deploys,
                shape: &shape,
                index: m.index,
            };
            let life = plans[p].lifecycle_between(from, to, &restarts, &hits[p]);
            let mut push = |kind, grid: i64, start_ms, end_ms, intensity| {
                if shape.present(m.index, grid) {
                    events.push(FleetEvent {
                        kind,
                        position: p,
                        server: identity(&m.name, shape.born_ms(m.index, grid)),
                        start_ms,
                        end_ms,
                        intensity,
                    });
                }
            };
            for (k, cause) in life.restarts {
                let kind = match cause {
                    RestartCause::Recovery => continue,
                    RestartCause::External if role_deploys.at(k) => EventKind::Deploy,
                    _ => EventKind::Restart,
                };
                push(kind, k, k * step_ms, (k + 1) * step_ms, None);
            }
            for (a, b) in life.outages {
                push(
                    EventKind::Outage,
                    a.max(from),
                    a * step_ms,
                    b * step_ms,
                    None,
                );
            }
            for incident in hits[p]
                .iter()
                .filter(|i| i.start_ms < to_ms && i.end_ms > from_ms)
            {
                let first = grid_at_or_after(incident.start_ms.max(from_ms), step_ms);
                push(
                    EventKind::Incident(incident.kind),
                    first,
                    incident.start_ms,
                    incident.end_ms,
                    Some(incident.intensity),
                );
            }
        }
        events.sort_by(|a, b| {
            (a.start_ms, &a.server, a.kind, a.end_ms)
                .cmp(&(b.start_ms, &b.server, b.kind, b.end_ms))
        });
        events
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::incidents::{Schedule, Target};
    use crate::model::{FleetParams, Incident, members};

    /// 2024-03-01T00:00:00Z on the default 15 s grid: a UTC midnight.
    const MIDNIGHT: i64 = 1_709_251_200 / 15;
    const STEP_MS: i64 = 15_000;
    const HOUR: i64 = 240;

    /// Every kind of event, often: outages every few hours, deploys and reboots, memory
    /// that runs out within a day, and the random incidents.
    fn eventful() -> FleetParams {
        let mut params = FleetParams::default();
        let roles = &mut params.roles;
        for r in [
            &mut roles.web,
            &mut roles.api,
            &mut roles.db,
            &mut roles.cache,
            &mut roles.worker,
        ] {
            r.lifecycle.mtbf = Duration::from_secs(5 * 3600);
            r.lifecycle.mttr = Duration::from_secs(20 * 60);
            r.lifecycle.deploy_every = Duration::from_secs(6 * 3600);
            r.lifecycle.reboot_every = Duration::from_secs(86_400);
            r.memory.leak_per_hour = 4.0;
        }
        params.incidents.random_per_day = 12.0;
        params
    }

    fn incident(id: u64, kind: IncidentKind, target: Target, start: i64, minutes: i64) -> Incident {
        Incident {
            id,
            kind,
            target,
            start_ms: start,
            end_ms: start + minutes * 60_000,
            intensity: 0.7,
            ramp_ms: 120_000,
        }
    }

    #[test]
    fn the_list_agrees_with_a_stepped_fleet() {
        let params = eventful();
        let m = members(&params, 12, 0..12);
        let g0 = MIDNIGHT + 3 * HOUR;
        let t0 = g0 * STEP_MS;
        let schedule = Schedule::new(vec![
            // One before the range: the restarts after it depend on it.
            incident(
                1,
                IncidentKind::Outage,
                Target::Server("srv-03".into()),
                t0 - 1_800_000,
                40,
            ),
            incident(
                2,
                IncidentKind::Outage,
                Target::Role(Role::Db),
                t0 + 3_600_000,
                25,
            ),
            incident(
                3,
                IncidentKind::CpuSpike,
                Target::Dc("dc2".into()),
                t0 + 7_200_000,
                15,
            ),
        ]);
        let spec = FleetSpec::new(&params, 8, m.clone()).schedule(schedule);
        let steps = 2 * 24 * HOUR;
        let (from_ms, to_ms) = ((g0 + 1) * STEP_MS, (g0 + 1 + steps) * STEP_MS);
        let events = spec.events_between(from_ms, to_ms);
        assert_eq!(events, spec.events_between(from_ms, to_ms), "deterministic");

        let mut fleet = spec.clone().fleet_at_grid(g0);
        let mut was_up: Vec<bool> = fleet.snapshot().up.clone();
        let (mut restarts, mut downs) = (0, 0);
        for _ in 0..steps {
            fleet.step();
            let s = fleet.snapshot();
            let (k, t) = (s.grid, s.time_ms);
            for i in 0..m.len() {
                let mine = || events.iter().filter(move |e| e.position == i);
                let down_listed = mine().any(|e| {
                    matches!(
                        e.kind,
                        EventKind::Outage | EventKind::Incident(IncidentKind::Outage)
                    ) && e.start_ms <= t
                        && t < e.end_ms
                });
                assert_eq!(
                    !s.up[i], down_listed,
                    "{} at grid {k}: up {}",
                    m[i].name, s.up[i]
                );
                let restart_listed = mine().any(|e| {
                    matches!(e.kind, EventKind::Deploy | EventKind::Restart) && e.start_ms == t
                });
                let recovered = s.up[i] && !was_up[i];
                assert_eq!(
                    s.restarted[i],
                    restart_listed || recovered,
                    "{} at grid {k}",
                    m[i].name
                );
                assert!(!(restart_listed && recovered), "a recovery is not listed");
                restarts += usize::from(s.restarted[i]);
                downs += usize::from(!s.up[i]);
            }
            was_up.clone_from(&s.up);
        }
        assert!(
            restarts > 50 && downs > 1_000,
            "{restarts} restarts, {downs} down"
        );
        let kinds: std::collections::BTreeSet<&str> =
            events.iter().map(|e| e.kind.name()).collect();
        for kind in [
            "deploy",
            "restart",
            "outage",
            "cpu_spike",
            "memory_leak",
            "disk_fill",
        ] {
            assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
        }
        let cpu = events
            .iter()
            .filter(|e| {
                e.kind == EventKind::Incident(IncidentKind::CpuSpike) && e.intensity == Some(0.7)
            })
            .count();
        assert_eq!(cpu, m.iter().filter(|m| m.dc == "dc2").count());
        assert!(
            events
                .windows(2)
                .all(|w| (w[0].start_ms, &w[0].server) <= (w[1].start_ms, &w[1].server))
        );
    }

    #[test]
    fn a_server_absent_or_renamed_is_listed_as_the_history_shows_it() {
        let params = eventful();
        let m = members(&params, 10, 0..10);
        let shape = crate::model::ShapeSpec {
            mode: crate::model::SeriesMode::DoubleHalve,
            churn: 0.2,
            ..crate::model::ShapeSpec::default()
        };
        let spec = FleetSpec::new(&params, 3, m.clone()).shape(shape.clone());
        let from_ms = MIDNIGHT * STEP_MS;
        let events = spec.events_between(from_ms, from_ms + 86_400_000);
        let s = Shape::new(&shape, 10, 3, STEP_MS);
        assert!(
            events.iter().any(|e| e.server.len() > "srv-01".len()),
            "a new machine"
        );
        for e in &events {
            let grid = grid_at_or_after(e.start_ms.max(from_ms), STEP_MS);
            let index = m[e.position].index;
            assert!(s.present(index, grid), "{e:?}");
            assert_eq!(
                e.server,
                identity(&m[e.position].name, s.born_ms(index, grid))
            );
        }
    }
}
