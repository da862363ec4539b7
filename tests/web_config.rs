//! The web config's TLS side, proven by real handshakes over 127.0.0.1: tokio-rustls on
//! both sides, the server's config built from a web config file, the client trusting the
//! test's own CA. And the reload of that file, which keeps the old config when the new one
//! is bad.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::certs::{CLIENT_SAN, TestCerts, bcrypt_hash};
use fleetsim::web_config::{SharedWebConfig, WebConfig};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What one connection came to, from both ends.
#[derive(Debug)]
struct Exchange {
    /// The server's accept: `Err` when it refused the handshake.
    server: Result<(), String>,
    /// What the client read back after its handshake: `Ok("pong")` when all went through.
    client: Result<String, String>,
    /// As the client saw them, when its handshake completed.
    version: Option<rustls::ProtocolVersion>,
    suite: Option<rustls::CipherSuite>,
    group: Option<rustls::NamedGroup>,
    alpn: Option<Vec<u8>>,
}

impl Exchange {
    fn went_through(&self) -> bool {
        self.server.is_ok() && self.client.as_deref() == Ok("pong")
    }

    /// Refused by the server, and the client got no answer.
    fn refused(&self) -> bool {
        self.server.is_err() && self.client.as_deref() != Ok("pong")
    }
}

/// One connection: the server accepts with `server`, the client connects to `name` with
/// `client`, says ping, and reads until the server closes.
async fn exchange(
    server: tokio_rustls::TlsAcceptor,
    client: Arc<rustls::ClientConfig>,
    name: &'static str,
) -> Exchange {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = server.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await.map_err(|e| e.to_string())?;
        assert_eq!(&ping, b"ping");
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    let connect = async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(client);
        let mut tls = connector
            .connect(ServerName::try_from(name).unwrap(), tcp)
            .await
            .map_err(|e| (e.to_string(), None))?;
        let (_, session) = tls.get_ref();
        let seen = (
            session.protocol_version(),
            session.negotiated_cipher_suite().map(|s| s.suite()),
            session.negotiated_key_exchange_group().map(|g| g.name()),
            session.alpn_protocol().map(<[u8]>::to_vec),
        );
        let result = async {
            tls.write_all(b"ping").await?;
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
        }
        .await;
        match result {
            Ok(answer) => Ok((answer, seen)),
            Err(e) => Err((e.to_string(), Some(seen))),
        }
    };
    let limit = Duration::from_secs(10);
    let (server, client) = tokio::join!(
        tokio::time::timeout(limit, serve),
        tokio::time::timeout(limit, connect)
    );
    let server = server.unwrap_or_else(|_| Err("the server timed out".into()));
    let (client, seen) = match client {
        Ok(Ok((answer, seen))) => (Ok(answer), Some(seen)),
        Ok(Err((error, seen))) => (Err(error), seen),
        Err(_) => (Err("the client timed out".into()), None),
    };
    let (version, suite, group, alpn) = match seen {
        Some((v, s, g, a)) => (v, s, g, a),
        None => (None, None, None, None),
    };
    Exchange {
        server,
        client,
        version,
        suite,
        group,
        alpn,
    }
}

fn assert_server_error(seen: &Exchange, expected: &str) {
    let error = seen.server.as_ref().expect_err("the server refused");
    assert!(
        error.contains(expected),
        "wanted {expected:?}, got {error:?}"
    );
}

fn load(certs: &TestCerts, yaml: &str) -> WebConfig {
    WebConfig::load(certs.write_web_config(yaml)).unwrap()
}

fn acceptor(config: &WebConfig) -> tokio_rustls::TlsAcceptor {
    config.tls_acceptor().expect("TLS is on")
}

