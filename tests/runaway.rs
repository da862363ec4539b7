//! No runaway work in `generate`: config values it cannot compute in reasonable time are
//! refused at once, SIGTERM and SIGINT stop it within a second whatever it is computing,
//! a killed run's temporary is removed by the next run to the same target, and a full disk
//! says so. Each test runs the real binary and stops what it starts by its pid.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The files in `dir`, sorted by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The temporaries of a run to `target` in `dir` (`.NAME.XXXXXX.tmp`).
fn temporaries(dir: &Path, target: &str) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&format!(".{target}.")) && n.ends_with(".tmp"))
        .collect()
}

/// Starts `generate` with `args`, its stderr kept for later.
fn start(args: &[&str]) -> Child {
    common::bin()
        .arg("generate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits at most `limit` for `child` to exit; killed (by its pid) if it does not.
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {}", child.id());
}

/// Waits until a temporary of `target` appears in `dir`: the run is under way.
fn wait_for_temporary(child: &mut Child, dir: &Path, target: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(name) = temporaries(dir, target).pop() {
            return name;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "generate ended ({status}) before writing: {}",
                stderr_of(child)
            );
        }
        assert!(Instant::now() < deadline, "no temporary after 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A config whose grid is fine enough for a long stretch of computing between two rows:
/// with `--step 1h`, each row of 2,000 servers waits for 36,000 grid steps of each.
const FINE_GRID: &str = "resolution = \"100ms\"\n";

fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_values_that_ran_away_are_refused_at_once_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.csv");
    let dc = "d".repeat(60_000);
    for (text, says) in [
        (
            "resolution = \"1ms\"\n".to_string(),
            "`resolution` must be 100ms to 1h, not 1ms",
        ),
        (
            "resolution = \"100000d\"\n".to_string(),
            "`resolution` must be 100ms to 1h, not 100000d",
        ),
        (
            "[roles.web.lifecycle]\nmtbf = \"1ms\"\n".to_string(),
            "`roles.web.lifecycle.mtbf` must be 0s (never) or 1h to 3650d, not 1ms",
        ),
        (
            "[roles.db.memory]\nrestart_at = 0\n".to_string(),
            "`roles.db.memory.restart_at` must be above `memory.base` (65) and at most 100, not 0",
        ),
        (
            "[roles.db.memory]\nbase = 50\nrestart_at = 40\n".to_string(),
            "`roles.db.memory.restart_at` must be above `memory.base` (50)",
        ),
        (
            format!("datacenters = [\"{dc}\"]\n"),
            "`datacenters`: name 1 is 60000 bytes long, past the 128 allowed",
        ),
    ] {
        let path = config(dir.path(), &text);
        let mut child = start(&[
            "--config",
            path.to_str().unwrap(),
            "--duration",
            "1h",
            "--out",
            out.to_str().unwrap(),
        ]);
        let began = Instant::now();
        let status = wait_at_most(&mut child, Duration::from_secs(10));
        let err = stderr_of(&mut child);
        let shown = &text[..text.len().min(60)];
        let status = status.unwrap_or_else(|| panic!("{shown:?} still ran after 10 s"));
        assert_eq!(status.code(), Some(2), "{shown:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{shown:?}: not one line: {err:?}");
        assert!(
            err.contains(says),
            "{shown:?}: {err:?} does not say {says:?}"
        );
        assert!(err.len() < 200, "{err}");
        assert!(began.elapsed() < Duration::from_secs(5), "{shown:?}");
        assert_eq!(files_in(dir.path()), ["fleet.toml"], "{shown:?}");
    }
}

/// Signals a long `generate` while it computes, and checks it stops within a second:
/// exit code, one line, no temporary, the target as it was.
fn stops_on(signal_name: &str, code: i32, format: &str, previous: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("h.{format}");
    let out = dir.path().join(&name);
    if let Some(previous) = previous {
        std::fs::write(&out, previous).unwrap();
    }
    let path = config(dir.path(), FINE_GRID);
    let mut child = start(&[
        "--config",
        path.to_str().unwrap(),
        "--servers",
        "2000",
        "--duration",
        "2d",
        "--step",
        "1h",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for_temporary(&mut child, dir.path(), &name);
    // Into the grid steps between two rows.
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "it ended too soon");
    let sent = Instant::now();
    signal(&child, signal_name);
    let status = wait_at_most(&mut child, Duration::from_secs(30));
    let took = sent.elapsed();
    let err = stderr_of(&mut child);
    eprintln!(
        "{signal_name} during the {format} history: exited in {:.3} s",
        took.as_secs_f64()
    );
    let status = status.unwrap_or_else(|| panic!("still running 30 s after {signal_name}"));
    assert!(took < Duration::from_secs(2), "took {took:?} to stop");
    assert_eq!(status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.starts_with(&format!("fleetsim: interrupted by SIG{signal_name}: "))
            && err.contains(&name)
            && err.contains("was not written"),
        "{err}"
    );
    let mut expected = vec!["fleet.toml".to_string()];
    if previous.is_some() {
        expected.push(name.clone());
    }
    assert_eq!(files_in(dir.path()), expected, "left behind");
    if let Some(previous) = previous {
        assert_eq!(std::fs::read_to_string(&out).unwrap(), previous);
    }
}

#[test]
fn sigterm_stops_generate_within_a_second_and_leaves_no_file() {
    stops_on("TERM", 143, "csv", None);
}

#[test]
fn sigint_stops_generate_within_a_second_and_keeps_the_previous_file() {
    stops_on("INT", 130, "csv", Some("the last complete history\n"));
}

#[test]
fn sigterm_stops_an_openmetrics_history_too() {
    stops_on("TERM", 143, "om", Some("# EOF\n"));
}

#[test]
fn a_killed_run_s_temporary_is_removed_by_the_next_run_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.csv");
    let path = config(dir.path(), FINE_GRID);
    let long = [
        "--config",
        path.to_str().unwrap(),
        "--servers",
        "2000",
        "--duration",
        "2d",
        "--step",
        "1h",
        "--out",
        out.to_str().unwrap(),
    ];
    // Files that look alike but are not this target's temporaries stay.
    let others = [
        ".h.csv.keep",
        ".other.csv.AbCdE1.tmp",
        ".h.csv.AbCdE1.tmp.bak",
        "h.csv.AbCdE1.tmp",
    ];
    for name in others {
        std::fs::write(dir.path().join(name), "not fleetsim's").unwrap();
    }
    let mut killed = start(&long);
    let leftover = wait_for_temporary(&mut killed, dir.path(), "h.csv");
    signal(&killed, "KILL");
    killed.wait().unwrap();
    assert_eq!(
        temporaries(dir.path(), "h.csv"),
        std::slice::from_ref(&leftover)
    );

    let short = [
        "generate",
        "--duration",
        "1h",
        "--out",
        out.to_str().unwrap(),
    ];
    let done = common::run(&short);
    let err = String::from_utf8(done.stderr).unwrap();
    assert!(done.status.success(), "{err}");
    assert!(
        err.contains(&format!("removed {}", dir.path().join(&leftover).display())),
        "{err}"
    );
    assert!(
        !dir.path().join(&leftover).exists(),
        "the leftover is still there"
    );
    let history = std::fs::read_to_string(&out).unwrap();
    assert!(history.starts_with("timestamp,server,"), "{history:.80}");
    assert_eq!(
        history.lines().count(),
        1 + 60 * 10,
        "a whole hour of 10 servers"
    );
    for name in others {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            "not fleetsim's",
            "{name}"
        );
    }

    // A run under way to the same target keeps its temporary: it is not a leftover.
    let mut live = start(&long);
    let live_temp = wait_for_temporary(&mut live, dir.path(), "h.csv");
    let done = common::run(&short);
    assert!(done.status.success(), "{:?}", done);
    assert!(
        dir.path().join(&live_temp).exists(),
        "the live run's temporary was removed"
    );
    signal(&live, "TERM");
    assert!(wait_at_most(&mut live, Duration::from_secs(5)).is_some());
    assert_eq!(temporaries(dir.path(), "h.csv"), Vec::<String>::new());
}

/// A tmpfs of 1 MiB mounted on a new folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(o) if o.status.success() => SmallDisk { dir },
            Ok(o) => panic!(
                "cannot make a full disk to write to: `mount -t tmpfs -o size=1m tmpfs DIR` \
                 failed ({}: {}); this test needs root (or CAP_SYS_ADMIN) to mount a tmpfs",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!(
                "cannot make a full disk to write to: `mount` does not run ({e}); install \
                 util-linux's mount and run as root"
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_says_so_names_the_file_and_leaves_nothing() {
    let disk = SmallDisk::mount();
    // A week of 10 servers is about 10 MB of CSV, and more of OpenMetrics.
    for name in ["h.csv", "h.om"] {
        let out = disk.path().join(name);
        let done = common::run(&["generate", "--out", out.to_str().unwrap()]);
        let err = String::from_utf8(done.stderr).unwrap();
        assert_eq!(done.status.code(), Some(1), "{name}: {err}");
        assert_eq!(
            err,
            format!(
                "fleetsim: cannot write {}: no space left on device\n",
                out.display()
            )
        );
        assert_eq!(files_in(disk.path()), Vec::<String>::new(), "{name}");
    }
}
