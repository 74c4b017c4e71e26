use super::*;

#[test]
fn encodes_promql() {
    assert_eq!(
        encode("sum(rate(x{a=\"b\"}[1m])) by (c)"),
        "sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29%20by%20%28c%29"
    );
}

#[test]
fn base_urls() {
    assert_eq!(base_url("http://127.0.0.1:9/metrics"), "http://127.0.0.1:9");
    assert_eq!(base_url("127.0.0.2:15000/"), "http://127.0.0.2:15000");
    assert_eq!(base_url("http://h:1"), "http://h:1");
}
