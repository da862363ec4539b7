// Parallel arrays are read by index: clearer here than zipped iterators.
#![allow(clippy::needless_range_loop)]

//! Properties of the whole model: bounds, determinism, warm starts, coupling, counters,
//! events, names and the timeline. Each test simulates at most a few days of a small fleet.

use std::time::Duration;

use super::server::{Counters, LATENCY_BUCKETS, Z95};
use super::*;

/// 2024-03-01T00:00:00Z on the default 15 s grid: a UTC midnight.
const MIDNIGHT: i64 = 1_709_251_200 / 15;
/// Grid points per hour and per day at the default resolution.
const HOUR: i64 = 240;
const DAY: i64 = 24 * HOUR;

fn fleet(params: &FleetParams, seed: u64, size: u32, grid: i64) -> Fleet {
    Fleet::at_grid(params, seed, members(params, size, 0..size), grid)
}

/// Steps `fleet` `steps` times, handing each snapshot (after the step) to `f`.
fn run(fleet: &mut Fleet, steps: usize, mut f: impl FnMut(&Snapshot)) {
    for _ in 0..steps {
        fleet.step();
        f(fleet.snapshot());
    }
}

/// The continuous signals of a snapshot, by name.
fn gauges(s: &Snapshot) -> [(&'static str, &Vec<f64>); 11] {
    [
        ("cpu", &s.cpu),
        ("memory", &s.memory),
        ("disk", &s.disk),
        ("rps", &s.rps),
        ("latency_median", &s.latency_median),
        ("latency_spread", &s.latency_spread),
        ("server_error", &s.server_error),
        ("client_error", &s.client_error),
        ("receive_bps", &s.receive_bps),
        ("transmit_bps", &s.transmit_bps),
        ("last_deploy", &s.last_deploy),
    ]
}

/// Every counter of a server, by name.
fn counter_values(c: &Counters) -> Vec<(String, f64)> {
    let mut v = vec![
        ("requests_2xx".to_string(), c.requests[0]),
        ("requests_4xx".to_string(), c.requests[1]),
        ("requests_5xx".to_string(), c.requests[2]),
        ("received_bytes".to_string(), c.received_bytes),
        ("transmitted_bytes".to_string(), c.transmitted_bytes),
        ("duration_sum".to_string(), c.duration_sum),
        ("duration_count".to_string(), c.duration_count),
    ];
    for (le, b) in LATENCY_BUCKETS.iter().zip(c.duration_buckets) {
        v.push((format!("bucket_le_{le}"), b));
    }
    v
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-9)
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Default parameters with every role failing about every `mtbf` for about `mttr`.
fn flaky(mtbf: Duration, mttr: Duration) -> FleetParams {
    let mut params = FleetParams::default();
    for lifecycle in [
        &mut params.roles.web.lifecycle,
        &mut params.roles.api.lifecycle,
        &mut params.roles.db.lifecycle,
        &mut params.roles.cache.lifecycle,
        &mut params.roles.worker.lifecycle,
    ] {
        lifecycle.mtbf = mtbf;
        lifecycle.mttr = mttr;
    }
    params
}

// 1. Bounds.

#[test]
fn readings_stay_within_bounds_for_two_days() {
    let params = FleetParams::default();
    let mut f = fleet(&params, 42, 20, MIDNIGHT);
    let mut steps = 0;
    run(&mut f, 2 * DAY as usize, |s| {
        steps += 1;
        assert_eq!(s.len(), 20);
        for i in 0..s.len() {
            let at = || format!("server {i} at grid {}", s.grid);
            for (name, values) in gauges(s) {
                assert!(values[i].is_finite(), "{name} = {} for {}", values[i], at());
            }
            assert!(
                (0.0..=100.0).contains(&s.cpu[i]),
                "cpu {} {}",
                s.cpu[i],
                at()
            );
            assert!(
                (0.0..=100.0).contains(&s.memory[i]),
                "memory {} {}",
                s.memory[i],
                at()
            );
            assert!(
                (0.0..=100.0).contains(&s.disk[i]),
                "disk {} {}",
                s.disk[i],
                at()
            );
            assert!(s.rps[i] >= 0.0, "rps {} {}", s.rps[i], at());
            assert!((0.0..=1.0).contains(&s.server_error[i]), "5xx {}", at());
            assert!((0.0..=1.0).contains(&s.client_error[i]), "4xx {}", at());
            assert!(
                s.server_error[i] + s.client_error[i] <= 1.0 + 1e-12,
                "error shares sum past 1 {}",
                at()
            );
            assert!(
                s.latency_median[i] > 0.0,
                "latency {} {}",
                s.latency_median[i],
                at()
            );
            assert!(
                s.latency_spread[i] > 0.0,
                "spread {} {}",
                s.latency_spread[i],
                at()
            );
            assert!(
                s.receive_bps[i] >= 0.0 && s.transmit_bps[i] >= 0.0,
                "bps {}",
                at()
            );
            for (name, v) in counter_values(&s.counters[i]) {
                assert!(v.is_finite() && v >= 0.0, "counter {name} = {v} {}", at());
            }
        }
    });
    assert_eq!(steps, 11_520);
}

// 2. Determinism.

#[test]
fn same_seed_gives_identical_snapshots_and_another_seed_does_not() {
    let params = FleetParams::default();
    let m = members(&params, 15, 0..15);
    let mut a = Fleet::at_grid(&params, 7, m.clone(), MIDNIGHT + 1234);
    let mut b = Fleet::at_grid(&params, 7, m.clone(), MIDNIGHT + 1234);
    let mut other = Fleet::at_grid(&params, 8, m.clone(), MIDNIGHT + 1234);
    assert_eq!(a.snapshot(), b.snapshot());
    for step in 0..600 {
        a.step();
        b.step();
        other.step();
        assert_eq!(
            a.snapshot(),
            b.snapshot(),
            "diverged after {} steps",
            step + 1
        );
        // Bit-identical, not merely equal (== would also accept 0.0 == -0.0).
        for ((_, x), (_, y)) in gauges(a.snapshot()).iter().zip(gauges(b.snapshot()).iter()) {
            assert!(
                x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p.to_bits() == q.to_bits())
            );
        }
        let (sa, so) = (a.snapshot(), other.snapshot());
        for i in 0..sa.len() {
            assert_ne!(
                sa.cpu[i], so.cpu[i],
                "seeds 7 and 8 agree on cpu of server {i}"
            );
            assert_ne!(
                sa.rps[i], so.rps[i],
                "seeds 7 and 8 agree on rps of server {i}"
            );
        }
    }
}

