//! A real Alertmanager (Debian's package) on a loopback port, and a webhook listener that
//! collects what it delivers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::get;
use super::prometheus::free_port;

/// A running Alertmanager, stopped by its pid when dropped.
pub struct Alertmanager {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts Alertmanager on `config` (its text), clustering off, and waits until ready.
    pub fn start(config: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let alertmanager =
            super::require_tool("prometheus-alertmanager", "prometheus-alertmanager");
        let child = Command::new(alertmanager)
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("Alertmanager starts");
        let mut am = Alertmanager { child, addr, dir };
        let log = am.dir.path().join("alertmanager.log");
        super::wait_ready(&mut am.child, am.addr, "/-/ready", &log, "alertmanager");
        am
    }

    /// The alerts Alertmanager holds as active now.
    pub fn active_alerts(&self) -> Vec<Value> {
        let r = get(
            self.addr,
            "/api/v2/alerts?active=true&silenced=false&inhibited=false",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str::<Value>(&r.body)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// A webhook receiver on loopback: each POST's JSON body arrives on `received`. Its thread
/// ends when the listener is dropped with the test's process.
pub struct Webhook {
    pub addr: SocketAddr,
    pub received: mpsc::Receiver<Value>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1_000) {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = l.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(json) = serde_json::from_slice::<Value>(&body)
                {
                    let _ = tx.send(json);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Webhook { addr, received: rx }
    }

    /// Waits for a delivery that `pred` accepts, at most `limit`.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}
