//! The config loader under fuzzing, bounded in time: arbitrary bytes, and the shipped
//! config files (`config/*.toml`) mutated line by line (lines deleted, duplicated, swapped
//! or uncommented, values set to extremes, wrong types, huge numbers and unicode). The
//! loader must never panic, every error must be one line, and every config it accepts must
//! generate a minute of 10 servers within a few seconds, as the model and the writers do
//! it; a few also go through the real binary.
//!
//! The cases come from a seeded generator: `FLEETSIM_FUZZ_SEED=N` replays or explores
//! another sequence (the default is fixed, so a run in CI repeats the last), and
//! `FLEETSIM_FUZZ_SECONDS` sets the time spent (3 by default).

mod common;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use fleetsim::cli::{self, Command};
use fleetsim::history::{Grid, csv_slices, instants, scraped_labels, write_csv, write_openmetrics};
use fleetsim::model::{FleetSpec, members};

const DEFAULT_SEED: u64 = 0x5eed_f1ee_75a1;

/// The longest an accepted config may take to generate a minute of 10 servers.
const GENERATE_LIMIT: Duration = Duration::from_secs(5);

/// SplitMix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values a key may be set to: extremes, wrong types, huge numbers, unicode.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "0.5",
    "-0.0",
    "1e308",
    "-1e308",
    "1e-300",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "18446744073709551615",
    "184467440737095516160000",
    "-9223372036854775808",
    "100",
    "100.000001",
    "288",
    "289",
    "true",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ mean = 1e308 }",
    "{ reversion = \"1ms\" }",
    "{ reversion = \"100000d\", min = -1e9 }",
    "\"\"",
    "\"1ms\"",
    "\"0s\"",
    "\"99ms\"",
    "\"100ms\"",
    "\"1h\"",
    "\"3601s\"",
    "\"366d\"",
    "\"367d\"",
    "\"3650d\"",
    "\"100000d\"",
    "\"584942418y\"",
    "\"18446744073709551615s\"",
    "\"-1s\"",
    "\"1 d\"",
    "\"soon\"",
    "\"☃\"",
    "\"\u{202e}dc\u{0}\"",
    "\"a\\nb\"",
    "\"\\u0007\"",
    "1979-05-27T07:32:00Z",
    "'''multi\nline'''",
];

/// Values at or near the bounds of the keys that take them: mutations of these are
/// often accepted, and together they push the model to the limits it allows.
const NEAR_BOUNDS: &[&str] = &[
    "\"0s\"",
    "\"100ms\"",
    "\"1s\"",
    "\"1m\"",
    "\"10m\"",
    "\"1h\"",
    "\"4h\"",
    "\"1d\"",
    "\"7d\"",
    "\"366d\"",
    "\"3650d\"",
    "0",
    "0.01",
    "1",
    "4",
    "35.5",
    "99.9",
    "100",
    "288",
    "1000000",
];

/// Durations of every size, as the config writes them.
fn duration(rng: &mut Rng) -> String {
    let magnitude = rng.below(13) as u32;
    let n = rng.next() % 10u64.pow(magnitude).max(1);
    let unit = rng.pick(&["ms", "s", "m", "h", "d", "w", "y", "us", "ns", ""]);
    format!("\"{n}{unit}\"")
}

/// Numbers of every size and sign.
fn number(rng: &mut Rng) -> String {
    let mantissa = (rng.next() % 10_000) as f64 / 100.0;
    let exponent = rng.below(40) as i32 - 20;
    let sign = if rng.chance(4) { "-" } else { "" };
    if rng.chance(2) {
        format!("{sign}{}", (rng.next() >> rng.below(64)) as i64)
    } else {
        format!("{sign}{mantissa}e{exponent}")
    }
}

/// Lines a config could hold, from its own keys.
const KEYS: &[&str] = &[
    "servers",
    "seed",
    "resolution",
    "datacenters",
    "weight",
    "rps",
    "mtbf",
    "mttr",
    "deploy_every",
    "reboot_every",
    "burst_every",
    "burst_min",
    "burst_max",
    "cleanup_every",
    "rotate_every",
    "restart_at",
    "base",
    "random_per_day",
    "reversion",
    "series_mode",
    "churn",
    "churn_interval",
    "series_change_interval",
    "min_servers",
    "spike_multiplier",
    "kind",
    "target",
    "start",
    "duration",
    "intensity",
    "ramp",
];