// 3. Fleet-size independence.

#[test]
fn a_larger_fleet_only_adds_servers() {
    let params = FleetParams::default();
    let small_members = members(&params, 10, 0..10);
    let large_members = members(&params, 50, 0..50);
    for (s, l) in small_members.iter().zip(&large_members) {
        assert_eq!(s, l, "member differs by fleet size");
    }
    // A slice of a fleet is those same servers.
    assert_eq!(members(&params, 50, 20..30), large_members[20..30].to_vec());

    let mut small = Fleet::at_grid(&params, 11, small_members, MIDNIGHT + 777);
    let mut large = Fleet::at_grid(&params, 11, large_members, MIDNIGHT + 777);
    let same = |s: &Snapshot, l: &Snapshot| {
        assert_eq!(s.grid, l.grid);
        assert_eq!(s.time_ms, l.time_ms);
        assert_eq!(s.up[..], l.up[..10]);
        assert_eq!(s.restarted[..], l.restarted[..10]);
        assert_eq!(s.counters[..], l.counters[..10]);
        for ((name, a), (_, b)) in gauges(s).into_iter().zip(gauges(l)) {
            assert_eq!(a[..], b[..10], "{name} at grid {}", s.grid);
        }
    };
    same(small.snapshot(), large.snapshot());
    for _ in 0..1_000 {
        small.step();
        large.step();
        same(small.snapshot(), large.snapshot());
    }
}

// 4. Warm starts.

