//! Certificates made by the test itself, as PEM files in a temporary folder: a CA, a
//! server certificate for `127.0.0.1` and `localhost`, a client certificate, and a second
//! CA with a client of its own (a certificate that a server trusting the first CA must
//! refuse). Also bcrypt hashes for `basic_auth_users`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The DNS name in the client certificates' Subject Alternative Names.
pub const CLIENT_SAN: &str = "prometheus.test";

/// The files, all PEM, in a folder removed when this is dropped.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// For `127.0.0.1` and `localhost`, signed by `ca`.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// For [`CLIENT_SAN`], signed by `ca`, for client authentication.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Another CA, and a client certificate it signed (also for [`CLIENT_SAN`]).
    pub other_ca: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for `names` (IP addresses become IP SANs), signed by `issuer`: PEM of the
/// certificate and of its key.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    // Strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default) want it.
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl TestCerts {
    pub fn new() -> TestCerts {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let ca_one = ca("fleetsim test CA");
        let (server_cert, server_key) = leaf(
            &ca_one,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            leaf(&ca_one, &[CLIENT_SAN], ExtendedKeyUsagePurpose::ClientAuth);
        let ca_two = ca("another test CA");
        let (other_cert, other_key) =
            leaf(&ca_two, &[CLIENT_SAN], ExtendedKeyUsagePurpose::ClientAuth);
        TestCerts {
            ca: write("ca.pem", &ca_one.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
            other_ca: write("other-ca.pem", &ca_two.pem()),
            other_client_cert: write("other-client.pem", &other_cert),
            other_client_key: write("other-client-key.pem", &other_key),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `yaml` as `web.yml` beside the certificates (so `cert_file: server.pem`
    /// finds them) and returns its path.
    pub fn write_web_config(&self, yaml: &str) -> PathBuf {
        let path = self.dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// The `tls_server_config` lines of a server using these files, as relative paths.
    pub fn tls_server_config(&self) -> String {
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n".to_string()
    }

    /// A rustls client trusting `ca`, offering `http/1.1`, and presenting `identity`
    /// (a certificate and its key) when given.
    pub fn client_config(&self, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
        self.client_config_for(identity, rustls::DEFAULT_VERSIONS)
    }

    /// [`TestCerts::client_config`] speaking only `versions`.
    pub fn client_config_for(
        &self,
        identity: Option<(&Path, &Path)>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_file(key).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A bcrypt hash of `password` for `basic_auth_users`, at cost 4 (the lowest bcrypt
/// allows, about a millisecond) to keep tests quick; real configs use 10 or more.
pub fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}
