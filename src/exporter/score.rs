//! The scoreboard: every incident fleetsim injected, held against the alerts Alertmanager
//! delivered to its webhook (`webhook.rs`): which alert caught each incident and after how
//! long, which incidents no alert has caught (yet), and which alerts had no incident behind
//! them.
//!
//! An alert catches an incident when it is the alert the incident's kind is made to fire
//! (`IncidentKind::alert`), its `server` label is one of the incident's servers, and it
//! started (`startsAt`) between the incident's start and its end plus [`GRACE_MS`]. The
//! earliest such alert is the catch; the delays are measured from the incident's start to
//! the alert's `startsAt` and to the arrival of the first notification that carried it.
//!
//! Alerts that caught nothing are split in two: those on a server of an incident within its
//! window (another alert the incident set off, as a CPU spike slows requests, or a second
//! firing of the same alert) are `other_alerts`; the rest, natural threshold crossings or
//! alerts about no server at all, are `false_alarms`.
//!
//! Memory is bounded: the newest [`MAX_ALERTS`] alerts and [`MAX_INCIDENTS`] incidents are
//! kept, the oldest dropped (and counted).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize, Serializer};

use crate::model::incidents::{RANDOM_ID_BASE, RandomIncidents};
use crate::model::{FleetParams, Incident, Member, Schedule};
use crate::units::format_instant;

/// How long after an incident's end its alert may still start and count: a rule's `for`
/// and Alertmanager's group wait can carry a short incident's alert past its end.
pub const GRACE_MS: i64 = 5 * 60_000;

/// Alerts kept; the oldest received is dropped first.
pub const MAX_ALERTS: usize = 1_000;

/// Incidents scored; the oldest started are left off first.
pub const MAX_INCIDENTS: usize = 1_000;

/// Servers named per incident in the score (a `share=` incident may hit thousands).
const MAX_NAMED_SERVERS: usize = 20;

/// An alert's state as Alertmanager reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert of one notification, as the webhook validated it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub alertname: String,
    pub server: Option<String>,
    pub status: Status,
    pub starts_at_ms: i64,
    /// When it resolved; only read from a resolved alert.
    pub ends_at_ms: Option<i64>,
    pub fingerprint: String,
    pub receiver: String,
}

/// An alert as the scoreboard knows it: one per fingerprint and start, merged over the
/// notifications that carried it (Alertmanager repeats them).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSeen {
    pub alertname: String,
    pub server: Option<String>,
    pub status: Status,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    /// When the first notification carrying it arrived.
    pub received_ms: i64,
    pub receiver: String,
    pub fingerprint: String,
}

impl AlertSeen {
    fn is(&self, notice: &Notice) -> bool {
        self.fingerprint == notice.fingerprint && self.starts_at_ms == notice.starts_at_ms
    }
}

/// An incident with the names of the servers it hits in this exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub incident: Incident,
    pub servers: Vec<String>,
}

/// What the webhook and the score share: the alerts received and the user incidents seen.
pub struct Scoreboard {
    params: FleetParams,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    alerts: VecDeque<AlertSeen>,
    alerts_dropped: u64,
    /// The users' incidents that have started, kept after they are deleted from the
    /// schedule so that an alert arriving later still finds them.
    incidents: VecDeque<Incident>,
    /// The random incidents a user ended early, and when: scored as they ran.
    ended_random: BTreeMap<u64, i64>,
}