/// Compares two snapshots of the same servers: gauges and counters to `rel`, flags exactly.
/// Returns every difference found, to report them all at once.
fn differences(a: &Snapshot, b: &Snapshot, names: &[Member], rel: f64) -> Vec<String> {
    let mut out = Vec::new();
    assert_eq!(a.grid, b.grid);
    for i in 0..a.len() {
        let state = if a.up[i] { "up" } else { "down" };
        let who = format!(
            "{} ({}, {state}) at grid {}",
            names[i].name,
            names[i].role.name(),
            a.grid
        );
        if a.up[i] != b.up[i] || a.restarted[i] != b.restarted[i] {
            out.push(format!(
                "{who}: up/restarted {}/{} vs {}/{}",
                a.up[i], a.restarted[i], b.up[i], b.restarted[i]
            ));
        }
        for ((name, x), (_, y)) in gauges(a).into_iter().zip(gauges(b)) {
            if !close(x[i], y[i], rel) {
                out.push(format!("{who}: {name} {} vs {}", x[i], y[i]));
            }
        }
        let (ca, cb) = (
            counter_values(&a.counters[i]),
            counter_values(&b.counters[i]),
        );
        for ((name, x), (_, y)) in ca.into_iter().zip(cb) {
            if !close(x, y, rel) {
                out.push(format!("{who}: counter {name} {x} vs {y}"));
            }
        }
    }
    out
}

#[test]
fn warm_start_matches_stepping_from_an_earlier_warm_start() {
    let params = FleetParams::default();
    let m = members(&params, 30, 0..30);
    for (g, n) in [(MIDNIGHT + 100, 3_000), (MIDNIGHT + 3 * DAY + 17, 4_321)] {
        let mut stepped = Fleet::at_grid(&params, 5, m.clone(), g);
        let mut restarts = 0;
        run(&mut stepped, n, |s| {
            restarts += s.restarted.iter().filter(|&&r| r).count();
        });
        let direct = Fleet::at_grid(&params, 5, m.clone(), g + n as i64);
        assert_eq!(stepped.grid(), direct.grid());
        let diffs = differences(stepped.snapshot(), direct.snapshot(), &m, 1e-6);
        assert!(
            diffs.is_empty(),
            "warm at {g} + {n} steps vs warm at {}:\n{}",
            g + n as i64,
            diffs.join("\n")
        );
        // The window must contain restarts, or the counters would prove little.
        assert!(restarts > 0, "no restart in the window");
    }
}

/// Default parameters with outages every `mtbf` lasting `mttr`, deploys every `deploy`
/// and reboots every `reboot` (short, so that each warm start replays little).
fn eventful(mtbf: Duration, mttr: Duration, deploy: Duration, reboot: Duration) -> FleetParams {
    let mut params = flaky(mtbf, mttr);
    for role in [
        &mut params.roles.web,
        &mut params.roles.api,
        &mut params.roles.db,
        &mut params.roles.cache,
        &mut params.roles.worker,
    ] {
        role.lifecycle.reboot_every = reboot;
        role.lifecycle.deploy_every = deploy;
    }
    params
}

/// Server `i` of a snapshot, as a snapshot of one server.
fn single(s: &Snapshot, i: usize) -> Snapshot {
    Snapshot {
        grid: s.grid,
        time_ms: s.time_ms,
        up: vec![s.up[i]],
        restarted: vec![s.restarted[i]],
        cpu: vec![s.cpu[i]],
        memory: vec![s.memory[i]],
        disk: vec![s.disk[i]],
        rps: vec![s.rps[i]],
        latency_median: vec![s.latency_median[i]],
        latency_spread: vec![s.latency_spread[i]],
        server_error: vec![s.server_error[i]],
        client_error: vec![s.client_error[i]],
        receive_bps: vec![s.receive_bps[i]],
        transmit_bps: vec![s.transmit_bps[i]],
        last_deploy: vec![s.last_deploy[i]],
        counters: vec![s.counters[i]],
    }
}

