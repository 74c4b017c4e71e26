//! `meshctl routes`: the route table the mesh compiles, per host and gateway.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use mesh_core::load::load_paths;
use mesh_core::policy::{
    Destination, Fault, HttpRoute, MeshConfig, Mirror, RequestMatch, RetryCondition, RetryOn,
    RetryPolicy, RouteAction, StringMatch, VirtualService,
};
use serde_json::{Value, json};

/// Loads `path` and prints its routes (optionally only those of `host`).
pub(crate) fn run(path: &Path, host: Option<&str>, as_json: bool) -> ExitCode {
    let loaded = match load_paths(&[path]) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for error in &errors.errors {
                eprintln!("{error}");
            }
            eprintln!("config refused: fix the errors above (meshctl validate shows them too)");
            return ExitCode::FAILURE;
        }
    };
    let rows = table(&loaded.config, host);
    if as_json {
        let value = Value::Array(rows.iter().map(Row::to_json).collect());
        match serde_json::to_string_pretty(&value) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("cannot encode json: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else if rows.is_empty() {
        println!(
            "no routes{}",
            host.map(|h| format!(" for host {h}")).unwrap_or_default()
        );
    } else {
        print!("{}", render(&rows));
    }
    ExitCode::SUCCESS
}

/// One route of one host at one gateway.
pub(crate) struct Row<'a> {
    host: &'a str,
    gateway: &'a str,
    vs: &'a VirtualService,
    index: usize,
    route: &'a HttpRoute,
}

/// Every route, in the order the mesh tries them: per VirtualService host and gateway, `http[]`
/// in order.
pub(crate) fn table<'a>(config: &'a MeshConfig, only: Option<&str>) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    for vs in &config.virtual_services {
        let gateways: Vec<&str> = if vs.gateways.is_empty() {
            vec!["mesh"]
        } else {
            vs.gateways.iter().map(String::as_str).collect()
        };
        for host in &vs.hosts {
            if only.is_some_and(|h| !host_matches(host, h)) {
                continue;
            }
            for gateway in &gateways {
                for (index, route) in vs.http.iter().enumerate() {
                    rows.push(Row {
                        host,
                        gateway,
                        vs,
                        index,
                        route,
                    });
                }
            }
        }
    }
    rows
}

/// Whether the VirtualService host `pattern` covers the queried `host`: equal (ignoring case and
/// `.<ns>.svc.cluster.local` on either side), or a `*` / `*.suffix` wildcard.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if p == "*" || p == h {
        return true;
    }
    if let Some(suffix) = p.strip_prefix('*') {
        return h.ends_with(suffix);
    }
    short(&p) == short(&h)
}

fn short(host: &str) -> &str {
    match host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))
    {
        Some(rest) => rest.split('.').next().unwrap_or(rest),
        None => host,
    }
}

impl Row<'_> {
    fn cells(&self) -> [String; 9] {
        let r = self.route;
        [
            self.host.to_owned(),
            self.gateway.to_owned(),
            match &r.name {
                Some(name) => format!("{} {name}", self.index),
                None => self.index.to_string(),
            },
            matches(&r.matches),
            action(&r.action),
            r.timeout.map_or_else(|| "-".to_owned(), duration),
            retries(&r.retries),
            if r.mirrors.is_empty() {
                "-".to_owned()
            } else {
                r.mirrors.iter().map(mirror).collect::<Vec<_>>().join(", ")
            },
            r.fault.as_ref().map_or_else(|| "-".to_owned(), fault),
        ]
    }

    fn to_json(&self) -> Value {
        let r = self.route;
        let destinations: Value = match &r.action {
            RouteAction::Forward(ds) => ds
                .iter()
                .map(|d| {
                    json!({
                        "host": d.destination.host,
                        "subset": d.destination.subset,
                        "port": d.destination.port,
                        "weight": d.weight,
                    })
                })
                .collect(),
            _ => Value::Array(Vec::new()),
        };
        json!({
            "host": self.host,
            "gateway": self.gateway,
            "virtual_service": format!("{}/{}", self.vs.origin.namespace, self.vs.origin.name),
            "source": format!("{}:{}", self.vs.origin.file, self.vs.origin.line),
            "index": self.index,
            "name": r.name,
            "match": matches(&r.matches),
            "action": action(&r.action),
            "destinations": destinations,
            "timeout_ms": r.timeout.map(|t| t.as_millis() as u64),
            "retries": {
                "attempts": r.retries.attempts(),
                "per_try_timeout_ms": r.retries.per_try_timeout().map(|t| t.as_millis() as u64),
                "retry_on": retry_on(&r.retries),
            },
            "mirrors": r.mirrors.iter().map(|m| json!({
                "host": m.destination.host,
                "subset": m.destination.subset,
                "port": m.destination.port,
                "percent": m.percent,
            })).collect::<Vec<_>>(),
            "fault": r.fault.as_ref().map(fault),
        })
    }
}

const HEADER: [&str; 9] = [
    "HOST",
    "GATEWAY",
    "ROUTE",
    "MATCH",
    "DESTINATIONS",
    "TIMEOUT",
    "RETRIES",
    "MIRROR",
    "FAULT",
];

/// A text table with aligned columns.
fn render(rows: &[Row<'_>]) -> String {
    let cells: Vec<[String; 9]> = rows.iter().map(Row::cells).collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&HEADER.map(str::to_owned));
    for row in &cells {
        line(row);
    }
    out
}

fn matches(ms: &[RequestMatch]) -> String {
    if ms.is_empty() {
        return "*".to_owned();
    }
    ms.iter().map(one_match).collect::<Vec<_>>().join(" | ")
}

