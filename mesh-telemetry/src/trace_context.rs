//! Trace context: W3C `traceparent`/`tracestate` and Zipkin B3 (single `b3` header and
//! multi `x-b3-*`), parsed strictly and injected without allocation beyond the header values.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use self::hex::{hex_into, hex_string, parse_hex, write_traceparent};

mod hex;

/// `traceparent` (W3C Trace Context).
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C Trace Context).
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `b3` (B3 single header).
pub static B3: HeaderName = HeaderName::from_static("b3");
/// `x-b3-traceid`.
pub static X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
/// `x-b3-spanid`.
pub static X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");
/// `x-b3-parentspanid`.
pub static X_B3_PARENTSPANID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
/// `x-b3-sampled`.
pub static X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
/// `x-b3-flags` (`1` means debug, which implies sampled).
pub static X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// Longest `tracestate` we carry on; the W3C spec lets a vendor drop longer ones (it asks that at
/// least 512 characters be propagated).
pub const MAX_TRACESTATE_LEN: usize = 512;

/// The wire format a trace context arrived in (and so is forwarded in, besides W3C).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// W3C `traceparent` (or a new trace).
    #[default]
    W3c,
    /// B3 single header `b3`.
    B3Single,
    /// B3 multi headers `x-b3-*`.
    B3Multi,
}

/// Why a `traceparent` (or B3 header) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParseError {
    /// Wrong total length or missing `-` separators.
    #[error("traceparent: malformed layout")]
    Layout,
    /// Version is not two lower-case hex digits, or is `ff`.
    #[error("traceparent: invalid version")]
    Version,
    /// Trace id is not 32 lower-case hex digits (16 or 32 for B3).
    #[error("trace id: not lower-case hex of the right length")]
    TraceIdFormat,
    /// Trace id is all zeros.
    #[error("trace id: all zeros")]
    TraceIdZero,
    /// Span (parent) id is not 16 lower-case hex digits.
    #[error("span id: not 16 lower-case hex digits")]
    SpanIdFormat,
    /// Span (parent) id is all zeros.
    #[error("span id: all zeros")]
    SpanIdZero,
    /// Flags are not two lower-case hex digits; or a B3 sampling state is not `0`, `1` or `d`.
    #[error("trace flags: invalid")]
    Flags,
}

/// A parsed incoming parent: what a remote caller says its span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteParent {
    /// 128-bit trace id (a 64-bit B3 id is left-padded with zeros).
    pub trace_id: u128,
    /// The caller's span id: the parent of the span we start.
    pub span_id: u64,
    /// The caller's sampling decision.
    pub sampled: bool,
}

/// The trace context of the span currently running on one side of a call.
///
/// The server layer puts one in the request extensions (the server span, inside the
/// [`RequestContext`](crate::RequestContext): read it with [`TraceContext::from_extensions`]);
/// the client layer takes one as the parent of its client span, and puts its client span's
/// context in the response extensions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// 128-bit trace id, never zero.
    pub trace_id: u128,
    /// This span's id, never zero.
    pub span_id: u64,
    /// The parent span's id (`None` for a root span).
    pub parent_span_id: Option<u64>,
    /// Whether the trace is sampled (exported), forwarded as flag `01`.
    pub sampled: bool,
    /// The `tracestate` to forward, as received.
    pub trace_state: Option<HeaderValue>,
    /// The format the context arrived in: B3 contexts are also forwarded as `x-b3-*`.
    pub propagation: Propagation,
}

impl TraceContext {
    /// A new root span (new trace id and span id).
    pub fn new_root(sampled: bool) -> Self {
        TraceContext {
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            parent_span_id: None,
            sampled,
            trace_state: None,
            propagation: Propagation::W3c,
        }
    }

    /// A child span of `self`: same trace, state and format, a new span id.
    pub fn child(&self) -> Self {
        self.child_with_id(new_span_id())
    }

    /// A child span of `self` with the given span id (zero is replaced by a random id).
    pub fn child_with_id(&self, span_id: u64) -> Self {
        TraceContext {
            trace_id: self.trace_id,
            span_id: if span_id == 0 { new_span_id() } else { span_id },
            parent_span_id: Some(self.span_id),
            sampled: self.sampled,
            trace_state: self.trace_state.clone(),
            propagation: self.propagation,
        }
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex_string::<32>(&self.trace_id.to_be_bytes())
    }

