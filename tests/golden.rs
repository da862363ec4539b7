//! A seeded fleet at a fixed instant, encoded and compared with a committed golden file, so
//! that any change to names, labels, order or values is seen in review.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the file after an intended change.

use fleetsim::exposition::{FleetLabels, encode_fleet};
use fleetsim::model::{FleetParams, Timeline, members};
use fleetsim::units::parse_instant;

#[test]
fn exposition_matches_the_golden_file() {
    let params = FleetParams::default();
    let at = parse_instant("2026-11-24T12:00:07.500Z").unwrap();
    let mut timeline = Timeline::new(&params, 42, members(&params, 3, 0..3), at);
    let frame = timeline.at(at);
    let mut out = Vec::new();
    encode_fleet(&mut out, &frame, &FleetLabels::new(timeline.members()));
    let got = String::from_utf8(out).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/exposition-seed42.txt"
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want =
        std::fs::read_to_string(path).expect("the golden file exists (UPDATE_GOLDEN=1 writes it)");
    assert!(
        got == want,
        "the exposition changed; diff it against {path}:\n{got}"
    );
}