impl Scoreboard {
    /// A scoreboard for a fleet of `params` (which say how many random incidents it has).
    pub fn new(params: &FleetParams) -> Scoreboard {
        Scoreboard {
            params: params.clone(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in the alerts of one notification, received at `received_ms`.
    pub fn record(&self, notices: &[Notice], received_ms: i64) {
        let mut state = self.state();
        for notice in notices {
            state.record(notice, received_ms);
        }
    }

    /// Notes the schedule's incidents that have started by `now_ms`.
    pub fn remember(&self, schedule: &Schedule, now_ms: i64) {
        self.state().remember(schedule, now_ms);
    }

    /// The score at `now_ms`: the remembered user incidents and the random incidents of the
    /// run so far, against the alerts received.
    pub fn score(&self, members: &[Member], seed: u64, run_start_ms: i64, now_ms: i64) -> Score {
        // Copied out, so that a notification arriving meanwhile does not wait for the score.
        let (remembered, ended_random, alerts, alerts_dropped) = {
            let state = self.state();
            let alerts: Vec<AlertSeen> = state.alerts.iter().cloned().collect();
            let ended = Schedule {
                ended_random: state.ended_random.clone(),
                ..Schedule::default()
            };
            (state.incidents.clone(), ended, alerts, state.alerts_dropped)
        };
        let random = RandomIncidents::new(&self.params, seed, members)
            .following(&ended_random)
            .between(members, run_start_ms, now_ms + 1);
        let mut incidents: Vec<Incident> = remembered
            .into_iter()
            .chain(random)
            .filter(|i| i.start_ms <= now_ms)
            .collect();
        incidents.sort_by_key(|i| (i.start_ms, i.id));
        let left_off = incidents.len().saturating_sub(MAX_INCIDENTS);
        let candidates: Vec<Candidate> = incidents
            .into_iter()
            .skip(left_off)
            .filter_map(|incident| {
                let servers: Vec<String> = incident
                    .targets(members, seed)
                    .into_iter()
                    .map(|p| members[p].name.clone())
                    .collect();
                // A random incident drawn for a server of another shard is not this one's.
                (!servers.is_empty()).then_some(Candidate { incident, servers })
            })
            .collect();
        let mut score = judge(&candidates, &alerts, now_ms);
        score.counts.alerts_dropped = alerts_dropped;
        score.counts.incidents_left_off = left_off as u64;
        score
    }
}

impl State {
    fn record(&mut self, notice: &Notice, received_ms: i64) {
        if let Some(seen) = self.alerts.iter_mut().find(|a| a.is(notice)) {
            // A resolved alert stays resolved: a late repeat of its firing is older news.
            if seen.status == Status::Firing {
                seen.status = notice.status;
                seen.ends_at_ms = resolved_end(notice);
            }
            seen.received_ms = seen.received_ms.min(received_ms);
            return;
        }
        if self.alerts.len() == MAX_ALERTS {
            self.alerts.pop_front();
            self.alerts_dropped += 1;
        }
        self.alerts.push_back(AlertSeen {
            alertname: notice.alertname.clone(),
            server: notice.server.clone(),
            status: notice.status,
            starts_at_ms: notice.starts_at_ms,
            ends_at_ms: resolved_end(notice),
            received_ms,
            receiver: notice.receiver.clone(),
            fingerprint: notice.fingerprint.clone(),
        });
    }

    fn remember(&mut self, schedule: &Schedule, now_ms: i64) {
        self.ended_random.clone_from(&schedule.ended_random);
        for incident in &schedule.incidents {
            if incident.start_ms > now_ms {
                continue;
            }
            // Ended early since it was last seen: the same incident, with its new end.
            if let Some(known) = self.incidents.iter_mut().find(|i| i.id == incident.id) {
                known.clone_from(incident);
            } else {
                if self.incidents.len() == MAX_INCIDENTS {
                    self.incidents.pop_front();
                }
                self.incidents.push_back(incident.clone());
            }
        }
    }
}

fn resolved_end(notice: &Notice) -> Option<i64> {
    match notice.status {
        Status::Resolved => notice.ends_at_ms,
        Status::Firing => None,
    }
}

/// Whether `alert` catches `c`: its expected alert, on one of its servers, started within
/// its window.
fn catches(c: &Candidate, alert: &AlertSeen) -> bool {
    alert.alertname == c.incident.kind.alert() && related(c, alert)
}

/// Whether `alert` is about one of `c`'s servers and started within its window.
fn related(c: &Candidate, alert: &AlertSeen) -> bool {
    let in_window = c.incident.start_ms <= alert.starts_at_ms
        && alert.starts_at_ms <= c.incident.end_ms.saturating_add(GRACE_MS);
    in_window && alert.server.as_ref().is_some_and(|s| c.servers.contains(s))
}

/// The score of `candidates` against `alerts` at `now_ms`.
pub fn judge(candidates: &[Candidate], alerts: &[AlertSeen], now_ms: i64) -> Score {
    let mut catchers = HashSet::new();
    let mut caught = Vec::new();
    let mut not_caught = Vec::new();
    for c in candidates {
        let first = alerts
            .iter()
            .enumerate()
            .filter(|(_, a)| catches(c, a))
            .min_by_key(|(_, a)| (a.starts_at_ms, a.received_ms));
        match first {
            Some((k, alert)) => {
                catchers.insert(k);
                caught.push(Caught {
                    incident: IncidentView::of(c),
                    alert: AlertView::of(alert),
                    alert_delay_seconds: seconds(alert.starts_at_ms - c.incident.start_ms),
                    notification_delay_seconds: seconds(alert.received_ms - c.incident.start_ms),
                });
            }
            None => not_caught.push(NotCaught {
                incident: IncidentView::of(c),
                missed: now_ms > c.incident.end_ms.saturating_add(GRACE_MS),
            }),
        }
    }
    let rest: Vec<&AlertSeen> = (0..alerts.len())
        .filter(|k| !catchers.contains(k))
        .map(|k| &alerts[k])
        .collect();
    let (false_alarms, other_alerts) = uncaught_alerts(candidates, rest);
    let missed = not_caught.iter().filter(|n| n.missed).count();
    Score {
        time: format_instant(now_ms),
        grace_seconds: (GRACE_MS / 1000) as u64,
        counts: Counts {
            incidents: candidates.len() as u64,
            caught: caught.len() as u64,
            waiting: (not_caught.len() - missed) as u64,
            missed: missed as u64,
            false_alarms: false_alarms.len() as u64,
            other_alerts: other_alerts.len() as u64,
            alerts: alerts.len() as u64,
            alerts_dropped: 0,
            incidents_left_off: 0,
        },
        caught,
        not_caught,
        false_alarms,
        other_alerts,
    }
}

/// The alerts that caught nothing, oldest first, split into those with no incident behind
/// them and those related to an incident (on its server, within its window).
fn uncaught_alerts(
    candidates: &[Candidate],
    mut rest: Vec<&AlertSeen>,
) -> (Vec<AlertView>, Vec<OtherAlert>) {
    rest.sort_by_key(|a| (a.starts_at_ms, a.received_ms));
    let mut false_alarms = Vec::new();
    let mut other_alerts = Vec::new();
    for alert in rest {
        let ids: Vec<u64> = candidates
            .iter()
            .filter(|c| related(c, alert))
            .map(|c| c.incident.id)
            .collect();
        if ids.is_empty() {
            false_alarms.push(AlertView::of(alert));
        } else {
            other_alerts.push(OtherAlert {
                alert: AlertView::of(alert),
                incidents: ids,
            });
        }
    }
    (false_alarms, other_alerts)
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `GET /api/v1/score`. The field names are a stable interface (README, "Alerts that reach
/// someone"): add fields, never rename them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub time: String,
    pub grace_seconds: u64,
    pub counts: Counts,
    pub caught: Vec<Caught>,
    pub not_caught: Vec<NotCaught>,
    pub false_alarms: Vec<AlertView>,
    pub other_alerts: Vec<OtherAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub incidents: u64,
    pub caught: u64,
    /// Not caught, but their window (end plus grace) is still open.
    pub waiting: u64,
    /// Not caught, and their window has closed.
    pub missed: u64,
    pub false_alarms: u64,
    pub other_alerts: u64,
    /// Alerts kept, and those dropped to keep memory bounded.
    pub alerts: u64,
    pub alerts_dropped: u64,
    /// The oldest incidents not scored to keep the answer bounded.
    pub incidents_left_off: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentView {
    pub id: u64,
    pub kind: &'static str,
    pub target: String,
    /// `schedule` (the config file or the admin API) or `random`.
    pub origin: &'static str,
    #[serde(serialize_with = "instant")]
    pub start: i64,
    #[serde(serialize_with = "instant")]
    pub end: i64,
    pub expected_alert: &'static str,
    /// The first of its servers, by position in the fleet; `server_count` says how many.
    pub servers: Vec<String>,
    pub server_count: u64,
}

impl IncidentView {
    fn of(c: &Candidate) -> IncidentView {
        let i = &c.incident;
        IncidentView {
            id: i.id,
            kind: i.kind.name(),
            target: i.target.to_string(),
            origin: if i.id >= RANDOM_ID_BASE {
                "random"
            } else {
                "schedule"
            },
            start: i.start_ms,
            end: i.end_ms,
            expected_alert: i.kind.alert(),
            servers: c.servers.iter().take(MAX_NAMED_SERVERS).cloned().collect(),
            server_count: c.servers.len() as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub alertname: String,
    pub server: Option<String>,
    pub status: Status,
    #[serde(serialize_with = "instant")]
    pub starts_at: i64,
    #[serde(serialize_with = "maybe_instant")]
    pub ends_at: Option<i64>,
    #[serde(serialize_with = "instant")]
    pub received_at: i64,
    pub receiver: String,
    pub fingerprint: String,
}

impl AlertView {
    fn of(a: &AlertSeen) -> AlertView {
        AlertView {
            alertname: a.alertname.clone(),
            server: a.server.clone(),
            status: a.status,
            starts_at: a.starts_at_ms,
            ends_at: a.ends_at_ms,
            received_at: a.received_ms,
            receiver: a.receiver.clone(),
            fingerprint: a.fingerprint.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Caught {
    pub incident: IncidentView,
    pub alert: AlertView,
    /// From the incident's start to the alert's `startsAt`.
    pub alert_delay_seconds: f64,
    /// From the incident's start to the first notification carrying the alert.
    pub notification_delay_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotCaught {
    pub incident: IncidentView,
    /// Its window has closed without the alert: no later alert can catch it.
    pub missed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OtherAlert {
    pub alert: AlertView,
    /// The incidents on its server within whose window it started.
    pub incidents: Vec<u64>,
}

fn instant<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_instant(*ms))
}

fn maybe_instant<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => instant(ms, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IncidentKind, members};

    const MINUTE: i64 = 60_000;
    /// Some instant in 2026, on a whole minute.
    const T0: i64 = 1_790_000_040_000;

    fn outage_on(server: &str, id: u64, start: i64, minutes: i64) -> Candidate {
        Candidate {
            incident: Incident {
                id,
                kind: IncidentKind::Outage,
                target: format!("server={server}").parse().unwrap(),
                start_ms: start,
                end_ms: start + minutes * MINUTE,
                intensity: 1.0,
                ramp_ms: 0,
            },
            servers: vec![server.to_string()],
        }
    }

    fn notice(alertname: &str, server: &str, status: Status, starts_at_ms: i64) -> Notice {
        Notice {
            alertname: alertname.into(),
            server: Some(server.into()),
            status,
            starts_at_ms,
            ends_at_ms: (status == Status::Resolved).then_some(starts_at_ms + 3 * MINUTE),
            fingerprint: format!("{alertname}/{server}"),
            receiver: "webhook-critical".into(),
        }
    }

    /// The alerts of `notices`, each received 10 s after it started.
    fn seen(notices: &[Notice]) -> Vec<AlertSeen> {
        let mut state = State::default();
        for n in notices {
            state.record(n, n.starts_at_ms + 10_000);
        }
        state.alerts.into()
    }

    #[test]
    fn the_expected_alert_on_the_server_in_the_window_catches_the_incident() {
        let incidents = [outage_on("srv-03", 1, T0, 5)];
        let alerts = seen(&[notice("ServerDown", "srv-03", Status::Firing, T0 + 75_000)]);
        let score = judge(&incidents, &alerts, T0 + 2 * MINUTE);
        assert_eq!(score.counts.caught, 1, "{score:#?}");
        let caught = &score.caught[0];
        assert_eq!(caught.incident.id, 1);
        assert_eq!(caught.incident.expected_alert, "ServerDown");
        assert_eq!(caught.incident.servers, ["srv-03"]);
        assert_eq!(caught.alert.alertname, "ServerDown");
        assert_eq!(caught.alert.server.as_deref(), Some("srv-03"));
        assert_eq!(caught.alert_delay_seconds, 75.0);
        assert_eq!(caught.notification_delay_seconds, 85.0);
        assert!(score.not_caught.is_empty() && score.false_alarms.is_empty());
    }

    #[test]
    fn the_earliest_of_several_catches_and_the_others_are_no_false_alarms() {
        let incidents = [outage_on("srv-03", 1, T0, 30)];
        // It fired, resolved and fired again during the same outage.
        let again = notice("ServerDown", "srv-03", Status::Firing, T0 + 20 * MINUTE);
        let alerts = seen(&[
            again,
            notice("ServerDown", "srv-03", Status::Resolved, T0 + MINUTE),
        ]);
        let score = judge(&incidents, &alerts, T0 + 21 * MINUTE);
        assert_eq!(score.caught[0].alert_delay_seconds, 60.0, "{score:#?}");
        assert_eq!(score.caught[0].alert.status, Status::Resolved);
        assert!(score.false_alarms.is_empty(), "{score:#?}");
        assert_eq!(score.other_alerts.len(), 1);
        assert_eq!(score.other_alerts[0].incidents, [1]);
    }

    #[test]
    fn an_alert_after_the_grace_is_late_the_incident_missed_and_the_alert_false() {
        let incidents = [outage_on("srv-03", 1, T0, 5)];
        let late = T0 + 5 * MINUTE + GRACE_MS + 1_000;
        let alerts = seen(&[notice("ServerDown", "srv-03", Status::Firing, late)]);
        let score = judge(&incidents, &alerts, late + MINUTE);
        assert_eq!(score.counts.caught, 0, "{score:#?}");
        assert_eq!(score.counts.missed, 1);
        assert!(score.not_caught[0].missed);
        assert_eq!(score.false_alarms.len(), 1);
        assert_eq!(score.false_alarms[0].starts_at, late);

        // At the edge of the grace it still counts; before the start it never does.
        let edge = T0 + 5 * MINUTE + GRACE_MS;
        let alerts = seen(&[notice("ServerDown", "srv-03", Status::Firing, edge)]);
        assert_eq!(judge(&incidents, &alerts, edge).counts.caught, 1);
        let early = seen(&[notice("ServerDown", "srv-03", Status::Firing, T0 - 1_000)]);
        let score = judge(&incidents, &early, T0 + MINUTE);
        assert_eq!((score.counts.caught, score.counts.false_alarms), (0, 1));
    }

    #[test]
    fn an_incident_not_caught_waits_until_its_window_closes() {
        let incidents = [outage_on("srv-03", 1, T0, 5)];
        let open = judge(&incidents, &[], T0 + 5 * MINUTE + GRACE_MS);
        assert_eq!((open.counts.waiting, open.counts.missed), (1, 0));
        assert!(!open.not_caught[0].missed);
        let closed = judge(&incidents, &[], T0 + 5 * MINUTE + GRACE_MS + 1);
        assert_eq!((closed.counts.waiting, closed.counts.missed), (0, 1));
    }

    #[test]
    fn the_right_alert_on_the_wrong_server_is_a_false_alarm() {
        let incidents = [outage_on("srv-03", 1, T0, 5)];
        let alerts = seen(&[notice("ServerDown", "srv-04", Status::Firing, T0 + MINUTE)]);
        let score = judge(&incidents, &alerts, T0 + 2 * MINUTE);
        assert_eq!(score.counts.caught, 0, "{score:#?}");
        assert_eq!(score.counts.waiting, 1);
        assert_eq!(score.false_alarms.len(), 1);
        assert_eq!(score.false_alarms[0].server.as_deref(), Some("srv-04"));
    }

    #[test]
    fn alerts_with_no_incident_behind_them_are_false_alarms_and_side_effects_are_not() {
        let mut spike = outage_on("srv-05", 2, T0, 20);
        spike.incident.kind = IncidentKind::CpuSpike;
        let incidents = [spike];
        let mut exporter_down = notice("ExporterDown", "", Status::Firing, T0 + MINUTE);
        exporter_down.server = None;
        let alerts = seen(&[
            notice("HighCpuUsage", "srv-05", Status::Firing, T0 + 5 * MINUTE),
            // The spike slows the server's requests too: not a false alarm.
            notice("HighLatencyP99", "srv-05", Status::Firing, T0 + 6 * MINUTE),
            // A natural crossing elsewhere.
            notice("DiskAlmostFull", "srv-01", Status::Firing, T0 + 7 * MINUTE),
            exporter_down,
        ]);
        let score = judge(&incidents, &alerts, T0 + 8 * MINUTE);
        assert_eq!(score.counts.caught, 1, "{score:#?}");
        assert_eq!(score.caught[0].alert.alertname, "HighCpuUsage");
        let names: Vec<&str> = score
            .false_alarms
            .iter()
            .map(|a| a.alertname.as_str())
            .collect();
        assert_eq!(names, ["ExporterDown", "DiskAlmostFull"]);
        assert_eq!(score.other_alerts.len(), 1);
        assert_eq!(score.other_alerts[0].alert.alertname, "HighLatencyP99");
        assert_eq!(score.counts.alerts, 4);
    }

    #[test]
    fn a_resolved_notification_updates_the_alert_it_follows() {
        let firing = notice("ServerDown", "srv-03", Status::Firing, T0 + MINUTE);
        let resolved = notice("ServerDown", "srv-03", Status::Resolved, T0 + MINUTE);
        let mut state = State::default();
        state.record(&firing, T0 + 70_000);
        // Alertmanager repeats the group: the first arrival is kept.
        state.record(&firing, T0 + 5 * MINUTE);
        state.record(&resolved, T0 + 6 * MINUTE);
        // A late repeat of the firing does not undo the resolution.
        state.record(&firing, T0 + 7 * MINUTE);
        assert_eq!(state.alerts.len(), 1, "{:#?}", state.alerts);
        let alert = &state.alerts[0];
        assert_eq!(alert.status, Status::Resolved);
        assert_eq!(alert.ends_at_ms, Some(T0 + 4 * MINUTE));
        assert_eq!(alert.received_ms, T0 + 70_000);
        let score = judge(
            &[outage_on("srv-03", 1, T0, 5)],
            &state.alerts.iter().cloned().collect::<Vec<_>>(),
            T0 + 8 * MINUTE,
        );
        assert_eq!(score.caught[0].notification_delay_seconds, 70.0);
        // The same alert firing again later is another alert.
        state.record(
            &notice("ServerDown", "srv-03", Status::Firing, T0 + 9 * MINUTE),
            T0 + 10 * MINUTE,
        );
        assert_eq!(state.alerts.len(), 2);
    }

    #[test]
    fn memory_is_bounded_the_oldest_dropped() {
        let mut state = State::default();
        for k in 0..MAX_ALERTS as i64 + 5 {
            let mut n = notice("HighCpuUsage", "srv-01", Status::Firing, T0 + k * MINUTE);
            n.fingerprint = format!("f{k}");
            state.record(&n, T0 + k * MINUTE);
        }
        assert_eq!(state.alerts.len(), MAX_ALERTS);
        assert_eq!(state.alerts_dropped, 5);
        assert_eq!(state.alerts[0].fingerprint, "f5");

        let schedule = Schedule::new(
            (0..MAX_INCIDENTS as i64 + 3)
                .map(|k| outage_on("srv-01", k as u64 + 1, T0 + k, 1).incident)
                .collect(),
        );
        state.remember(&schedule, T0 + 10 * MINUTE);
        state.remember(&schedule, T0 + 10 * MINUTE);
        assert_eq!(state.incidents.len(), MAX_INCIDENTS);
        assert_eq!(state.incidents[0].id, 4);
    }

    #[test]
    fn the_scoreboard_scores_started_incidents_random_ones_too_and_keeps_deleted_ones() {
        let mut params = FleetParams::default();
        params.incidents.random_per_day = 200.0;
        let m = members(&params, 10, 0..10);
        let board = Scoreboard::new(&params);
        let run_start = T0;
        let now = T0 + 6 * 3_600_000;
        let mut schedule = Schedule::new(vec![
            outage_on("srv-03", 1, T0 + MINUTE, 5).incident,
            // Not started yet: not scored.
            outage_on("srv-04", 2, now + MINUTE, 5).incident,
        ]);
        board.remember(&schedule, now);
        // Deleted from the schedule afterwards, it is still scored.
        schedule.remove(1);
        board.remember(&schedule, now);
        board.record(
            &[notice(
                "ServerDown",
                "srv-03",
                Status::Firing,
                T0 + 2 * MINUTE,
            )],
            T0 + 3 * MINUTE,
        );
        let score = board.score(&m, 1, run_start, now);
        let random = Schedule::random(&params, 1, &m, run_start, now + 1);
        assert!(!random.is_empty(), "200 a day gives some in 6 hours");
        let ids: Vec<u64> = score
            .caught
            .iter()
            .map(|c| &c.incident)
            .chain(score.not_caught.iter().map(|n| &n.incident))
            .map(|i| i.id)
            .collect();
        assert_eq!(ids.len() as u64, score.counts.incidents);
        assert_eq!(ids.len(), 1 + random.len(), "{ids:?}");
        assert!(ids.contains(&1) && !ids.contains(&2), "{ids:?}");
        assert_eq!(score.caught[0].incident.id, 1);
        assert_eq!(score.caught[0].incident.origin, "schedule");
        assert!(
            score
                .not_caught
                .iter()
                .all(|n| n.incident.origin == "random" && n.incident.id >= RANDOM_ID_BASE)
        );
    }

    #[test]
    fn incidents_ended_early_are_scored_as_they_ran_and_once() {
        let mut params = FleetParams::default();
        params.incidents.random_per_day = 200.0;
        let m = members(&params, 10, 0..10);
        let board = Scoreboard::new(&params);
        let now = T0 + 6 * 3_600_000;
        let random = RandomIncidents::new(&params, 1, &m).between(&m, T0, now + 1);
        let ran = random
            .iter()
            .find(|i| i.end_ms > now && i.start_ms + MINUTE < now)
            .expect("200 a day gives one running at the end of 6 hours")
            .clone();
        let mut schedule = Schedule::new(vec![outage_on("srv-03", 1, T0 + MINUTE, 30).incident]);
        board.remember(&schedule, T0 + 2 * MINUTE);
        schedule.end(&schedule.incidents[0].clone(), T0 + 3 * MINUTE);
        schedule.end(&ran, now - 1);
        board.remember(&schedule, now);
        let score = board.score(&m, 1, T0, now);
        let scored: Vec<_> = score
            .caught
            .iter()
            .map(|c| &c.incident)
            .chain(score.not_caught.iter().map(|n| &n.incident))
            .collect();
        let ours: Vec<_> = scored.iter().filter(|i| i.id == 1).collect();
        assert_eq!(ours.len(), 1, "the user's incident is scored once");
        assert_eq!(ours[0].end, T0 + 3 * MINUTE);
        let theirs = scored.iter().find(|i| i.id == ran.id).expect("scored");
        assert_eq!(theirs.end, now - 1, "the random one ends when it was ended");
    }

    #[test]
    fn the_score_serializes_with_its_documented_fields() {
        let incidents = [outage_on("srv-03", 1, T0, 5)];
        let alerts = seen(&[notice("ServerDown", "srv-03", Status::Firing, T0 + 75_000)]);
        let v = serde_json::to_value(judge(&incidents, &alerts, T0 + 2 * MINUTE)).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&v),
            [
                "caught",
                "counts",
                "false_alarms",
                "grace_seconds",
                "not_caught",
                "other_alerts",
                "time"
            ]
        );
        let caught = &v["caught"][0];
        assert_eq!(caught["incident"]["start"], "2026-09-21T14:14:00Z");
        assert_eq!(caught["incident"]["kind"], "outage");
        assert_eq!(caught["incident"]["target"], "server=srv-03");
        assert_eq!(caught["alert"]["starts_at"], "2026-09-21T14:15:15Z");
        assert_eq!(caught["alert"]["status"], "firing");
        assert_eq!(caught["alert"]["ends_at"], serde_json::Value::Null);
        assert_eq!(caught["alert_delay_seconds"], 75.0);
        assert_eq!(v["grace_seconds"], 300);
    }
}
