use proptest::prelude::*;

use super::*;
use crate::load::{load_texts_cached, load_texts_with};
use crate::policy::MeshConfig;

fn vs(name: &str, timeout: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: [{name}]\n  http:\n  - route:\n    - destination: {{host: {name}, subset: v1}}\n    timeout: {timeout}\n---\n"
    )
}

fn dr(name: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: {name}\n  subsets: [{{name: v1, labels: {{version: v1}}}}]\n---\n"
    )
}

fn files(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, t)| ((*f).to_owned(), t.clone()))
        .collect()
}

/// Whether `text` reads the same through the cache's pieces as parsed whole (as before the
/// cache): the same manifests (values, lines) and the same parse diagnostics.
fn reads_the_same(text: &str) -> bool {
    let mut cache = LoadCache::new();
    let mut loading = cache.begin();
    let pieces = loading.file("f.yaml", text);
    let diags: Vec<Diagnostic> = pieces.iter().flat_map(|p| p.diags.clone()).collect();
    let manifests: Vec<&Manifest> = pieces
        .iter()
        .flat_map(|p| p.docs.iter().map(|d| &d.manifest))
        .collect();
    let mut whole_diags = Vec::new();
    let whole = documents::parse("f.yaml", text, &mut whole_diags);
    diags == whole_diags && manifests == whole.iter().collect::<Vec<_>>()
}

#[test]
fn pieces_are_cut_at_document_markers() {
    let text = "# head\na: 1\n---\nb: 2\n--- {c: 3}\n---x: 4\n  ---\n---\n";
    let cuts = split(text).unwrap();
    let lines: Vec<usize> = cuts.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [1, 3, 5, 8]);
    assert_eq!(cuts[2].1, "--- {c: 3}\n---x: 4\n  ---\n");
    assert_eq!(cuts.iter().map(|(_, t)| *t).collect::<String>(), text);
    assert!(split("%YAML 1.2\n---\na: 1\n").is_none());
    assert!(split("a: 1\r\n---\r\nb: 2\r\n").is_none());
}

