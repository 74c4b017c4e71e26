//! Compile helpers shared by the networking kinds: string matches, header operations,
//! percentages, ports, destinations, durations.

use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::{Cx, duration};
use crate::policy::{Destination, HeaderOps, HeaderRules, Pattern, StringMatch};
use crate::spec::{
    DestinationSpec, HeaderOperationsSpec, HeadersSpec, PercentSpec, StringMatchSpec,
};

/// Compiles an Istio `StringMatch`. `{}` is [`StringMatch::Present`] when `allow_present`
/// (headers, query parameters), an error otherwise.
pub(crate) fn string_match(
    m: &StringMatchSpec,
    path: &str,
    allow_present: bool,
    cx: &mut Cx<'_>,
) -> Option<StringMatch> {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        cx.error(path, "set only one of `exact`, `prefix`, `regex`");
        return None;
    }
    if let Some(e) = &m.exact {
        return Some(StringMatch::Exact(e.clone()));
    }
    if let Some(p) = &m.prefix {
        return Some(StringMatch::Prefix(p.clone()));
    }
    if let Some(r) = &m.regex {
        return regex(r, &format!("{path}.regex"), cx).map(StringMatch::Regex);
    }
    if allow_present {
        Some(StringMatch::Present)
    } else {
        cx.error(path, "must set one of `exact`, `prefix`, `regex`");
        None
    }
}

/// Compiles an RE2-style regex (whole-string match).
pub(crate) fn regex(source: &str, path: &str, cx: &mut Cx<'_>) -> Option<Pattern> {
    compile_pattern(Pattern::new(source), source, path, cx)
}

/// Compiles an RE2-style regex that matches anywhere (Envoy's `regex_rewrite` replaces every
/// match in the path).
pub(crate) fn search_regex(source: &str, path: &str, cx: &mut Cx<'_>) -> Option<Pattern> {
    compile_pattern(Pattern::unanchored(source), source, path, cx)
}

fn compile_pattern(
    compiled: Result<Pattern, regex::Error>,
    source: &str,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<Pattern> {
    match compiled {
        Ok(p) => Some(p),
        Err(e) => {
            // the regex crate's message spans several lines; keep its last line, the reason
            let reason = e.to_string();
            let reason = reason
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let reason = reason.strip_prefix("error: ").unwrap_or(reason);
            cx.error(path, format!("invalid regex `{source}`: {reason}"));
            None
        }
    }
}

/// Parses a duration field.
pub(crate) fn duration_field(text: &str, path: &str, cx: &mut Cx<'_>) -> Option<Duration> {
    match duration::parse(text) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.error(path, e);
            None
        }
    }
}

/// An optional duration field.
pub(crate) fn opt_duration(
    text: Option<&String>,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<Option<Duration>> {
    match text {
        None => Some(None),
        Some(t) => duration_field(t, path, cx).map(Some),
    }
}

/// A header name (lowercased, as HTTP/2 requires).
pub(crate) fn header_name(name: &str, path: &str, cx: &mut Cx<'_>) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            cx.error(path, format!("invalid header name `{name}`"));
            None
        }
    }
}

/// A header value.
pub(crate) fn header_value(value: &str, path: &str, cx: &mut Cx<'_>) -> Option<HeaderValue> {
    match HeaderValue::from_str(value) {
        Ok(v) => Some(v),
        Err(_) => {
            cx.error(
                path,
                format!("invalid header value `{}`", value.escape_default()),
            );
            None
        }
    }
}

/// `headers` (request and response operations).
pub(crate) fn header_rules(spec: Option<&HeadersSpec>, path: &str, cx: &mut Cx<'_>) -> HeaderRules {
    let Some(spec) = spec else {
        return HeaderRules::default();
    };
    HeaderRules {
        request: header_ops(spec.request.as_ref(), &format!("{path}.request"), cx),
        response: header_ops(spec.response.as_ref(), &format!("{path}.response"), cx),
    }
}

fn header_ops(spec: Option<&HeaderOperationsSpec>, path: &str, cx: &mut Cx<'_>) -> HeaderOps {
    let mut ops = HeaderOps::default();
    let Some(spec) = spec else {
        return ops;
    };
    for (field, map, out) in [
        ("set", &spec.set, &mut ops.set),
        ("add", &spec.add, &mut ops.add),
    ] {
        for (k, v) in map {
            let p = format!("{path}.{field}.{k}");
            let name = header_name(k, &p, cx);
            let value = header_value(v, &p, cx);
            if let (Some(n), Some(v)) = (name, value) {
                out.push((n, v));
            }
        }
    }
    for (i, k) in spec.remove.iter().enumerate() {
        if let Some(n) = header_name(k, &format!("{path}.remove[{i}]"), cx) {
            ops.remove.push(n);
        }
    }
    ops
}

/// A `Percent` (`{value}`), 100 when absent; must be within 0..=100.
pub(crate) fn percent(spec: Option<&PercentSpec>, path: &str, cx: &mut Cx<'_>) -> Option<f64> {
    let value = spec.and_then(|p| p.value).unwrap_or(100.0);
    percent_value(value, &format!("{path}.value"), cx)
}

/// A percentage value that must be within 0..=100.
pub(crate) fn percent_value(value: f64, path: &str, cx: &mut Cx<'_>) -> Option<f64> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Some(value)
    } else {
        cx.error(path, format!("percentage {value} is outside 0..=100"));
        None
    }
}

/// A port number: 1..=65535.
pub(crate) fn port(n: i64, path: &str, cx: &mut Cx<'_>) -> Option<u16> {
    match u16::try_from(n) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            cx.error(path, format!("port {n} is outside 1..=65535"));
            None
        }
    }
}

/// A non-negative integer that fits in `u32`.
pub(crate) fn non_negative(n: i64, path: &str, cx: &mut Cx<'_>) -> Option<u32> {
    if n < 0 {
        cx.error(path, format!("must not be negative (got {n})"));
        return None;
    }
    match u32::try_from(n) {
        Ok(v) => Some(v),
        Err(_) => {
            cx.error(path, format!("{n} is too large"));
            None
        }
    }
}

/// A `Destination` (host required).
pub(crate) fn destination(
    spec: Option<&DestinationSpec>,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<Destination> {
    let Some(spec) = spec else {
        cx.error(path, "is required");
        return None;
    };
    let host = match spec.host.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() => h.to_owned(),
        _ => {
            cx.error(&format!("{path}.host"), "destination host is required");
            return None;
        }
    };
    let subset = match spec.subset.as_deref() {
        Some("") | None => None,
        Some(s) => Some(s.to_owned()),
    };
    let port = match spec.port.as_ref().and_then(|p| p.number) {
        None => None,
        Some(n) => Some(port(n, &format!("{path}.port.number"), cx)?),
    };
    Some(Destination { host, subset, port })
}
