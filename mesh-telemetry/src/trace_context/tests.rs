use super::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn parses_the_spec_example() {
    let p = parse_traceparent(TP.as_bytes()).unwrap();
    assert_eq!(p.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_eq!(p.span_id, 0x00f067aa0ba902b7);
    assert!(p.sampled);
    let p = parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    assert!(!p.sampled);
    // Other flag bits are allowed; only bit 0 means sampled.
    let p = parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02").unwrap();
    assert!(!p.sampled);
}

#[test]
fn rejects_every_invalid_form() {
    use TraceParseError as E;
    let cases: &[(&str, E)] = &[
        ("", E::Layout),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            E::Layout,
        ),
        // version ff is forbidden, upper case or non-hex versions too
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Version,
        ),
        (
            "0G-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Version,
        ),
        (
            "AA-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Version,
        ),
        // version 00 with trailing data
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            E::Layout,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
            E::Layout,
        ),
        // wrong separators
        (
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Layout,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            E::Layout,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            E::Layout,
        ),
        // trace id: upper case, non-hex, all zeros
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            E::TraceIdFormat,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
            E::TraceIdFormat,
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            E::TraceIdZero,
        ),
        // span id: upper case, non-hex, all zeros
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            E::SpanIdFormat,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",
            E::SpanIdFormat,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            E::SpanIdZero,
        ),
        // flags: non-hex, upper case
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            E::Flags,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            E::Flags,
        ),
        // a future version must separate extra fields with '-'
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            E::Layout,
        ),
    ];
    for (value, want) in cases {
        assert_eq!(parse_traceparent(value.as_bytes()), Err(*want), "{value:?}");
    }
}

#[test]
fn future_versions_are_read_by_their_first_fields() {
    let p = parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever")
        .unwrap();
    assert_eq!(p.span_id, 0x00f067aa0ba902b7);
    assert!(parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_ok());
}