#[test]
fn pieces_parse_as_the_whole_file() {
    for text in [
        vs("a", "1s") + &dr("a") + &vs("b", "2s"),
        "---\n---\n# only comments\n".to_owned(),
        "a: 1\n...\n---\nkind: X\n".to_owned(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  m: |\n    one\n    two\n---\nkind: Y\n".to_owned(),
        // a syntax error in the second document: the whole file's single error
        vs("a", "1s") + "kind: [unclosed\n---\n" + &dr("b"),
        // a tag: yaml_serde reads the whole file
        vs("a", "1s") + "kind: !x VirtualService\n---\n",
        // anchors and a missing kind
        vs("a", "1s") + "apiVersion: v1\nmetadata: &m {name: x}\n---\n" + "- not a mapping\n",
        "\u{feff}---\nkind: Y\n".to_owned(),
        "a: 1\r\n---\r\nkind: Y\r\n".to_owned(),
    ] {
        assert!(reads_the_same(&text), "{text:?}");
    }
}

#[test]
fn a_partial_change_reports_every_error_of_the_unchanged_files() {
    let bad = vs("a", "banana") + &dr("a");
    let mut cache = LoadCache::new();
    let first = load_texts_cached(
        &files(&[("a.yaml", bad.clone()), ("b.yaml", dr("b"))]),
        &mut cache,
    )
    .unwrap_err();
    assert_eq!(first.errors.len(), 1, "{first}");
    assert_eq!(first.errors[0].file, "a.yaml");
    // b.yaml changes, a.yaml does not: its error is reported again, from the cache
    let second = load_texts_cached(
        &files(&[("a.yaml", bad.clone()), ("b.yaml", dr("b") + &dr("c"))]),
        &mut cache,
    )
    .unwrap_err();
    assert_eq!(second.errors, first.errors);
    assert_eq!(cache.stats().compiled, 1, "only b.yaml's new rule");
    assert_eq!(cache.stats().reused, 3);
    // and the same errors as a load without a cache
    let fresh = load_texts_with(
        &files(&[("a.yaml", bad), ("b.yaml", dr("b") + &dr("c"))]),
        Vec::new(),
        &mut LoadCache::new(),
    )
    .unwrap_err();
    assert_eq!(second.errors, fresh.errors);
}

#[test]
fn a_changed_document_is_recompiled_an_unchanged_one_is_not() {
    let mut cache = LoadCache::new();
    let text = |t: &str| vs("a", "1s") + &dr("a") + &vs("b", t) + &dr("b");
    let one = load_texts_cached(&files(&[("r.yaml", text("2s"))]), &mut cache).unwrap();
    assert_eq!(cache.stats().compiled, 4);
    let two = load_texts_cached(&files(&[("r.yaml", text("3s"))]), &mut cache).unwrap();
    assert_eq!(
        cache.stats(),
        CacheStats {
            parsed: 1,
            compiled: 1,
            reused: 3
        }
    );
    let timeout = |l: &crate::load::Loaded, i: usize| l.config.virtual_services[i].http[0].timeout;
    assert_eq!(timeout(&two, 0), timeout(&one, 0));
    assert_eq!(timeout(&two, 1), Some(std::time::Duration::from_secs(3)));
    assert_eq!(two.config.destinations, one.config.destinations);
    // the same text again: nothing parsed or compiled
    load_texts_cached(&files(&[("r.yaml", text("3s"))]), &mut cache).unwrap();
    assert_eq!((cache.stats().parsed, cache.stats().compiled), (0, 0));
}

#[test]
fn a_document_moved_to_another_line_is_read_again() {
    let mut cache = LoadCache::new();
    load_texts_cached(&files(&[("r.yaml", vs("a", "1s") + &dr("a"))]), &mut cache).unwrap();
    let moved = load_texts_cached(
        &files(&[(
            "r.yaml",
            "# a new first line\n".to_owned() + &vs("a", "1s") + &dr("a"),
        )]),
        &mut cache,
    )
    .unwrap();
    assert_eq!(cache.stats().reused, 0);
    assert_eq!(moved.config.virtual_services[0].origin.line, 2);
}

#[test]
fn a_deleted_files_objects_are_gone() {
    let mut cache = LoadCache::new();
    let both = files(&[("a.yaml", vs("a", "1s") + &dr("a")), ("b.yaml", dr("b"))]);
    let loaded = load_texts_cached(&both, &mut cache).unwrap();
    assert_eq!(loaded.config.destinations.len(), 2);
    let loaded = load_texts_cached(&both[..1], &mut cache).unwrap();
    assert_eq!(loaded.config.destinations.len(), 1);
    assert!(!cache.pieces.keys().any(|k| k.file == "b.yaml"), "not kept");
    // a reference into the deleted file is an error again
    let refers = files(&[("a.yaml", vs("b", "1s"))]);
    assert!(load_texts_cached(&refers, &mut cache).is_err());
}

#[test]
fn duplicates_across_loads_are_still_reported() {
    let mut cache = LoadCache::new();
    load_texts_cached(&files(&[("a.yaml", dr("a"))]), &mut cache).unwrap();
    let err = load_texts_cached(
        &files(&[("a.yaml", dr("a")), ("b.yaml", dr("a"))]),
        &mut cache,
    )
    .unwrap_err();
    assert!(err.errors[0].message.contains("duplicate"), "{err}");
}

const FRAGMENTS: [&str; 10] = [
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d\n",
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: v\nspec:\n  hosts: [v]\n  http:\n  - route:\n    - destination: {host: v}\n",
    "# a comment\n",
    "kind: [broken\n",
    "a: &x 1\nb: *x\n",
    "...\n",
    "\n",
    "--- |\n  text\n",
    "key: 'quoted\n  on two lines'\n",
    "- a\n- b\n",
];

proptest! {
    #[test]
    fn any_file_reads_the_same_in_pieces(
        picks in proptest::collection::vec((0..FRAGMENTS.len(), any::<bool>()), 0..8),
    ) {
        let mut text = String::new();
        for (i, marker) in picks {
            if marker {
                text.push_str("---\n");
            }
            text.push_str(FRAGMENTS[i]);
        }
        prop_assert!(reads_the_same(&text), "{:?}", text);
    }
}

#[test]
fn an_unchanged_object_is_shared_a_changed_one_recompiled_a_deleted_one_gone() {
    let mut cache = LoadCache::new();
    // the rules first: a document that moves to another line is read again
    let text =
        |t: &str| dr("a") + &dr("b") + &dr("c") + &vs("a", "1s") + &vs("b", t) + &vs("c", "1s");
    let first = load_texts_cached(&files(&[("f.yaml", text("1s"))]), &mut cache).unwrap();
    let second = load_texts_cached(
        &files(&[("f.yaml", text("2s").replace(&vs("c", "1s"), ""))]),
        &mut cache,
    )
    .unwrap();
    let by_name = |c: &MeshConfig, n: &str| {
        c.virtual_services
            .iter()
            .find(|v| v.origin.name == n)
            .cloned()
    };
    let (a1, a2) = (by_name(&first.config, "a"), by_name(&second.config, "a"));
    assert!(Arc::ptr_eq(a1.as_ref().unwrap(), a2.as_ref().unwrap()));
    let (b1, b2) = (by_name(&first.config, "b"), by_name(&second.config, "b"));
    assert!(!Arc::ptr_eq(b1.as_ref().unwrap(), b2.as_ref().unwrap()));
    assert_ne!(b1.unwrap().http[0].timeout, b2.unwrap().http[0].timeout);
    assert!(by_name(&second.config, "c").is_none());
    // DestinationRules too, and a namespace's view shares them with the config
    let rule = |c: &MeshConfig| c.destinations.get("a").cloned().unwrap();
    assert!(Arc::ptr_eq(&rule(&first.config), &rule(&second.config)));
    let view = second.config.visible_from("default");
    assert!(Arc::ptr_eq(&rule(&view), &rule(&second.config)));
    assert!(Arc::ptr_eq(
        &by_name(&view, "a").unwrap(),
        &by_name(&second.config, "a").unwrap()
    ));
}

/// Many files, every tenth changed by `round`; with `broken`, some documents have errors of
/// every sort: a bad field value, a syntax error, a tag (a file read whole), a duplicate across
/// files, a reference to a missing subset (a check across resources), a kind this mesh skips.
fn many_files(round: usize, broken: bool) -> Vec<(String, String)> {
    (0..40)
        .map(|f| {
            let mut text = String::new();
            for d in 0..5 {
                let name = format!("s{f}-{d}");
                let timeout = if f % 10 == round % 10 { format!("{}s", round + 1) } else { "1s".to_owned() };
                text += &vs(&name, &timeout);
                text += &dr(&name);
            }
            if broken {
                match f % 8 {
                    1 => text += &vs("bad-timeout", "banana").replace("bad-timeout", &format!("bad{f}")),
                    2 => text += "kind: [unclosed\n---\n",
                    3 => text += "apiVersion: networking.istio.io/v1\nkind: !x VirtualService\nmetadata: {name: tagged}\n---\n",
                    4 => text += &dr("s0-0"),
                    5 => text += &vs(&format!("orphan{f}"), "1s").replace("subset: v1", "subset: v9"),
                    6 => text += "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n",
                    _ => {}
                }
            }
            (format!("{f:02}.yaml"), text)
        })
        .collect()
}

/// What a load gave, in a form two loads can be compared by: the config's debug form, or the
/// errors in their order; and the warnings in their order.
fn outcome(
    r: Result<crate::load::Loaded, crate::diag::ConfigErrors>,
) -> (Result<String, Vec<Diagnostic>>, Vec<Diagnostic>) {
    match r {
        Ok(l) => (Ok(format!("{:?}", l.config)), l.warnings),
        Err(e) => (Err(e.errors), Vec::new()),
    }
}

#[test]
fn a_parallel_load_gives_the_serial_loads_config_and_diagnostics_in_order() {
    for broken in [false, true] {
        let mut serial = LoadCache::new().threads(1);
        let mut parallel = LoadCache::new().threads(4);
        for round in 0..4 {
            let files = many_files(round, broken);
            let s = outcome(load_texts_cached(&files, &mut serial));
            let p = outcome(load_texts_cached(&files, &mut parallel));
            let fresh = outcome(load_texts_with(
                &files,
                Vec::new(),
                &mut LoadCache::new().threads(3),
            ));
            assert_eq!(s, p, "round {round}, broken {broken}");
            assert_eq!(
                s, fresh,
                "round {round}, broken {broken}: the same as without a cache"
            );
            assert_eq!(serial.stats(), parallel.stats(), "round {round}");
            if broken {
                let errors = s.0.as_ref().unwrap_err();
                assert!(errors.len() >= 15, "{errors:?}");
                let files: Vec<&str> = errors.iter().map(|d| d.file.as_str()).collect();
                assert!(files.is_sorted(), "errors in file order: {files:?}");
            } else {
                assert!(s.0.is_ok(), "{:?}", s.0);
            }
            if round > 0 && !broken {
                // a tenth of the files changed (and, after round 1, the tenth changed before
                // changed back): their VirtualServices compiled, the others reused
                let changed = if round == 1 { 20 } else { 40 };
                assert_eq!(
                    parallel.stats().compiled,
                    changed,
                    "round {round}: {:?}",
                    parallel.stats()
                );
            }
        }
    }
}

#[test]
fn a_refused_parallel_reload_keeps_the_last_good_config() {
    let store = crate::watch::ConfigStore::new(MeshConfig::default());
    let dir = std::env::temp_dir().join(format!("mesh-parallel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in many_files(0, false) {
        std::fs::write(dir.join(f), text).unwrap();
    }
    store.reload_from(&[&dir]).unwrap();
    let good = store.snapshot();
    assert_eq!(good.virtual_services.len(), 200);
    for (f, text) in many_files(1, true) {
        std::fs::write(dir.join(f), text).unwrap();
    }
    let err = store.reload_from(&[&dir]).unwrap_err();
    assert!(err.errors.len() >= 15, "{err}");
    assert!(
        Arc::ptr_eq(&good, &store.snapshot()),
        "the refused config is not applied"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