const HEADERS: &[&str] = &[
    "[roles.web.lifecycle]",
    "[roles.db.cpu]",
    "[roles.api.memory]",
    "[roles.cache.disk]",
    "[roles.worker.traffic.load]",
    "[incidents]",
    "[[incident]]",
    "[labels]",
    "[load_test]",
    "[roles]",
    "[roles.nope]",
    "[[roles.web]]",
    "[ünïcode]",
];

/// The value part of `key = value # comment`, if the line is one.
fn value_span(line: &str) -> Option<(usize, usize)> {
    let eq = line.find('=')?;
    if line.trim_start().starts_with('#') || line.trim_start().starts_with('[') {
        return None;
    }
    let end = line[eq..]
        .find(" #")
        .map_or(line.len(), |i| eq + i)
        .max(eq + 1);
    Some((eq + 1, end))
}

/// One structured mutation of `lines`.
fn mutate(rng: &mut Rng, lines: &mut Vec<String>) {
    if lines.is_empty() {
        lines.push(String::new());
    }
    let at = rng.below(lines.len());
    match rng.below(11) {
        0 => {
            lines.remove(at);
        }
        1 => {
            let line = lines[at].clone();
            lines.insert(at, line);
        }
        2 => {
            let other = rng.below(lines.len());
            lines.swap(at, other);
        }
        3..=5 => {
            // A value set to an extreme, a duration or a number of any size.
            let values: Vec<usize> = (0..lines.len())
                .filter(|&i| value_span(&lines[i]).is_some())
                .collect();
            if let Some(&i) = values.get(rng.below(values.len())) {
                let (from, to) = value_span(&lines[i]).unwrap();
                let value = match rng.below(4) {
                    0 => rng.pick(EXTREMES).to_string(),
                    1 => duration(rng),
                    2 => number(rng),
                    _ => rng.pick(NEAR_BOUNDS).to_string(),
                };
                lines[i].replace_range(from..to, &format!(" {value}"));
            }
        }
        6 => {
            // A commented example made live.
            let commented: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].starts_with("# ") && lines[i].contains('='))
                .collect();
            if let Some(&i) = commented.get(rng.below(commented.len())) {
                lines[i] = lines[i][2..].to_string();
            }
        }
        7 => {
            let key = rng.pick(KEYS);
            let value = match rng.below(3) {
                0 => rng.pick(EXTREMES).to_string(),
                1 => duration(rng),
                _ => number(rng),
            };
            lines.insert(at, format!("{key} = {value}"));
        }
        8 => lines.insert(at, rng.pick(HEADERS).to_string()),
        9 => {
            // Unicode and control characters in the middle of a line.
            let line = &mut lines[at];
            let cut = (0..=line.len())
                .filter(|&i| line.is_char_boundary(i))
                .nth(rng.below(line.chars().count() + 1))
                .unwrap_or(line.len());
            let junk = rng.pick(&[
                "é", "☃", "\u{feff}", "\u{0}", "\t", "\"", "'", "]", "{", "=",
            ]);
            line.insert_str(cut, junk);
        }
        _ => {
            // A long name or value.
            let long = "x".repeat(1 + rng.below(70_000));
            lines.insert(at, format!("datacenters = [\"{long}\"]"));
        }
    }
}

