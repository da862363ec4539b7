//! Benchmark of a warm start: the exporter computes every server's state "now" from
//! scratch, its walks leaping from node to node and its counters summed over their sample
//! points since its last restart, so this is what bounds the exporter's start.
//!
//! `cargo bench --bench warm` warms 200 servers of the default fleet at a fixed grid point
//! on every core, as the exporter does (about 700 sample points and 800 leaps a server;
//! the warm start before it replayed every step since the last restart, about 13,700 a
//! server: side by side, the exporter's whole start at 10,000 servers took 13.5 times as
//! long with it).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetsim::model::{FleetParams, FleetSpec, members};

/// The model's default grid: 15 s.
const STEP_MS: i64 = 15_000;
/// 2026-11-24T12:00:00Z, on the grid, so that runs are comparable.
const T0: i64 = 1_795_521_600_000;

fn warm(c: &mut Criterion) {
    let params = FleetParams::default();
    let mut group = c.benchmark_group("warm");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let servers = 200u32;
    let spec = FleetSpec::new(&params, 1, members(&params, servers, 0..servers));
    group.throughput(Throughput::Elements(servers as u64));
    group.bench_function(format!("default_{servers}_servers"), |b| {
        b.iter(|| {
            black_box(spec.clone().fleet_at_grid(T0 / STEP_MS))
                .snapshot()
                .len()
        })
    });
}

criterion_group!(benches, warm);
criterion_main!(benches);
