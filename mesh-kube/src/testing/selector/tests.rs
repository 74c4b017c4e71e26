#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;

#[test]
fn label_selectors_as_kubectl_writes_them() {
    let pod = json!({"metadata": {"labels": {"app": "service2", "version": "v1"}}});
    let yes = [
        "",
        "app=service2",
        "app==service2,version!=v2",
        "version in (v1, v2)",
        "version notin (v3)",
        "app",
        "!canary",
    ];
    for s in yes {
        assert!(LabelSelector::parse(s).unwrap().matches(&pod), "{s}");
    }
    let no = [
        "app=x",
        "version in (v2,v3)",
        "version notin (v1)",
        "canary",
        "!app",
    ];
    for s in no {
        assert!(!LabelSelector::parse(s).unwrap().matches(&pod), "{s}");
    }
    assert!(LabelSelector::parse("version in v1").is_err());
}

#[test]
fn field_selectors_on_name_and_namespace() {
    let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
    assert!(
        FieldSelector::parse("metadata.name=a")
            .unwrap()
            .matches(&obj)
    );
    assert!(
        !FieldSelector::parse("metadata.name!=a")
            .unwrap()
            .matches(&obj)
    );
    assert!(
        !FieldSelector::parse("metadata.namespace=x")
            .unwrap()
            .matches(&obj)
    );
    assert!(FieldSelector::parse("spec.nodeName=x").is_err());
}