/// Steps a 12-server fleet for `days` and, every `every` steps, warms one server (in turn)
/// directly at that grid point, when `up` says its state is to be checked. Returns the
/// number of checks and the differences found (stepped value first, warm value second).
fn warm_vs_stepped(
    params: &FleetParams,
    days: i64,
    every: i64,
    check: impl Fn(bool) -> bool,
) -> (usize, Vec<String>) {
    let m = members(params, 12, 0..12);
    let start = MIDNIGHT + 50;
    let mut stepped = Fleet::at_grid(params, 9, m.clone(), start);
    let (mut checks, mut diffs) = (0, Vec::new());
    for step in 1..=days * DAY {
        stepped.step();
        let i = (step / every) as usize % m.len();
        if step % every != 0 || !check(stepped.snapshot().up[i]) {
            continue;
        }
        // A server's readings do not depend on the others: warm it alone.
        let direct = Fleet::at_grid(params, 9, vec![m[i].clone()], start + step);
        let one = single(stepped.snapshot(), i);
        diffs.extend(differences(&one, direct.snapshot(), &m[i..=i], 1e-6));
        checks += 1;
    }
    (checks, diffs)
}

/// The first differences, leaving out the buckets, request classes and bytes (which move
/// with `duration_count`).
fn report(diffs: &[String]) -> String {
    let shown: Vec<&str> = diffs
        .iter()
        .map(String::as_str)
        .filter(|d| !(d.contains("bucket_le") || d.contains("requests_") || d.contains("bytes")))
        .take(16)
        .collect();
    format!("{}\n...", shown.join("\n"))
}

#[test]
fn warm_start_of_an_up_server_matches_stepping_with_frequent_outages() {
    let params = eventful(
        Duration::from_secs(4 * 3600),
        Duration::from_secs(3600),
        Duration::from_secs(6 * 3600),
        Duration::from_secs(86_400),
    );
    let (checks, diffs) = warm_vs_stepped(&params, 2, 37, |up| up);
    assert!(checks > 200, "only {checks} checks");
    assert!(
        diffs.is_empty(),
        "{} differences in {checks} warm starts of up servers (stepped vs warm):\n{}",
        diffs.len(),
        report(&diffs)
    );
}

/// Warm starts inside an outage. A deploy or reboot that falls in an outage restarts
/// nothing (the server comes back at the recovery), yet `ServerPlan::warm` takes it as the
/// last restart when the outage is still going on at the warm point.
#[test]
fn warm_start_of_a_down_server_matches_stepping() {
    let params = eventful(
        Duration::from_secs(86_400),
        Duration::from_secs(8 * 3600),
        Duration::from_secs(6 * 3600),
        Duration::from_secs(2 * 86_400),
    );
    let (checks, diffs) = warm_vs_stepped(&params, 3, 97, |up| !up);
    assert!(checks > 20, "only {checks} checks");
    assert!(
        diffs.is_empty(),
        "{} differences in {checks} warm starts of down servers (stepped vs warm):\n{}\n\
         (ServerPlan::warm takes a deploy or reboot that fell in the ongoing outage for the \
         last restart, so it replays from too late and counts from a restart that never was)",
        diffs.len(),
        report(&diffs)
    );
}

// 5. Coupling and the daily wave.

