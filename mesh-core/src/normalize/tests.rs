use super::*;

fn n(path: &str, level: PathNormalization) -> String {
    match normalize_path(path, level) {
        Ok(Some(p)) => p,
        Ok(None) => path.to_owned(),
        Err(e) => format!("ERR {e:?}"),
    }
}

/// The spellings of `/private` and `/admin/x` the attack on the apps used.
#[test]
fn every_attack_spelling_becomes_the_path_it_means() {
    for (raw, want) in [
        ("/./private", "/private"),
        ("/public/../private", "/private"),
        ("/public/%2e%2e/private", "/private"),
        ("/%2e/private", "/private"),
        ("/.%2e/private", "/private"),
        ("/%70rivate", "/private"),
        ("/priv%61te", "/private"),
        ("/./admin/x", "/admin/x"),
        ("/%61dmin/x", "/admin/x"),
        ("/public\\..\\private", "/private"),
        ("/public/%2E%2E/private", "/private"),
        ("/a/b/../../../private", "/private"),
    ] {
        assert_eq!(n(raw, PathNormalization::Base), want, "{raw}");
    }
}

/// Istio's own expectations for each level (its path normalization tests).
#[test]
fn levels_as_istio_defines_them() {
    use PathNormalization::*;
    let cases: &[(&str, [&str; 3])] = &[
        // raw, then BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES
        ("/", ["/", "/", "/"]),
        ("/app/", ["/app/", "/app/", "/app/"]),
        ("/app/../admin", ["/admin", "/admin", "/admin"]),
        ("/app//", ["/app//", "/app/", "/app/"]),
        ("/app/%2f", ["/app/%2f", "/app/%2f", "/app/"]),
        ("/app%2f/", ["/app%2f/", "/app%2f/", "/app/"]),
        (
            "/xyz%30..//abc",
            ["/xyz0..//abc", "/xyz0../abc", "/xyz0../abc"],
        ),
        ("/app/%2E./admin", ["/admin", "/admin", "/admin"]),
        ("/app\\admin", ["/app/admin", "/app/admin", "/app/admin"]),
        (
            "/app/\\/\\/\\admin",
            ["/app//////admin", "/app/admin", "/app/admin"],
        ),
        (
            "/%2Fapp%5cadmin%5Cabc",
            [
                "/%2Fapp%5cadmin%5Cabc",
                "/%2Fapp%5cadmin%5Cabc",
                "/app/admin/abc",
            ],
        ),
        ("/app//../admin", ["/app/admin", "/app/admin", "/app/admin"]),
        ("/app//../../admin", ["/admin", "/admin", "/admin"]),
    ];
    for (raw, want) in cases {
        for (level, want) in [Base, MergeSlashes, DecodeAndMergeSlashes].iter().zip(want) {
            assert_eq!(n(raw, *level), *want, "{raw} at {level}");
        }
    }
}

#[test]
fn none_changes_nothing_and_refuses_nothing() {
    for raw in ["/./private", "/a%00b", "/%zz", "//x"] {
        assert_eq!(
            normalize_path(raw, PathNormalization::None),
            Ok(None),
            "{raw}"
        );
    }
}

#[test]
fn nul_and_broken_escapes_are_refused() {
    for level in [
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ] {
        assert_eq!(normalize_path("/a%00b", level), Err(InvalidPath::Nul));
        for raw in ["/a%zzb", "/a%4", "/a%", "/%g0"] {
            assert_eq!(
                normalize_path(raw, level),
                Err(InvalidPath::BadEscape),
                "{raw}"
            );
        }
    }
}

#[test]
fn normal_paths_are_not_copied() {
    for raw in [
        "/",
        "/a/b",
        "/.well-known/x",
        "/a.b/c..d/...",
        "/v1.2/x",
        "*",
    ] {
        assert_eq!(
            normalize_path(raw, PathNormalization::MergeSlashes),
            Ok(None),
            "{raw}"
        );
    }
    // Reserved characters stay escaped; only unreserved ones are decoded.
    assert_eq!(n("/a%20b%3Fc", PathNormalization::Base), "/a%20b%3Fc");
    assert_eq!(n("/%7Euser", PathNormalization::Base), "/~user");
}

