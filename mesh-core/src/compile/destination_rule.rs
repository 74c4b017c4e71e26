//! DestinationRule → [`DestinationPolicy`]: traffic policy (load balancer, connection pool,
//! outlier detection, retry budget), port-level settings and subsets, merged as Istio does.
//!
//! Merge order for a subset and port, most specific last: the rule's policy, the rule's
//! `portLevelSettings` for that port, the subset's policy, the subset's `portLevelSettings` for
//! that port. Each of `loadBalancer`, `connectionPool`, `outlierDetection`, `tls` is replaced as a whole
//! by a more specific one that sets it (Istio's component-level merge).

use std::collections::BTreeSet;

use super::Cx;
use super::client_tls;
use super::common::{non_negative, opt_duration, percent_value, port};
use super::load_balancer::load_balancer;
use crate::policy::{
    ClientTls, ConnectionPool, DestinationPolicy, LoadBalancer, OutlierDetection, RetryBudget,
    Subset, TrafficPolicy,
};
use crate::spec::DestinationRuleSpec;
use crate::spec::destination_rule::{
    ConnectionPoolSpec, LoadBalancerSpec, OutlierDetectionSpec, RetryBudgetSpec, TrafficPolicySpec,
};

/// Compiles a DestinationRule; `None` when it has errors.
pub(crate) fn compile(spec: &DestinationRuleSpec, cx: &mut Cx<'_>) -> Option<DestinationPolicy> {
    let before = cx.error_count();
    let host = match spec.host.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() => h.to_owned(),
        _ => {
            cx.error("spec.host", "host is required");
            String::new()
        }
    };
    if spec.workload_selector.is_some() {
        cx.unsupported("spec.workloadSelector");
    }
    // exportTo: checked and recorded beside the policy (load::dispatch, compile::export_to).
    let rule = spec
        .traffic_policy
        .as_ref()
        .map(|tp| Partial::compile(tp, "spec.trafficPolicy", cx))
        .unwrap_or_default();
    let traffic_policy = build(&[&rule]);
    let mut subsets = Vec::with_capacity(spec.subsets.len());
    let mut names = BTreeSet::new();
    for (i, s) in spec.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        let name = match s.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => {
                cx.error(&format!("{path}.name"), "subset name is required");
                continue;
            }
        };
        if !names.insert(name.clone()) {
            cx.error(
                &format!("{path}.name"),
                format!("duplicate subset name `{name}`"),
            );
        }
        let own = s
            .traffic_policy
            .as_ref()
            .map(|tp| Partial::compile(tp, &format!("{path}.trafficPolicy"), cx))
            .unwrap_or_default();
        subsets.push(Subset {
            name,
            labels: s.labels.clone(),
            traffic_policy: build(&[&rule, &own]),
        });
    }
    if cx.error_count() > before {
        return None;
    }
    Some(DestinationPolicy {
        origin: cx.origin().clone(),
        host,
        traffic_policy,
        subsets,
    })
}

/// The components a `trafficPolicy` (or one port's settings) sets, before merging.
#[derive(Clone, Debug, Default)]
struct Components {
    tls: Option<ClientTls>,
    load_balancer: Option<LoadBalancer>,
    connection_pool: Option<ConnectionPool>,
    outlier_detection: Option<OutlierDetection>,
}

impl Components {
    fn apply(&self, to: &mut TrafficPolicy) {
        if let Some(tls) = &self.tls {
            to.tls = Some(tls.clone());
        }
        if let Some(lb) = &self.load_balancer {
            to.load_balancer = lb.clone();
        }
        if let Some(cp) = &self.connection_pool {
            to.connection_pool = cp.clone();
        }
        if let Some(od) = &self.outlier_detection {
            to.outlier_detection = Some(od.clone());
        }
    }
}

/// A compiled `trafficPolicy`: its own components, port-level ones, retry budget.
#[derive(Clone, Debug, Default)]
struct Partial {
    top: Components,
    ports: Vec<(u16, Components)>,
    retry_budget: Option<RetryBudget>,
}

impl Partial {
    fn compile(tp: &TrafficPolicySpec, path: &str, cx: &mut Cx<'_>) -> Self {
        for (field, set) in [
            ("tunnel", tp.tunnel.is_some()),
            ("proxyProtocol", tp.proxy_protocol.is_some()),
        ] {
            if set {
                cx.unsupported(&format!("{path}.{field}"));
            }
        }
        let mut top = components(
            tp.load_balancer.as_ref(),
            tp.connection_pool.as_ref(),
            tp.outlier_detection.as_ref(),
            path,
            cx,
        );
        top.tls = tp
            .tls
            .as_ref()
            .and_then(|t| client_tls::compile(t, &format!("{path}.tls"), cx));
        let mut ports: Vec<(u16, Components)> = Vec::new();
        for (i, pl) in tp.port_level_settings.iter().enumerate() {
            let p = format!("{path}.portLevelSettings[{i}]");
            let number = match pl.port.as_ref().and_then(|ps| ps.number) {
                None => {
                    cx.error(&format!("{p}.port.number"), "is required");
                    continue;
                }
                Some(n) => match port(n, &format!("{p}.port.number"), cx) {
                    Some(n) => n,
                    None => continue,
                },
            };
            if ports.iter().any(|(n, _)| *n == number) {
                cx.error(
                    &format!("{p}.port.number"),
                    format!("duplicate port-level settings for port {number}"),
                );
                continue;
            }
            let mut c = components(
                pl.load_balancer.as_ref(),
                pl.connection_pool.as_ref(),
                pl.outlier_detection.as_ref(),
                &p,
                cx,
            );
            c.tls = pl
                .tls
                .as_ref()
                .and_then(|t| client_tls::compile(t, &format!("{p}.tls"), cx));
            ports.push((number, c));
        }
        let retry_budget = tp
            .retry_budget
            .as_ref()
            .and_then(|rb| retry_budget(rb, &format!("{path}.retryBudget"), cx));
        Self {
            top,
            ports,
            retry_budget,
        }
    }
}