    /// The span id as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> String {
        hex_string::<16>(&self.span_id.to_be_bytes())
    }

    /// The `traceparent` value naming this span (`00-trace-span-flags`).
    pub fn traceparent(&self) -> HeaderValue {
        let mut buf = [0u8; 55];
        write_traceparent(&mut buf, self.trace_id, self.span_id, self.sampled);
        // Shared by reference count from the start: the retry layer's copy of the request head
        // then clones it without an allocation (a value copied from a slice allocates again on
        // its first clone).
        let bytes = bytes::Bytes::from_owner(buf);
        // invariant: the buffer holds only ASCII hex digits and dashes, valid header bytes.
        #[allow(clippy::expect_used)]
        HeaderValue::from_maybe_shared(bytes)
            .expect("invariant: hex and dashes are valid header bytes")
    }

    /// Writes this span's context into `headers` for an outbound call: `traceparent` always,
    /// `tracestate` when one was received, and `x-b3-*` when the trace arrived in B3. Any trace
    /// headers already there (for instance forwarded by the app from its own request) are
    /// replaced.
    pub fn inject(&self, headers: &mut HeaderMap) {
        // One pass over the names present is cheaper than eight hashed lookups. Only the ones
        // present are removed, and `traceparent` not even then: the insert below replaces every
        // value it has. The usual request carries none, or the `traceparent` its app forwarded.
        remove_trace_headers(headers, present_trace_headers(headers) & !TRACEPARENT_BIT);
        headers.insert(TRACEPARENT.clone(), self.traceparent());
        if let Some(state) = &self.trace_state {
            headers.insert(TRACESTATE.clone(), state.clone());
        }
        if self.propagation != Propagation::W3c {
            let mut t = [0u8; 32];
            hex_into(&mut t, self.trace_id.to_be_bytes().as_slice());
            let mut s = [0u8; 16];
            hex_into(&mut s, self.span_id.to_be_bytes().as_slice());
            headers.insert(X_B3_TRACEID.clone(), hv(&t));
            headers.insert(X_B3_SPANID.clone(), hv(&s));
            if let Some(parent) = self.parent_span_id {
                let mut p = [0u8; 16];
                hex_into(&mut p, parent.to_be_bytes().as_slice());
                headers.insert(X_B3_PARENTSPANID.clone(), hv(&p));
            }
            let sampled = if self.sampled { "1" } else { "0" };
            headers.insert(X_B3_SAMPLED.clone(), HeaderValue::from_static(sampled));
        }
    }
}

fn hv(hex: &[u8]) -> HeaderValue {
    // invariant: only lower-case hex digits are passed here.
    #[allow(clippy::expect_used)]
    HeaderValue::from_bytes(hex).expect("invariant: hex digits are valid header bytes")
}