#[test]
fn cpu_follows_traffic_latency_follows_cpu_and_traffic_follows_the_day() {
    let params = FleetParams::default();
    let m = members(&params, 30, 0..30);
    let web: Vec<usize> = (0..m.len()).filter(|&i| m[i].role == Role::Web).collect();
    assert!(web.len() >= 5, "only {} web servers", web.len());
    let mut f = Fleet::at_grid(&params, 3, m.clone(), MIDNIGHT);
    let mut cpu = vec![Vec::new(); m.len()];
    let mut rps = vec![Vec::new(); m.len()];
    let mut latency = vec![Vec::new(); m.len()];
    let (mut peak, mut trough) = (Vec::new(), Vec::new());
    let peak_hour = params.roles.web.traffic.peak_hour;
    let trough_hour = (peak_hour + 12.0) % 24.0;
    run(&mut f, DAY as usize, |s| {
        let hour = ((s.grid - MIDNIGHT) % DAY) as f64 / HOUR as f64;
        for i in 0..s.len() {
            cpu[i].push(s.cpu[i]);
            rps[i].push(s.rps[i]);
            latency[i].push(s.latency_median[i]);
        }
        for &i in &web {
            if (hour - peak_hour).abs() <= 0.5 {
                peak.push(s.rps[i]);
            }
            if (hour - trough_hour).abs() <= 0.5 {
                trough.push(s.rps[i]);
            }
        }
    });
    for &i in &web {
        let r = pearson(&cpu[i], &rps[i]);
        assert!(r > 0.5, "{}: corr(cpu, rps) = {r}", m[i].name);
    }
    for i in 0..m.len() {
        let r = pearson(&cpu[i], &rps[i]);
        assert!(
            r > 0.0,
            "{} ({:?}): corr(cpu, rps) = {r}",
            m[i].name,
            m[i].role
        );
    }

    // Latency against CPU, pooled over the web servers (one base latency).
    let mut pairs: Vec<(f64, f64)> = web
        .iter()
        .flat_map(|&i| cpu[i].iter().copied().zip(latency[i].iter().copied()))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let decile = pairs.len() / 10;
    let mean = |p: &[(f64, f64)]| p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64;
    let (low, high) = (mean(&pairs[..decile]), mean(&pairs[pairs.len() - decile..]));
    assert!(
        high > low * 1.2,
        "latency: top cpu decile {high}, bottom {low}"
    );

    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (peak, trough) = (avg(&peak), avg(&trough));
    // The wave is 1 +- 0.5: the peak is about three times the trough.
    assert!(
        peak > 2.0 * trough,
        "web rps at peak {peak}, at trough {trough}"
    );
}

// 6. Counters.

#[test]
fn counters_only_go_back_at_restarts_and_the_histogram_is_consistent() {
    let params = flaky(Duration::from_secs(12 * 3600), Duration::from_secs(20 * 60));
    let mut f = fleet(&params, 21, 20, MIDNIGHT + 5);
    let mut prev = f.snapshot().clone();
    let (mut restarts, mut down_steps) = (0, 0);
    run(&mut f, DAY as usize, |s| {
        for i in 0..s.len() {
            let at = format!("server {i} at grid {}", s.grid);
            let (c, p) = (&s.counters[i], &prev.counters[i]);
            if !s.up[i] {
                down_steps += 1;
                assert!(!s.restarted[i], "down yet restarted: {at}");
                assert_eq!(c, p, "counters moved while down: {at}");
            }
            if s.restarted[i] {
                restarts += 1;
                assert_eq!(
                    *c,
                    Counters::default(),
                    "restart did not zero counters: {at}"
                );
            } else {
                for ((name, now), (_, before)) in
                    counter_values(c).into_iter().zip(counter_values(p))
                {
                    assert!(now >= before, "{name} went from {before} to {now}: {at}");
                }
            }
            for w in c.duration_buckets.windows(2) {
                assert!(
                    w[0] <= w[1],
                    "buckets not monotone {:?}: {at}",
                    c.duration_buckets
                );
            }
            assert!(
                c.duration_buckets[10] <= c.duration_count,
                "last bucket past count: {at}"
            );
            let answered: f64 = c.requests.iter().sum();
            assert!(
                close(answered, c.duration_count, 1e-9),
                "requests {answered} vs count {}: {at}",
                c.duration_count
            );
            if s.up[i] && !s.restarted[i] {
                assert!(
                    c.duration_count > p.duration_count,
                    "no requests counted: {at}"
                );
            }
        }
        prev = s.clone();
    });
    assert!(restarts >= 20, "only {restarts} restarts");
    assert!(down_steps > 0, "no outage to check");
}

// 7. Memory.