/// Merges partial policies, least specific first, into a checked [`TrafficPolicy`] whose
/// `port_level` entries are already merged over it.
fn build(layers: &[&Partial]) -> TrafficPolicy {
    let mut base = TrafficPolicy::default();
    for l in layers {
        l.top.apply(&mut base);
        if let Some(rb) = &l.retry_budget {
            base.retry_budget = rb.clone();
        }
    }
    let mut port_numbers: Vec<u16> = layers
        .iter()
        .flat_map(|l| l.ports.iter().map(|(n, _)| *n))
        .collect();
    port_numbers.sort_unstable();
    port_numbers.dedup();
    let mut port_level = Vec::with_capacity(port_numbers.len());
    for n in port_numbers {
        let mut tp = TrafficPolicy::default();
        for l in layers {
            l.top.apply(&mut tp);
            if let Some(rb) = &l.retry_budget {
                tp.retry_budget = rb.clone();
            }
            if let Some((_, c)) = l.ports.iter().find(|(p, _)| *p == n) {
                c.apply(&mut tp);
            }
        }
        port_level.push((n, tp));
    }
    base.port_level = port_level;
    base
}

fn components(
    lb: Option<&LoadBalancerSpec>,
    pool: Option<&ConnectionPoolSpec>,
    od: Option<&OutlierDetectionSpec>,
    path: &str,
    cx: &mut Cx<'_>,
) -> Components {
    Components {
        tls: None,
        load_balancer: lb.and_then(|lb| load_balancer(lb, &format!("{path}.loadBalancer"), cx)),
        connection_pool: pool
            .and_then(|p| connection_pool(p, &format!("{path}.connectionPool"), cx)),
        outlier_detection: od
            .and_then(|o| outlier_detection(o, &format!("{path}.outlierDetection"), cx)),
    }
}

/// Istio applies connection-pool limits only when they are positive: 0 keeps the default.
fn limit(n: Option<i64>, default: u32, path: &str, cx: &mut Cx<'_>) -> u32 {
    match n {
        None | Some(0) => default,
        Some(n) => non_negative(n, path, cx).unwrap_or(default),
    }
}

fn connection_pool(p: &ConnectionPoolSpec, path: &str, cx: &mut Cx<'_>) -> Option<ConnectionPool> {
    let before = cx.error_count();
    let d = ConnectionPool::default();
    let mut out = d.clone();
    if let Some(tcp) = &p.tcp {
        let tp = format!("{path}.tcp");
        out.max_connections = limit(
            tcp.max_connections,
            d.max_connections,
            &format!("{tp}.maxConnections"),
            cx,
        );
        if let Some(Some(t)) = opt_duration(
            tcp.connect_timeout.as_ref(),
            &format!("{tp}.connectTimeout"),
            cx,
        ) {
            out.connect_timeout = t;
        }
        if let Some(Some(t)) =
            opt_duration(tcp.idle_timeout.as_ref(), &format!("{tp}.idleTimeout"), cx)
        {
            out.idle_timeout = t;
        }
        if tcp.tcp_keepalive.is_some() {
            cx.unsupported(&format!("{tp}.tcpKeepalive"));
        }
        if tcp.max_connection_duration.is_some() {
            cx.unsupported(&format!("{tp}.maxConnectionDuration"));
        }
    }
    if let Some(h) = &p.http {
        let hp = format!("{path}.http");
        out.http1_max_pending_requests = limit(
            h.http1_max_pending_requests,
            d.http1_max_pending_requests,
            &format!("{hp}.http1MaxPendingRequests"),
            cx,
        );
        out.http2_max_requests = limit(
            h.http2_max_requests,
            d.http2_max_requests,
            &format!("{hp}.http2MaxRequests"),
            cx,
        );
        out.max_requests_per_connection = limit(
            h.max_requests_per_connection,
            d.max_requests_per_connection,
            &format!("{hp}.maxRequestsPerConnection"),
            cx,
        );
        // hyper's connection pool cannot count requests per connection: 1 (no reuse) and
        // unlimited are honoured exactly; any other value would be silently ignored, so refuse it.
        if out.max_requests_per_connection > 1 {
            cx.error(
                &format!("{hp}.maxRequestsPerConnection"),
                "values above 1 are not supported by this mesh (1 disables connection reuse; 0 or absent is unlimited)",
            );
        }
        out.max_retries = limit(
            h.max_retries,
            d.max_retries,
            &format!("{hp}.maxRetries"),
            cx,
        );
        if let Some(Some(t)) =
            opt_duration(h.idle_timeout.as_ref(), &format!("{hp}.idleTimeout"), cx)
        {
            out.idle_timeout = t;
        }
        match h.h2_upgrade_policy.as_deref() {
            None | Some("DEFAULT" | "DO_NOT_UPGRADE") => {}
            Some("UPGRADE") => cx.error(
                &format!("{hp}.h2UpgradePolicy"),
                "`UPGRADE` is not supported by this mesh (only `DEFAULT` and `DO_NOT_UPGRADE`)",
            ),
            Some(other) => cx.error(
                &format!("{hp}.h2UpgradePolicy"),
                format!(
                    "unknown value `{other}` (expected `DEFAULT`, `DO_NOT_UPGRADE` or `UPGRADE`)"
                ),
            ),
        }
        if h.use_client_protocol == Some(true) {
            cx.unsupported(&format!("{hp}.useClientProtocol"));
        }
        if h.max_concurrent_streams.is_some() {
            cx.unsupported(&format!("{hp}.maxConcurrentStreams"));
        }
        if h.http2_keep_alive.is_some() {
            cx.unsupported(&format!("{hp}.http2KeepAlive"));
        }
    }
    (cx.error_count() == before).then_some(out)
}

