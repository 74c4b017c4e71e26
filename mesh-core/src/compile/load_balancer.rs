//! `loadBalancer` → [`LoadBalancer`]: simple policies and consistent hashing (key and table).

use super::Cx;
use super::common::{duration_field, header_name};
use crate::policy::{ConsistentHash, HashKey, HashTable, LoadBalancer};
use crate::spec::destination_rule::{ConsistentHashSpec, LoadBalancerSpec};

const SIMPLE: [(&str, LoadBalancer); 6] = [
    ("UNSPECIFIED", LoadBalancer::LeastRequest),
    ("LEAST_REQUEST", LoadBalancer::LeastRequest),
    ("LEAST_CONN", LoadBalancer::LeastRequest),
    ("ROUND_ROBIN", LoadBalancer::RoundRobin),
    ("RANDOM", LoadBalancer::Random),
    ("PASSTHROUGH", LoadBalancer::Passthrough),
];

pub(crate) fn load_balancer(
    lb: &LoadBalancerSpec,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<LoadBalancer> {
    let before = cx.error_count();
    for (field, set) in [
        ("localityLbSetting", lb.locality_lb_setting.is_some()),
        ("zoneAwareLbSetting", lb.zone_aware_lb_setting.is_some()),
        ("warmupDurationSecs", lb.warmup_duration_secs.is_some()),
        ("warmup", lb.warmup.is_some()),
    ] {
        if set {
            cx.unsupported(&format!("{path}.{field}"));
        }
    }
    let out = match (&lb.simple, &lb.consistent_hash) {
        (Some(_), Some(_)) => {
            cx.error(path, "set only one of `simple`, `consistentHash`");
            None
        }
        (Some(s), None) => match SIMPLE.iter().find(|(n, _)| n == s) {
            Some((_, lb)) => Some(lb.clone()),
            None => {
                let hint = crate::diag::closest(s, SIMPLE.iter().map(|(n, _)| *n))
                    .map(|h| format!(", did you mean `{h}`?"))
                    .unwrap_or_default();
                cx.error(
                    &format!("{path}.simple"),
                    format!("unknown load balancer `{s}`{hint}"),
                );
                None
            }
        },
        (None, Some(ch)) => consistent_hash(ch, &format!("{path}.consistentHash"), cx)
            .map(LoadBalancer::ConsistentHash),
        (None, None) => Some(LoadBalancer::default()),
    };
    if cx.error_count() > before {
        return None;
    }
    out
}

fn consistent_hash(ch: &ConsistentHashSpec, path: &str, cx: &mut Cx<'_>) -> Option<ConsistentHash> {
    let mut keys: Vec<(&str, HashKey)> = Vec::new();
    let mut ok = true;
    if let Some(h) = &ch.http_header_name {
        match header_name(h, &format!("{path}.httpHeaderName"), cx) {
            Some(n) => keys.push(("httpHeaderName", HashKey::Header(n))),
            None => ok = false,
        }
    }
    if let Some(c) = &ch.http_cookie {
        let p = format!("{path}.httpCookie");
        if c.attributes.is_some() {
            cx.unsupported(&format!("{p}.attributes"));
            ok = false;
        }
        let ttl = match c.ttl.as_deref().map(str::trim) {
            None => Some(None),
            // Envoy: a zero TTL generates a session cookie
            Some("0" | "0s" | "0ms") => Some(Some(std::time::Duration::ZERO)),
            Some(t) => duration_field(t, &format!("{p}.ttl"), cx).map(Some),
        };
        match (c.name.as_deref().map(str::trim), ttl) {
            (Some(name), Some(ttl)) if !name.is_empty() => keys.push((
                "httpCookie",
                HashKey::Cookie {
                    name: name.to_owned(),
                    path: c.path.clone(),
                    ttl,
                },
            )),
            (Some(name), _) if !name.is_empty() => ok = false,
            _ => {
                cx.error(&format!("{p}.name"), "cookie name is required");
                ok = false;
            }
        }
    }
    if ch.use_source_ip == Some(true) {
        keys.push(("useSourceIp", HashKey::SourceIp));
    }
    if let Some(q) = &ch.http_query_parameter_name {
        keys.push(("httpQueryParameterName", HashKey::QueryParam(q.clone())));
    }
    if keys.len() > 1 {
        let names: Vec<String> = keys.iter().map(|(n, _)| format!("`{n}`")).collect();
        cx.error(
            path,
            format!(
                "more than one consistent hash key: {}; set exactly one",
                names.join(", ")
            ),
        );
        return None;
    }
    let table = hash_table(ch, path, cx);
    if !ok {
        return None;
    }
    let Some((_, key)) = keys.pop() else {
        cx.error(
            path,
            "needs one hash key: `httpHeaderName`, `httpCookie`, `useSourceIp` or `httpQueryParameterName`",
        );
        return None;
    };
    Some(ConsistentHash { key, table: table? })
}

fn hash_table(ch: &ConsistentHashSpec, path: &str, cx: &mut Cx<'_>) -> Option<HashTable> {
    let ring_size = |n: Option<i64>, p: &str, cx: &mut Cx<'_>| -> Option<HashTable> {
        let minimum_ring_size = match n {
            None | Some(0) => 1024,
            Some(n) if n < 0 => {
                cx.error(p, format!("must not be negative (got {n})"));
                return None;
            }
            Some(n) if n.unsigned_abs() > MAX_RING_SIZE => {
                cx.error(p, format!("ring size {n} is larger than {MAX_RING_SIZE}"));
                return None;
            }
            Some(n) => n.unsigned_abs(),
        };
        Some(HashTable::Ring { minimum_ring_size })
    };
    match (&ch.ring_hash, &ch.maglev, ch.minimum_ring_size) {
        (Some(_), Some(_), _) => {
            cx.error(path, "set only one of `ringHash`, `maglev`");
            None
        }
        (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => {
            cx.error(
                &format!("{path}.minimumRingSize"),
                "deprecated `minimumRingSize` cannot be combined with `ringHash` or `maglev`",
            );
            None
        }
        (Some(r), None, None) => ring_size(
            r.minimum_ring_size,
            &format!("{path}.ringHash.minimumRingSize"),
            cx,
        ),
        (None, None, n) => ring_size(n, &format!("{path}.minimumRingSize"), cx),
        (None, Some(m), None) => {
            let p = format!("{path}.maglev.tableSize");
            let table_size = match m.table_size {
                None | Some(0) => 65537,
                Some(n)
                    if n < 0
                        || n.unsigned_abs() > MAX_MAGLEV_TABLE
                        || !is_prime(n.unsigned_abs()) =>
                {
                    cx.error(&p, format!("maglev table size {n} must be a prime number at most {MAX_MAGLEV_TABLE}"));
                    return None;
                }
                Some(n) => n.unsigned_abs(),
            };
            Some(HashTable::Maglev { table_size })
        }
    }
}

/// Envoy's largest maglev table.
const MAX_MAGLEV_TABLE: u64 = 5_000_011;
/// Envoy's default maximum ring size: a larger minimum would be capped anyway.
const MAX_RING_SIZE: u64 = 8_388_608;

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}
