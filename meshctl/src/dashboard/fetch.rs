//! The dashboard's HTTP client: plain `GET`s to admin ports and to Prometheus' API, each bounded
//! by a timeout (hyper-util's pooled client; no TLS: admin ports and a local Prometheus speak
//! plain HTTP).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[cfg(test)]
mod tests;

/// Time allowed for one request, answer body included.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer body read (a big mesh's `/metrics` is a few MiB).
const MAX_BODY: usize = 64 << 20;

/// A cheap-to-clone HTTP client.
#[derive(Clone, Debug)]
pub struct Fetch {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for Fetch {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetch {
    /// A client with a connection pool.
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// `GET url`: the body of a 2xx answer, or why not (in words).
    pub async fn get(&self, url: &str) -> Result<Bytes, String> {
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "text/plain, application/json")
            .body(Empty::new())
            .map_err(|e| format!("bad url {url}: {e}"))?;
        let work = async {
            let res = self.client.request(req).await.map_err(|e| {
                let mut text = e.to_string();
                if let Some(source) = std::error::Error::source(&e) {
                    text = format!("{text}: {source}");
                }
                text
            })?;
            let status = res.status();
            let body = http_body_util::Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                let text = String::from_utf8_lossy(&body);
                Err(format!(
                    "HTTP {status}: {}",
                    text.trim().chars().take(200).collect::<String>()
                ))
            }
        };
        match tokio::time::timeout(TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
        }
    }
}

/// Percent-encodes a query parameter value (everything but RFC 3986's unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `http://host:port/path?q` → `http://host:port`; a URL given without a scheme gets `http://`.
pub fn base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    match with_scheme.find("://") {
        Some(i) => {
            let rest = &with_scheme[i + 3..];
            let end = rest.find('/').unwrap_or(rest.len());
            format!("{}{}", &with_scheme[..i + 3], &rest[..end])
        }
        None => with_scheme,
    }
}
