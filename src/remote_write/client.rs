//! The HTTP side of remote write: the receiver's URL (http:// only) and one kept-alive
//! HTTP/1.1 connection to it, made again when the receiver closes it.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Protocol;

/// Where to send: `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    /// `host:port` to connect to (port 80 unless given).
    connect: String,
    /// The `Host` header: the URL's authority as written.
    host: String,
    /// Path and query, `/` when the URL has none.
    path: String,
}

impl Endpoint {
    /// Parses `--remote-write`; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        // clap's message names the flag and the value; this says what is wrong with it.
        let bad = |why: &str| format!("{why}; write it like http://localhost:9090/api/v1/write");
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(bad("not a URL (only http:// URLs are supported)"));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad(&format!(
                "only http:// URLs are supported, not {scheme}://"
            )));
        }
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad("user names and passwords in the URL are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let valid_host = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
        if host.is_empty() || !host.chars().all(valid_host) {
            return Err(bad("no host name"));
        }
        let port: u16 = match port {
            Some(p) => p.parse().map_err(|_| bad(&format!("bad port `{p}`")))?,
            None => 80,
        };
        let connect = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Endpoint {
            url: text.to_string(),
            connect,
            host: authority.to_string(),
            path,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// What the receiver answered: the status, `Retry-After` when given, the samples a 2.0
/// receiver says it wrote, and the start of the body (for the log).
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub samples_written: Option<u64>,
    pub body: String,
}

/// One connection to the receiver, opened on first use and again after it closes.
pub struct Client {
    endpoint: Endpoint,
    protocol: Protocol,
    user_agent: String,
    connection: Option<SendRequest<Full<Bytes>>>,
}

/// The start of an answer's body kept for the log.
const MAX_LOGGED_BODY: usize = 1024;
/// Bodies read past this are an error: a receiver's error message is short.
const MAX_BODY: usize = 64 * 1024;

impl Client {
    pub fn new(endpoint: Endpoint, protocol: Protocol) -> Client {
        Client {
            endpoint,
            protocol,
            user_agent: format!("fleetsim/{}", env!("CARGO_PKG_VERSION")),
            connection: None,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(&self.endpoint.connect)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.endpoint.connect))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {}: {e}", self.endpoint.connect))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// POSTs one snappy-compressed `WriteRequest`. A kept-alive connection that turns out
    /// closed is replaced once, at once; other failures are the caller's to retry.
    pub async fn send(&mut self, body: Bytes) -> Result<Answer, String> {
        let reused = match self.connection.take() {
            Some(c) if !c.is_closed() => Some(c),
            _ => None,
        };
        let was_reused = reused.is_some();
        let mut sender = match reused {
            Some(c) => c,
            None => self.connect().await?,
        };
        let result = match self.post(&mut sender, body.clone()).await {
            Err(_) if was_reused => {
                sender = self.connect().await?;
                self.post(&mut sender, body).await
            }
            other => other,
        };
        if result.is_ok() && !sender.is_closed() {
            self.connection = Some(sender);
        }
        result
    }

    async fn post(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        body: Bytes,
    ) -> Result<Answer, String> {
        sender
            .ready()
            .await
            .map_err(|e| format!("connection to {} closed: {e}", self.endpoint.connect))?;
        let request = Request::post(&self.endpoint.path)
            .header(hyper::header::HOST, &self.endpoint.host)
            .header(hyper::header::CONTENT_ENCODING, "snappy")
            .header(hyper::header::CONTENT_TYPE, self.protocol.content_type())
            .header(hyper::header::USER_AGENT, &self.user_agent)
            .header("X-Prometheus-Remote-Write-Version", self.protocol.version())
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("POST {}: {e}", self.endpoint))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let samples_written = response
            .headers()
            .get("X-Prometheus-Remote-Write-Samples-Written")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = match Limited::new(response.into_body(), MAX_BODY).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                let start = &bytes[..bytes.len().min(MAX_LOGGED_BODY)];
                String::from_utf8_lossy(start).trim().to_string()
            }
            Err(e) => format!("(body unread: {e})"),
        };
        Ok(Answer {
            status,
            retry_after,
            samples_written,
            body,
        })
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = when.timestamp_millis() - crate::clock::unix_now_ms();
    Some(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:9090/api/v1/write").unwrap();
        assert_eq!(e.connect, "127.0.0.1:9090");
        assert_eq!(e.host, "127.0.0.1:9090");
        assert_eq!(e.path, "/api/v1/write");
        let e = Endpoint::parse("HTTP://mimir/api/v1/push?x=1").unwrap();
        assert_eq!(e.connect, "mimir:80");
        assert_eq!(e.path, "/api/v1/push?x=1");
        let e = Endpoint::parse("http://[::1]:8428").unwrap();
        assert_eq!(e.connect, "[::1]:8428");
        assert_eq!(e.path, "/");
        for bad in [
            "ftp://x",
            "not a url",
            "https://x/api/v1/write",
            "http://",
            "http://:80/",
            "http://h:port/",
            "http://u:p@h/",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(e.contains("http://"), "{bad}: {e}");
        }
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