#[tokio::test]
async fn a_client_trusting_the_test_ca_completes_a_handshake() {
    let certs = TestCerts::new();
    let config = load(&certs, &certs.tls_server_config());
    for name in ["localhost", "127.0.0.1"] {
        let seen = exchange(acceptor(&config), certs.client_config(None), name).await;
        assert!(seen.went_through(), "{name}: {seen:?}");
        assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_3));
        assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    }

    // A client that trusts another CA refuses the server: the server is who it says only
    // to those who trust the test's CA.
    let mut stranger = TestCerts::new();
    stranger.ca = certs.other_ca.clone();
    let seen = exchange(acceptor(&config), stranger.client_config(None), "localhost").await;
    assert!(!seen.went_through(), "{seen:?}");
    assert!(
        seen.client.as_ref().unwrap_err().contains("UnknownIssuer"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_h2_only_client_is_refused_since_fleetsim_speaks_http_1_1() {
    let certs = TestCerts::new();
    let config = load(
        &certs,
        &format!(
            "{}http_server_config:\n  http2: true\n",
            certs.tls_server_config()
        ),
    );
    let mut h2_only = (*certs.client_config(None)).clone();
    h2_only.alpn_protocols = vec![b"h2".to_vec()];
    let seen = exchange(acceptor(&config), Arc::new(h2_only), "localhost").await;
    assert!(seen.refused(), "{seen:?}");
    assert_server_error(&seen, "peer doesn't support any known protocol");
}

fn mutual(certs: &TestCerts, auth: &str, extra: &str) -> WebConfig {
    load(
        certs,
        &format!(
            "{}  client_auth_type: {auth}\n  client_ca_file: ca.pem\n{extra}",
            certs.tls_server_config()
        ),
    )
}

#[tokio::test]
async fn mutual_tls_takes_only_clients_the_ca_signed() {
    let certs = TestCerts::new();
    let config = mutual(&certs, "RequireAndVerifyClientCert", "");
    let ours = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    let theirs = Some((
        certs.other_client_cert.as_path(),
        certs.other_client_key.as_path(),
    ));

    let seen = exchange(acceptor(&config), certs.client_config(ours), "localhost").await;
    assert!(seen.went_through(), "{seen:?}");

    let seen = exchange(acceptor(&config), certs.client_config(None), "localhost").await;
    assert!(seen.refused(), "no certificate: {seen:?}");
    assert_server_error(&seen, "peer sent no certificates");

    let seen = exchange(acceptor(&config), certs.client_config(theirs), "localhost").await;
    assert!(seen.refused(), "another CA's: {seen:?}");
    assert_server_error(&seen, "UnknownIssuer");

    // And over TLS 1.2, where the refusal comes in the handshake itself.
    let tls12 = &[&rustls::version::TLS12][..];
    let seen = exchange(
        acceptor(&config),
        certs.client_config_for(None, tls12),
        "localhost",
    )
    .await;
    assert!(seen.refused(), "no certificate, TLS 1.2: {seen:?}");
    let seen = exchange(
        acceptor(&config),
        certs.client_config_for(ours, tls12),
        "localhost",
    )
    .await;
    assert!(seen.went_through(), "TLS 1.2: {seen:?}");
}

#[tokio::test]
async fn verify_if_given_takes_no_certificate_but_not_a_bad_one() {
    let certs = TestCerts::new();
    let config = mutual(&certs, "VerifyClientCertIfGiven", "");
    let ours = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    let theirs = Some((
        certs.other_client_cert.as_path(),
        certs.other_client_key.as_path(),
    ));
    let seen = exchange(acceptor(&config), certs.client_config(None), "localhost").await;
    assert!(seen.went_through(), "{seen:?}");
    let seen = exchange(acceptor(&config), certs.client_config(ours), "localhost").await;
    assert!(seen.went_through(), "{seen:?}");
    let seen = exchange(acceptor(&config), certs.client_config(theirs), "localhost").await;
    assert!(seen.refused(), "{seen:?}");
}

#[tokio::test]
async fn client_allowed_sans_takes_only_the_listed_names() {
    let certs = TestCerts::new();
    let ours = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    let listed = mutual(
        &certs,
        "RequireAndVerifyClientCert",
        &format!("  client_allowed_sans: [grafana.test, {CLIENT_SAN}]\n"),
    );
    let seen = exchange(acceptor(&listed), certs.client_config(ours), "localhost").await;
    assert!(seen.went_through(), "{seen:?}");

    let unlisted = mutual(
        &certs,
        "RequireAndVerifyClientCert",
        "  client_allowed_sans: [grafana.test, 127.0.0.1]\n",
    );
    let seen = exchange(acceptor(&unlisted), certs.client_config(ours), "localhost").await;
    assert!(seen.refused(), "{seen:?}");
    assert_server_error(&seen, "ApplicationVerificationFailure");
}

#[tokio::test]
async fn versions_follow_min_and_max_version() {
    let certs = TestCerts::new();
    let tls12_only = &[&rustls::version::TLS12][..];

    let default = load(&certs, &certs.tls_server_config());
    let seen = exchange(
        acceptor(&default),
        certs.client_config_for(None, tls12_only),
        "localhost",
    )
    .await;
    assert!(
        seen.went_through(),
        "TLS 1.2 is allowed by default: {seen:?}"
    );
    assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_2));

    let tls13 = load(
        &certs,
        &format!("{}  min_version: TLS13\n", certs.tls_server_config()),
    );
    let seen = exchange(
        acceptor(&tls13),
        certs.client_config_for(None, tls12_only),
        "localhost",
    )
    .await;
    assert!(
        seen.refused(),
        "min_version TLS13 refuses TLS 1.2: {seen:?}"
    );
    assert_server_error(&seen, "Tls12NotOfferedOrEnabled");

    let tls12 = load(
        &certs,
        &format!("{}  max_version: TLS12\n", certs.tls_server_config()),
    );
    let seen = exchange(acceptor(&tls12), certs.client_config(None), "localhost").await;
    assert!(seen.went_through(), "{seen:?}");
    assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_2));
}