#[test]
fn memory_leaks_between_restarts_and_drops_at_them() {
    let params = FleetParams::default();
    let all = members(&params, 60, 0..60);
    let workers: Vec<Member> = all.into_iter().filter(|m| m.role == Role::Worker).collect();
    assert!(workers.len() >= 8, "only {} workers", workers.len());
    let n = workers.len();
    let mut f = Fleet::at_grid(&params, 13, workers, MIDNIGHT);
    let mut prev = f.snapshot().clone();
    let mut last_restart: Vec<Option<i64>> = vec![None; n];
    let (mut drops, mut rise, mut rise_steps) = (0, 0.0, 0);
    run(&mut f, 3 * DAY as usize, |s| {
        for i in 0..n {
            if s.restarted[i] {
                if let Some(r) = last_restart[i] {
                    let uptime_hours = (s.grid - r) as f64 / HOUR as f64;
                    if uptime_hours >= 4.0 {
                        drops += 1;
                        let drop = prev.memory[i] - s.memory[i];
                        let leaked = params.roles.worker.memory.leak_per_hour * uptime_hours;
                        assert!(
                            drop > 0.5 * leaked,
                            "server {i} at grid {}: memory {} -> {} after {uptime_hours} h",
                            s.grid,
                            prev.memory[i],
                            s.memory[i]
                        );
                    }
                }
                last_restart[i] = Some(s.grid);
            } else if s.up[i] && prev.up[i] {
                rise += s.memory[i] - prev.memory[i];
                rise_steps += 1;
            }
            // Memory never passes the restart threshold by more than the noise.
            let m = &params.roles.worker.memory;
            assert!(s.memory[i] <= m.restart_at + m.noise.max + 1e-9);
        }
        prev = s.clone();
    });
    assert!(drops >= n, "only {drops} restarts after a long uptime");
    let per_hour = rise / rise_steps as f64 * HOUR as f64;
    let leak = params.roles.worker.memory.leak_per_hour;
    assert!(
        (per_hour - leak).abs() < 0.3 * leak,
        "memory rises {per_hour} %/h between restarts, leak is {leak}"
    );
}

// 8. Outages.

#[test]
fn outages_take_their_configured_share_and_end() {
    let (mtbf, mttr) = (6.0 * 3600.0, 30.0 * 60.0);
    let params = flaky(Duration::from_secs_f64(mtbf), Duration::from_secs_f64(mttr));
    let size = 20;
    let mut f = fleet(&params, 31, size, MIDNIGHT);
    let mut prev = f.snapshot().clone();
    let (mut down, mut total, mut outages, mut recoveries) = (0usize, 0usize, 0, 0);
    let mut servers_down = vec![false; size as usize];
    run(&mut f, 2 * DAY as usize, |s| {
        for i in 0..s.len() {
            total += 1;
            if !s.up[i] {
                down += 1;
                servers_down[i] = true;
                if prev.up[i] {
                    outages += 1;
                }
            } else if !prev.up[i] {
                recoveries += 1;
                assert!(s.restarted[i], "server {i} came back without a restart");
            }
        }
        prev = s.clone();
    });
    let share = down as f64 / total as f64;
    let expected = mttr / (mtbf + mttr);
    assert!(
        share > 0.6 * expected && share < 1.4 * expected,
        "down share {share}, expected about {expected}"
    );
    // About 8 outages per server over two days.
    let per_server = outages as f64 / size as f64;
    assert!(
        (4.0..12.0).contains(&per_server),
        "{per_server} outages per server"
    );
    assert!(
        recoveries + size as usize >= outages,
        "{outages} outages, {recoveries} recoveries"
    );
    assert!(
        recoveries >= outages - 3,
        "{outages} outages, {recoveries} recoveries"
    );
    assert!(servers_down.iter().all(|&d| d), "a server never went down");
    let mean_len = down as f64 / outages as f64 * 15.0;
    assert!(
        mean_len > 0.6 * mttr && mean_len < 1.5 * mttr,
        "outages last {mean_len} s on average, mttr {mttr}"
    );
}

#[test]
fn default_fleet_is_almost_always_up() {
    let params = FleetParams::default();
    let mut f = fleet(&params, 1, 20, MIDNIGHT);
    let mut down = 0;
    run(&mut f, DAY as usize, |s| {
        down += s.up.iter().filter(|&&u| !u).count()
    });
    // mtbf 30 days, mttr 8 min: about 0.02% of server-steps.
    assert!(
        down as f64 / (20.0 * DAY as f64) < 0.002,
        "{down} down server-steps"
    );
}

// 9. Names and roles.

