//! A fuzz-style test of the admin API's JSON, bounded in time, against the real binary over
//! loopback: arbitrary bytes, and valid incidents (and Alertmanager notifications) mutated
//! field by field (missing, unknown, duplicated, of the wrong type, huge numbers, deep
//! nesting, unicode, cut short), POSTed as `application/json`. Never a 5xx, the process
//! stays up, and every 4xx is JSON with a one-line error.
//!
//! The RNG is seeded and the seed printed: `FLEETSIM_FUZZ_SEED=N` replays a run, and
//! `FLEETSIM_FUZZ_SECONDS=N` runs longer than the default 4 s.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Exporter, get};
use serde_json::Value;

/// SplitMix64: small, seeded, and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Values of the right type for each field of an incident, good and bad, as JSON text.
fn field_values(field: &str) -> &'static [&'static str] {
    match field {
        "kind" => &[
            r#""outage""#,
            r#""cpu_spike""#,
            r#""memory_leak""#,
            r#""disk_fill""#,
            r#""latency_spike""#,
            r#""error_burst""#,
            r#""meltdown""#,
            r#""OUTAGE""#,
            r#"" outage ""#,
        ],
        "target" => &[
            r#""server=srv-01""#,
            r#""server=srv-04""#,
            r#""role=db""#,
            r#""dc=dc1""#,
            r#""share=0.5""#,
            r#""share=1""#,
            r#""share=0""#,
            r#""share=NaN""#,
            r#""share=inf""#,
            r#""share=1e-320""#,
            r#""share=-0.1""#,
            r#""server=srv-3""#,
            r#""server=""#,
            r#""=""#,
            r#""server=srv-٠١""#,
            r#""dc=\u202edc1""#,
            r#""role=db=db""#,
        ],
        "start" => &[
            r#""2h""#,
            r#""1s""#,
            r#""584942418y""#,
            r#""8000y""#,
            r#""99999999999999999999s""#,
            r#""-5m""#,
            r#""now""#,
            r#""1970-01-01T00:00:00Z""#,
            r#""1969-12-31T23:59:59Z""#,
            r#""9999-12-31T23:59:59.999999999Z""#,
            r#""9999-12-31T23:59:59-23:59""#,
            r#""0000-01-01T00:00:00Z""#,
            r#""2026-02-30T00:00:00Z""#,
            r#""2099-01-01T00:00:00+01:00""#,
        ],
        "duration" => &[
            r#""10m""#,
            r#""5m""#,
            r#""1ns""#,
            r#""0.5ms""#,
            r#""0s""#,
            r#""366d""#,
            r#""367d""#,
            r#""100000000d""#,
            r#""584942418y""#,
            r#""5 m""#,
            r#""5m5m5m""#,
            r#""+5m""#,
            r#""1d-1h""#,
        ],
        "intensity" => &[
            "0",
            "1",
            "0.5",
            "-0",
            "1.0000000000000002",
            "-1",
            "1e308",
            "4.9e-324",
            r#""0.5""#,
        ],
        "ramp" => &[
            r#""1m""#,
            r#""2h""#,
            r#""0s""#,
            r#""584942418y""#,
            r#""-1s""#,
        ],
        _ => &[r#""x""#],
    }
}

/// Values of any type, most of them wrong wherever they land.
const ANY_VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e308",
    "-1e308",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.000000000000000000000000000001",
    "[]",
    "{}",
    "[1, 2, 3]",
    r#"{"kind": "outage"}"#,
    r#""""#,
    r#"" ""#,
    r#""\u0000""#,
    r#""💥🔥""#,
    r#""\ud83d\udca5""#,
    r#""\ud800""#,
    r#""a\nb\r\tc""#,
    r#""\\\"""#,
];

const FIELDS: &[&str] = &["kind", "target", "start", "duration", "intensity", "ramp"];
const UNKNOWN_FIELDS: &[&str] = &["lenght", "Kind", "", "💥", "a\\nb", "__proto__", "id"];

/// A deep nesting of arrays or objects, as JSON text.
fn nested(rng: &mut Rng) -> String {
    let depth = rng.pick(&[64, 127, 128, 129, 1_000, 20_000]);
    if rng.chance(2) {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    } else {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }
}

