//! gRPC as the mesh sees it, over plain `http` types: status codes and their Istio names, the
//! mapping from an HTTP status to a gRPC status (Envoy's `httpToGrpcStatus`), `grpc-timeout`
//! parsing and encoding, and trailers-only answers.
//!
//! A gRPC caller cannot read an HTTP error body: every answer the mesh makes itself to a gRPC
//! request is HTTP 200 with `content-type: application/grpc` and the status in the head
//! (`grpc-status`, `grpc-message`), with no body (a *trailers-only* response). Both sides build
//! them here.
//!
//! ```
//! use std::time::Duration;
//! use mesh_core::grpc::{self, Code};
//!
//! assert_eq!(Code::from_name("UNAVAILABLE"), Some(Code::Unavailable));
//! assert_eq!(grpc::http_to_grpc(403), Code::PermissionDenied);
//! let v = http::HeaderValue::from_static("250m");
//! assert_eq!(grpc::parse_timeout(&v), Some(Duration::from_millis(250)));
//! let answer = grpc::trailers_only(Code::Unavailable, "no healthy upstream");
//! assert_eq!(answer.status(), 200);
//! assert_eq!(answer.headers()["grpc-status"], "14");
//! ```

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

/// `grpc-status`.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-timeout`.
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The gRPC status codes, numbered as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Code {
    /// 0 `OK`.
    Ok = 0,
    /// 1 `CANCELLED`.
    Cancelled = 1,
    /// 2 `UNKNOWN`.
    Unknown = 2,
    /// 3 `INVALID_ARGUMENT`.
    InvalidArgument = 3,
    /// 4 `DEADLINE_EXCEEDED`.
    DeadlineExceeded = 4,
    /// 5 `NOT_FOUND`.
    NotFound = 5,
    /// 6 `ALREADY_EXISTS`.
    AlreadyExists = 6,
    /// 7 `PERMISSION_DENIED`.
    PermissionDenied = 7,
    /// 8 `RESOURCE_EXHAUSTED`.
    ResourceExhausted = 8,
    /// 9 `FAILED_PRECONDITION`.
    FailedPrecondition = 9,
    /// 10 `ABORTED`.
    Aborted = 10,
    /// 11 `OUT_OF_RANGE`.
    OutOfRange = 11,
    /// 12 `UNIMPLEMENTED`.
    Unimplemented = 12,
    /// 13 `INTERNAL`.
    Internal = 13,
    /// 14 `UNAVAILABLE`.
    Unavailable = 14,
    /// 15 `DATA_LOSS`.
    DataLoss = 15,
    /// 16 `UNAUTHENTICATED`.
    Unauthenticated = 16,
}

