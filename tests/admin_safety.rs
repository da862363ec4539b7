//! The admin API safe by default, against the real binary over loopback: a bare port binds
//! loopback only, a POST must be JSON (415), a body past the limit is a 413, incidents
//! that have not ended are capped (429), every instant and duration stays within
//! 1970..=9999 (400 naming the field and the range), and concurrent changes never get a
//! 5xx.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{Exporter, get, request};
use serde_json::Value;

const FAST_GRID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");

const OUTAGE: &str = r#"{"kind": "outage", "target": "server=srv-01", "duration": "5m"}"#;

/// Every incident the exporter lists, random ones included (none on the fast grid).
fn listed(admin: SocketAddr) -> Vec<Value> {
    json(&get(admin, "/api/v1/incidents"))["incidents"]
        .as_array()
        .expect("a list of incidents")
        .clone()
}

fn json(r: &common::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

/// The `error` of a JSON error answer, checked to be one line.
fn error_of(r: &common::Response) -> String {
    let error = json(r)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {}", r.body))
        .to_string();
    assert_eq!(error.lines().count(), 1, "{error}");
    error
}

/// Starts the exporter with exactly `args` after `exporter`, and returns it once it serves,
/// with every line it logged until then (the bind's warnings among them).
fn start_logged(args: &[&str]) -> (Exporter, Vec<String>) {
    let mut child = common::bin()
        .arg("exporter")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the exporter starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said: Vec<String> = Vec::new();
    let address_after = |said: &[String], marker: &str| -> Option<SocketAddr> {
        said.iter().find_map(|line| {
            let rest = line.split(marker).nth(1)?;
            rest.split('/').next()?.parse().ok()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let served = line.contains("serving http://");
                said.push(line);
                if served {
                    let addr = address_after(&said, "serving http://").unwrap();
                    let admin = address_after(&said, "admin API on http://");
                    let e = Exporter {
                        child,
                        addr,
                        admin,
                        stderr: rx,
                    };
                    return (e, said);
                }
            }
            Err(_) => {
                stop(&mut child);
                panic!(
                    "the exporter did not serve within 20s; it said:\n{}",
                    said.join("\n")
                );
            }
        }
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn start(extra: &[&str]) -> Exporter {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--servers",
        "4",
        "--tick",
        "100ms",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    if !extra.contains(&"--config") {
        args.extend(["--config", FAST_GRID]);
    }
    args.extend(extra);
    start_logged(&args).0
}

fn reachable(ip: [u8; 4], port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(2)).is_ok()
}

/// Linux routes all of 127.0.0.0/8 to the loopback interface: a socket bound to every
/// interface answers on 127.0.0.2 too, one bound to 127.0.0.1 does not. So which address a
/// listener took shows without leaving loopback.
const OTHER_LOOPBACK: [u8; 4] = [127, 0, 0, 2];
const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

#[test]
fn a_bare_admin_port_is_loopback_only_and_an_address_binds_where_it_says() {
    let quiet = |said: &[String]| !said.iter().any(|l| l.contains("not on loopback"));

    let (e, said) = start_logged(&["--listen", ":0", "--servers", "2", "--admin-listen", ":0"]);
    let admin = e.admin.expect("the admin API's address is logged");
    assert_eq!(
        admin.ip(),
        IpAddr::from(LOOPBACK),
        "--admin-listen :PORT bound {admin}"
    );
    assert!(reachable(LOOPBACK, admin.port()));
    assert!(
        !reachable(OTHER_LOOPBACK, admin.port()),
        "--admin-listen :PORT answers beyond 127.0.0.1"
    );
    assert!(quiet(&said), "a warning for loopback: {said:#?}");
    // The scrape port's bare port keeps meaning every interface.
    assert!(
        e.addr.ip().is_unspecified(),
        "--listen :PORT bound {}",
        e.addr
    );
    assert!(
        reachable(OTHER_LOOPBACK, e.addr.port()),
        "/metrics not on every interface"
    );
    drop(e);

    let (e, said) = start_logged(&[
        "--listen",
        "127.0.0.1:0",
        "--servers",
        "2",
        "--admin-listen",
        "127.0.0.2:0",
    ]);
    let admin = e.admin.unwrap();
    assert_eq!(
        admin.ip(),
        IpAddr::from(OTHER_LOOPBACK),
        "127.0.0.2:PORT bound {admin}"
    );
    assert!(reachable(OTHER_LOOPBACK, admin.port()));
    assert!(
        !reachable(LOOPBACK, admin.port()),
        "127.0.0.2:PORT answers on 127.0.0.1"
    );
    assert!(quiet(&said), "a warning for loopback: {said:#?}");
    drop(e);

    let (e, said) = start_logged(&[
        "--listen",
        "127.0.0.1:0",
        "--servers",
        "2",
        "--admin-listen",
        "0.0.0.0:0",
    ]);
    let admin = e.admin.unwrap();
    assert!(admin.ip().is_unspecified(), "0.0.0.0:PORT bound {admin}");
    let warning = said
        .iter()
        .find(|l| l.contains("WARN") && l.contains("not on loopback"))
        .unwrap_or_else(|| panic!("no warning for {admin}: {said:#?}"));
    assert!(
        warning.contains("without authentication") && warning.contains("--admin-listen :"),
        "{warning}"
    );
    for ip in [LOOPBACK, OTHER_LOOPBACK] {
        assert!(reachable(ip, admin.port()), "0.0.0.0:PORT not on {ip:?}");
    }
    assert_eq!(
        get((LOOPBACK, admin.port()).into(), "/api/v1/incidents").status,
        200
    );
}

/// A POST of `body` with the head's extra header lines `headers` (each ending in CRLF). The
/// body is written on its own thread while the answer is read, so that a server that
/// answers before reading it all (a 413) is seen to, and the answer is whatever came before
/// the connection closed.
fn post_raw(addr: SocketAddr, path: &str, headers: &str, body: Vec<u8>) -> common::Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        // A refused body stops being read: the write fails then, as it should.
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // The peer closed with the rest of the body unread: what came before stands.
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("no answer from {addr}{path}: {e}"),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
    common::parse_response(raw)
}

fn post_typed(
    addr: SocketAddr,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> common::Response {
    let header = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
    post_raw(
        addr,
        path,
        &format!("{header}Content-Length: {}\r\n", body.len()),
        body.as_bytes().to_vec(),
    )
}

/// A notification as Alertmanager sends it, of one alert.
fn notification() -> String {
    serde_json::json!({
        "version": "4", "groupKey": "{}:{alertname=\"ServerDown\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "webhook-critical", "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "ServerDown", "server": "srv-01"},
            "annotations": {}, "startsAt": "2026-12-02T18:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "f1",
        }],
    })
    .to_string()
}