#[tokio::test]
async fn cipher_suites_and_their_order_are_the_file_s() {
    let certs = TestCerts::new();
    let suites = "  max_version: TLS12\n  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n";
    // The client (rustls' default order) prefers AES-256, then AES-128, then ChaCha20.
    let server_first = load(&certs, &format!("{}{suites}", certs.tls_server_config()));
    let seen = exchange(
        acceptor(&server_first),
        certs.client_config(None),
        "localhost",
    )
    .await;
    assert!(seen.went_through(), "{seen:?}");
    assert_eq!(
        seen.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
    );

    let client_first = load(
        &certs,
        &format!(
            "{}{suites}  prefer_server_cipher_suites: false\n",
            certs.tls_server_config()
        ),
    );
    let seen = exchange(
        acceptor(&client_first),
        certs.client_config(None),
        "localhost",
    )
    .await;
    assert_eq!(
        seen.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        "{seen:?}"
    );
}

#[tokio::test]
async fn curve_preferences_choose_the_key_exchange() {
    let certs = TestCerts::new();
    let default = load(&certs, &certs.tls_server_config());
    let seen = exchange(acceptor(&default), certs.client_config(None), "localhost").await;
    assert_eq!(seen.group, Some(rustls::NamedGroup::X25519), "{seen:?}");

    let p384 = load(
        &certs,
        &format!(
            "{}  curve_preferences: [CurveP384]\n",
            certs.tls_server_config()
        ),
    );
    let seen = exchange(acceptor(&p384), certs.client_config(None), "localhost").await;
    assert!(seen.went_through(), "{seen:?}");
    assert_eq!(seen.group, Some(rustls::NamedGroup::secp384r1));
}

#[tokio::test]
async fn a_reload_swaps_a_good_file_in_and_keeps_the_old_on_a_bad_one() {
    let certs = TestCerts::new();
    let file = certs.write_web_config(&certs.tls_server_config());
    let shared = SharedWebConfig::load(&file).unwrap();
    let first = shared.current();
    let tls12_only = &[&rustls::version::TLS12][..];

    // A bad file: the error names it and the key; the config in force stays.
    std::fs::write(
        &file,
        format!("{}  min_version: TLS11\n", certs.tls_server_config()),
    )
    .unwrap();
    let error = shared.reload().unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}: tls_server_config.min_version: TLS11: TLS 1.2 and 1.3 only (TLS12, TLS13)",
            file.display()
        )
    );
    assert!(Arc::ptr_eq(&first, &shared.current()));

    // Turning TLS off is a restart's job, not a reload's.
    std::fs::write(&file, "basic_auth_users: {}\n").unwrap();
    let error = shared.reload().unwrap_err().to_string();
    assert!(
        error.contains("tls_server_config: TLS was on and would now be off: that needs a restart"),
        "{error}"
    );
    assert!(Arc::ptr_eq(&first, &shared.current()));

    // A good one: new connections get it, one that took the old config keeps it.
    std::fs::write(
        &file,
        format!(
            "{}  min_version: TLS13\nbasic_auth_users:\n  prometheus: {}\n",
            certs.tls_server_config(),
            bcrypt_hash("scrape")
        ),
    )
    .unwrap();
    shared.reload().unwrap();
    let second = shared.current();
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(second.authenticator().is_some() && first.authenticator().is_none());
    let seen = exchange(
        acceptor(&second),
        certs.client_config_for(None, tls12_only),
        "localhost",
    )
    .await;
    assert!(seen.refused(), "the new config refuses TLS 1.2: {seen:?}");
    let seen = exchange(
        acceptor(&first),
        certs.client_config_for(None, tls12_only),
        "localhost",
    )
    .await;
    assert!(seen.went_through(), "the old one still serves: {seen:?}");
}

