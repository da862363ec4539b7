//! The web config at work in the real binary: a real Prometheus scrapes over TLS with basic
//! auth; bad credentials, an unknown certificate, no client certificate and plain HTTP on
//! the TLS port are refused; the probes stay open; the admin API asks for the password
//! too; SIGHUP re-reads the file and open connections keep theirs.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Exporter;
use common::certs::{TestCerts, bcrypt_hash};
use common::prometheus::Prometheus;

/// `Authorization` for `user:password`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// One TLS connection, kept open for several requests.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsClient> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake, now: a refusal shows here rather than in the first request.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient { stream })
    }

    /// A request on the kept-alive connection: the status, the head in lower case, and
    /// the body (read to its Content-Length; these answers are not chunked).
    fn request(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> std::io::Result<(u16, String, String)> {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            self.stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        self.stream.flush()?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                match length {
                    Some(len) if raw.len() >= end + 4 + len => {
                        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                        let body =
                            String::from_utf8_lossy(&raw[end + 4..end + 4 + len]).to_string();
                        return Ok((status, head, body));
                    }
                    // A streamed scrape: the head is enough for these tests.
                    None if head.contains("transfer-encoding: chunked") => {
                        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                        return Ok((status, head, String::new()));
                    }
                    _ => {}
                }
            }
        }
        Err(std::io::Error::other(format!(
            "connection closed after {} bytes",
            raw.len()
        )))
    }
}

