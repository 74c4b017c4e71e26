//! ServiceEntries, mixed documents, and what Istio accepts that we load with a warning.

use super::*;

#[test]
fn external_service_by_dns() {
    let l = load("external-dns.yaml");
    let se = &l.config.service_entries[0];
    assert_eq!(
        se.hosts,
        vec![
            "api.dropboxapi.com".to_owned(),
            "www.googleapis.com".to_owned()
        ]
    );
    assert_eq!(se.resolution, Resolution::Dns);
    assert!(!se.mesh_internal);
    assert_eq!(se.ports[0].protocol, "TLS");
}

#[test]
fn static_endpoints_with_labels() {
    let l = load("static-endpoints.yaml");
    let se = &l.config.service_entries[0];
    assert!(se.mesh_internal);
    assert_eq!(se.resolution, Resolution::Static);
    assert_eq!(se.ports[0].target_port, Some(5002));
    assert_eq!(se.endpoints.len(), 2);
    assert_eq!(se.endpoints[0].weight, 1);
    assert_eq!(se.endpoints[1].weight, 3);
    assert_eq!(se.endpoints[1].ports.get("http"), Some(&5003));
    assert_eq!(
        se.endpoints[1].labels.get("version").map(String::as_str),
        Some("v2")
    );
    assert_eq!(se.endpoints[1].locality.as_deref(), Some("eu-west/zone-a"));
}

#[test]
fn mixed_documents_skip_and_keep_namespace() {
    let l = load("mixed-documents.yaml");
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].resource, "Service/details");
    assert_eq!(l.warnings[0].line, 5);
    let vs = &l.config.virtual_services[0];
    assert_eq!(
        (vs.origin.namespace.as_str(), vs.origin.line),
        ("bookinfo", 13)
    );
}

#[test]
fn what_istio_accepts_loads_with_warnings_that_say_what_is_not_used() {
    let l = load("accepted-with-warnings.yaml");
    assert_eq!(l.config.service_entries.len(), 1);
    assert_eq!(l.config.authorization.len(), 1);
    let warnings: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let has = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    assert!(
        has("spec.addresses: accepted and not used: addresses matter only for TCP traffic"),
        "{warnings:?}"
    );
    assert!(
        has(
            "spec.rules[0].to[0].operation.paths[0]: \"admin\" does not start with `/` or `*`, so it never matches"
        ),
        "{warnings:?}"
    );
    assert!(
        has("`WorkloadEntry` (`networking.istio.io`) is not supported by this mesh; skipped"),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("did you mean")),
        "{warnings:?}"
    );
}
