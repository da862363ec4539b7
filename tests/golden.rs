//! A seeded fleet at a fixed instant (and over a fixed range), encoded in every format
//! fleetsim writes and compared byte for byte with committed golden files, so that any
//! change to names, labels, order or values is seen in review, and a refactoring that
//! claims to change nothing is held to it.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files after an intended change.

use std::path::PathBuf;
use std::process::Command;

use fleetsim::exposition::{
    ConstLabels, FleetLabels, encode_fleet, encode_fleet_openmetrics, encode_fleet_protobuf,
};
use fleetsim::model::{FleetSpec, Frame, Member, members};
use fleetsim::remote_write::{SeriesLabels, SeriesSymbols, v2, write_requests};
use fleetsim::units::parse_instant;

const RUN_START: &str = "2026-11-24T10:00:00Z";
const INSTANT: &str = "2026-11-24T12:00:07.500Z";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Compares `got` with the golden file `name`, or writes it under UPDATE_GOLDEN.
fn check_golden(name: &str, got: &[u8]) {
    let path = fixture(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if got != want {
        let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        let context = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).into_owned()
        };
        panic!(
            "{name} changed at byte {at} ({} bytes, golden {}):\n got: {:?}\nwant: {:?}",
            got.len(),
            want.len(),
            context(got),
            context(&want)
        );
    }
}

/// The exporter's fleet of tests/fixtures/golden.toml, started at RUN_START, at INSTANT.
fn golden_fleet() -> (
    Frame,
    fleetsim::exposition::ConstLabels,
    Vec<fleetsim::model::Member>,
) {
    let config = fixture("golden.toml");
    let cli = fleetsim::cli::parse(["fleetsim", "exporter", "--config", config.to_str().unwrap()])
        .unwrap();
    let fleetsim::cli::Command::Exporter(args) = cli.command else {
        unreachable!()
    };
    let settings = args.fleet.resolve().unwrap();
    let run_start = parse_instant(RUN_START).unwrap();
    let members = members(&settings.params, settings.servers, settings.range.clone());
    let schedule = settings.schedule(run_start, &members).unwrap();
    let mut timeline = FleetSpec::new(&settings.params, settings.seed, members)
        .schedule(schedule)
        .shape(settings.shape.clone())
        .timeline(run_start);
    let frame = timeline.at(parse_instant(INSTANT).unwrap());
    (frame, settings.labels.clone(), timeline.members().to_vec())
}

/// The scrape's labels, renamed where churn replaced a machine, as the exporter keeps them.
fn scrape_labels(frame: &Frame, members: &[Member], consts: &ConstLabels) -> FleetLabels {
    let mut labels = FleetLabels::with_labels(members, consts);
    if !labels.is_current(frame) {
        labels.refresh(frame);
    }
    labels
}

/// The frame has what the golden files are meant to cover.
#[test]
fn the_golden_fleet_has_every_kind_of_series() {
    let (frame, _, members) = golden_fleet();
    assert!((0..frame.len()).any(|i| !frame.up(i)), "a server is down");
    assert!(frame.active_incidents().len() >= 2, "incidents under way");
    assert!(
        (0..frame.len()).any(|i| frame.born_ms(i) != fleetsim::model::shape::ORIGINAL),
        "a machine renamed by churn"
    );
    assert_eq!(members.len(), 6);
}

#[test]
fn text_exposition_matches_the_golden_file() {
    let (frame, consts, members) = golden_fleet();
    let mut out = Vec::new();
    encode_fleet(&mut out, &frame, &scrape_labels(&frame, &members, &consts));
    check_golden("golden-scrape.txt", &out);
}

#[test]
fn openmetrics_exposition_matches_the_golden_file() {
    let (frame, consts, members) = golden_fleet();
    let mut out = Vec::new();
    encode_fleet_openmetrics(&mut out, &frame, &scrape_labels(&frame, &members, &consts));
    check_golden("golden-scrape.om", &out);
}

#[test]
fn protobuf_exposition_matches_the_golden_file() {
    let (frame, consts, members) = golden_fleet();
    let mut out = Vec::new();
    encode_fleet_protobuf(&mut out, &frame, &scrape_labels(&frame, &members, &consts));
    check_golden("golden-scrape.pb", &out);
}

/// The requests, each preceded by its series count and length, in one file.
fn requests_file(requests: Vec<(Vec<u8>, usize)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (body, series) in requests {
        out.extend(format!("request of {series} series, {} bytes\n", body.len()).into_bytes());
        out.extend(body);
        out.push(b'\n');
    }
    out
}

#[test]
fn remote_write_1_matches_the_golden_file() {
    let (frame, consts, members) = golden_fleet();
    let mut labels = SeriesLabels::with_labels(&members, &consts);
    if !labels.is_current(&frame) {
        labels.refresh(&frame);
    }
    check_golden(
        "golden-remote-write-1.bin",
        &requests_file(write_requests(&frame, &labels, 40)),
    );
}

#[test]
fn remote_write_2_matches_the_golden_file() {
    let (frame, consts, members) = golden_fleet();
    let mut symbols = SeriesSymbols::with_labels(&members, &consts);
    if !symbols.is_current(&frame) {
        symbols.refresh(&frame);
    }
    check_golden(
        "golden-remote-write-2.bin",
        &requests_file(v2::write_requests(&frame, &symbols, 40)),
    );
}

/// `fleetsim generate` over the golden fleet, as the binary writes it.
fn generate(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let status = Command::new(env!("CARGO_BIN_EXE_fleetsim"))
        .args(["generate", "--config"])
        .arg(fixture("golden.toml"))
        .args([
            "--start",
            "2026-11-24T11:40:00Z",
            "--end",
            "2026-11-24T12:30:00Z",
            "--step",
            "10m",
        ])
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "generate {name}: {status}");
    std::fs::read(&out).unwrap()
}

#[test]
fn csv_history_matches_the_golden_file() {
    check_golden("golden-history.csv", &generate("h.csv"));
}

#[test]
fn openmetrics_history_matches_the_golden_file() {
    check_golden("golden-history.om", &generate("h.om"));
}

#[test]
fn exposition_matches_the_golden_file() {
    let params = fleetsim::model::FleetParams::default();
    let at = parse_instant("2026-11-24T12:00:07.500Z").unwrap();
    let mut timeline = FleetSpec::new(&params, 42, members(&params, 3, 0..3)).timeline(at);
    let frame = timeline.at(at);
    let mut out = Vec::new();
    encode_fleet(&mut out, &frame, &FleetLabels::new(timeline.members()));
    check_golden("exposition-seed42.txt", &out);
}
