//! Every file in `fixtures/invalid/` is refused with the message its `# expect:` header names,
//! at the line its `#!` marker is on.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use std::path::Path;

use mesh_core::load::load_paths;

struct Case {
    file: String,
    expect: String,
    line: usize,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` header", path.display()))
            .to_owned();
        let line = text
            .lines()
            .position(|l| l.trim_end().ends_with("#!"))
            .unwrap_or_else(|| panic!("{} has no `#!` marker", path.display()))
            + 1;
        out.push(Case {
            file: path.display().to_string(),
            expect,
            line,
        });
    }
    out
}

#[test]
fn corpus_is_large_enough() {
    assert!(cases().len() >= 25, "only {} invalid cases", cases().len());
}

#[test]
fn each_invalid_file_is_refused_with_its_message_at_its_line() {
    let mut failures = Vec::new();
    for case in cases() {
        match load_paths(&[&case.file]) {
            Ok(_) => failures.push(format!("{}: loaded, expected `{}`", case.file, case.expect)),
            Err(errors) => {
                let hit = errors.errors.iter().find(|d| {
                    d.message.contains(&case.expect) || d.to_string().contains(&case.expect)
                });
                match hit {
                    None => failures.push(format!(
                        "{}: no error contains `{}`; got:\n{errors}",
                        case.file, case.expect
                    )),
                    Some(d) if d.line != case.line => failures.push(format!(
                        "{}: `{}` reported at line {}, expected line {}",
                        case.file, case.expect, d.line, case.line
                    )),
                    Some(d) => assert_eq!(d.file, case.file),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn all_problems_of_a_folder_are_reported_together() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let errors = load_paths(&[dir]).expect_err("the invalid folder must be refused");
    // every file contributes at least one error (duplicates across files may add more)
    let files: std::collections::BTreeSet<&str> =
        errors.errors.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(files.len(), cases().len(), "{errors}");
    // and they come in file order, then line order
    let order: Vec<(&str, usize)> = errors
        .errors
        .iter()
        .map(|d| (d.file.as_str(), d.line))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[test]
fn display_format_is_file_line_resource_message() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid/unknown-field-attempts.yaml");
    let errors = load_paths(&[&file]).expect_err("refused");
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:14: VirtualService/ratings: spec.http[0].retries: unknown field `atempts`, did you mean `attempts`?",
            file.display()
        )
    );
}

#[test]
fn an_unreadable_document_does_not_hide_the_next_ones_errors() {
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n      weight: 100000000000000000000000000\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b}\nspec:\n  host: b\n  trafficPolicy:\n    loadBalancer:\n      simple: FASTEST\n";
    let errors = mesh_core::load::load_str("two.yaml", text).expect_err("refused");
    let lines: Vec<usize> = errors.errors.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![9, 18], "{errors}");
    assert!(
        errors.errors[1]
            .message
            .contains("unknown load balancer `FASTEST`"),
        "{errors}"
    );
}