/// A long string of random characters from a few scripts.
fn long_string(rng: &mut Rng) -> String {
    let pieces = [
        "a", "é", "日", "😀", "\\u0000", "\\n", "\\\"", " ", "srv-01",
    ];
    let n = rng.pick(&[100, 10_000, 70_000]);
    let mut s = String::from("\"");
    for _ in 0..n {
        s.push_str(rng.pick(&pieces));
    }
    s.push('"');
    s
}

/// A value for `field`: mostly of its own kind, sometimes anything.
fn value_for(rng: &mut Rng, field: &str) -> String {
    match rng.below(10) {
        0..=5 => rng.pick(field_values(field)).to_string(),
        6..=7 => rng.pick(ANY_VALUES).to_string(),
        8 => nested(rng),
        _ => long_string(rng),
    }
}

/// An incident, valid or mutated one to four ways, as JSON text.
fn mutated_incident(rng: &mut Rng) -> String {
    let mut fields: Vec<(String, String)> = vec![
        (
            "kind".into(),
            rng.pick(&field_values("kind")[..6]).to_string(),
        ),
        (
            "target".into(),
            rng.pick(&field_values("target")[..5]).to_string(),
        ),
        ("duration".into(), r#""10m""#.into()),
    ];
    if rng.chance(2) {
        fields.push(("intensity".into(), "0.7".into()));
    }
    let mutations = rng.below(5);
    for _ in 0..mutations {
        match rng.below(6) {
            // A field missing.
            0 if !fields.is_empty() => {
                let at = rng.below(fields.len());
                fields.remove(at);
            }
            // An unknown field.
            1 => fields.push((rng.pick(UNKNOWN_FIELDS).to_string(), value_for(rng, "x"))),
            // A field twice.
            2 if !fields.is_empty() => {
                let again = fields[rng.below(fields.len())].clone();
                fields.push(again);
            }
            // A known field with another value.
            _ => {
                let field = rng.pick(FIELDS).to_string();
                let value = value_for(rng, &field);
                match fields.iter_mut().find(|(k, _)| *k == field) {
                    Some(slot) => slot.1 = value,
                    None => fields.push((field, value)),
                }
            }
        }
    }
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {v}", Value::String(k.clone())))
        .collect();
    let mut text = format!("{{{}}}", body.join(", "));
    match rng.below(12) {
        // Cut short.
        0 => {
            let cut = rng.below(text.len() + 1);
            text = String::from_utf8_lossy(&text.as_bytes()[..cut]).into_owned();
        }
        // Not an object.
        1 => text = format!("[{text}]"),
        2 => text = rng.pick(ANY_VALUES).to_string(),
        _ => {}
    }
    text
}

/// An Alertmanager notification, mutated the same ways.
fn mutated_notification(rng: &mut Rng) -> String {
    let alert = format!(
        r#"{{"status": {}, "labels": {}, "annotations": {{}}, "startsAt": {}, "endsAt": {}, "generatorURL": "http://p", "fingerprint": {}}}"#,
        rng.pick(&[r#""firing""#, r#""resolved""#, r#""fired""#, "1"]),
        rng.pick(&[
            r#"{"alertname": "ServerDown", "server": "srv-01"}"#,
            r#"{"server": "srv-01"}"#,
            r#"{"alertname": ""}"#,
            r#"{"alertname": 3}"#,
        ]),
        rng.pick(&[
            r#""2026-12-02T18:00:00Z""#,
            r#""1969-01-01T00:00:00Z""#,
            r#""0001-01-01T00:00:00Z""#,
            r#""at six""#,
            "null",
        ]),
        rng.pick(&[
            r#""0001-01-01T00:00:00Z""#,
            r#""2026-12-02T19:00:00Z""#,
            r#""99999-01-01T00:00:00Z""#,
            "null",
        ]),
        rng.pick(&[r#""f1""#, r#""""#, "7"]),
    );
    let alerts = match rng.below(6) {
        0 => "[]".to_string(),
        1 => format!("[{}]", vec![alert.as_str(); 200].join(",")),
        2 => rng.pick(ANY_VALUES).to_string(),
        3 => nested(rng),
        _ => format!("[{alert}]"),
    };
    let version = rng.pick(&[r#""4""#, r#""4""#, r#""3""#, "4", "null"]);
    let mut text = format!(
        r#"{{"version": {version}, "groupKey": "{{}}:{{}}", "status": "firing", "receiver": {}, "alerts": {alerts}}}"#,
        rng.pick(&[r#""webhook-critical""#, r#""""#, r#""💥""#, "[]"]),
    );
    if rng.chance(8) {
        let cut = rng.below(text.len() + 1);
        text = String::from_utf8_lossy(&text.as_bytes()[..cut]).into_owned();
    }
    text
}

/// Arbitrary bytes: noise, or JSON's own characters shuffled.
fn arbitrary_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = rng.pick(&[0, 1, 2, 16, 300, 4_000, 70_000]);
    let tokens: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\\", b"1e9", b"-", b"null", b"\xff", b"\xc3",
        b"\x00", b" ",
    ];
    let structured = rng.chance(2);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if structured {
            out.extend_from_slice(rng.pick(tokens));
        } else {
            out.push(rng.next() as u8);
        }
    }
    out
}

/// One HTTP/1.1 POST, `Content-Type: application/json`: the status and body of the answer.
fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the admin API is gone: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A refused body (413) may not be read to its end.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("no answer to a POST of {} bytes: {e}", body.len()),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// What a 4xx must be: JSON with a one-line, non-empty `error`.
fn check_error(status: u16, body: &str, sent: &[u8]) {
    let shown = String::from_utf8_lossy(&sent[..sent.len().min(300)]).into_owned();
    let value: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{status} is not JSON ({e}): {body:?}; sent {shown:?}"));
    let error = value["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{status} has no error: {body}; sent {shown:?}"));
    assert!(!error.is_empty(), "an empty error; sent {shown:?}");
    assert_eq!(error.lines().count(), 1, "{error:?}; sent {shown:?}");
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_admin_apis_json_never_gets_a_5xx_and_every_4xx_says_why_in_json() {
    let seed = env_or(
        "FLEETSIM_FUZZ_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let seconds: f64 = env_or("FLEETSIM_FUZZ_SECONDS", 4.0);
    println!("seed {seed} (FLEETSIM_FUZZ_SEED={seed} replays it), {seconds} s");
    let mut rng = Rng(seed);

    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");
    let mut e = Exporter::start(&[
        "--servers",
        "4",
        "--config",
        config,
        "--tick",
        "100ms",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = e.admin.unwrap();

    // By generator, then by status.
    let mut counts: BTreeMap<&str, BTreeMap<u16, u64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < deadline {
        let (generator, path, body) = match rng.below(10) {
            0..=1 => ("bytes", "/api/v1/incidents", arbitrary_bytes(&mut rng)),
            2 => ("bytes", "/api/v1/alerts", arbitrary_bytes(&mut rng)),
            3..=7 => (
                "incident",
                "/api/v1/incidents",
                mutated_incident(&mut rng).into_bytes(),
            ),
            _ => (
                "notification",
                "/api/v1/alerts",
                mutated_notification(&mut rng).into_bytes(),
            ),
        };
        let (status, answer) = post(admin, path, &body);
        *counts
            .entry(generator)
            .or_default()
            .entry(status)
            .or_default() += 1;
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        assert!(status < 500, "{status} for {shown:?}: {answer}");
        match status {
            201 => {
                // Ended at once, so that the cap is not what answers the rest.
                let id = serde_json::from_str::<Value>(&answer).unwrap()["id"]
                    .as_u64()
                    .expect("a created incident has an id");
                let r = common::request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "");
                assert_eq!(r.status, 204, "{}", r.body);
            }
            200 => {}
            _ => check_error(status, &answer, &body),
        }
    }
    for (generator, statuses) in &counts {
        let total: u64 = statuses.values().sum();
        println!("{generator}: {total} posted, by status {statuses:?}");
    }
    let total: u64 = counts.values().flat_map(|s| s.values()).sum();
    println!("seed {seed}: {total} bodies, no 5xx");
    assert!(total > 200, "only {total} bodies in {seconds} s");
    let accepted = |g: &str, s: u16| counts.get(g).and_then(|c| c.get(&s)).copied().unwrap_or(0);
    assert!(
        accepted("incident", 201) > 0,
        "no mutation was valid: {counts:?}"
    );
    assert!(
        accepted("incident", 400) > 0,
        "no mutation was refused: {counts:?}"
    );

    assert!(e.child.try_wait().unwrap().is_none(), "the exporter exited");
    assert_eq!(get(admin, "/api/v1/incidents").status, 200);
    assert_eq!(e.get("/-/healthy").status, 200);
    let logged: Vec<String> = e.stderr.try_iter().collect();
    assert!(
        !logged.iter().any(|l| l.contains("panicked")),
        "{logged:#?}"
    );
}