fn web_config(certs: &TestCerts, extra_tls: &str, password: &str) -> std::path::PathBuf {
    certs.write_web_config(&format!(
        "{}{extra_tls}http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\nbasic_auth_users:\n  prometheus: {}\n",
        certs.tls_server_config(),
        bcrypt_hash(password)
    ))
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_is_refused_without() {
    let certs = TestCerts::new();
    let file = web_config(&certs, "", "s3cret");
    let exporter = Exporter::start_tls(&[
        "--servers",
        "5",
        "--web.config.file",
        file.to_str().unwrap(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret").unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "guess").unwrap();
    let job = |name: &str, scheme: &str, password_file: &std::path::Path| {
        format!(
            "  - job_name: {name}\n    scheme: {scheme}\n    scrape_interval: 1s\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prometheus\n      password_file: {}\n    static_configs:\n      - targets: ['{}']\n",
            certs.ca.display(),
            password_file.display(),
            exporter.addr
        )
    };
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}{}",
            job("tls", "https", &password),
            job("wrong_password", "https", &wrong),
            job("plain_http", "http", &password),
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start(dir, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut up, mut servers) = (String::new(), String::new());
    while Instant::now() < deadline {
        let result = prometheus.query("up");
        up = result["result"].to_string();
        servers = prometheus.query("count(app_server_up{job=\"tls\"})")["result"].to_string();
        let ups: Vec<(String, String)> = result["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metric"]["job"].as_str().unwrap().to_string(),
                    r["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if ups.len() == 3 && servers.contains("\"5\"") {
            for (job, value) in &ups {
                let want = if job == "tls" { "1" } else { "0" };
                assert_eq!(value, want, "up for job {job}: {up}");
            }
            let targets = prometheus.api("/api/v1/targets");
            let errors: Vec<String> = targets["activeTargets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{}: {}", t["labels"]["job"], t["lastError"]))
                .collect();
            println!("up: {up}\nscrape errors: {errors:?}");
            let error_of = |job: &str| {
                errors
                    .iter()
                    .find(|e| e.starts_with(&format!("\"{job}\"")))
                    .cloned()
                    .unwrap()
            };
            assert!(error_of("wrong_password").contains("401"), "{errors:?}");
            assert!(!error_of("plain_http").contains("200"), "{errors:?}");
            assert_eq!(error_of("tls"), "\"tls\": \"\"", "{errors:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("Prometheus never scraped the TLS target: up {up}, servers {servers}");
}

#[test]
fn credentials_certificates_and_plain_http_are_checked_and_the_probes_stay_open() {
    let certs = TestCerts::new();
    let file = web_config(&certs, "", "s3cret");
    let exporter = Exporter::start_tls(&[
        "--servers",
        "3",
        "--web.config.file",
        file.to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let client = certs.client_config(None);
    let mut c = TlsClient::connect(exporter.addr, client.clone()).unwrap();
    let right = basic("prometheus", "s3cret");
    let (status, head, _) = c.request("GET", "/metrics", Some(&right), "").unwrap();
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("x-frame-options: deny"), "{head}");
    for (what, auth) in [
        ("no credentials", None),
        ("a wrong password", Some(basic("prometheus", "s3cre"))),
        ("an unknown user", Some(basic("grafana", "s3cret"))),
        ("garbage", Some("Basic !!!".to_string())),
    ] {
        let mut c = TlsClient::connect(exporter.addr, client.clone()).unwrap();
        let (status, head, _) = c.request("GET", "/metrics", auth.as_deref(), "").unwrap();
        assert_eq!(status, 401, "{what}: {head}");
        assert!(head.contains("www-authenticate: basic"), "{what}: {head}");
        let (status, _, _) = c.request("GET", "/", auth.as_deref(), "").unwrap();
        assert_eq!(status, 401, "{what}: the landing page");
    }
    // The probes answer without a password (over TLS still).
    let mut c = TlsClient::connect(exporter.addr, client.clone()).unwrap();
    for path in ["/-/healthy", "/-/ready"] {
        let (status, _, _) = c.request("GET", path, None, "").unwrap();
        assert_eq!(status, 200, "{path}");
    }
    // The admin API asks for the same password.
    let admin = exporter.admin.expect("the admin API's address");
    let mut a = TlsClient::connect(admin, client.clone()).unwrap();
    let (status, _, _) = a.request("GET", "/api/v1/incidents", None, "").unwrap();
    assert_eq!(status, 401, "the admin API without credentials");
    let (status, _, body) = a
        .request("GET", "/api/v1/incidents", Some(&right), "")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // A client that trusts another CA refuses the server; plain HTTP gets no HTTP answer.
    let strangers = {
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&certs.other_ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    assert!(
        TlsClient::connect(exporter.addr, strangers).is_err(),
        "a client of another CA got through"
    );
    let mut plain = TcpStream::connect(exporter.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(plain, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP was served"
    );
}

#[test]
fn mutual_tls_takes_only_the_ca_s_clients() {
    let certs = TestCerts::new();
    let file = certs.write_web_config(&format!(
        "{}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
        certs.tls_server_config(),
        certs.ca.display()
    ));
    let exporter = Exporter::start_tls(&[
        "--servers",
        "3",
        "--web.config.file",
        file.to_str().unwrap(),
    ]);
    let with_cert = certs.client_config(Some((&certs.client_cert, &certs.client_key)));
    let mut c = TlsClient::connect(exporter.addr, with_cert).unwrap();
    assert_eq!(c.request("GET", "/metrics", None, "").unwrap().0, 200);
    // rustls reports a refused client certificate at the first read after the handshake.
    for (what, config) in [
        ("no certificate", certs.client_config(None)),
        (
            "another CA's",
            certs.client_config(Some((&certs.other_client_cert, &certs.other_client_key))),
        ),
    ] {
        let refused = TlsClient::connect(exporter.addr, config)
            .and_then(|mut c| c.request("GET", "/metrics", None, ""))
            .is_err();
        assert!(refused, "a client with {what} got through");
    }
}

#[test]
fn sighup_rereads_the_file_and_open_connections_keep_theirs() {
    let certs = TestCerts::new();
    let file = web_config(&certs, "", "old-password");
    let exporter = Exporter::start_tls(&[
        "--servers",
        "3",
        "--web.config.file",
        file.to_str().unwrap(),
    ]);
    let client = certs.client_config(None);
    let mut open = TlsClient::connect(exporter.addr, client.clone()).unwrap();
    let (old, new) = (
        basic("prometheus", "old-password"),
        basic("prometheus", "new-password"),
    );
    assert_eq!(open.request("GET", "/", Some(&old), "").unwrap().0, 200);
    web_config(&certs, "", "new-password");
    exporter.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = exporter.stderr.recv_timeout(Duration::from_millis(200)) {
            said.push(line.clone());
            if line.contains("web config re-read") {
                break;
            }
        }
    }
    assert!(
        said.iter().any(|l| l.contains("web config re-read")),
        "{said:?}"
    );
    // The connection open before keeps the old file; new ones take the new one.
    // (The landing page: its answer has a length, so the connection can be used again.)
    assert_eq!(open.request("GET", "/", Some(&old), "").unwrap().0, 200);
    let mut fresh = TlsClient::connect(exporter.addr, client.clone()).unwrap();
    assert_eq!(fresh.request("GET", "/", Some(&old), "").unwrap().0, 401);
    assert_eq!(fresh.request("GET", "/", Some(&new), "").unwrap().0, 200);
    // A bad file is refused and the one in force stays.
    std::fs::write(&file, "tls_server_config: [\n").unwrap();
    exporter.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = None;
    while Instant::now() < deadline && refused.is_none() {
        if let Ok(line) = exporter.stderr.recv_timeout(Duration::from_millis(200))
            && line.contains("web config not re-read")
        {
            refused = Some(line);
        }
    }
    assert!(refused.is_some(), "no word of the bad file");
    let mut after = TlsClient::connect(exporter.addr, client).unwrap();
    assert_eq!(after.request("GET", "/", Some(&new), "").unwrap().0, 200);
}

#[test]
fn a_bad_web_config_stops_the_start_with_one_line() {
    let certs = TestCerts::new();
    let file = certs.write_web_config(
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: server-key.pem\n",
    );
    let out = common::run(&[
        "exporter",
        "--listen",
        "127.0.0.1:0",
        "--web.config.file",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cert_file"), "{err}");
}
