//! Bad input: one line naming what is wrong, a non-zero exit, nothing half-written.

mod common;

use std::process::Output;

use common::run;

/// Asserts a failure with `code` and a single line on stderr that contains every `needle`.
fn fails(out: Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("fleetsim: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{err:?} does not say {needle:?}");
    }
}

#[test]
fn zero_servers_is_a_usage_error() {
    fails(run(&["exporter", "--servers", "0"]), 2, &["--servers", "0"]);
    fails(run(&["generate", "--servers", "0"]), 2, &["--servers"]);
}

/// Asserts a failure with exit code 2 and exactly `line` on stderr.
fn says(out: Output, line: &str) {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err, format!("fleetsim: {line}\n"));
}

#[test]
fn numbers_out_of_range_name_the_flag_the_bound_and_the_value() {
    // A negative number is a value out of range, not an unknown flag `-3`.
    says(
        run(&["exporter", "--servers", "-3"]),
        "--servers must be at least 1 (got -3)",
    );
    says(
        run(&["exporter", "--servers=-3"]),
        "--servers must be at least 1 (got -3)",
    );
    says(
        run(&["generate", "--servers", "-3"]),
        "--servers must be at least 1 (got -3)",
    );
    says(
        run(&["exporter", "--servers", "2000000"]),
        "--servers must be at most 1000000 (got 2000000)",
    );
    says(
        run(&["exporter", "--servers", "ten"]),
        "--servers must be a whole number (got ten)",
    );
    says(
        run(&["generate", "--seed", "-1"]),
        "--seed must be at least 0 (got -1)",
    );
    says(
        run(&["exporter", "--min-servers", "-2"]),
        "--min-servers must be at least 0 (got -2)",
    );
    says(
        run(&["exporter", "--series-change-rate", "-1"]),
        "--series-change-rate must be at least 0 (got -1)",
    );
    // Negative shares and multipliers reach their own checks.
    fails(
        run(&["exporter", "--churn", "-0.5"]),
        2,
        &["--churn must be", "-0.5"],
    );
    fails(
        run(&["exporter", "--spike-multiplier", "-2"]),
        2,
        &["--spike-multiplier must be", "-2"],
    );
}

#[test]
fn a_misspelt_subcommand_or_flag_gets_one_line_with_the_suggestion() {
    says(
        run(&["exportr"]),
        "unrecognized subcommand 'exportr' (a similar subcommand exists: 'exporter')",
    );
    says(
        run(&["exporter", "--server", "3"]),
        "unexpected argument '--server' found (a similar argument exists: '--servers')",
    );
    says(
        run(&["generate", "--stpe", "1m"]),
        "unexpected argument '--stpe' found (a similar argument exists: '--step')",
    );
}

#[test]
fn zero_or_negative_steps_and_ticks_are_usage_errors() {
    fails(run(&["generate", "--step", "0s"]), 2, &["--step", "zero"]);
    fails(run(&["generate", "--step=-1m"]), 2, &["--step", "negative"]);
    fails(
        run(&["generate", "--step", "often"]),
        2,
        &["--step", "not a duration"],
    );
    fails(run(&["exporter", "--tick", "0ms"]), 2, &["--tick", "zero"]);
}

#[test]
fn end_before_start_is_a_usage_error() {
    fails(
        run(&[
            "generate",
            "--start",
            "2026-11-24T12:00:00Z",
            "--end",
            "2026-11-24T11:00:00Z",
        ]),
        2,
        &["--end", "after", "--start"],
    );
    fails(
        run(&["generate", "--start", "yesterday"]),
        2,
        &["--start", "RFC 3339"],
    );
    fails(
        run(&[
            "generate",
            "--start",
            "2026-11-24T00:00:00Z",
            "--end",
            "2026-11-25T00:00:00Z",
            "--duration",
            "1d",
        ]),
        2,
        &["--duration"],
    );
}

#[test]
fn unknown_subcommands_and_flags_are_usage_errors() {
    fails(run(&["explode"]), 2, &["explode"]);
    fails(run(&["exporter", "--serverz", "3"]), 2, &["--serverz"]);
    fails(
        run(&["exporter", "--listen", "not an address"]),
        2,
        &["--listen"],
    );
}

#[test]
fn help_and_version_succeed() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("exporter") && text.contains("generate"));
    let out = run(&["exporter", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--servers",
        "--config",
        "--listen",
        "--seed",
        "--tick",
        "--log-level",
    ] {
        assert!(text.contains(flag), "exporter --help lacks {flag}");
    }
    let out = run(&["generate", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--out",
        "--servers",
        "--config",
        "--seed",
        "--start",
        "--end",
        "--duration",
        "--step",
    ] {
        assert!(text.contains(flag), "generate --help lacks {flag}");
    }
    assert!(run(&["--version"]).status.success());
}

fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn unknown_config_key_names_file_line_and_key() {
    let (_dir, path) = config_file("servers = 4\n\n[roles.web.cpu]\nidel = 3\n");
    fails(
        run(&["exporter", "--config", &path]),
        2,
        &[&format!("{path}:4:"), "idel"],
    );
    fails(
        run(&["generate", "--config", &path]),
        2,
        &[&format!("{path}:4:"), "idel"],
    );
}

#[test]
fn malformed_config_names_file_and_line() {
    let (_dir, path) = config_file("servers = 4\nseed = = 3\n");
    fails(
        run(&["generate", "--config", &path]),
        2,
        &[&format!("{path}:2:")],
    );
    let (_dir, path) = config_file("[roles.db.memory]\nbase = \"half\"\n");
    fails(
        run(&["generate", "--config", &path]),
        2,
        &[&format!("{path}:2:"), "base"],
    );
    let (_dir, path) = config_file("[roles.db.memory]\nbase = 140\n");
    fails(
        run(&["generate", "--config", &path]),
        2,
        &[&path, "roles.db.memory.base"],
    );
}

#[test]
fn missing_config_file_is_named() {
    fails(
        run(&["generate", "--config", "/nonexistent/fleet.toml"]),
        2,
        &["/nonexistent/fleet.toml", "cannot read"],
    );
}

#[test]
fn unwritable_output_is_one_line_exit_1_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The parent "folder" is a file: the CSV cannot be created under it.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("m.csv");
    fails(
        run(&[
            "generate",
            "--duration",
            "1h",
            "--out",
            out.to_str().unwrap(),
        ]),
        1,
        &["blocker"],
    );
    // A folder where the file should go: the rename fails, the temporary file is removed.
    let target = dir.path().join("taken.csv");
    std::fs::create_dir(&target).unwrap();
    fails(
        run(&[
            "generate",
            "--duration",
            "1h",
            "--out",
            target.to_str().unwrap(),
        ]),
        1,
        &["taken.csv"],
    );
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["blocker", "taken.csv"], "something was left behind");
}

#[test]
fn interrupted_generate_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.csv");
    // Long enough to be still running when the signal arrives.
    let child = common::bin()
        .args([
            "generate",
            "--servers",
            "300",
            "--duration",
            "30d",
            "--step",
            "15s",
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let result = child.wait_with_output().unwrap();
    let err = String::from_utf8(result.stderr).unwrap();
    assert_eq!(result.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