#[test]
fn trailing_dot_segments_keep_a_slash() {
    assert_eq!(n("/a/b/..", PathNormalization::Base), "/a/");
    assert_eq!(n("/a/.", PathNormalization::Base), "/a/");
    assert_eq!(n("/..", PathNormalization::Base), "/");
    assert_eq!(n("/.", PathNormalization::Base), "/");
}

#[test]
fn istio_names_round_trip() {
    for level in [
        PathNormalization::None,
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ] {
        assert_eq!(PathNormalization::from_istio(level.as_istio()), Some(level));
    }
    assert_eq!(
        PathNormalization::from_istio("DEFAULT"),
        Some(PathNormalization::Base)
    );
    assert_eq!(PathNormalization::from_istio("base"), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Normalizing twice changes nothing more, and the result never holds a dot segment.
        #[test]
        fn idempotent_and_free_of_dot_segments(path in "/[a-z./\\\\%2eEfF5c]{0,24}") {
            for level in [PathNormalization::Base, PathNormalization::MergeSlashes, PathNormalization::DecodeAndMergeSlashes] {
                if let Ok(once) = normalize_path(&path, level) {
                    let once = once.unwrap_or_else(|| path.clone());
                    prop_assert_eq!(normalize_path(&once, level), Ok(None), "{} -> {}", path, once);
                    prop_assert!(once.starts_with('/'));
                    prop_assert!(!once.split('/').any(|s| s == "." || s == ".."), "{}", once);
                }
            }
        }
    }
}

#[test]
fn uris_keep_scheme_authority_and_query() {
    let mut uri: http::Uri = "http://service1/./private?x=%2e%2e&y=1".parse().unwrap();
    normalize_uri(&mut uri, PathNormalization::Base).unwrap();
    assert_eq!(uri, "http://service1/private?x=%2e%2e&y=1");
    let mut uri: http::Uri = "/public/%2e%2e/private".parse().unwrap();
    normalize_uri(&mut uri, PathNormalization::Base).unwrap();
    assert_eq!(uri, "/private");
    let mut uri: http::Uri = "/a%00".parse().unwrap();
    assert_eq!(
        normalize_uri(&mut uri, PathNormalization::Base),
        Err(InvalidPath::Nul)
    );
    assert_eq!(uri, "/a%00", "a refused URI is left as it was");
}

/// Every path of up to six bytes from the bytes that matter (and a letter): the quick check
/// says a path needs no work only when the whole normalization would leave it as it is.
#[test]
fn the_quick_check_never_skips_a_path_that_normalization_changes() {
    const ALPHABET: &[u8] = b"a./%\\2F";
    let levels = [
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ];
    let mut paths: Vec<Vec<u8>> = vec![b"/".to_vec()];
    let mut checked = 0;
    for _ in 0..5 {
        let mut longer = Vec::new();
        for path in &paths {
            for &b in ALPHABET {
                let mut p = path.clone();
                p.push(b);
                longer.push(p);
            }
        }
        for path in &longer {
            for level in levels {
                if needs_work(path, level) {
                    continue;
                }
                let whole = decode(path, level).map(|d| {
                    let mut out = remove_dot_segments(&d);
                    if level.merges_slashes() {
                        merge_slashes(&mut out);
                    }
                    out
                });
                assert_eq!(
                    whole.as_deref(),
                    Ok(&path[..]),
                    "{:?} at {level:?}",
                    String::from_utf8_lossy(path)
                );
                checked += 1;
            }
        }
        paths = longer;
    }
    assert!(checked > 1000, "{checked} paths were quick to pass");
}