/// A random non-zero trace id.
pub fn new_trace_id() -> u128 {
    loop {
        let id: u128 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

/// A random non-zero span id.
pub fn new_span_id() -> u64 {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

fn trace_id(s: &[u8], allow_64: bool) -> Result<u128, TraceParseError> {
    if s.len() != 32 && !(allow_64 && s.len() == 16) {
        return Err(TraceParseError::TraceIdFormat);
    }
    match parse_hex(s) {
        None => Err(TraceParseError::TraceIdFormat),
        Some(0) => Err(TraceParseError::TraceIdZero),
        Some(id) => Ok(id),
    }
}

fn span_id(s: &[u8]) -> Result<u64, TraceParseError> {
    if s.len() != 16 {
        return Err(TraceParseError::SpanIdFormat);
    }
    match parse_hex(s) {
        None => Err(TraceParseError::SpanIdFormat),
        Some(0) => Err(TraceParseError::SpanIdZero),
        // 16 hex digits always fit in 64 bits.
        Some(id) => u64::try_from(id).map_err(|_| TraceParseError::SpanIdFormat),
    }
}

/// Parses a W3C `traceparent` value strictly (version `00` exactly 55 characters; a higher
/// version is read by its first four fields, as the spec asks; `ff` and upper case rejected).
pub fn parse_traceparent(value: &[u8]) -> Result<RemoteParent, TraceParseError> {
    // Every index below is under 55, which this check guarantees.
    if value.len() < 55 {
        return Err(TraceParseError::Layout);
    }
    let version = parse_hex(&value[..2]).ok_or(TraceParseError::Version)?;
    if version == 0xff {
        return Err(TraceParseError::Version);
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return Err(TraceParseError::Layout);
    }
    // Version 00 has exactly four fields; a future version may append `-...`.
    if (version == 0 && value.len() != 55) || (value.len() > 55 && value[55] != b'-') {
        return Err(TraceParseError::Layout);
    }
    let trace_id = trace_id(&value[3..35], false)?;
    let span_id = span_id(&value[36..52])?;
    let flags = parse_hex(&value[53..55]).ok_or(TraceParseError::Flags)?;
    Ok(RemoteParent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

/// What a B3 header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B3Decision {
    /// A full context.
    Parent(RemoteParent),
    /// Only a sampling decision (`b3: 0`, `b3: 1`, `b3: d`): start a new trace with it.
    SamplingOnly(bool),
}

fn b3_sampling(s: &[u8]) -> Result<bool, TraceParseError> {
    match s {
        b"1" | b"d" => Ok(true),
        b"0" => Ok(false),
        _ => Err(TraceParseError::Flags),
    }
}

/// Parses a B3 single header: `{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or a lone
/// sampling state.
pub fn parse_b3_single(value: &[u8]) -> Result<B3Decision, TraceParseError> {
    if value.len() == 1 {
        return b3_sampling(value).map(B3Decision::SamplingOnly);
    }
    let mut parts = value.split(|&b| b == b'-');
    let t = parts.next().ok_or(TraceParseError::Layout)?;
    let s = parts.next().ok_or(TraceParseError::Layout)?;
    let trace_id = trace_id(t, true)?;
    let span_id = span_id(s)?;
    // Absent sampling state: defer, which we treat as sampled by the caller's choice (yes).
    let sampled = match parts.next() {
        Some(state) => b3_sampling(state)?,
        None => true,
    };
    if let Some(parent) = parts.next() {
        self::span_id(parent)?;
    }
    if parts.next().is_some() {
        return Err(TraceParseError::Layout);
    }
    Ok(B3Decision::Parent(RemoteParent {
        trace_id,
        span_id,
        sampled,
    }))
}

/// Parses B3 multi headers (`x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`);
/// `Ok(None)` when no `x-b3-*` header is present.
pub fn parse_b3_multi(headers: &HeaderMap) -> Result<Option<B3Decision>, TraceParseError> {
    let sampled = match headers.get(&X_B3_SAMPLED).map(HeaderValue::as_bytes) {
        None => None,
        Some(b"1" | b"true") => Some(true),
        Some(b"0" | b"false") => Some(false),
        Some(_) => return Err(TraceParseError::Flags),
    };
    let debug = match headers.get(&X_B3_FLAGS).map(HeaderValue::as_bytes) {
        None | Some(b"0") => false,
        Some(b"1") => true,
        Some(_) => return Err(TraceParseError::Flags),
    };
    let sampled = if debug { Some(true) } else { sampled };
    match (headers.get(&X_B3_TRACEID), headers.get(&X_B3_SPANID)) {
        (Some(t), Some(s)) => {
            let trace_id = trace_id(t.as_bytes(), true)?;
            let span_id = span_id(s.as_bytes())?;
            if let Some(p) = headers.get(&X_B3_PARENTSPANID) {
                self::span_id(p.as_bytes())?;
            }
            Ok(Some(B3Decision::Parent(RemoteParent {
                trace_id,
                span_id,
                sampled: sampled.unwrap_or(true),
            })))
        }
        (None, None) => Ok(sampled.map(B3Decision::SamplingOnly)),
        _ => Err(TraceParseError::Layout),
    }
}

/// What arrived on a request: a parent to continue, a sampling decision, or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// The remote parent, when one was valid.
    pub parent: Option<RemoteParent>,
    /// A sampling decision for a new trace (B3 `b3: 0`), when no parent was given.
    pub sampled_hint: Option<bool>,
    /// The received `tracestate` (with a valid W3C parent only).
    pub trace_state: Option<HeaderValue>,
    /// The format it came in.
    pub propagation: Propagation,
}

/// Extracts the incoming trace context: a valid `traceparent` first, then `b3`, then
/// `x-b3-*`. An invalid header counts as absent (a new trace starts), as the W3C spec asks.
pub fn extract(headers: &HeaderMap) -> Extracted {
    let mut out = Extracted {
        parent: None,
        sampled_hint: None,
        trace_state: None,
        propagation: Propagation::W3c,
    };
    let mut tps = headers.get_all(&TRACEPARENT).iter();
    // More than one traceparent is invalid.
    if let (Some(tp), None) = (tps.next(), tps.next()) {
        match parse_traceparent(tp.as_bytes()) {
            Ok(parent) => {
                out.parent = Some(parent);
                out.trace_state = trace_state(headers);
                return out;
            }
            Err(error) => tracing::debug!(%error, "ignoring invalid traceparent"),
        }
    }
    // Without any B3 header (the usual case) there is nothing more to look up.
    if !headers.keys().any(is_b3_header) {
        return out;
    }
    let b3 = match headers.get(&B3) {
        Some(v) => parse_b3_single(v.as_bytes()).map(|d| Some((d, Propagation::B3Single))),
        None => parse_b3_multi(headers).map(|d| d.map(|d| (d, Propagation::B3Multi))),
    };
    match b3 {
        Ok(Some((B3Decision::Parent(p), prop))) => {
            out.parent = Some(p);
            out.propagation = prop;
        }
        Ok(Some((B3Decision::SamplingOnly(s), prop))) => {
            out.sampled_hint = Some(s);
            out.propagation = prop;
        }
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, "ignoring invalid b3 headers"),
    }
    out
}

/// Whether `name` is a B3 header (`b3` or `x-b3-*`).
fn is_b3_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    n == "b3" || n.starts_with("x-b3-")
}

/// The trace context headers [`TraceContext::inject`] replaces, in the order of the bits of
/// [`present_trace_headers`].
static TRACE_HEADERS: [&HeaderName; 8] = [
    &TRACEPARENT,
    &TRACESTATE,
    &B3,
    &X_B3_TRACEID,
    &X_B3_SPANID,
    &X_B3_PARENTSPANID,
    &X_B3_SAMPLED,
    &X_B3_FLAGS,
];

/// `traceparent`'s bit in [`present_trace_headers`].
const TRACEPARENT_BIT: u8 = 1;

/// Which of [`TRACE_HEADERS`] `headers` has, one bit each, from one pass over its names (a
/// name's first bytes tell most names apart from these at once).
fn present_trace_headers(headers: &HeaderMap) -> u8 {
    headers.keys().fold(0, |present, name| {
        let bit = match name.as_str() {
            "traceparent" => 0,
            "tracestate" => 1,
            "b3" => 2,
            n => match n.strip_prefix("x-b3-") {
                Some("traceid") => 3,
                Some("spanid") => 4,
                Some("parentspanid") => 5,
                Some("sampled") => 6,
                Some("flags") => 7,
                _ => return present,
            },
        };
        present | (1 << bit)
    })
}

/// Removes the [`TRACE_HEADERS`] whose bits `which` has.
fn remove_trace_headers(headers: &mut HeaderMap, which: u8) {
    if which == 0 {
        return;
    }
    for (bit, name) in TRACE_HEADERS.iter().enumerate() {
        if which & (1 << bit) != 0 {
            headers.remove(*name);
        }
    }
}

fn trace_state(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut all = headers.get_all(&TRACESTATE).iter();
    let first = all.next()?;
    let ok = |v: &HeaderValue| {
        v.len() <= MAX_TRACESTATE_LEN && v.as_bytes().iter().all(|b| (0x20..0x7f).contains(b))
    };
    match all.next() {
        None => ok(first).then(|| first.clone()),
        Some(second) => {
            // Several tracestate headers are one list (RFC 9110 field combination).
            let mut joined = Vec::with_capacity(first.len() + second.len() + 1);
            joined.extend_from_slice(first.as_bytes());
            for v in std::iter::once(second).chain(all) {
                joined.push(b',');
                joined.extend_from_slice(v.as_bytes());
            }
            HeaderValue::from_bytes(&joined).ok().filter(ok)
        }
    }
}

#[cfg(test)]
mod tests;
