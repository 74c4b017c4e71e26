//! Consistent hashing: the request key (header, cookie, source IP, query parameter) and the
//! table that maps it to an endpoint.
//!
//! The tables themselves (ring hash, Maglev) live in [`mesh_core::hash`], built with a fixed-seed
//! xxHash so that every replica maps a key to the same endpoint. Here we only extract and hash
//! the key, and generate a cookie when Istio's `httpCookie.ttl` asks for one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{COOKIE, HeaderValue};
use mesh_core::hash::Table;
use mesh_core::policy::{ConsistentHash, HashKey, HashTable};

use super::{BalanceError, Endpoint, Rng};
use crate::BoxError;
use crate::context::SourceAddr;

/// A built consistent-hash table: maps a 64-bit key hash to an endpoint index.
pub trait PickTable: Send + Sync + fmt::Debug {
    /// The endpoint index (below the number of endpoints the table was built over).
    fn pick(&self, hash: u64) -> usize;
}

/// Hashes key bytes with the mesh's fixed-seed xxHash (`mesh_core::hash::hash_key`).
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    mesh_core::hash::hash_key(bytes)
}

/// A second, deterministic choice for a key whose endpoint is unusable.
#[inline]
pub(crate) fn rehash(h: u64) -> u64 {
    hash_bytes(&h.to_le_bytes())
}

impl PickTable for Table {
    #[inline]
    fn pick(&self, hash: u64) -> usize {
        Table::pick(self, hash)
    }
}

fn build_table(kind: &HashTable, endpoints: &[Endpoint]) -> Result<Arc<dyn PickTable>, BoxError> {
    // Keyed by `ip:port`, as `mesh_core::registry::EndpointSet::hash_table` keys them, so every
    // replica (and every builder) places an endpoint at the same points.
    let keyed: Vec<(String, u32)> = endpoints
        .iter()
        .map(|e| (e.addr.to_string(), e.weight.max(1)))
        .collect();
    let table = Table::build(kind, &keyed)?;
    Ok(Arc::new(table))
}

/// The key of one request, as [`HashPolicy::request_key`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKey {
    /// The request carries no key: it is balanced at random.
    None,
    /// The hash of the request's key.
    Hash(u64),
    /// No cookie was present and `ttl` is set: a cookie was generated; its hash is the key, and
    /// `set_cookie` must be added to the response.
    Generated {
        /// The hash of the generated value.
        hash: u64,
        /// The `Set-Cookie` header value for the response.
        set_cookie: HeaderValue,
    },
}

impl RequestKey {
    /// The hash, when there is one.
    pub fn hash(&self) -> Option<u64> {
        match self {
            RequestKey::None => None,
            RequestKey::Hash(h) | RequestKey::Generated { hash: h, .. } => Some(*h),
        }
    }
}

/// What a consistent hash hashes, and its table.
#[derive(Clone, Debug)]
pub struct HashPolicy {
    key: HashKey,
    table: Arc<dyn PickTable>,
}

impl HashPolicy {
    /// Builds the table for `endpoints` as `config` describes.
    pub fn new(config: &ConsistentHash, endpoints: &[Endpoint]) -> Result<Self, BalanceError> {
        let table = build_table(&config.table, endpoints).map_err(BalanceError::HashTable)?;
        Ok(Self {
            key: config.key.clone(),
            table,
        })
    }

    /// A policy over a table built elsewhere.
    pub fn with_table(key: HashKey, table: Arc<dyn PickTable>) -> Self {
        Self { key, table }
    }

    /// The key this policy hashes.
    pub fn key(&self) -> &HashKey {
        &self.key
    }

    /// The endpoint index for `hash`.
    #[inline]
    pub fn pick(&self, hash: u64) -> usize {
        self.table.pick(hash)
    }

    /// Extracts and hashes the request's key. With a cookie key that has a `ttl` and no cookie
    /// in the request, generates a random value with `rng` and returns it as a `Set-Cookie`.
    pub fn request_key<B>(&self, req: &http::Request<B>, rng: &Rng) -> RequestKey {
        match &self.key {
            HashKey::Header(name) => match req.headers().get(name) {
                Some(v) => RequestKey::Hash(hash_bytes(v.as_bytes())),
                None => RequestKey::None,
            },
            HashKey::Cookie { name, path, ttl } => {
                if let Some(v) = find_cookie(req.headers(), name) {
                    return RequestKey::Hash(hash_bytes(v.as_bytes()));
                }
                match ttl {
                    Some(ttl) => generate_cookie(name, path.as_deref(), *ttl, rng),
                    None => RequestKey::None,
                }
            }
            HashKey::SourceIp => match req.extensions().get::<SourceAddr>() {
                Some(SourceAddr {
                    ip: std::net::IpAddr::V4(ip),
                }) => RequestKey::Hash(hash_bytes(&ip.octets())),
                Some(SourceAddr {
                    ip: std::net::IpAddr::V6(ip),
                }) => RequestKey::Hash(hash_bytes(&ip.octets())),
                None => RequestKey::None,
            },
            HashKey::QueryParam(name) => match find_query(req.uri().query(), name) {
                Some(v) => RequestKey::Hash(hash_bytes(v.as_bytes())),
                None => RequestKey::None,
            },
        }
    }
}