/// Arbitrary bytes, now and then leaning to TOML's punctuation.
fn bytes(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(600);
    let punctuation = b"[]{}=\"'.,#\n \t0123456789abcdefghijklmnopqrstuvwxyz_-+";
    let lean = rng.chance(2);
    (0..len)
        .map(|_| {
            if lean {
                *rng.pick(punctuation)
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

/// What the fuzzing saw.
#[derive(Default, Debug)]
struct Counts {
    cases: usize,
    from_bytes: usize,
    refused: usize,
    accepted: usize,
    refused_by_settings: usize,
    generated: usize,
    slowest: Duration,
    /// Time in the loader alone.
    loading: Duration,
}

/// Asserts `message` is one line of sane length.
fn one_line(message: &str, case: &str) {
    assert!(
        !message.contains('\n') && !message.contains('\r'),
        "not one line: {message:?}\n{case}"
    );
    assert!(
        message.len() < 1000,
        "{} bytes: {message:.300}\n{case}",
        message.len()
    );
}

/// Generates a minute of 10 servers from the config at `path` as `generate` does (the
/// CSV, the OpenMetrics history with its counters, the answer key), into sinks; `Err` is
/// a refusal of the settings, which must be one line.
fn generate_a_minute(path: &Path, scratch: &Path) -> Result<Duration, String> {
    let args = [
        "fleetsim",
        "generate",
        "--config",
        path.to_str().unwrap(),
        "--servers",
        "10",
        "--start",
        "2026-11-24T12:00:00Z",
        "--duration",
        "1m",
        "--step",
        "15s",
    ];
    let cli = cli::parse(args).map_err(|e| e.to_string())?;
    let Command::Generate(generate) = &cli.command else {
        unreachable!("a generate command")
    };
    let began = Instant::now();
    let settings = generate.settings(0).map_err(|e| e.to_string())?;
    let fleet = &settings.fleet;
    let (start, end, step) = (settings.start_ms, settings.end_ms, settings.step_ms);
    let members = members(&fleet.params, fleet.servers, fleet.range.clone());
    let schedule = fleet.schedule(start, &members).map_err(|e| e.to_string())?;

    let mut slices = csv_slices(
        &fleet.params,
        fleet.seed,
        &members,
        start,
        &schedule,
        &fleet.shape,
    );
    let rows = write_csv(
        std::io::sink(),
        &mut slices,
        &fleet.labels,
        instants(start, end, step),
        |_| true,
    )
    .expect("a sink takes every row");
    assert!(rows <= 40, "{rows} rows for 4 instants of 10 servers");

    let timeline_of = |member: &fleetsim::model::Member| {
        FleetSpec::new(&fleet.params, fleet.seed, vec![member.clone()])
            .schedule(schedule.clone())
            .shape(fleet.shape.clone())
            .timeline(start)
    };
    let labels = scraped_labels(&fleet.labels, &settings.job, &settings.instance)?;
    let grid = Grid {
        start_ms: start,
        end_ms: end,
        step_ms: step,
    };
    write_openmetrics(
        std::io::sink(),
        scratch,
        &members,
        timeline_of,
        &labels,
        grid,
        |_| true,
    )
    .expect("a sink takes every sample");

    let spec = FleetSpec::new(&fleet.params, fleet.seed, members)
        .schedule(schedule)
        .shape(fleet.shape.clone());
    let _ = spec.events_between(start, end);
    Ok(began.elapsed())
}

/// Loads `text` (and writes it to `path` for what comes after): no panic, one line.
fn check(text: &str, path: &Path, scratch: &Path, counts: &mut Counts, case: &str) -> bool {
    counts.cases += 1;
    let began = Instant::now();
    let loaded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        fleetsim::config::parse(text, "fuzz.toml")
    }));
    counts.loading += began.elapsed();
    let loaded = loaded.unwrap_or_else(|_| panic!("the loader panicked on:\n{case}"));
    match loaded {
        Err(e) => {
            one_line(&e.to_string(), case);
            counts.refused += 1;
            false
        }
        Ok(_) => {
            counts.accepted += 1;
            std::fs::write(path, text).unwrap();
            let generated =
                std::panic::catch_unwind(AssertUnwindSafe(|| generate_a_minute(path, scratch)));
            match generated.unwrap_or_else(|_| panic!("generating panicked on:\n{case}")) {
                Err(e) => {
                    one_line(&e, case);
                    counts.refused_by_settings += 1;
                }
                Ok(took) => {
                    assert!(
                        took < GENERATE_LIMIT,
                        "a minute of 10 servers took {took:?} on:\n{case}"
                    );
                    counts.generated += 1;
                    counts.slowest = counts.slowest.max(took);
                }
            }
            true
        }
    }
}

/// The case as a failure shows it: the seed to replay, and the text (cut when long).
fn shown(seed: u64, n: usize, text: &str) -> String {
    let cut: String = text.chars().take(3000).collect();
    format!("FLEETSIM_FUZZ_SEED={seed}, case {n}:\n{cut}")
}

#[test]
fn the_config_loader_never_panics_and_what_it_accepts_generates_quickly() {
    let seed = std::env::var("FLEETSIM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let seconds: f64 = std::env::var("FLEETSIM_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mut rng = Rng(seed);
    let shipped: Vec<String> = {
        let mut paths: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    assert!(!shipped.is_empty(), "no config/*.toml to mutate");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    let scratch = dir.path().join("spool");
    std::fs::create_dir(&scratch).unwrap();
    let mut counts = Counts::default();
    // Cases kept for the real binary: a few accepted, a few refused.
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());

    let began = Instant::now();
    let budget = Duration::from_secs_f64(seconds);
    while began.elapsed() < budget || counts.cases < 200 {
        let n = counts.cases;
        if rng.chance(5) {
            let raw = bytes(&mut rng);
            let text = String::from_utf8_lossy(&raw).into_owned();
            counts.from_bytes += 1;
            let case = shown(seed, n, &text.escape_debug().to_string());
            // As `load` reads a file: bytes that are not UTF-8 are refused in one line.
            if rng.chance(8) {
                std::fs::write(&path, &raw).unwrap();
                match fleetsim::config::load(&path) {
                    Err(e) => one_line(&e.to_string(), &case),
                    Ok(_) => assert!(std::str::from_utf8(&raw).is_ok(), "{case}"),
                }
            }
            check(&text, &path, &scratch, &mut counts, &case);
            continue;
        }
        let base = rng.pick(&shipped);
        let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut lines);
        }
        let mut text = lines.join("\n");
        if rng.chance(20) {
            // Cut anywhere, as a file half written.
            let cut = rng.below(text.len() + 1);
            let cut = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap();
            text.truncate(cut);
        }
        let case = shown(seed, n, &text);
        if check(&text, &path, &scratch, &mut counts, &case) {
            if accepted.len() < 3 {
                accepted.push(text);
            }
        } else if refused.len() < 3 {
            refused.push(text);
        }
    }

    // A few through the real binary, with a deadline.
    let out = dir.path().join("out.csv");
    let mut binary_runs = 0;
    for text in accepted.iter().chain(&refused) {
        std::fs::write(&path, text).unwrap();
        let mut child = common::bin()
            .args(["generate", "--config", path.to_str().unwrap()])
            .args(["--duration", "1m", "--out", out.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("generate ran past 20 s on:\n{}", shown(seed, 0, text));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        let case = shown(seed, 0, text);
        assert!(!err.contains("panicked"), "{err}\n{case}");
        match status.code() {
            Some(0) => assert!(err.contains("fleetsim: wrote"), "{err}\n{case}"),
            Some(2) => {
                assert_eq!(err.lines().count(), 1, "{err}\n{case}");
                assert!(err.starts_with("fleetsim: "), "{err}\n{case}");
            }
            other => panic!("exit {other:?}: {err}\n{case}"),
        }
        binary_runs += 1;
    }

    eprintln!(
        "config fuzz, seed {seed}: {} cases in {:.1} s ({:.2} s loading, {} from arbitrary \
         bytes): {} refused by the loader, {} accepted ({} refused by the flags' checks, {} \
         generated, the slowest in {:.3} s); {binary_runs} through the binary",
        counts.cases,
        began.elapsed().as_secs_f64(),
        counts.loading.as_secs_f64(),
        counts.from_bytes,
        counts.refused,
        counts.accepted,
        counts.refused_by_settings,
        counts.generated,
        counts.slowest.as_secs_f64()
    );
    assert!(counts.accepted > 0 && counts.refused > 0, "{counts:?}");
}
