use super::*;

#[test]
fn names_and_numbers_round_trip() {
    for n in 0..17 {
        let code = Code::from_u32(n).unwrap();
        assert_eq!(code.as_u32(), n);
        assert_eq!(Code::from_name(code.name()), Some(code));
    }
    assert_eq!(Code::from_u32(17), None);
    assert_eq!(Code::from_name("unavailable"), None);
    assert_eq!(
        Code::from_name("DEADLINE_EXCEEDED"),
        Some(Code::DeadlineExceeded)
    );
}

#[test]
fn http_statuses_map_as_envoy() {
    assert_eq!(http_to_grpc(400), Code::Internal);
    assert_eq!(http_to_grpc(401), Code::Unauthenticated);
    assert_eq!(http_to_grpc(403), Code::PermissionDenied);
    assert_eq!(http_to_grpc(404), Code::Unimplemented);
    for s in [429, 502, 503, 504] {
        assert_eq!(http_to_grpc(s), Code::Unavailable);
    }
    assert_eq!(http_to_grpc(500), Code::Unknown);
    assert_eq!(Code::Unavailable.to_http(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(Code::Unauthenticated.to_http(), StatusCode::UNAUTHORIZED);
}

#[test]
fn content_types() {
    let mut h = HeaderMap::new();
    assert!(!is_grpc(&h));
    for (v, grpc) in [
        ("application/grpc", true),
        ("application/grpc+proto", true),
        ("application/grpc-web", false),
        ("application/json", false),
    ] {
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
        assert_eq!(is_grpc(&h), grpc, "{v}");
    }
}

#[test]
fn timeouts_parse_and_encode() {
    let p = |s: &'static str| parse_timeout(&HeaderValue::from_static(s));
    assert_eq!(p("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(p("2M"), Some(Duration::from_secs(120)));
    assert_eq!(p("3S"), Some(Duration::from_secs(3)));
    assert_eq!(p("100m"), Some(Duration::from_millis(100)));
    assert_eq!(p("7u"), Some(Duration::from_micros(7)));
    assert_eq!(p("9n"), Some(Duration::from_nanos(9)));
    for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S"] {
        assert_eq!(p(bad), None, "{bad}");
    }
    assert_eq!(encode_timeout(Duration::from_nanos(5)), "5n");
    assert_eq!(encode_timeout(Duration::from_millis(250)), "250000u");
    assert_eq!(encode_timeout(Duration::from_secs(3600)), "3600000m");
    assert_eq!(encode_timeout(Duration::ZERO), "0n");
    assert_eq!(
        encode_timeout(Duration::from_nanos(99_999_999)),
        "99999999n"
    );
    assert_eq!(encode_timeout(Duration::from_nanos(100_000_000)), "100000u");
    assert_eq!(
        encode_timeout(Duration::from_secs(400 * 86_400)),
        "34560000S"
    );
    assert_eq!(encode_timeout(Duration::MAX), "99999999H");
    let round = parse_timeout(&encode_timeout(Duration::from_millis(1234))).unwrap();
    assert_eq!(round, Duration::from_millis(1234));
    // From one second up, milliseconds at the finest, rounded down.
    assert_eq!(
        encode_timeout(Duration::from_nanos(29_999_999_999)),
        "29999m"
    );
    assert_eq!(encode_timeout(Duration::from_secs(1)), "1000m");
    assert_eq!(encode_timeout(Duration::from_nanos(999_999_999)), "999999u");
}

#[test]
fn a_repeated_timeout_value_is_the_last_one_again_and_a_new_one_is_made() {
    // A thread of its own: the kept value starts empty.
    std::thread::spawn(|| {
        let first = encode_timeout(Duration::from_micros(29_999_400));
        let again = encode_timeout(Duration::from_micros(29_999_900));
        assert_eq!(first, "29999m");
        assert_eq!(again, "29999m");
        assert_eq!(
            first.as_bytes().as_ptr(),
            again.as_bytes().as_ptr(),
            "the same bytes, shared"
        );
        let next = encode_timeout(Duration::from_millis(29_998));
        assert_eq!(next, "29998m");
        assert_eq!(encode_timeout(Duration::from_millis(250)), "250000u");
        assert_eq!(encode_timeout(Duration::from_millis(29_998)), "29998m");
    })
    .join()
    .unwrap();
}

#[test]
fn trailers_only_answers() {
    let r = trailers_only(Code::PermissionDenied, "RBAC: access denied");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/grpc");
    assert_eq!(status_of(r.headers()), Some(7));
    assert_eq!(r.headers()[GRPC_MESSAGE], "RBAC: access denied");
    let r = trailers_only(Code::Unimplemented, "");
    assert_eq!(r.headers()[GRPC_MESSAGE], "UNIMPLEMENTED");
    assert_eq!(encode_message("50% é"), "50%25 %C3%A9");
}

#[test]
fn paths_split_into_service_and_method() {
    assert_eq!(
        service_and_method("/mesh.examples.Echo/Call"),
        Some(("mesh.examples.Echo", "Call"))
    );
    assert_eq!(service_and_method("/health"), None);
    assert_eq!(service_and_method("/a/b/c"), None);
}
