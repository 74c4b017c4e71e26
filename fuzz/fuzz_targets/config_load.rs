//! Any bytes given to the config loader: it must answer with a config or with diagnostics, never
//! panic, and every diagnostic must name a file and a line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mesh_core::load::load_str("fuzz.yaml", text) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                assert_eq!(w.file, "fuzz.yaml");
            }
        }
        Err(errors) => {
            assert!(
                !errors.errors.is_empty(),
                "a refused config names at least one error"
            );
            for e in &errors.errors {
                assert_eq!(e.file, "fuzz.yaml");
                assert!(e.line >= 1, "line numbers are 1-based: {e}");
            }
        }
    }
});
