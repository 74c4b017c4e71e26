//! `http[].fault` → [`Fault`]: delays and aborts (HTTP status or gRPC status) and their
//! percentages.

use super::*;

pub(super) fn fault(f: &HttpFaultInjectionSpec, path: &str, cx: &mut Cx<'_>) -> Option<Fault> {
    let before = cx.error_count();
    let mut out = Fault::default();
    if let Some(d) = &f.delay {
        let p = format!("{path}.delay");
        if d.exponential_delay.is_some() {
            cx.unsupported(&format!("{p}.exponentialDelay"));
        }
        let pct = fault_percent(d.percentage.as_ref(), d.percent, &p, cx);
        match &d.fixed_delay {
            None if d.exponential_delay.is_none() => {
                cx.error(&format!("{p}.fixedDelay"), "is required")
            }
            None => {}
            Some(fd) => {
                if let (Some(fixed_delay), Some(percent)) =
                    (duration_field(fd, &format!("{p}.fixedDelay"), cx), pct)
                {
                    out.delay = Some(FaultDelay {
                        fixed_delay,
                        percent,
                    });
                }
            }
        }
    }
    if let Some(a) = &f.abort {
        let p = format!("{path}.abort");
        if a.http2_error.is_some() {
            cx.unsupported(&format!("{p}.http2Error"));
        }
        let pct = percent(a.percentage.as_ref(), &format!("{p}.percentage"), cx);
        let grpc = match a.grpc_status.as_deref() {
            None => None,
            Some(name) => {
                let code = crate::grpc::Code::from_name(name)
                    .or_else(|| name.parse().ok().and_then(crate::grpc::Code::from_u32));
                if code.is_none() {
                    cx.error(
                        &format!("{p}.grpcStatus"),
                        format!(
                            "unknown gRPC status {name:?} (expected a name such as UNAVAILABLE)"
                        ),
                    );
                }
                code
            }
        };
        match (a.http_status, grpc) {
            (None, None) if a.grpc_status.is_none() && a.http2_error.is_none() => {
                cx.error(&format!("{p}.httpStatus"), "is required")
            }
            (None, None) => {}
            (None, Some(code)) => {
                if let Some(percent) = pct {
                    out.abort = Some(FaultAbort {
                        status: code.to_http(),
                        grpc_status: Some(code),
                        percent,
                    });
                }
            }
            (Some(code), grpc) => {
                match u16::try_from(code).ok().filter(|c| (200..=599).contains(c)) {
                    Some(c) => {
                        if let (Ok(status), Some(percent)) = (StatusCode::from_u16(c), pct) {
                            out.abort = Some(FaultAbort {
                                status,
                                grpc_status: grpc,
                                percent,
                            });
                        }
                    }
                    None => cx.error(
                        &format!("{p}.httpStatus"),
                        format!("status {code} is outside 200..=599"),
                    ),
                }
            }
        }
    }
    if f.delay.is_none() && f.abort.is_none() {
        cx.error(path, "needs `delay` or `abort`");
    }
    (cx.error_count() == before).then_some(out)
}

/// `percentage`, or the deprecated integer `percent`; 100 when neither.
fn fault_percent(
    pct: Option<&crate::spec::PercentSpec>,
    legacy: Option<i64>,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<f64> {
    match (pct, legacy) {
        (Some(_), Some(_)) => {
            cx.error(
                &format!("{path}.percent"),
                "set only one of `percentage`, `percent` (deprecated)",
            );
            None
        }
        (None, Some(n)) => percent_value(n as f64, &format!("{path}.percent"), cx),
        (p, None) => percent(p, &format!("{path}.percentage"), cx),
    }
}
