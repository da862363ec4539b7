//! Helpers for the tests that run the real binary: start it, talk HTTP to it over
//! loopback, parse what it serves, stop it by its pid.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod alertmanager;
pub mod certs;
pub mod prometheus;
pub mod victoria;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fleetsim"))
}

/// Runs the binary to completion with `args`.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

/// A running exporter on an ephemeral loopback port, killed when dropped.
pub struct Exporter {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin API's address, when `--admin-listen` was given.
    pub admin: Option<SocketAddr>,
    pub stderr: mpsc::Receiver<String>,
}

impl Exporter {
    pub fn start(extra: &[&str]) -> Exporter {
        Exporter::start_with_env(extra, &[])
    }

    /// `start`, with these variables set in the exporter's environment.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Exporter {
        Exporter::start_until(extra, env, "serving http://")
    }

    /// `start` for an exporter serving TLS (its log says `https://`).
    pub fn start_tls(extra: &[&str]) -> Exporter {
        Exporter::start_until(extra, &[], "serving https://")
    }

    /// Starts the exporter and returns as soon as it listens, while it warms the fleet up.
    pub fn start_warming_up(extra: &[&str]) -> Exporter {
        Exporter::start_until(extra, &[], "warming up; http://")
    }

    /// Starts the exporter and returns once it logs `marker` followed by its address.
    fn start_until(extra: &[&str], env: &[(&str, &str)], marker: &str) -> Exporter {
        let mut child = bin()
            .args(["exporter", "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
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
        let mut admin = None;
        let mut said = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    said.push(line.clone());
                    let admin_at = line
                        .split("admin API on http://")
                        .nth(1)
                        .or_else(|| line.split("admin API on https://").nth(1));
                    if let Some(rest) = admin_at {
                        admin = Some(rest.split('/').next().unwrap().parse().unwrap());
                    }
                    if let Some(rest) = line.split(marker).nth(1) {
                        let addr = rest.split('/').next().unwrap().parse().unwrap();
                        return Exporter {
                            child,
                            addr,
                            admin,
                            stderr: rx,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "the exporter did not log `{marker}` within 20s ({status:?}); it said:\n{}",
                        said.join("\n")
                    );
                }
            }
        }
    }

    pub fn get(&self, path: &str) -> Response {
        get(self.addr, path)
    }

    /// Sends a signal to the exporter's own pid.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET with `Connection: close`, bounded in time.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, "")
}

/// Any method, with a JSON body when `body` is not empty; bounded in time.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(raw)
}

/// An HTTP/1.1 response as read off the wire: status, headers, and the body, de-chunked.
pub fn parse_response(raw: Vec<u8>) -> Response {
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        String::from_utf8(dechunk(body.as_bytes())).unwrap()
    } else {
        body.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

/// A GET of `/metrics` with `headers` (each ending in CRLF): the response's head, in
/// lower case, and its body as bytes (a gzip or protobuf body is not text), de-chunked.
pub fn get_raw(addr: SocketAddr, headers: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let body = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (head, body)
}

/// The body of a response sent with `Transfer-Encoding: chunked`, joined.
pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&body[..line]).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let rest = &body[line + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// One sample of the text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the text exposition's samples (comments skipped); panics on a malformed line.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value: {line}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
            };
            let (name, labels) = split_series(series);
            let name = name.to_string();
            let labels = labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// Where `tool` is on `PATH`; when it is not there, panics with one line naming the tool and
/// the Debian package that has it. A test that needs an outside tool fails without it,
/// never skips: the README's test command (scripts/test) installs them all.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    find_on_path(tool).unwrap_or_else(|| panic!("{}", missing_tool(tool, package)))
}

/// The one line said when `tool` is missing.
pub fn missing_tool(tool: &str, package: &str) -> String {
    format!(
        "`{tool}` is not installed (not on PATH): install Debian's `{package}` package \
         (scripts/test installs it)"
    )
}

/// Checks the strict OpenMetrics parser of Python's `prometheus_client` on `text`
/// (`text_string_to_metric_families`, every family consumed): `Err` with the parser's own
/// message when it refuses the text. Panics with one line when Python or the package is
/// missing (scripts/test installs it); it never skips.
pub fn strict_openmetrics_parse(text: &[u8]) -> Result<usize, String> {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
n = 0
try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        n += len(family.samples)
except Exception as e:
    print(f"{type(e).__name__}: {e}"[:400])
    sys.exit(3)
print(n)
"#;
    let python = require_tool("python3", "python3");
    let probe = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output()
        .expect("run python3");
    assert!(
        probe.status.success(),
        "Python's `prometheus_client` is not installed: `python3 -m pip install prometheus_client` \
         (scripts/test installs it)"
    );
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text).expect("write to python3");
    }
    let out = child.wait_with_output().expect("wait for python3");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match out.status.code() {
        Some(0) => said.parse().map_err(|_| format!("python3 said `{said}`")),
        Some(3) => Err(said),
        _ => panic!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// The first executable file named `tool` in `PATH`'s directories.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `promtool`: `$PROMTOOL` when set, else the one on `PATH` (Debian's `prometheus`).
pub fn promtool() -> Command {
    match std::env::var_os("PROMTOOL") {
        Some(path) => Command::new(path),
        None => Command::new(require_tool("promtool", "prometheus")),
    }
}

/// Asserts that `promtool check metrics` finds nothing to say about `body`.
pub fn promtool_check(body: &str) {
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

/// `name{a="1",b="2"}` into its name and label pairs, borrowed; panics on a malformed one.
pub fn split_series(series: &str) -> (&str, Vec<(&str, &str)>) {
    match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels: {series}"));
            let labels = inner
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label: {series}"));
                    (k, v.trim_end_matches('"'))
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    }
}

/// Waits until the service that `child` runs answers 200 on `path` at `addr`, at most 30 s;
/// if it exits first, panics with its log.
pub fn wait_ready(
    child: &mut Child,
    addr: SocketAddr,
    path: &str,
    log: &std::path::Path,
    name: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() && get(addr, path).status == 200 {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{name} exited ({status}): {log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{name} did not answer {path} within 30s");
}