#[test]
fn b3_single_forms() {
    let full =
        parse_b3_single(b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
            .unwrap();
    assert_eq!(
        full,
        B3Decision::Parent(RemoteParent {
            trace_id: 0x80f198ee56343ba864fe8b2a57d3eff7,
            span_id: 0xe457b5a2e4d86bd1,
            sampled: true
        })
    );
    let short = parse_b3_single(b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-0").unwrap();
    assert_eq!(
        short,
        B3Decision::Parent(RemoteParent {
            trace_id: 0x64fe8b2a57d3eff7,
            span_id: 0xe457b5a2e4d86bd1,
            sampled: false
        })
    );
    let debug = parse_b3_single(b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-d").unwrap();
    assert!(matches!(
        debug,
        B3Decision::Parent(RemoteParent { sampled: true, .. })
    ));
    let deferred = parse_b3_single(b"64fe8b2a57d3eff7-e457b5a2e4d86bd1").unwrap();
    assert!(matches!(deferred, B3Decision::Parent(_)));
    assert_eq!(
        parse_b3_single(b"0").unwrap(),
        B3Decision::SamplingOnly(false)
    );
    assert_eq!(
        parse_b3_single(b"d").unwrap(),
        B3Decision::SamplingOnly(true)
    );
    for bad in [
        &b"x"[..],
        b"64fe8b2a57d3eff7",
        b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
        b"64fe8b2a57d3eff-e457b5a2e4d86bd1-1",
        b"0000000000000000-e457b5a2e4d86bd1-1",
        b"64fe8b2a57d3eff7-0000000000000000-1",
        b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-zz",
        b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-x",
        b"64FE8B2A57D3EFF7-e457b5a2e4d86bd1-1",
    ] {
        assert!(
            parse_b3_single(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn b3_multi_forms() {
    let h = headers(&[
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-parentspanid", "0020000000000001"),
        ("x-b3-sampled", "1"),
    ]);
    let d = parse_b3_multi(&h).unwrap().unwrap();
    assert_eq!(
        d,
        B3Decision::Parent(RemoteParent {
            trace_id: 0x463ac35c9f6413ad48485a3953bb6124,
            span_id: 0xa2fb4a1d1a96d312,
            sampled: true
        })
    );
    let h = headers(&[
        ("x-b3-traceid", "48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "0"),
    ]);
    assert!(matches!(
        parse_b3_multi(&h).unwrap(),
        Some(B3Decision::Parent(RemoteParent {
            sampled: false,
            trace_id: 0x48485a3953bb6124,
            ..
        }))
    ));
    let h = headers(&[
        ("x-b3-traceid", "48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "0"),
        ("x-b3-flags", "1"),
    ]);
    assert!(matches!(
        parse_b3_multi(&h).unwrap(),
        Some(B3Decision::Parent(RemoteParent { sampled: true, .. }))
    ));
    assert_eq!(
        parse_b3_multi(&headers(&[("x-b3-sampled", "0")])).unwrap(),
        Some(B3Decision::SamplingOnly(false))
    );
    assert_eq!(parse_b3_multi(&HeaderMap::new()).unwrap(), None);
    assert!(parse_b3_multi(&headers(&[("x-b3-traceid", "48485a3953bb6124")])).is_err());
    assert!(
        parse_b3_multi(&headers(&[
            ("x-b3-traceid", "48485a3953bb6124"),
            ("x-b3-spanid", "0000000000000000")
        ]))
        .is_err()
    );
    assert!(parse_b3_multi(&headers(&[("x-b3-sampled", "yes")])).is_err());
}

#[test]
fn extract_prefers_a_valid_traceparent_then_b3() {
    let h = headers(&[
        ("traceparent", TP),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
    ]);
    let e = extract(&h);
    assert_eq!(e.parent.map(|p| p.span_id), Some(0x00f067aa0ba902b7));
    assert_eq!(e.propagation, Propagation::W3c);
    assert_eq!(
        e.trace_state.as_ref().map(|v| v.to_str().unwrap()),
        Some("congo=t61rcWkgMzE")
    );

    let h = headers(&[
        (
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ),
        ("b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
    ]);
    let e = extract(&h);
    assert_eq!(e.parent.map(|p| p.span_id), Some(0xe457b5a2e4d86bd1));
    assert_eq!(e.propagation, Propagation::B3Single);

    // Two traceparent headers: invalid, nothing else given: a new trace.
    let h = headers(&[
        ("traceparent", TP),
        ("traceparent", TP),
        ("tracestate", "a=b"),
    ]);
    let e = extract(&h);
    assert_eq!(e.parent, None);
    assert_eq!(e.trace_state, None);
}

#[test]
fn tracestate_lists_are_joined_and_bounded() {
    let h = headers(&[
        ("traceparent", TP),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
    ]);
    assert_eq!(extract(&h).trace_state.unwrap(), "a=1,b=2");
    let long = "k=".to_owned() + &"v".repeat(MAX_TRACESTATE_LEN);
    let h = headers(&[("traceparent", TP), ("tracestate", &long)]);
    assert_eq!(extract(&h).trace_state, None);
}

#[test]
fn inject_writes_w3c_and_b3_when_received_in_b3() {
    let parent = TraceContext {
        trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
        span_id: 0x00f067aa0ba902b7,
        parent_span_id: None,
        sampled: true,
        trace_state: Some(HeaderValue::from_static("congo=t61rcWkgMzE")),
        propagation: Propagation::W3c,
    };
    let child = parent.child_with_id(0x1111111111111111);
    let mut h = headers(&[("traceparent", TP), ("x-b3-spanid", "a2fb4a1d1a96d312")]);
    child.inject(&mut h);
    assert_eq!(
        h.get("traceparent").unwrap(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
    );
    assert_eq!(h.get("tracestate").unwrap(), "congo=t61rcWkgMzE");
    assert!(
        h.get("x-b3-spanid").is_none(),
        "stale b3 headers are removed"
    );

    let b3 = TraceContext {
        propagation: Propagation::B3Multi,
        sampled: false,
        trace_state: None,
        ..parent
    };
    let child = b3.child_with_id(0x2222222222222222);
    let mut h = HeaderMap::new();
    child.inject(&mut h);
    assert_eq!(
        h.get("traceparent").unwrap(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-2222222222222222-00"
    );
    assert_eq!(
        h.get("x-b3-traceid").unwrap(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(h.get("x-b3-spanid").unwrap(), "2222222222222222");
    assert_eq!(h.get("x-b3-parentspanid").unwrap(), "00f067aa0ba902b7");
    assert_eq!(h.get("x-b3-sampled").unwrap(), "0");
    assert!(h.get("tracestate").is_none());
    // What we inject parses back.
    let back = parse_traceparent(h.get("traceparent").unwrap().as_bytes()).unwrap();
    assert_eq!(
        (back.trace_id, back.span_id, back.sampled),
        (child.trace_id, child.span_id, false)
    );
}

#[test]
fn ids_are_never_zero_and_children_keep_the_trace() {
    let root = TraceContext::new_root(true);
    assert_ne!(root.trace_id, 0);
    assert_ne!(root.span_id, 0);
    let c = root.child();
    assert_eq!(c.trace_id, root.trace_id);
    assert_eq!(c.parent_span_id, Some(root.span_id));
    assert_ne!(c.span_id, 0);
    assert_ne!(root.child_with_id(0).span_id, 0);
    assert_eq!(root.trace_id_hex().len(), 32);
    assert_eq!(root.span_id_hex().len(), 16);
}

/// The W3C spec's example span (`TP`), sampled, received in W3C form.
fn spec_context() -> TraceContext {
    TraceContext {
        trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        span_id: 0x00f0_67aa_0ba9_02b7,
        parent_span_id: None,
        sampled: true,
        trace_state: None,
        propagation: Propagation::W3c,
    }
}

#[test]
fn the_spec_example_is_written_as_its_traceparent_and_parsed_back() {
    let ctx = spec_context();
    assert_eq!(ctx.traceparent(), TP);
    let parsed = parse_traceparent(ctx.traceparent().as_bytes()).unwrap();
    assert_eq!(
        (parsed.trace_id, parsed.span_id),
        (ctx.trace_id, ctx.span_id)
    );
}

#[test]
fn ids_as_hex_strings_are_the_padded_lower_case_forms() {
    for (trace_id, span_id) in [
        (1u128, 1u64),
        (
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            0x00f0_67aa_0ba9_02b7,
        ),
        (u128::MAX, u64::MAX),
        (1u128 << 64, 1u64 << 63),
    ] {
        let ctx = TraceContext {
            trace_id,
            span_id,
            parent_span_id: None,
            sampled: false,
            trace_state: None,
            propagation: Propagation::W3c,
        };
        assert_eq!(ctx.trace_id_hex(), format!("{trace_id:032x}"));
        assert_eq!(ctx.span_id_hex(), format!("{span_id:016x}"));
    }
}

#[test]
fn inject_replaces_every_trace_header_present_and_touches_nothing_else() {
    let ctx = spec_context();
    let ours = ctx.traceparent();
    // Each trace header alone, all of them together, and the app's forwarded traceparent twice.
    let stale = [
        (
            "traceparent",
            "00-11111111111111111111111111111111-1111111111111111-01",
        ),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("b3", "1"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
        ("x-b3-sampled", "1"),
        ("x-b3-flags", "1"),
    ];
    let mut cases: Vec<Vec<(&str, &str)>> = stale.iter().map(|h| vec![*h]).collect();
    cases.push(stale.to_vec());
    cases.push(vec![stale[0], stale[0]]);
    for case in cases {
        let mut h = headers(&case);
        h.insert("x-user", HeaderValue::from_static("ann"));
        h.insert("x-b3-other", HeaderValue::from_static("kept"));
        ctx.inject(&mut h);
        let mut left: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        left.sort();
        let mut want = vec![
            ("traceparent".to_owned(), ours.to_str().unwrap().to_owned()),
            ("x-b3-other".to_owned(), "kept".to_owned()),
            ("x-user".to_owned(), "ann".to_owned()),
        ];
        want.sort();
        assert_eq!(left, want, "after {case:?}");
        assert_eq!(h.len(), 3, "after {case:?}: {h:?}");
        assert_eq!(h.get_all("traceparent").iter().count(), 1);
        assert_eq!(h["traceparent"], ours);
    }
}