#[test]
fn names_are_padded_to_the_fleet_size() {
    let params = FleetParams::default();
    let names = |size: u32, range| -> Vec<String> {
        members(&params, size, range)
            .into_iter()
            .map(|m| m.name)
            .collect()
    };
    let ten = names(10, 0..10);
    assert_eq!(ten.first().unwrap(), "srv-01");
    assert_eq!(ten[8], "srv-09");
    assert_eq!(ten.last().unwrap(), "srv-10");
    assert_eq!(names(1, 0..1), ["srv-01"]);
    assert_eq!(names(9, 8..9), ["srv-09"]);
    assert_eq!(names(100, 0..1), ["srv-001"]);
    assert_eq!(names(100, 99..100), ["srv-100"]);
    assert_eq!(names(101, 0..1), ["srv-001"]);
    assert_eq!(names(10_000, 0..1), ["srv-00001"]);
    assert_eq!(names(10_000, 9_999..10_000), ["srv-10000"]);
    let all = members(&params, 10_000, 0..10_000);
    let mut unique: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10_000);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.index as usize, i);
        assert_eq!(m.dc, params.datacenters[i % 3]);
    }
}

#[test]
fn roles_are_spread_by_weight() {
    let params = FleetParams::default();
    let all = members(&params, 1_000, 0..1_000);
    let total: f64 = Role::ALL.iter().map(|&r| params.roles.get(r).weight).sum();
    for role in Role::ALL {
        let count = all.iter().filter(|m| m.role == role).count() as f64;
        let expected = 1_000.0 * params.roles.get(role).weight / total;
        assert!(
            (count - expected).abs() < 0.1 * expected + 5.0,
            "{} servers: {count}, expected {expected}",
            role.name()
        );
    }
    let web = all.iter().filter(|m| m.role == Role::Web).count() as f64 / 1_000.0;
    assert!((web - 0.3).abs() < 0.03, "web share {web}");
    // Any ten consecutive servers hold the roles in proportion to the weights 3, 3, 1, 1, 2.
    for window in all.windows(10) {
        for role in Role::ALL {
            let count = window.iter().filter(|m| m.role == role).count() as f64;
            assert_eq!(
                count,
                params.roles.get(role).weight,
                "{} servers in {}..={}",
                role.name(),
                window[0].name,
                window[9].name
            );
        }
    }

    // A role of weight 0 is left out.
    let mut no_db = params.clone();
    no_db.roles.db.weight = 0.0;
    assert!(
        members(&no_db, 1_000, 0..1_000)
            .iter()
            .all(|m| m.role != Role::Db)
    );
}

// 10. Timeline.

