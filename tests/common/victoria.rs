//! A real VictoriaMetrics (Debian's `victoria-metrics`) on a loopback port, for the remote
//! write tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::get;
use super::prometheus::{encode, free_port};

/// A running single-node VictoriaMetrics, stopped by its pid when dropped, with its folder.
pub struct VictoriaMetrics {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl VictoriaMetrics {
    /// Starts it with its data in a new temporary folder, and waits until it is healthy.
    /// Fresh samples are visible to queries at once (`-search.latencyOffset=0s`).
    pub fn start() -> VictoriaMetrics {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("victoria-metrics.log")).unwrap();
        let child = Command::new(super::require_tool("victoria-metrics", "victoria-metrics"))
            .arg(format!("-httpListenAddr={addr}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg("-retentionPeriod=1d")
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("victoria-metrics starts");
        let mut vm = VictoriaMetrics { child, addr, dir };
        let log = vm.dir.path().join("victoria-metrics.log");
        super::wait_ready(&mut vm.child, vm.addr, "/health", &log, "victoria-metrics");
        vm
    }

    /// Makes the samples received so far searchable.
    pub fn flush(&self) {
        assert_eq!(get(self.addr, "/internal/force_flush").status, 200);
    }

    /// An instant query of its Prometheus-compatible API, which must succeed; its `data`.
    pub fn query(&self, expr: &str) -> Value {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let r = get(self.addr, &path);
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|_| panic!("not JSON for {path}: {}", r.body));
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }
}
