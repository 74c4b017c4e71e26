use std::path::{Path, PathBuf};

use super::*;

/// What a parse gives, comparable: each manifest's identity, annotations, value and first line,
/// and every diagnostic.
fn outcome(manifests: &[Manifest], diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for m in manifests {
        out.push_str(&format!(
            "{} {} {} {} {:?} {} {:?}\n",
            m.api_version, m.kind, m.namespace, m.name, m.annotations, m.lines.start, m.spec
        ));
    }
    out.push_str(&format!("{diags:?}"));
    out
}

/// The one-pass parse against `yaml_serde`'s, on the same line index; and whether the one-pass
/// values were used (no document left to `yaml_serde`).
fn both(text: &str) -> (String, String, bool) {
    let mut fast_diags = Vec::new();
    let fast = parse("f.yaml", text, &mut fast_diags);
    let Ok(index) = lines::index_values(text) else {
        // a syntax error: both paths stop at the line index
        return (
            outcome(&fast, &fast_diags),
            outcome(&fast, &fast_diags),
            false,
        );
    };
    let one_pass = index.iter().all(|(_, v)| v.is_some());
    let index: Vec<DocLines> = index.into_iter().map(|(d, _)| d).collect();
    let mut slow_diags = Vec::new();
    let slow = parse_serde("f.yaml", text, &index, &mut slow_diags);
    (
        outcome(&fast, &fast_diags),
        outcome(&slow, &slow_diags),
        one_pass,
    )
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn one_pass_values_are_yaml_serdes_on_every_fixture_and_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["mesh-core/tests/fixtures", "examples", "deploy", "docs"] {
        if root.join(dir).is_dir() {
            yaml_files(&root.join(dir), &mut files);
        }
    }
    assert!(files.len() > 50, "{} files", files.len());
    let mut one_pass = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let (fast, slow, used) = both(&text);
        assert_eq!(fast, slow, "{}", f.display());
        one_pass += usize::from(used);
    }
    // most real files take the one pass
    assert!(
        one_pass * 10 > files.len() * 8,
        "{one_pass} of {}",
        files.len()
    );
}

#[test]
fn scalars_resolve_as_yaml_serde_resolves_them() {
    let scalars = [
        "~",
        "null",
        "Null",
        "NULL",
        "",
        "true",
        "True",
        "TRUE",
        "false",
        "FALSE",
        "yes",
        "no",
        "on",
        // strings at the first byte (the fast path), and words Rust's float parser reads
        "inf",
        "Infinity",
        "nan",
        "NaN",
        "e5",
        "E5",
        "_1",
        "/api/v1",
        "é1",
        "0",
        "1",
        "+5",
        "-5",
        "++5",
        "+-5",
        "0123",
        "-0123",
        "+0123",
        "00",
        "0x1F",
        "0x",
        "0x-1",
        "+0x1F",
        "-0x10",
        "0o17",
        "-0o17",
        "0b101",
        "-0b101",
        "0xZZ",
        "1_000",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "1e3",
        "1.5",
        "-1.5",
        "+1.5",
        "++1.5",
        ".5",
        "5.",
        "1e400",
        ".inf",
        ".Inf",
        "+.inf",
        "-.inf",
        "-.INF",
        ".nan",
        ".NaN",
        "-.nan",
        "inf",
        "nan",
        "NaN",
        "infinity",
        "10s",
        "1.5s",
        "500ms",
        "v1",
        "'quoted'",
        "\"dq \\t \\u00e9\"",
        "a b",
        "http://x:1/y",
        "2001:db8::1",
        "1:30",
        "0.0.0.0",
        "-",
        "'0x1F'",
        "\"true\"",
    ];
    for s in scalars {
        let text = format!(
            "apiVersion: v1\nkind: X\nmetadata: {{name: n}}\nspec:\n  v: {s}\n  l: [{s}]\n  {s}: k\n"
        );
        let (fast, slow, _) = both(&text);
        assert_eq!(fast, slow, "scalar {s:?}");
    }
}

#[test]
fn structures_resolve_as_yaml_serde_resolves_them() {
    let docs = [
        // block scalars, folded plain, flow styles, unicode, comments
        "spec:\n  a: |\n    line 1\n     line 2\n\n  b: >-\n    folded\n    text\n\n  c: |+\n    keep\n\n  d: plain\n    continued\n  e: {x: 1, y: [a, {z: b}]}\n  f: \"é ü \\n\"\n  g: 'it''s'\n",
        // empty values, nested sequences, a key without a value, explicit document markers
        "---\nspec:\n  a:\n  b: []\n  c: {}\n  d:\n  - - x\n    - y\n  - z\n...\n---\n# only a comment\n---\nkind: Y\n",
        // left to yaml_serde: anchors, tags, duplicate keys, complex keys, merge keys
        "spec:\n  a: &x 1\n  b: *x\n",
        "spec:\n  a: !!str 1\n  b: !custom x\n",
        "spec:\n  a: 1\n  a: 2\n",
        "spec:\n  ? [a, b]\n  : c\n",
        "base: &b {x: 1}\nspec:\n  <<: *b\n",
        "spec:\n  <<: {x: 1}\n",
        // errors: both parsers' diagnostics for the same text
        "spec: [unclosed\n",
        "- a\n- b\n",
        "just a string\n",
        "kind: VirtualService\napiVersion: networking.istio.io/v1\n",
    ];
    for d in docs {
        let (fast, slow, _) = both(d);
        assert_eq!(fast, slow, "{d:?}");
    }
    // the first of these takes the one pass; the anchor does not
    assert!(both(docs[0]).2 && !both(docs[2]).2);
}
