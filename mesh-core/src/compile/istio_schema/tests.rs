use super::*;

#[test]
fn paths_are_normalized() {
    assert_eq!(
        normalize("spec.http[0].match[12].uri"),
        "spec.http.match.uri"
    );
    assert_eq!(normalize("spec"), "spec");
}

#[test]
fn fields_of_every_kind_are_known() {
    assert!(has_field(
        "VirtualService",
        "spec.http[0].corsPolicy.unmatchedPreflights"
    ));
    assert!(has_field(
        "VirtualService",
        "spec.http[3].match[0].headers.end-user.exact"
    ));
    assert!(has_field(
        "AuthorizationPolicy",
        "spec.rules[0].from[0].source.serviceAccounts"
    ));
    assert!(has_field(
        "DestinationRule",
        "spec.trafficPolicy.loadBalancer.warmup"
    ));
    assert!(has_field("ServiceEntry", "spec.addresses"));
    assert!(has_field("Gateway", "spec.servers[0].tls.credentialNames"));
    assert!(has_field(
        "RequestAuthentication",
        "spec.jwtRules[0].spaceDelimitedClaims"
    ));
    assert!(has_field(
        "PeerAuthentication",
        "spec.portLevelMtls.8080.mode"
    ));
    assert!(!has_field("VirtualService", "spec.http[0].hots"));
    assert!(!has_field("Gateway", "spec.http"));
}

#[test]
fn enum_values_are_known() {
    assert!(has_value("ServiceEntry", "spec.resolution", "DYNAMIC_DNS"));
    assert!(!has_value("ServiceEntry", "spec.resolution", "DYNAMIC"));
    assert!(has_value(
        "Gateway",
        "spec.servers[1].tls.mode",
        "AUTO_PASSTHROUGH"
    ));
}
