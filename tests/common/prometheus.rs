//! A real Prometheus (Debian's package) on a loopback port, for the end-to-end tests.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::get;

/// A running Prometheus, stopped by its pid when dropped, with its folder.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts Prometheus on `dir/prometheus.yml` (written by the caller), with its data in
    /// `dir/data` unless `extra` says otherwise, and waits until it is ready.
    pub fn start(dir: tempfile::TempDir, extra: &[&str]) -> Prometheus {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let mut command = Command::new(super::require_tool("prometheus", "prometheus"));
        command.arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ));
        if !extra.iter().any(|a| a.starts_with("--storage.tsdb.path")) {
            command.arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ));
        }
        let child = command
            .arg(format!("--web.listen-address={addr}"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let mut prometheus = Prometheus { child, addr, dir };
        let log = prometheus.dir.path().join("prometheus.log");
        super::wait_ready(
            &mut prometheus.child,
            prometheus.addr,
            "/-/ready",
            &log,
            "prometheus",
        );
        prometheus
    }

    /// `path` of the HTTP API, which must answer success; returns its `data`.
    pub fn api(&self, path: &str) -> Value {
        let r = get(self.addr, path);
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|_| panic!("not JSON for {path}: {}", r.body));
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    pub fn query(&self, expr: &str) -> Value {
        self.api(&format!("/api/v1/query?query={}", encode(expr)))
    }

    pub fn query_range(&self, expr: &str, start_s: f64, end_s: f64, step_s: f64) -> Value {
        self.api(&format!(
            "/api/v1/query_range?query={}&start={start_s}&end={end_s}&step={step_s}",
            encode(expr)
        ))
    }
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn result_count(data: &Value) -> usize {
    match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => data["result"].as_array().map_or(0, Vec::len),
        Some("scalar") | Some("string") => 1,
        _ => 0,
    }
}
