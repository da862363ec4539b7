//! The HTTP side of remote write: the receiver's URL (http:// only) and the connection to
//! it, kept alive and made again by hyper's pooled client when the receiver closes it.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::Protocol;

/// Where to send: `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    /// What requests are sent to: scheme, authority, and path and query (`/` when the URL
    /// has none).
    uri: Uri,
    /// `host:port` connected to (port 80 unless given), for messages.
    connect: String,
    /// The `Host` header: the URL's authority as written.
    host: String,
}

impl Endpoint {
    /// Parses `--remote-write`; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        // clap's message names the flag and the value; this says what is wrong with it.
        let bad = |why: &str| format!("{why}; write it like http://localhost:9090/api/v1/write");
        let Some((scheme, _)) = text.split_once("://") else {
            return Err(bad("not a URL (only http:// URLs are supported)"));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad(&format!(
                "only http:// URLs are supported, not {scheme}://"
            )));
        }
        // A fragment is the client's business: never sent.
        let without_fragment = text.split('#').next().unwrap_or("");
        let uri: Uri = without_fragment
            .parse()
            .map_err(|e| bad(&format!("not a valid URL ({e})")))?;
        let Some(authority) = uri.authority() else {
            return Err(bad("no host name"));
        };
        if authority.as_str().contains('@') {
            return Err(bad("user names and passwords in the URL are not supported"));
        }
        let host = authority.host();
        if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .is_empty()
        {
            return Err(bad("no host name"));
        }
        // `Authority` takes any text after the host's colon, and then has no port.
        let port = match authority.as_str()[host.len()..].strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad(&format!("bad port `{p}`")))?,
            None => 80,
        };
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_string(),
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_string(),
        };
        let full = Uri::builder()
            .scheme("http")
            .authority(authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| bad(&format!("not a valid URL ({e})")))?;
        Ok(Endpoint {
            url: text.to_string(),
            uri: full,
            connect: format!("{host}:{port}"),
            host: authority.to_string(),
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

/// hyper's pooled client, holding one kept-alive connection to the receiver: requests go
/// one at a time, so one is all they use.
///
/// A kept-alive connection that the receiver closed while it was idle is replaced at
/// once, and the request sent again on the new one (the pool retries a request that never
/// left); every other failure is the caller's to retry, with its backoff.
pub struct Client {
    endpoint: Endpoint,
    protocol: Protocol,
    user_agent: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

/// The start of an answer's body kept for the log.
const MAX_LOGGED_BODY: usize = 1024;
/// Bodies read past this are an error: a receiver's error message is short.
const MAX_BODY: usize = 64 * 1024;

impl Client {
    pub fn new(endpoint: Endpoint, protocol: Protocol) -> Client {
        let mut connector = HttpConnector::new();
        // A request is one large write; the answer is waited for at once.
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .pool_timer(TokioTimer::new())
            .retry_canceled_requests(true)
            .build(connector);
        Client {
            endpoint,
            protocol,
            user_agent: format!("fleetsim/{}", env!("CARGO_PKG_VERSION")),
            http,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// POSTs one snappy-compressed `WriteRequest`.
    pub async fn send(&mut self, body: Bytes) -> Result<Answer, String> {
        let request = Request::post(self.endpoint.uri.clone())
            .header(hyper::header::HOST, &self.endpoint.host)
            .header(hyper::header::CONTENT_ENCODING, "snappy")
            .header(hyper::header::CONTENT_TYPE, self.protocol.content_type())
            .header(hyper::header::USER_AGENT, &self.user_agent)
            .header("X-Prometheus-Remote-Write-Version", self.protocol.version())
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = self.http.request(request).await.map_err(|e| {
            // The client's own message is only its kind: the causes say what happened.
            let mut why = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                why.push_str(": ");
                why.push_str(&cause.to_string());
                source = cause.source();
            }
            if e.is_connect() {
                format!("cannot connect to {}: {why}", self.endpoint.connect)
            } else {
                format!("POST {}: {why}", self.endpoint)
            }
        })?;
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
        assert_eq!(e.uri, "http://127.0.0.1:9090/api/v1/write");
        let e = Endpoint::parse("HTTP://mimir/api/v1/push?x=1#top").unwrap();
        assert_eq!(e.connect, "mimir:80");
        assert_eq!(e.uri.path_and_query().unwrap(), "/api/v1/push?x=1");
        assert_eq!(e.uri, "http://mimir/api/v1/push?x=1");
        let e = Endpoint::parse("http://mimir?x=1").unwrap();
        assert_eq!(e.uri.path_and_query().unwrap(), "/?x=1");
        let e = Endpoint::parse("http://[::1]:8428").unwrap();
        assert_eq!(e.connect, "[::1]:8428");
        assert_eq!(e.uri.path_and_query().unwrap(), "/");
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