fn outlier_detection(
    o: &OutlierDetectionSpec,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<OutlierDetection> {
    let before = cx.error_count();
    let mut out = OutlierDetection::default();
    let count = |n: Option<i64>, field: &str, into: &mut u32, cx: &mut Cx<'_>| {
        if let Some(v) = n.and_then(|n| non_negative(n, &format!("{path}.{field}"), cx)) {
            *into = v;
        }
    };
    if o.consecutive_errors.is_some() {
        // Istio: the deprecated field counts gateway errors (502, 503, 504) and turns off the
        // 5xx counter unless that one is also set.
        count(
            o.consecutive_errors,
            "consecutiveErrors",
            &mut out.consecutive_gateway_errors,
            cx,
        );
        if o.consecutive_5xx_errors.is_none() {
            out.consecutive_5xx = 0;
        }
    }
    count(
        o.consecutive_5xx_errors,
        "consecutive5xxErrors",
        &mut out.consecutive_5xx,
        cx,
    );
    count(
        o.consecutive_gateway_errors,
        "consecutiveGatewayErrors",
        &mut out.consecutive_gateway_errors,
        cx,
    );
    count(
        o.consecutive_local_origin_failures,
        "consecutiveLocalOriginFailures",
        &mut out.consecutive_local_origin_failures,
        cx,
    );
    out.split_external_local_origin_errors = o.split_external_local_origin_errors.unwrap_or(false);
    if let Some(Some(d)) = opt_duration(o.interval.as_ref(), &format!("{path}.interval"), cx) {
        out.interval = d;
    }
    if let Some(Some(d)) = opt_duration(
        o.base_ejection_time.as_ref(),
        &format!("{path}.baseEjectionTime"),
        cx,
    ) {
        out.base_ejection_time = d;
    }
    for (n, field, into) in [
        (
            o.max_ejection_percent,
            "maxEjectionPercent",
            &mut out.max_ejection_percent,
        ),
        (
            o.min_health_percent,
            "minHealthPercent",
            &mut out.min_health_percent,
        ),
    ] {
        if let Some(n) = n {
            match u32::try_from(n).ok().filter(|v| *v <= 100) {
                Some(v) => *into = v,
                None => cx.error(
                    &format!("{path}.{field}"),
                    format!("percentage {n} is outside 0..=100"),
                ),
            }
        }
    }
    if o.outlier_detection_http_error_codes.is_some() {
        cx.unsupported(&format!("{path}.outlierDetectionHttpErrorCodes"));
    }
    (cx.error_count() == before).then_some(out)
}

fn retry_budget(rb: &RetryBudgetSpec, path: &str, cx: &mut Cx<'_>) -> Option<RetryBudget> {
    let before = cx.error_count();
    let d = RetryBudget::default();
    let percent = match rb.percent {
        None => Some(d.percent),
        Some(p) => percent_value(p, &format!("{path}.percent"), cx),
    };
    let min_retry_concurrency = match rb.min_retry_concurrency {
        None => Some(d.min_retry_concurrency),
        Some(n) => non_negative(n, &format!("{path}.minRetryConcurrency"), cx),
    };
    if rb.budget_interval.is_some() {
        cx.unsupported(&format!("{path}.budgetInterval"));
    }
    if cx.error_count() > before {
        return None;
    }
    Some(RetryBudget {
        percent: percent?,
        min_retry_concurrency: min_retry_concurrency?,
    })
}
