//! `exportTo`: which namespaces see a VirtualService, DestinationRule or ServiceEntry, as Istio
//! scopes them.

use std::collections::BTreeMap;

use super::MeshConfig;

/// Where a resource is visible: empty (Istio's default) or `*` is every namespace, `.` its own,
/// `~` none, any other entry that namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportTo(pub Vec<String>);

impl ExportTo {
    /// Whether a resource in namespace `own` exported so is visible from namespace `from`.
    ///
    /// ```
    /// use mesh_core::policy::ExportTo;
    /// let dot = ExportTo(vec![".".into()]);
    /// assert!(dot.allows("team-a", "team-a") && !dot.allows("team-a", "default"));
    /// assert!(ExportTo::default().allows("team-a", "default"));
    /// assert!(ExportTo(vec!["default".into()]).allows("team-a", "default"));
    /// assert!(!ExportTo(vec!["~".into()]).allows("team-a", "team-a"));
    /// ```
    pub fn allows(&self, own: &str, from: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|e| match e.as_str() {
                "*" => true,
                "." => own == from,
                "~" => false,
                ns => ns == from,
            })
    }
}

/// `(kind, namespace, name)` of an exported resource.
pub type ExportKey = (String, String, String);

/// The exportTo of each resource that has one (resources not listed are visible everywhere).
pub type Exports = BTreeMap<ExportKey, ExportTo>;

impl MeshConfig {
    /// The config as a workload in `namespace` sees it: the VirtualServices, DestinationRules
    /// and ServiceEntries whose `exportTo` does not include `namespace` left out, one
    /// DestinationRule per host (the one Istio's lookup order picks for `namespace`, see
    /// [`MeshConfig::destination_in`]), and [`MeshConfig::namespace`] set.
    ///
    /// ```
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: private, namespace: team-a}\nspec:\n  hosts: [service2]\n  exportTo: ['.']\n  http:\n  - route:\n    - destination: {host: service2}\n";
    /// let config = mesh_core::load::load_str("x.yaml", yaml).unwrap().config;
    /// assert_eq!(config.visible_from("team-a").virtual_services.len(), 1);
    /// assert!(config.visible_from("default").virtual_services.is_empty());
    /// ```
    pub fn visible_from(&self, namespace: &str) -> MeshConfig {
        let visible = |kind: &str, o: &super::Origin| {
            self.exports.is_empty()
                || self
                    .exports
                    .get(&(kind.to_owned(), o.namespace.clone(), o.name.clone()))
                    .is_none_or(|e| e.allows(&o.namespace, namespace))
        };
        // built field by field: the VirtualServices and DestinationRules are shared with this
        // config (pointers copied), and its rule map is not copied only to be replaced
        MeshConfig {
            gateways: self.gateways.clone(),
            virtual_services: self
                .virtual_services
                .iter()
                .filter(|v| visible("VirtualService", &v.origin))
                .cloned()
                .collect(),
            destinations: self.scoped_destinations(namespace),
            service_entries: self
                .service_entries
                .iter()
                .filter(|s| visible("ServiceEntry", &s.origin))
                .cloned()
                .collect(),
            authentication: self.authentication.clone(),
            authorization: self.authorization.clone(),
            rate_limits: self.rate_limits.clone(),
            peer_authentication: self.peer_authentication.clone(),
            mesh: self.mesh.clone(),
            exports: self.exports.clone(),
            namespace: Some(namespace.to_owned()),
        }
    }
}