fn find_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn find_query<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn generate_cookie(name: &str, path: Option<&str>, ttl: Duration, rng: &Rng) -> RequestKey {
    let value = format!("{:016x}", rng.next_u64());
    let hash = hash_bytes(value.as_bytes());
    let mut header = format!("{name}={value}");
    // Istio: a zero ttl makes a session cookie (no Max-Age).
    if !ttl.is_zero() {
        header.push_str(&format!("; Max-Age={}", ttl.as_secs().max(1)));
    }
    if let Some(p) = path {
        header.push_str("; Path=");
        header.push_str(p);
    }
    header.push_str("; HttpOnly");
    match HeaderValue::try_from(header) {
        Ok(set_cookie) => RequestKey::Generated { hash, set_cookie },
        // A cookie name or path with characters a header cannot carry: hash the value anyway.
        Err(_) => RequestKey::Hash(hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Modulo(usize);
    impl PickTable for Modulo {
        fn pick(&self, hash: u64) -> usize {
            (hash % self.0 as u64) as usize
        }
    }

    fn policy(key: HashKey) -> HashPolicy {
        HashPolicy::with_table(key, Arc::new(Modulo(3)))
    }

    #[test]
    fn header_key_is_stable_and_missing_header_has_none() {
        let p = policy(HashKey::Header(http::HeaderName::from_static("x-user")));
        let rng = Rng::from_seed(1);
        let req = http::Request::builder()
            .header("x-user", "alice")
            .body(())
            .unwrap();
        let k1 = p.request_key(&req, &rng);
        assert_eq!(k1, p.request_key(&req, &rng));
        assert!(k1.hash().is_some());
        let bare = http::Request::new(());
        assert_eq!(p.request_key(&bare, &rng), RequestKey::None);
    }

    #[test]
    fn cookie_present_is_hashed_absent_with_ttl_is_generated() {
        let key = HashKey::Cookie {
            name: "sticky".into(),
            path: Some("/".into()),
            ttl: Some(Duration::from_secs(60)),
        };
        let p = policy(key);
        let rng = Rng::from_seed(9);
        let with = http::Request::builder()
            .header("cookie", "a=1; sticky=abc")
            .body(())
            .unwrap();
        assert_eq!(
            p.request_key(&with, &rng),
            RequestKey::Hash(hash_bytes(b"abc"))
        );
        let RequestKey::Generated { hash, set_cookie } =
            p.request_key(&http::Request::new(()), &rng)
        else {
            panic!("expected a generated cookie");
        };
        let text = set_cookie.to_str().unwrap();
        assert!(text.starts_with("sticky="), "{text}");
        assert!(
            text.contains("Max-Age=60") && text.contains("Path=/"),
            "{text}"
        );
        let value = text
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("sticky=");
        assert_eq!(hash, hash_bytes(value.as_bytes()));
    }

    #[test]
    fn cookie_without_ttl_is_not_generated() {
        let p = policy(HashKey::Cookie {
            name: "s".into(),
            path: None,
            ttl: None,
        });
        assert_eq!(
            p.request_key(&http::Request::new(()), &Rng::from_seed(1)),
            RequestKey::None
        );
    }

    #[test]
    fn query_and_source_ip_keys() {
        let p = policy(HashKey::QueryParam("user".into()));
        let rng = Rng::from_seed(1);
        let req = http::Request::builder()
            .uri("/x?a=1&user=bob")
            .body(())
            .unwrap();
        assert_eq!(
            p.request_key(&req, &rng),
            RequestKey::Hash(hash_bytes(b"bob"))
        );
        let p = policy(HashKey::SourceIp);
        let mut req = http::Request::new(());
        req.extensions_mut().insert(SourceAddr {
            ip: [10, 0, 0, 1].into(),
        });
        assert_eq!(
            p.request_key(&req, &rng),
            RequestKey::Hash(hash_bytes(&[10, 0, 0, 1]))
        );
    }
}
