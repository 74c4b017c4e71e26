#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn reads_names_labels_values_and_skips_comments() {
    let text = "# HELP istio_requests_total Requests.\n\
        # TYPE istio_requests_total counter\n\
        istio_requests_total{reporter=\"destination\",response_code=\"200\"} 20\n\
        \n\
        up 1\n\
        istio_request_duration_milliseconds_bucket{le=\"+Inf\",source_app=\"gateway\"} 7 1700000000000\n";
    let e = parse(text);
    assert_eq!(e.skipped, 0);
    assert_eq!(e.samples.len(), 3);
    let s = &e.samples[0];
    assert_eq!(s.name, "istio_requests_total");
    assert_eq!(s.label("reporter"), "destination");
    assert_eq!(s.label("response_code"), "200");
    assert_eq!(s.label("absent"), "");
    assert_eq!(s.value, 20.0);
    assert_eq!(e.samples[1].name, "up");
    assert!(e.samples[1].labels.is_empty());
    assert_eq!(e.samples[2].label("le"), "+Inf");
    assert_eq!(e.samples[2].value, 7.0);
}

#[test]
fn unescapes_label_values_and_reads_special_values() {
    let e = parse(
        "m{a=\"x\\\"y\",b=\"back\\\\slash\",c=\"new\\nline\",d=\"} {, =\"} +Inf\nn NaN\no -Inf\np 1.5e3\n",
    );
    assert_eq!(e.skipped, 0);
    let s = &e.samples[0];
    assert_eq!(s.label("a"), "x\"y");
    assert_eq!(s.label("b"), "back\\slash");
    assert_eq!(s.label("c"), "new\nline");
    assert_eq!(s.label("d"), "} {, =");
    assert!(s.value.is_infinite() && s.value > 0.0);
    assert!(e.samples[1].value.is_nan());
    assert_eq!(e.samples[2].value, f64::NEG_INFINITY);
    assert_eq!(e.samples[3].value, 1500.0);
}

#[test]
fn tolerates_a_trailing_comma_and_spaces() {
    let e = parse("m{a=\"1\", b = \"2\",} 3\n");
    assert_eq!(e.skipped, 0);
    assert_eq!(e.samples[0].label("b"), "2");
    assert_eq!(e.samples[0].value, 3.0);
}

#[test]
fn a_bad_line_is_skipped_and_counted_without_hiding_the_rest() {
    let e = parse(
        "good 1\nm{a=\"unterminated} 1\nm{a=1} 2\nm 1 2 3\n9bad 1\nm notanumber\nalso_good{x=\"y\"} 2\n",
    );
    assert_eq!(e.skipped, 5, "{e:?}");
    let names: Vec<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["good", "also_good"]);
}
