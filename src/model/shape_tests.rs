//! Properties of the load-test knobs: the count of servers over time in each mode, churn,
//! and warm starts that agree with stepping while servers join, leave and are replaced.

use std::time::Duration;

use super::shape::{self, ORIGINAL};
use super::*;

/// 2024-03-01T00:00:00Z on the default 15 s grid: a UTC midnight.
const MIDNIGHT: i64 = 1_709_251_200 / 15;
const STEP_MS: i64 = 15_000;
const HOUR: i64 = 240;
const DAY: i64 = 24 * HOUR;

fn spec(mode: SeriesMode, interval: Duration) -> ShapeSpec {
    ShapeSpec {
        mode,
        change_interval: interval,
        ..ShapeSpec::default()
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// The count at each grid point of a day, with the grid points where it changes.
fn day_of_counts(shape: &Shape) -> (Vec<u32>, Vec<i64>) {
    let counts: Vec<u32> = (MIDNIGHT..MIDNIGHT + DAY)
        .map(|g| shape.count_at(g))
        .collect();
    let changes = (1..counts.len())
        .filter(|&i| counts[i] != counts[i - 1])
        .map(|i| MIDNIGHT + i as i64)
        .collect();
    (counts, changes)
}

#[test]
fn double_halve_alternates_every_server_and_half_of_them() {
    let shape = Shape::new(&spec(SeriesMode::DoubleHalve, minutes(10)), 40, 1, STEP_MS);
    let (counts, changes) = day_of_counts(&shape);
    for (g, &k) in (MIDNIGHT..).zip(&counts) {
        let interval = g * STEP_MS / 600_000;
        assert_eq!(k, if interval % 2 == 0 { 40 } else { 20 }, "grid {g}");
    }
    // Every ten minutes, on the epoch's ten minutes.
    assert_eq!(changes.len(), 6 * 24 - 1);
    assert!(changes.iter().all(|g| (g * STEP_MS) % 600_000 == 0));
}

#[test]
fn spike_reaches_every_server_for_its_window_and_the_base_between() {
    let mut s = spec(SeriesMode::Spike, minutes(30));
    s.spike_multiplier = 4.0;
    let shape = Shape::new(&s, 100, 1, STEP_MS);
    let (counts, changes) = day_of_counts(&shape);
    let spiked = counts.iter().filter(|&&k| k == 100).count();
    let base = counts.iter().filter(|&&k| k == 25).count();
    assert_eq!(spiked + base, counts.len(), "only the base and the peak");
    // Half the time at the peak, in windows of the interval.
    assert_eq!(spiked, counts.len() / 2);
    assert_eq!(changes.len(), 2 * 24 - 1);
    for pair in changes.windows(2) {
        assert_eq!(pair[1] - pair[0], 30 * 60_000 / STEP_MS);
    }
}

#[test]
fn gradual_change_ramps_monotonically_between_its_bounds() {
    let mut s = spec(SeriesMode::GradualChange, minutes(5));
    s.min_servers = Some(10);
    s.change_rate = Some(25);
    let shape = Shape::new(&s, 100, 1, STEP_MS);
    let (counts, changes) = day_of_counts(&shape);
    assert_eq!(counts.iter().min(), Some(&10));
    assert_eq!(counts.iter().max(), Some(&100));
    // Per interval: up by the rate (the last step clipped at the top), then down again,
    // turning only at the bounds.
    let per_interval: Vec<i64> = changes.iter().map(|&g| shape.count_at(g) as i64).collect();
    let mut rising = per_interval[1] > per_interval[0];
    for pair in per_interval.windows(2) {
        let step = pair[1] - pair[0];
        assert!(step != 0 && step.abs() <= 25, "{pair:?}");
        if (step > 0) != rising {
            let turned_at = pair[0];
            assert!(turned_at == 100 || turned_at == 10, "turned at {turned_at}");
            rising = step > 0;
        }
    }
    // The defaults: a tenth of the fleet, in avalanche's proportions.
    let shape = Shape::new(&spec(SeriesMode::GradualChange, minutes(5)), 50, 1, STEP_MS);
    let (counts, _) = day_of_counts(&shape);
    assert_eq!(counts.iter().min(), Some(&5));
    assert_eq!(counts.iter().max(), Some(&50));
}

#[test]
fn no_mode_keeps_every_server() {
    let shape = Shape::new(&ShapeSpec::default(), 7, 1, STEP_MS);
    assert!(shape.is_off());
    let (counts, changes) = day_of_counts(&shape);
    assert!(counts.iter().all(|&k| k == 7) && changes.is_empty());
}

fn churned(share: f64, seed: u64) -> Shape {
    let s = ShapeSpec {
        churn: share,
        churn_interval: minutes(10),
        ..ShapeSpec::default()
    };
    Shape::new(&s, 200, seed, STEP_MS)
}

#[test]
fn churn_replaces_about_its_share_each_interval_the_same_for_the_same_seed() {
    let shape = churned(0.1, 3);
    let per_interval = 600_000 / STEP_MS;
    let first = MIDNIGHT;
    let mut total = 0;
    let mut sets = Vec::new();
    for n in 0..144 {
        let g = first + n * per_interval;
        let changes = shape.changes_at(g);
        assert!(
            changes.churn_interval.is_some(),
            "an interval starts at {g}"
        );
        assert!(shape.changes_at(g + 1).is_none());
        let replaced: Vec<u32> = (0..200).filter(|&i| shape.joined(&changes, i)).collect();
        total += replaced.len();
        sets.push(replaced);
    }
    let mean = total as f64 / 144.0;
    assert!(
        (mean - 20.0).abs() < 2.0,
        "mean replaced per interval {mean}"
    );
    // Not the same servers every time.
    assert_ne!(sets[0], sets[1]);
    let again = churned(0.1, 3);
    let other = churned(0.1, 4);
    let at = |s: &Shape| {
        let c = s.changes_at(first);
        (0..200).filter(|&i| s.joined(&c, i)).collect::<Vec<u32>>()
    };
    assert_eq!(at(&again), sets[0]);
    assert_ne!(at(&other), sets[0]);
}

#[test]
fn identities_name_the_slot_and_the_machines_birth() {
    assert_eq!(shape::identity("srv-0042", ORIGINAL), "srv-0042");
    let t = 1_764_587_400_000; // 2025-12-01T11:10:00Z
    assert_eq!(shape::identity("srv-0042", t), "srv-0042-20251201t1110");
    assert_eq!(
        shape::identity("srv-0042", t + 30_000),
        "srv-0042-20251201t111030"
    );
    let s = churned(0.5, 1);
    let born = s.born_ms(7, MIDNIGHT + 5);
    assert_ne!(born, ORIGINAL);
    assert_eq!(born % 600_000, 0, "born at the start of a churn interval");
    assert!(born <= (MIDNIGHT + 5) * STEP_MS);
}

fn shaped_fleet(params: &FleetParams, spec: &ShapeSpec, size: u32, grid: i64) -> Fleet {
    FleetSpec::new(params, 9, members(params, size, 0..size))
        .shape(spec.clone())
        .fleet_at_grid(grid)
}

#[test]
fn joining_and_replaced_servers_start_as_new_machines() {
    let params = FleetParams::default();
    let spec = ShapeSpec {
        mode: SeriesMode::DoubleHalve,
        change_interval: minutes(30),
        churn: 0.2,
        churn_interval: minutes(20),
        ..ShapeSpec::default()
    };
    let mut fleet = shaped_fleet(&params, &spec, 20, MIDNIGHT + 3);
    let (mut joins, mut replacements) = (0, 0);
    for _ in 0..6 * HOUR {
        let before = fleet.roster().clone();
        fleet.step();
        let (s, r) = (fleet.snapshot(), fleet.roster());
        for i in 0..20 {
            let joined = r.present[i] && !before.present[i];
            let replaced = r.born_ms[i] != before.born_ms[i];
            if (joined || replaced) && s.up[i] {
                assert!(s.restarted[i], "server {i} at grid {}", s.grid);
                assert_eq!(s.counters[i].requests, [0.0; 3]);
                assert_eq!(s.counters[i].created, (s.grid * STEP_MS) as f64 / 1000.0);
                joins += joined as usize;
                replacements += replaced as usize;
            }
            if replaced {
                assert_eq!(r.born_ms[i] % (20 * 60_000), 0);
            }
        }
        let count = r.present.iter().filter(|&&p| p).count();
        assert!(count == 20 || count == 10, "{count} present");
    }
    assert!(joins >= 50, "{joins} joins");
    assert!(replacements >= 50, "{replacements} replacements");
}

#[test]
fn warm_start_matches_stepping_while_servers_join_leave_and_are_replaced() {
    let params = FleetParams::default();
    for spec in [
        ShapeSpec {
            mode: SeriesMode::GradualChange,
            change_interval: minutes(15),
            churn: 0.1,
            churn_interval: minutes(10),
            ..ShapeSpec::default()
        },
        ShapeSpec {
            mode: SeriesMode::Spike,
            change_interval: Duration::from_secs(45),
            spike_multiplier: 3.0,
            churn: 0.05,
            churn_interval: Duration::from_secs(75),
            ..ShapeSpec::default()
        },
    ] {
        let start = MIDNIGHT + 2 * DAY + 11;
        let mut stepped = shaped_fleet(&params, &spec, 24, start);
        let mut restarts = 0;
        for n in 1..=2 * HOUR {
            stepped.step();
            restarts += stepped.snapshot().restarted.iter().filter(|&&r| r).count();
            if n % 97 != 0 {
                continue;
            }
            let direct = shaped_fleet(&params, &spec, 24, start + n);
            assert_eq!(stepped.roster(), direct.roster(), "{spec:?} at +{n}");
            let (a, b) = (stepped.snapshot(), direct.snapshot());
            assert_eq!(a.up, b.up, "{spec:?} at +{n}");
            assert_eq!(a.restarted, b.restarted, "{spec:?} at +{n}");
            for i in 0..a.len() {
                let (x, y) = (&a.counters[i], &b.counters[i]);
                assert_eq!(x.created, y.created, "server {i} at +{n}");
                let close = (x.duration_count - y.duration_count).abs()
                    <= 1e-6 * x.duration_count.abs().max(1.0);
                assert!(close, "server {i} at +{n}: {x:?} vs {y:?}");
                let cpu = (a.cpu[i] - b.cpu[i]).abs() <= 1e-6 * a.cpu[i].abs().max(1.0);
                assert!(cpu, "server {i} at +{n}: cpu {} vs {}", a.cpu[i], b.cpu[i]);
            }
        }
        assert!(
            restarts > 20,
            "{restarts} restarts: the window proves little"
        );
    }
}

#[test]
fn a_shard_sees_the_whole_fleets_roster() {
    let params = FleetParams::default();
    let spec = ShapeSpec {
        mode: SeriesMode::DoubleHalve,
        churn: 0.3,
        ..ShapeSpec::default()
    };
    let whole = shaped_fleet(&params, &spec, 12, MIDNIGHT + 40);
    let slice = FleetSpec::new(&params, 9, members(&params, 12, 4..8))
        .shape(spec)
        .fleet_at_grid(MIDNIGHT + 40);
    assert_eq!(slice.roster().present, whole.roster().present[4..8]);
    assert_eq!(slice.roster().born_ms, whole.roster().born_ms[4..8]);
}

#[test]
fn the_last_join_agrees_with_scanning_the_grid() {
    let mut found = 0;
    for (mode, churn, min, rate) in [
        (SeriesMode::GradualChange, 0.02, None, None),
        (SeriesMode::GradualChange, 0.0, Some(4), Some(7)),
        (SeriesMode::DoubleHalve, 0.0, None, None),
        (SeriesMode::Spike, 0.01, None, None),
        (SeriesMode::Off, 0.05, None, None),
    ] {
        let spec = ShapeSpec {
            mode,
            change_interval: minutes(3),
            min_servers: min,
            change_rate: rate,
            spike_multiplier: 2.5,
            churn,
            churn_interval: minutes(7),
        };
        let shape = Shape::new(&spec, 30, 2, STEP_MS);
        for index in 0..30 {
            for g in [MIDNIGHT, MIDNIGHT + 1_234, MIDNIGHT + DAY + 77] {
                let scanned = (g - 2 * HOUR..=g)
                    .rev()
                    .find(|&k| shape.joined_at(index, k));
                assert_eq!(
                    shape.last_join_at_or_before(index, g, 2 * HOUR),
                    scanned,
                    "{mode:?}: server {index} at {g}"
                );
                found += scanned.is_some() as usize;
            }
        }
    }
    assert!(found >= 100, "{found}");
}

#[test]
fn an_empty_fleet_has_a_shape_in_every_mode() {
    for mode in [
        SeriesMode::Off,
        SeriesMode::GradualChange,
        SeriesMode::DoubleHalve,
        SeriesMode::Spike,
    ] {
        let shape = Shape::new(&spec(mode, minutes(1)), 0, 1, STEP_MS);
        assert!(
            (MIDNIGHT..MIDNIGHT + HOUR).all(|g| !shape.present(0, g)),
            "{mode:?}"
        );
    }
}
