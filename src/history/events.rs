//! The answer key of a history: every deploy, restart, outage and incident of its range,
//! one row each, with the alert of `alerts.yml` it should fire, written beside the history
//! (`NAME.events.csv`) the way the history is: into a file beside it, renamed into place.

use std::io::{BufWriter, Write};

use tempfile::NamedTempFile;

use crate::error::Result;
use crate::model::{self, EventKind, FleetEvent, FleetSpec};
use crate::settings::GenerateSettings;
use crate::units::format_instant;

pub const EVENTS_HEADER: [&str; 8] = [
    "kind",
    "server",
    "dc",
    "role",
    "start",
    "end",
    "intensity",
    "alert",
];

/// ServerDown's `for` in `alerts.yml`: an outage no longer than this ends before it fires.
pub const SERVER_DOWN_FOR_MS: i64 = 60_000;

/// The alert `event` should fire: an incident's kind's, `ServerDown` for an outage longer
/// than the rule's `for`, none for a deploy or a restart.
pub fn alert_of(event: &FleetEvent) -> &'static str {
    match event.kind {
        EventKind::Incident(kind) => kind.alert(),
        EventKind::Outage if event.end_ms - event.start_ms > SERVER_DOWN_FOR_MS => "ServerDown",
        _ => "",
    }
}

/// Writes the events of the history `settings` describes into a temporary beside
/// `settings.events`, synced, for the run to rename into place; returns it and how many
/// rows it holds.
pub fn write_events(
    settings: &GenerateSettings,
    run: &super::temp::Run,
) -> Result<(NamedTempFile, u64)> {
    let fleet = &settings.fleet;
    let members = model::members(&fleet.params, fleet.servers, fleet.range.clone());
    let schedule = fleet.schedule(settings.start_ms, &members)?;
    let spec = FleetSpec::new(&fleet.params, fleet.seed, members)
        .schedule(schedule)
        .shape(fleet.shape.clone());
    let events = spec.events_between(settings.start_ms, settings.end_ms);

    let out = &settings.events;
    let cannot = |e: std::io::Error| super::cannot_write(out, &e);
    let temp = run.temp_beside(out)?;
    {
        let mut file = BufWriter::new(temp.as_file());
        write_rows(&mut file, &spec, &events).map_err(cannot)?;
        file.flush().map_err(cannot)?;
    }
    temp.as_file().sync_all().map_err(cannot)?;
    Ok((temp, events.len() as u64))
}

/// The header and one row per event, quoted as CSV needs (names from a config file may
/// hold a comma).
fn write_rows(out: impl Write, spec: &FleetSpec, events: &[FleetEvent]) -> std::io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(EVENTS_HEADER)?;
    for event in events {
        let member = &spec.members[event.position];
        let intensity = event
            .intensity
            .map(|i| format!("{i:.3}"))
            .unwrap_or_default();
        w.write_record([
            event.kind.name(),
            &event.server,
            &member.dc,
            member.role.name(),
            &format_instant(event.start_ms),
            &format_instant(event.end_ms),
            &intensity,
            alert_of(event),
        ])?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FleetParams, IncidentKind};

    fn event(kind: EventKind, minutes: i64) -> FleetEvent {
        FleetEvent {
            kind,
            position: 0,
            server: "srv-01".into(),
            start_ms: 0,
            end_ms: minutes * 60_000,
            intensity: None,
        }
    }

    #[test]
    fn each_event_names_the_alert_it_should_fire() {
        let cpu = event(EventKind::Incident(IncidentKind::CpuSpike), 20);
        assert_eq!(alert_of(&cpu), "HighCpuUsage");
        assert_eq!(alert_of(&event(EventKind::Outage, 8)), "ServerDown");
        assert_eq!(
            alert_of(&event(EventKind::Outage, 1)),
            "",
            "ends before `for`"
        );
        assert_eq!(alert_of(&event(EventKind::Deploy, 0)), "");
        assert_eq!(alert_of(&event(EventKind::Restart, 0)), "");
    }

    #[test]
    fn rows_have_the_header_s_columns() {
        let params = FleetParams::default();
        let spec = FleetSpec::new(&params, 1, model::members(&params, 3, 0..3));
        let mut spike = event(EventKind::Incident(IncidentKind::CpuSpike), 10);
        spike.intensity = Some(0.75);
        let mut bytes = Vec::new();
        write_rows(&mut bytes, &spec, &[spike]).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "kind,server,dc,role,start,end,intensity,alert\n\
             cpu_spike,srv-01,dc1,web,1970-01-01T00:00:00Z,1970-01-01T00:10:00Z,0.750,HighCpuUsage\n"
        );
    }
}
