//! The lab under mutual TLS ([`LabOptions::mtls`](crate::lab::LabOptions)): a throwaway CA
//! (mesh-tls's testing CA), a workload certificate per app in Istio's file layout, and the
//! registry's endpoints labelled for auto-mTLS with their service accounts.

use std::path::{Path, PathBuf};

use mesh_tls::testing::{LeafSpec, TestCa};

/// The identities the lab's apps get: (the app, its SPIFFE ID).
pub const IDENTITIES: [(&str, &str); 4] = [
    (
        "gateway",
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    ),
    ("service1", "spiffe://cluster.local/ns/default/sa/service1"),
    ("service2", "spiffe://cluster.local/ns/default/sa/service2"),
    ("service3", "spiffe://cluster.local/ns/default/sa/service3"),
];

/// Writes `<dir>/certs/<app>/{cert-chain,key,root-cert}.pem` for every app, all from one fresh
/// CA; returns `<dir>/certs`.
pub fn write_certs(dir: &Path) -> std::io::Result<PathBuf> {
    let ca = TestCa::new("lab");
    let root = dir.join("certs");
    for (app, id) in IDENTITIES {
        let folder = root.join(app);
        std::fs::create_dir_all(&folder)?;
        ca.leaf(&LeafSpec::spiffe(id)).write_to(&folder)?;
    }
    Ok(root)
}

/// The registry written by [`crate::lab::service_entry`] with every endpoint labelled
/// `security.istio.io/tlsMode: istio` and given its app's name as service account.
pub fn with_auto_mtls(registry: &str) -> String {
    let mut out = String::with_capacity(registry.len() * 2);
    for line in registry.lines() {
        match line.strip_prefix("    labels: {app: ") {
            Some(rest) => {
                let app = rest.split([',', '}']).next().unwrap_or_default().trim();
                let labels = line.trim_end().trim_end_matches('}');
                out.push_str(&format!(
                    "{labels}, security.istio.io/tlsMode: istio}}\n    serviceAccount: {app}\n"
                ));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_get_the_label_and_their_service_account() {
        let registry =
            crate::lab::service_entry("service2", &[("127.0.0.1:1".parse().unwrap(), "v1")]);
        let yaml = super::with_auto_mtls(&registry);
        assert!(yaml.contains(
            "    labels: {app: service2, version: v1, security.istio.io/tlsMode: istio}\n    serviceAccount: service2\n"
        ), "{yaml}");
        let loaded = mesh_core::load::load_str("r.yaml", &yaml).unwrap().config;
        assert_eq!(loaded.service_entries.len(), 1);
    }
}