fn one_match(m: &RequestMatch) -> String {
    let mut parts = Vec::new();
    let mut add = |what: &str, s: &Option<StringMatch>| {
        if let Some(s) = s {
            parts.push(format!("{what} {}", string_match(s)));
        }
    };
    add("uri", &m.uri);
    add("scheme", &m.scheme);
    add("method", &m.method);
    add("authority", &m.authority);
    for (name, s) in &m.headers {
        parts.push(format!("header {name} {}", string_match(s)));
    }
    for (name, s) in &m.without_headers {
        parts.push(format!("!header {name} {}", string_match(s)));
    }
    for (name, s) in &m.query_params {
        parts.push(format!("query {name} {}", string_match(s)));
    }
    if let Some(port) = m.port {
        parts.push(format!("port {port}"));
    }
    if !m.source_labels.is_empty() {
        let labels: Vec<String> = m
            .source_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(format!("source {}", labels.join(",")));
    }
    if !m.gateways.is_empty() {
        parts.push(format!("gateways {}", m.gateways.join(",")));
    }
    if m.ignore_uri_case {
        parts.push("ignoreUriCase".to_owned());
    }
    if parts.is_empty() {
        "*".to_owned()
    } else {
        parts.join(" & ")
    }
}

fn string_match(s: &StringMatch) -> String {
    match s {
        StringMatch::Exact(v) => format!("= {v}"),
        StringMatch::Prefix(v) => format!("^= {v}"),
        StringMatch::Regex(p) => format!("~ {}", p.as_str()),
        StringMatch::Present => "present".to_owned(),
    }
}

fn destination(d: &Destination) -> String {
    let mut s = d.host.clone();
    if let Some(port) = d.port {
        s.push_str(&format!(":{port}"));
    }
    if let Some(subset) = &d.subset {
        s.push_str(&format!(" [{subset}]"));
    }
    s
}

fn action(a: &RouteAction) -> String {
    match a {
        RouteAction::Forward(ds) if ds.len() == 1 => {
            ds.iter().map(|d| destination(&d.destination)).collect()
        }
        RouteAction::Forward(ds) => {
            let total: u64 = ds.iter().map(|d| u64::from(d.weight)).sum();
            ds.iter()
                .map(|d| {
                    let pct = if total == 0 {
                        0.0
                    } else {
                        f64::from(d.weight) * 100.0 / total as f64
                    };
                    format!("{} {}%", destination(&d.destination), trim_float(pct))
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        RouteAction::Redirect(r) => {
            let mut s = format!("redirect {}", r.status.as_u16());
            for (what, v) in [
                ("scheme", &r.scheme),
                ("authority", &r.authority),
                ("uri", &r.uri),
            ] {
                if let Some(v) = v {
                    s.push_str(&format!(" {what}={v}"));
                }
            }
            if let Some(p) = r.port {
                s.push_str(&format!(" port={p}"));
            }
            s
        }
        RouteAction::DirectResponse(d) => format!("respond {}", d.status.as_u16()),
    }
}

fn retries(r: &RetryPolicy) -> String {
    if r.attempts() == 0 {
        return "off".to_owned();
    }
    if *r == RetryPolicy::default() {
        return format!("{}x (istio default)", r.attempts());
    }
    let mut s = format!("{}x", r.attempts());
    if let Some(t) = r.per_try_timeout() {
        s.push_str(&format!(" per try {}", duration(t)));
    }
    if *r.retry_on() == RetryOn::istio_default() {
        s.push_str(" on default retryOn");
    } else {
        s.push_str(&format!(" on {}", retry_on(r).join(",")));
    }
    s
}

fn retry_on(r: &RetryPolicy) -> Vec<String> {
    let mut out: Vec<String> = r
        .retry_on()
        .conditions
        .iter()
        .map(|c| condition(*c).to_owned())
        .collect();
    let default_codes = r.retry_on().has(RetryCondition::RetriableStatusCodes)
        && r.retry_on().status_codes == [503];
    if !default_codes {
        out.extend(r.retry_on().status_codes.iter().map(u16::to_string));
    }
    out
}

fn condition(c: RetryCondition) -> &'static str {
    match c {
        RetryCondition::FiveXx => "5xx",
        RetryCondition::GatewayError => "gateway-error",
        RetryCondition::Reset => "reset",
        RetryCondition::ConnectFailure => "connect-failure",
        RetryCondition::Retriable4xx => "retriable-4xx",
        RetryCondition::RefusedStream => "refused-stream",
        RetryCondition::RetriableStatusCodes => "retriable-status-codes",
        RetryCondition::RetriableHeaders => "retriable-headers",
        RetryCondition::EnvoyRatelimited => "envoy-ratelimited",
        RetryCondition::Cancelled => "cancelled",
        RetryCondition::DeadlineExceeded => "deadline-exceeded",
        RetryCondition::Internal => "internal",
        RetryCondition::ResourceExhausted => "resource-exhausted",
        RetryCondition::Unavailable => "unavailable",
    }
}

fn mirror(m: &Mirror) -> String {
    format!("{} {}%", destination(&m.destination), trim_float(m.percent))
}

fn fault(f: &Fault) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &f.delay {
        parts.push(format!(
            "delay {} {}%",
            duration(d.fixed_delay),
            trim_float(d.percent)
        ));
    }
    if let Some(a) = &f.abort {
        parts.push(format!(
            "abort {} {}%",
            a.status.as_u16(),
            trim_float(a.percent)
        ));
    }
    parts.join(", ")
}

/// `10s`, `1.5s`, `500ms`, `2m`.
fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        format!("{}us", d.as_micros())
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{}s", trim_float(ms as f64 / 1000.0))
    } else {
        format!("{ms}ms")
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}