#[test]
fn posts_that_are_not_json_are_415_naming_the_type_and_change_nothing() {
    let e = start(&[]);
    let admin = e.admin.unwrap();
    let alert = notification();
    for (path, body) in [
        ("/api/v1/incidents", OUTAGE),
        ("/api/v1/alerts", alert.as_str()),
    ] {
        // What a web page may post anywhere without asking first, and more.
        for content_type in [
            None,
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
            Some("text/json"),
        ] {
            let r = post_typed(admin, path, content_type, body);
            assert_eq!(r.status, 415, "{path} {content_type:?}: {}", r.body);
            let error = error_of(&r);
            assert!(
                error.contains("application/json"),
                "{path} {content_type:?}: {error}"
            );
            if let Some(t) = content_type {
                assert!(error.contains(t), "{path}: {error} does not name `{t}`");
            }
        }
    }
    assert!(
        listed(admin).is_empty(),
        "an incident posted as not JSON was added"
    );
    let score = json(&get(admin, "/api/v1/score"));
    assert_eq!(score["counts"]["alerts"], 0, "{score:#}");

    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let r = post_typed(admin, "/api/v1/incidents", Some(content_type), OUTAGE);
        assert_eq!(r.status, 201, "{content_type}: {}", r.body);
    }
    let r = post_typed(
        admin,
        "/api/v1/alerts",
        Some("application/json;charset=UTF-8"),
        &alert,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The exporter's peak resident size, from /proc, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

/// `size` bytes of `Transfer-Encoding: chunked`, in 64 KiB chunks of spaces (which would
/// be valid JSON padding if it were read).
fn chunked_spaces(size: usize) -> Vec<u8> {
    let chunk = vec![b' '; 64 * 1024];
    let mut out = Vec::with_capacity(size + size / 8);
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&chunk[..n]);
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn a_body_past_the_limit_is_413_and_the_rest_is_never_read() {
    let e = start(&[]);
    let admin = e.admin.unwrap();
    let json_type = "Content-Type: application/json\r\n";
    // A whole incident, padded to just the limit (64 KiB), is taken.
    let mut padded = OUTAGE.to_string();
    padded.push_str(&" ".repeat(64 * 1024 - OUTAGE.len()));
    let r = post_typed(
        admin,
        "/api/v1/incidents",
        Some("application/json"),
        &padded,
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let peak_before = peak_rss(e.child.id());
    let ten_mb = 10 * 1024 * 1024;
    for (path, limit) in [
        ("/api/v1/incidents", "65536"),
        ("/api/v1/alerts", "1048576"),
    ] {
        // Told by Content-Length: refused before a byte is read.
        let told = format!("{json_type}Content-Length: {ten_mb}\r\n");
        let r = post_raw(admin, path, &told, vec![b' '; ten_mb]);
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        let error = error_of(&r);
        assert!(
            error.contains(limit),
            "{path}: {error} does not say {limit} bytes"
        );
        assert_eq!(r.header("connection"), Some("close"), "{path}");
        // Sent in chunks of unknown total: read up to the limit, then refused.
        let chunked = format!("{json_type}Transfer-Encoding: chunked\r\n");
        let r = post_raw(admin, path, &chunked, chunked_spaces(ten_mb));
        assert_eq!(r.status, 413, "{path} chunked: {}", r.body);
        assert!(error_of(&r).contains(limit));
    }
    let grown = peak_rss(e.child.id()).saturating_sub(peak_before);
    println!(
        "peak resident size grew by {:.1} MB over four 10 MB bodies",
        grown as f64 / 1e6
    );
    assert!(
        grown < 4 * 1024 * 1024,
        "the peak resident size grew by {grown} bytes: the bodies were read"
    );
    assert_eq!(listed(admin).len(), 1, "only the padded incident is there");
    assert_eq!(get(admin, "/api/v1/incidents").status, 200, "still serving");
}

/// A config file on the fast grid with `n` incidents that have not ended, an hour ahead.
fn config_with_incidents(dir: &std::path::Path, n: usize) -> String {
    let mut text = std::fs::read_to_string(FAST_GRID).unwrap();
    for _ in 0..n {
        text.push_str(
            "\n[[incident]]\nkind = \"cpu_spike\"\ntarget = \"role=web\"\nstart = \"1h\"\nduration = \"10m\"\n",
        );
    }
    let path = dir.join(format!("incidents-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn incidents_not_ended_are_capped_at_1000_config_and_api_together() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_incidents(dir.path(), 2);
    let e = start(&["--config", &config]);
    let admin = e.admin.unwrap();
    // Scheduled half an hour ahead, so that none ends while the test runs.
    let later =
        r#"{"kind": "latency_spike", "target": "role=api", "start": "30m", "duration": "10m"}"#;
    let started = Instant::now();
    let mut created = Vec::new();
    let refused = loop {
        let r = request(admin, "POST", "/api/v1/incidents", later);
        match r.status {
            201 => created.push(json(&r)["id"].as_u64().unwrap()),
            _ => break r,
        }
        assert!(
            created.len() <= 1_000,
            "no cap after {} incidents",
            created.len()
        );
    };
    let took = started.elapsed();
    println!(
        "{} incidents posted in {:.2}s ({:.0} a second), then {}",
        created.len(),
        took.as_secs_f64(),
        created.len() as f64 / took.as_secs_f64(),
        refused.status
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(created.len(), 998, "the config file's 2 count in the 1000");
    let error = error_of(&refused);
    for needle in ["1000", "DELETE /api/v1/incidents/", "config file"] {
        assert!(error.contains(needle), "{error} does not say {needle}");
    }
    assert_eq!(listed(admin).len(), 1_000);

    // Ending one makes room for one, an API incident or a config file's.
    for freed in [created[500], 1] {
        let r = request(admin, "DELETE", &format!("/api/v1/incidents/{freed}"), "");
        assert_eq!(r.status, 204, "{}", r.body);
        let r = request(admin, "POST", "/api/v1/incidents", later);
        assert_eq!(r.status, 201, "after DELETE {freed}: {}", r.body);
        let r = request(admin, "POST", "/api/v1/incidents", later);
        assert_eq!(r.status, 429, "{}", r.body);
    }
    assert_eq!(get(admin, "/api/v1/incidents").status, 200);
    assert_eq!(e.get("/metrics").status, 200);

    // A config file past the cap is refused at start, in one line.
    let over = config_with_incidents(dir.path(), 1_001);
    let out = run_bounded(&["exporter", "--listen", "127.0.0.1:0", "--config", &over]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("1001") && err.contains("at most 1000"),
        "{err}"
    );
}

/// Runs the binary with `args`, killed by its pid if it has not exited within 10 s (a
/// run-away is then a failure, not a hang).
fn run_bounded(args: &[&str]) -> Output {
    let mut child = common::bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            stop(&mut child);
            panic!("`fleetsim {}` still ran after 10s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn instants_and_durations_outside_1970_to_9999_are_400_naming_the_field_and_range() {
    let e = start(&[]);
    let admin = e.admin.unwrap();
    let incident = |extra: &str| {
        format!(r#"{{"kind": "disk_fill", "target": "server=srv-01", "duration": "2h", {extra}}}"#)
    };
    for (body, field) in [
        // Taken before, with a start shown as 1970 and a duration of 0s.
        (incident(r#""start": "584942418y""#), "start: "),
        (incident(r#""start": "8000y""#), "start: "),
        (incident(r#""start": "1969-12-31T23:59:59Z""#), "start: "),
        (
            incident(r#""start": "9999-12-31T23:59:59-01:00""#),
            "start: ",
        ),
        (incident(r#""start": "9999-12-31T23:00:00Z""#), "duration: "),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "100000000d"}"#.into(),
            "duration: ",
        ),
        (incident(r#""ramp": "584942418y""#), "ramp: "),
    ] {
        let r = request(admin, "POST", "/api/v1/incidents", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let error = error_of(&r);
        assert!(
            error.starts_with(field),
            "{body}: {error} does not name {field}"
        );
        assert!(
            error.contains("9999") || error.contains("a year"),
            "{body}: {error} does not say the range"
        );
        assert!(
            !error.contains("1970-01-01T00:00:00.000Z"),
            "{body}: {error} shows a wrapped time"
        );
    }
    assert!(
        listed(admin).is_empty(),
        "an incident out of range was added"
    );

    // The config file's incidents too, before anything is served.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("far.toml");
    std::fs::write(
        &config,
        "[[incident]]\nkind = \"outage\"\ntarget = \"role=db\"\nstart = \"584942418y\"\nduration = \"5m\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = run_bounded(&["exporter", "--listen", "127.0.0.1:0", "--config", config]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("incident 1: start: ") && err.contains("9999"),
        "{err}"
    );
}

#[test]
fn generate_refuses_times_and_durations_out_of_range_instead_of_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("h.csv");
    let out_path = out_path.to_str().unwrap();
    for (flag, value, says) in [
        // Ran away before: a range of i64::MAX milliseconds, written row by row.
        ("--duration", "584942418y", "longer than"),
        (
            "--start",
            "1960-01-01T00:00:00Z",
            "before 1970-01-01T00:00:00Z",
        ),
        (
            "--end",
            "9999-12-31T23:59:59-01:00",
            "after 9999-12-31T23:59:59Z",
        ),
    ] {
        let out = run_bounded(&["generate", "--servers", "1", "--out", out_path, flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(flag) && err.contains(says),
            "{flag} {value}: {err}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files written: {left:?}");
}

#[test]
fn concurrent_posts_and_deletes_never_get_a_5xx() {
    let e = start(&[]);
    let admin = e.admin.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
                let body = format!(
                    r#"{{"kind": "cpu_spike", "target": "server=srv-0{}", "duration": "10m"}}"#,
                    w % 4 + 1
                );
                while !stop.load(Ordering::Relaxed) {
                    let r = request(admin, "POST", "/api/v1/incidents", &body);
                    *statuses.entry(r.status).or_default() += 1;
                    if r.status == 201 {
                        let id = json(&r)["id"].as_u64().unwrap();
                        let r = request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "");
                        *statuses.entry(r.status).or_default() += 1;
                    }
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for w in workers {
        for (status, n) in w.join().unwrap() {
            *statuses.entry(status).or_default() += n;
        }
    }
    let total: u64 = statuses.values().sum();
    println!("{total} concurrent POST and DELETE in 3s over 16 connections: {statuses:?}");
    assert!(total > 1_000, "only {total} requests");
    assert!(
        statuses.keys().all(|&s| s == 201 || s == 204),
        "{statuses:?}"
    );
    assert_eq!(e.get("/-/healthy").status, 200);
}

#[test]
fn only_random_incidents_listed_can_be_ended_so_ids_far_ahead_do_not_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("busy.toml");
    std::fs::write(
        &config,
        "resolution = \"1s\"\n[incidents]\nrandom_per_day = 200\n",
    )
    .unwrap();
    let e = start(&["--config", config.to_str().unwrap()]);
    let admin = e.admin.unwrap();
    let ids: Vec<u64> = listed(admin)
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    let last_listed = *ids
        .iter()
        .max()
        .expect("random incidents are listed a day ahead");
    // Each random incident ended is remembered; ids past the listed day would each add one.
    for ahead in [1_000, 100_000, 1 << 30] {
        let id = last_listed + ahead;
        let r = request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "");
        assert_eq!(r.status, 404, "{id}: {}", r.body);
        assert!(error_of(&r).contains(&id.to_string()));
    }
    let r = request(
        admin,
        "DELETE",
        &format!("/api/v1/incidents/{last_listed}"),
        "",
    );
    assert_eq!(r.status, 204, "the last one listed: {}", r.body);
}
