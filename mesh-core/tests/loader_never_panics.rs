//! Bad input never panics the loader: random YAML-ish text, mangled real manifests, deep
//! nesting, tabs, huge numbers, non-mapping documents.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use mesh_core::load::load_str;
use proptest::prelude::*;

const SEED_VS: &str = include_str!("fixtures/valid/httpbin-mirror.yaml");
const SEED_DR: &str = include_str!("fixtures/valid/port-level-and-subsets.yaml");

fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "apiVersion: networking.istio.io/v1\n",
        "kind: VirtualService\n",
        "kind: DestinationRule\n",
        "metadata:\n",
        "  name: x\n",
        "spec:\n",
        "  hosts: [a]\n",
        "  http:\n",
        "  - route:\n",
        "    - destination:\n",
        "        host: a\n",
        "      weight: 50\n",
        "---\n",
        "- ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a ",
        "!!str ",
        "? ",
        "|\n",
        ">\n",
        "\t",
        "  ",
        "\n",
        "\"",
        "'",
        "#",
        "99999999999999999999999",
        "-1",
        "1.5e300",
        "null",
        "~",
        "true",
        "subset: v9\n",
        "timeout: 1d\n",
        "regex: (\n",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_yamlish_never_panics(text in yamlish()) {
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn mangled_manifests_never_panic(cut in 0usize..2000, insert in "[ -~\\t\\n]{0,12}", which in any::<bool>()) {
        let base = if which { SEED_VS } else { SEED_DR };
        let mut at = cut.min(base.len());
        while !base.is_char_boundary(at) {
            at -= 1;
        }
        let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
        let result = load_str("mangled.yaml", &text);
        // whatever happens, an error always carries a line within the file
        if let Err(e) = result {
            let lines = text.lines().count().max(1) + 1;
            for d in &e.errors {
                prop_assert!(d.line >= 1 && d.line <= lines, "{d} (file has {lines} lines)");
            }
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: x}}\nspec: {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(load_str("deep.yaml", &deep).is_err());
    let deep_map = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: x}}\nspec: {}1{}\n",
        "{a: ".repeat(3000),
        "}".repeat(3000)
    );
    let err = load_str("deep.yaml", &deep_map).expect_err("too deep");
    assert!(err.errors.iter().all(|d| d.line >= 1), "{err}");
}

#[test]
fn scalars_and_lists_are_not_manifests() {
    for text in ["42\n", "just text\n", "- a\n- b\n", "!!binary aGk=\n"] {
        let err = load_str("odd.yaml", text).expect_err(text);
        assert!(
            err.to_string().contains("a manifest must be a mapping"),
            "{text}: {err}"
        );
    }
}

#[test]
fn empty_input_is_an_empty_config() {
    for text in ["", "\n", "---\n", "---\n---\n", "# only a comment\n"] {
        let loaded = load_str("empty.yaml", text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(loaded.config.virtual_services.is_empty());
        assert!(loaded.warnings.is_empty());
    }
}