const NAMES: [(Code, &str); 17] = [
    (Code::Ok, "OK"),
    (Code::Cancelled, "CANCELLED"),
    (Code::Unknown, "UNKNOWN"),
    (Code::InvalidArgument, "INVALID_ARGUMENT"),
    (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (Code::NotFound, "NOT_FOUND"),
    (Code::AlreadyExists, "ALREADY_EXISTS"),
    (Code::PermissionDenied, "PERMISSION_DENIED"),
    (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
    (Code::FailedPrecondition, "FAILED_PRECONDITION"),
    (Code::Aborted, "ABORTED"),
    (Code::OutOfRange, "OUT_OF_RANGE"),
    (Code::Unimplemented, "UNIMPLEMENTED"),
    (Code::Internal, "INTERNAL"),
    (Code::Unavailable, "UNAVAILABLE"),
    (Code::DataLoss, "DATA_LOSS"),
    (Code::Unauthenticated, "UNAUTHENTICATED"),
];

impl Code {
    /// The code numbered `n` on the wire, when it is one of the 17.
    pub fn from_u32(n: u32) -> Option<Self> {
        NAMES.get(n as usize).map(|(c, _)| *c)
    }

    /// The code's number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// Istio's name of the code (`UNAVAILABLE`), as `fault.abort.grpcStatus` takes it.
    pub fn name(self) -> &'static str {
        NAMES[self as usize].1
    }

    /// The code Istio's `grpcStatus` names (`UNAVAILABLE`, case as written in Istio's docs).
    pub fn from_name(name: &str) -> Option<Self> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// The `grpc-status` header value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from(self as u32)
    }

    /// The HTTP status a caller that does not speak gRPC gets for this code (Envoy's
    /// `grpcToHttpStatus`).
    pub fn to_http(self) -> StatusCode {
        match self {
            Code::Ok => StatusCode::OK,
            Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The gRPC status for an HTTP status, as Envoy's `httpToGrpcStatus` maps it: 400 → 13, 401 →
/// 16, 403 → 7, 404 → 12, 429/502/503/504 → 14, anything else 2.
pub fn http_to_grpc(status: u16) -> Code {
    match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// Whether a request (or response) is gRPC: its content type is `application/grpc` or
/// `application/grpc+...`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/grpc") && matches!(v.get(16), None | Some(b'+') | Some(b';'))
    })
}

/// `grpc-status` of a head (trailers-only answers and trailers carry it), when present.
pub fn status_of(headers: &HeaderMap) -> Option<u32> {
    headers
        .get(GRPC_STATUS)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The service and the method of a gRPC path (`/mesh.examples.Echo/Call` → `mesh.examples.Echo`,
/// `Call`), when it has that shape.
pub fn service_and_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// The longest `grpc-timeout` the gRPC spec allows: 8 digits of hours.
const MAX_DIGITS: usize = 8;

/// A `grpc-timeout` value (`TimeoutValue TimeoutUnit`: at most 8 digits, then `H`, `M`, `S`,
/// `m`, `u` or `n`), or `None` when malformed.
pub fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let v = value.as_bytes();
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The request's `grpc-timeout`, when it has a valid one.
pub fn timeout_of(headers: &HeaderMap) -> Option<Duration> {
    headers.get(GRPC_TIMEOUT).and_then(parse_timeout)
}

/// `left` as a `grpc-timeout` value: the finest unit whose count fits in 8 digits, but no
/// finer than milliseconds from one second up, rounded down, so that the callee never sees more
/// time than there is.
///
/// Sent on every gRPC call with a deadline. A deadline seconds away needs no microseconds, and
/// at millisecond precision the value repeats from one call to the next: the last value made is
/// kept per thread, and a repeat is a clone of it (no allocation), a new value one allocation
/// (the digits are written by hand into a stack buffer; `format!` cost a second).
pub fn encode_timeout(left: Duration) -> HeaderValue {
    const UNITS: [(u64, u8); 6] = [
        (1, b'n'),
        (1_000, b'u'),
        (1_000_000, b'm'),
        (1_000_000_000, b'S'),
        (60_000_000_000, b'M'),
        (3_600_000_000_000, b'H'),
    ];
    // Beyond u64 nanoseconds (584 years) is beyond the largest value anyway.
    let Ok(nanos) = u64::try_from(left.as_nanos()) else {
        return HeaderValue::from_static("99999999H");
    };
    let finest = if nanos >= 1_000_000_000 { 2 } else { 0 };
    for (per, unit) in UNITS.into_iter().skip(finest) {
        let n = nanos / per;
        if n < 100_000_000 {
            return LAST_TIMEOUT
                .try_with(|last| {
                    let mut last = last.try_borrow_mut().ok()?;
                    match &*last {
                        Some((count, u, value)) if *count == n && *u == unit => Some(value.clone()),
                        _ => {
                            let value = timeout_value(n, unit);
                            *last = Some((n, unit, value.clone()));
                            Some(value)
                        }
                    }
                })
                .ok()
                .flatten()
                .unwrap_or_else(|| timeout_value(n, unit));
        }
    }
    HeaderValue::from_static("99999999H")
}

thread_local! {
    /// The last `grpc-timeout` value [`encode_timeout`] made on this thread: count, unit, value.
    static LAST_TIMEOUT: std::cell::RefCell<Option<(u64, u8, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

/// `n` (below 10^8) followed by `unit`, as a header value.
fn timeout_value(mut n: u64, unit: u8) -> HeaderValue {
    let mut buf = [0u8; 9];
    let mut start = buf.len() - 1;
    buf[start] = unit;
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // invariant: digits and an ASCII letter are always a valid header value.
    HeaderValue::from_bytes(&buf[start..]).unwrap_or(HeaderValue::from_static("0n"))
}

/// `message` percent-encoded as `grpc-message` requires (bytes outside printable ASCII, and
/// `%`, as `%XX`).
pub fn encode_message(message: &str) -> HeaderValue {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // invariant: only printable ASCII remains, always a valid header value.
    HeaderValue::from_str(&out).unwrap_or(HeaderValue::from_static("error"))
}

/// Makes `headers` those of a trailers-only answer with `code` and `message` (an empty message
/// becomes the code's name: gRPC callers expect a non-empty one).
pub fn set_trailers_only(headers: &mut HeaderMap, code: Code, message: &str) {
    headers.remove(http::header::CONTENT_LENGTH);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(GRPC_STATUS, code.header_value());
    let message = if message.is_empty() {
        code.name()
    } else {
        message
    };
    headers.insert(GRPC_MESSAGE, encode_message(message));
}

/// A trailers-only answer: HTTP 200, `content-type: application/grpc`, `grpc-status`,
/// `grpc-message`, and an empty body.
pub fn trailers_only(code: Code, message: &str) -> Response<()> {
    let mut response = Response::new(());
    set_trailers_only(response.headers_mut(), code, message);
    response
}

/// Request extension: when the gRPC call must be over (the caller's `grpc-timeout`, capped by
/// the mesh), set by the layer that honours it, for the application to propagate (the time
/// left, on its own outbound calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The deadline.
    pub at: tokio::time::Instant,
}

impl Deadline {
    /// The time left before the deadline (zero once passed).
    pub fn left(&self) -> Duration {
        self.at
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

#[cfg(test)]
mod tests;