#[test]
fn timeline_blends_between_grid_points() {
    let params = FleetParams::default();
    let m = members(&params, 12, 0..12);
    let step_ms = 15_000;
    let g0 = MIDNIGHT + 1_000;
    let mut timeline = Timeline::new(&params, 4, m.clone(), g0 * step_ms);
    let mut reference = Fleet::at_grid(&params, 4, m.clone(), g0);
    let mut checked_changes = 0;
    for k in 0..200i64 {
        let before = reference.snapshot().clone();
        reference.step();
        let after = reference.snapshot().clone();
        let t = (g0 + k) * step_ms;

        // On the grid point: exactly that snapshot.
        let frame = timeline.at(t);
        assert_eq!(frame.len(), m.len());
        for i in 0..m.len() {
            assert_eq!(frame.up(i), before.up[i]);
            for (name, values) in gauges(&before) {
                if name == "last_deploy" {
                    continue;
                }
                let got = match name {
                    "cpu" => frame.value(i, |s| &s.cpu),
                    "memory" => frame.value(i, |s| &s.memory),
                    "disk" => frame.value(i, |s| &s.disk),
                    "rps" => frame.value(i, |s| &s.rps),
                    "latency_median" => frame.value(i, |s| &s.latency_median),
                    "latency_spread" => frame.value(i, |s| &s.latency_spread),
                    "server_error" => frame.value(i, |s| &s.server_error),
                    "client_error" => frame.value(i, |s| &s.client_error),
                    "receive_bps" => frame.value(i, |s| &s.receive_bps),
                    _ => frame.value(i, |s| &s.transmit_bps),
                };
                assert_eq!(
                    got.to_bits(),
                    values[i].to_bits(),
                    "{name} of {i} at grid {}",
                    g0 + k
                );
            }
            let count = frame.counter(i, |c| c.duration_count);
            assert_eq!(count, before.counters[i].duration_count);
            assert_eq!(frame.last_deploy(i), before.last_deploy[i]);
        }

        // Half way: between the two grid values.
        let frame = timeline.at(t + step_ms / 2);
        for i in 0..m.len() {
            let (a, b) = (before.cpu[i], after.cpu[i]);
            let got = frame.value(i, |s| &s.cpu);
            assert!(
                got >= a.min(b) && got <= a.max(b),
                "cpu {got} not within [{a}, {b}]"
            );
            if before.up[i] == after.up[i] && !after.restarted[i] {
                assert!((got - (a + b) / 2.0).abs() <= 1e-9 * a.abs().max(1.0));
                let c = frame.counter(i, |c| c.duration_count);
                let (ca, cb) = (
                    before.counters[i].duration_count,
                    after.counters[i].duration_count,
                );
                assert!(c >= ca && c <= cb, "count {c} not within [{ca}, {cb}]");
            } else {
                // A discrete change waits for the grid point.
                assert_eq!(got, a);
            }
        }

        // One second later: an up server's values have moved.
        let (f1, f2) = (timeline.at(t + 4_000), timeline.at(t + 5_000));
        for i in 0..m.len() {
            if before.up[i] && after.up[i] && !after.restarted[i] {
                checked_changes += 1;
                assert_ne!(
                    f1.value(i, |s| &s.cpu),
                    f2.value(i, |s| &s.cpu),
                    "cpu of {i}"
                );
                assert_ne!(
                    f1.counter(i, |c| c.requests[0]),
                    f2.counter(i, |c| c.requests[0])
                );
            }
        }
    }
    assert!(checked_changes > 1_000);

    // Going back in time starts afresh and gives the same values.
    let frame = timeline.at((g0 + 10) * step_ms);
    let fresh = Fleet::at_grid(&params, 4, m.clone(), g0 + 10);
    assert_eq!(*frame.before, *fresh.snapshot());
}

// 11. Percentiles against the histogram.

#[test]
fn p95_lies_in_the_bucket_the_histogram_puts_it() {
    let params = FleetParams::default();
    let m = members(&params, 25, 0..25);
    let mut f = Fleet::at_grid(&params, 17, m.clone(), MIDNIGHT + 9 * HOUR);
    let mut prev = f.snapshot().clone();
    let mut checked = 0;
    run(&mut f, 2 * HOUR as usize, |s| {
        for i in 0..s.len() {
            if !s.up[i] || s.restarted[i] || !prev.up[i] {
                continue;
            }
            let (c, p) = (&s.counters[i], &prev.counters[i]);
            let count = c.duration_count - p.duration_count;
            assert!(count > 0.0);
            let p95 = s.latency_median[i] * (Z95 * s.latency_spread[i]).exp();
            // The first bucket holding 95% of the step's requests (11 = +Inf).
            let bucket = (0..11)
                .find(|&b| c.duration_buckets[b] - p.duration_buckets[b] >= 0.95 * count)
                .unwrap_or(11);
            // Where the model's p95 falls among the bounds.
            let model_bucket = LATENCY_BUCKETS
                .iter()
                .position(|&le| p95 <= le)
                .unwrap_or(11);
            assert!(
                bucket.abs_diff(model_bucket) <= 1,
                "{} at grid {}: p95 {p95} s in bucket {model_bucket}, histogram says {bucket}",
                m[i].name,
                s.grid
            );
            // And the mean agrees with the sum.
            let mean = (c.duration_sum - p.duration_sum) / count;
            let expected = s.latency_median[i] * (s.latency_spread[i].powi(2) / 2.0).exp();
            assert!(close(mean, expected, 1e-6), "mean {mean} vs {expected}");
            checked += 1;
        }
        prev = s.clone();
    });
    assert!(checked > 10_000, "only {checked} checks");
}