#[test]
fn basic_auth_from_the_helper_s_hash_takes_the_password() {
    use base64::Engine as _;
    let certs = TestCerts::new();
    let config = load(
        &certs,
        &format!(
            "basic_auth_users:\n  prometheus: {}\n",
            bcrypt_hash("scrape")
        ),
    );
    let auth = config.authenticator().unwrap();
    let header = |pair: &str| {
        hyper::header::HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
        .unwrap()
    };
    assert_eq!(auth.check(Some(&header("prometheus:scrape"))), Ok(()));
    assert!(auth.check(Some(&header("prometheus:scrapes"))).is_err());
    assert!(config.tls().is_none());
}

#[test]
fn the_documented_example_loads_and_takes_its_password() {
    use base64::Engine as _;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/web-config.md"))
        .unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/web-config.md opens with a yaml example");
    let certs = TestCerts::new();
    let tls = certs.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    for (from, to) in [
        (&certs.server_cert, "server.pem"),
        (&certs.server_key, "server-key.pem"),
        (&certs.ca, "ca.pem"),
    ] {
        std::fs::copy(from, tls.join(to)).unwrap();
    }
    let config = load(&certs, example);
    assert!(config.tls().is_some());
    assert_eq!(config.headers().len(), 3);
    let header = hyper::header::HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("prometheus:scrape-me")
    ))
    .unwrap();
    assert_eq!(config.authenticator().unwrap().check(Some(&header)), Ok(()));
}

/// The exporter-toolkit's own checker (`promtool check web-config`, Go) and this loader
/// agree: on a file using every key both know, and on refusals of the same mistakes.
#[test]
fn the_toolkit_s_own_checker_agrees() {
    let certs = TestCerts::new();
    let tls = certs.tls_server_config();
    let full = format!(
        "{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n  prefer_server_cipher_suites: false\n  curve_preferences: [CurveP256, X25519]\nhttp_server_config:\n  http2: false\n  headers:\n    Content-Security-Policy: default-src 'none'\n    X-Frame-Options: sameorigin\n    X-Content-Type-Options: nosniff\n    X-XSS-Protection: '0'\n    Strict-Transport-Security: max-age=600\nbasic_auth_users:\n  prometheus: {}\n",
        bcrypt_hash("scrape")
    );
    let toolkit = |yaml: &str| {
        let file = certs.write_web_config(yaml);
        let out = common::promtool()
            .args(["check", "web-config"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let ours = |yaml: &str| WebConfig::load(certs.write_web_config(yaml)).map(|_| ());

    let (ok, said) = toolkit(&full);
    assert!(ok, "the toolkit refuses the full file: {said}");
    ours(&full).unwrap();

    let refused = [
        format!("{tls}  certfile: x\n"),
        "tls_config: {}\n".to_string(),
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".to_string(),
        "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n".to_string(),
        "http_server_config:\n  headers:\n    X-Powered-By: fleetsim\n".to_string(),
        "basic_auth_users:\n  prometheus: plain-text\n".to_string(),
        format!("{tls}  curve_preferences: [Curve25519]\n"),
        format!("{tls}  cipher_suites: [TLS_FANCY]\n"),
        format!("{tls}  client_auth_type: Yes\n"),
        format!("{tls}  min_version: SSL3\n"),
        format!("{tls}  client_ca_file: ca.pem\n"),
        "tls_server_config:\n  cert_file: server.pem\n".to_string(),
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: server-key.pem\n".to_string(),
    ];
    for yaml in &refused {
        let (ok, said) = toolkit(yaml);
        assert!(!ok, "the toolkit takes {yaml:?}: {said}");
        let error = ours(yaml).expect_err(yaml);
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}
