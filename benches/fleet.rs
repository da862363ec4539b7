//! Benchmarks of the issue "fleet scale": the cost of a scrape's encoding, of a model tick
//! and of `generate`'s CSV rows, at the fleet sizes the targets name.
//!
//! `cargo bench --bench fleet` runs them all (a few minutes on 2 cores); the end-to-end
//! figures (HTTP scrapes, memory, idle CPU, the peers) come from `bench/run`.
//!
//! Targets (checked here by reading the figures, never asserted):
//! - encoding a 10,000-server frame well under 25 ms (the whole uncompressed scrape);
//! - one tick for 10,000 servers < 5 ms;
//! - CSV rows >= 3 million rows/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fleetsim::exposition::ConstLabels;
use fleetsim::exposition::{self, FleetLabels, TextFormat, encode_fleet};
use fleetsim::gzip as body;
use fleetsim::history::{csv_slices, instants, write_csv};
use fleetsim::model::{FleetParams, FleetSpec, Schedule, ShapeSpec, Timeline, members};

/// The model's default grid: 15 s.
const STEP_MS: i64 = 15_000;
/// 2026-11-24T12:00:00Z, on the grid, so that runs are comparable.
const T0: i64 = 1_795_521_600_000;

fn timeline(servers: u32, time_ms: i64) -> Timeline {
    let params = FleetParams::default();
    FleetSpec::new(&params, 1, members(&params, servers, 0..servers)).timeline(time_ms)
}

/// (a) The text exposition of a 10,000-server frame: what a scrape encodes.
fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for servers in [1_000u32, 10_000] {
        let mut tl = timeline(servers, T0);
        let frame = tl.at(T0 + 7_500);
        let labels = FleetLabels::new(tl.members());
        let mut body = Vec::new();
        encode_fleet(&mut body, &frame, &labels);
        let bytes = body.len();
        let lines = body.iter().filter(|&&b| b == b'\n').count();
        eprintln!(
            "encode/{servers}: {bytes} bytes, {lines} lines ({:.0} bytes/server)",
            bytes as f64 / servers as f64
        );
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("text_{servers}_servers"), |b| {
            b.iter(|| {
                // As a scrape does: a buffer sized from the previous body, filled afresh.
                let mut body = Vec::with_capacity(bytes + bytes / 8);
                encode_fleet(&mut body, black_box(&frame), &labels);
                black_box(body.len())
            })
        });
    }
    // The gzip scrape: the same frame in the pieces a scrape cuts, deflated on one thread
    // and on every core, side by side.
    let servers = 10_000u32;
    let mut tl = timeline(servers, T0);
    let frame = tl.at(T0 + 7_500);
    let labels = FleetLabels::new(tl.members());
    let pieces = exposition::pieces(frame.len(), 4096);
    let weights: Vec<usize> = pieces.iter().map(|p| p.series()).collect();
    let encode = |k: usize, out: &mut Vec<u8>| {
        exposition::encode_piece(out, &pieces[k], &frame, &labels, TextFormat::Text)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut bytes = 0;
    body::stream_gzip(&weights, cores, &encode, &mut |c| {
        bytes += c.len();
        true
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    for threads in [1, cores] {
        group.bench_function(format!("gzip_{servers}_servers_{threads}_threads"), |b| {
            b.iter(|| {
                let mut n = 0;
                body::stream_gzip(&weights, threads, &encode, &mut |c| {
                    n += c.len();
                    true
                });
                black_box(n)
            })
        });
    }
    group.finish();
}

/// (b) One model tick for 10,000 servers: crossing a grid point (one model step, 15 s) and
/// the per-second tick between grid points (the blend only).
fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let servers = 10_000u32;
    group.throughput(Throughput::Elements(servers as u64));

    let mut tl = timeline(servers, T0);
    let mut t = T0;
    group.bench_function("grid_step_10000_servers", |b| {
        b.iter(|| {
            // Each call moves past one more grid point: one `Fleet::step` and its frame.
            t += STEP_MS;
            black_box(tl.at(black_box(t)).len())
        })
    });

    let mut tl = timeline(servers, T0);
    let grid_start = T0 + STEP_MS;
    let _ = tl.at(grid_start);
    let mut k = 0i64;
    group.bench_function("blend_only_10000_servers", |b| {
        b.iter(|| {
            // The exporter's 1 s tick inside one grid interval: no step, a new blend.
            k = (k + 1) % 15;
            black_box(tl.at(black_box(grid_start + k * 1_000)).len())
        })
    });
    group.finish();
}

/// (c) CSV rows: 1,000 servers over 10 minutes at 15 s (40,000 rows) into a sink, the
/// start-up left out.
fn csv(c: &mut Criterion) {
    let mut group = c.benchmark_group("csv");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let servers = 1_000u32;
    let end = T0 + 10 * 60 * 1_000;
    let rows = (servers as u64) * ((end - T0) / STEP_MS) as u64;
    group.throughput(Throughput::Elements(rows));
    group.bench_function("write_1000_servers_10m_15s", |b| {
        b.iter_batched(
            // As `generate` does: sliced for the cores, without counters.
            || {
                let params = FleetParams::default();
                let fleet = members(&params, servers, 0..servers);
                csv_slices(
                    &params,
                    1,
                    &fleet,
                    T0,
                    &Schedule::default(),
                    &ShapeSpec::default(),
                )
            },
            |mut slices| {
                let n = write_csv(
                    std::io::sink(),
                    &mut slices,
                    &ConstLabels::default(),
                    instants(T0, end, STEP_MS),
                    |_| true,
                )
                .expect("a sink never fails");
                assert_eq!(n, rows);
                n
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, encode, tick, csv);
criterion_main!(benches);
