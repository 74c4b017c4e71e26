//! Serde types shaped exactly like Istio's YAML, one file per kind.
//!
//! Every struct uses `#[serde(deny_unknown_fields, rename_all = "camelCase")]`, so a misspelt
//! field is an error (with a "did you mean" hint from the loader), never silently ignored. Fields
//! whose whole subtree this mesh does not support yet (`tls`, `tunnel`, `delegate`, ...) are kept
//! as raw YAML values: accepted by serde, then reported by the compile step as unsupported.

pub mod common;
pub mod destination_rule;
pub mod gateway;
pub mod mesh_config;
pub mod security;
pub mod service_entry;
pub mod virtual_service;

pub use common::*;
pub use destination_rule::DestinationRuleSpec;
pub use gateway::GatewaySpec;
pub use service_entry::ServiceEntrySpec;
pub use virtual_service::VirtualServiceSpec;

/// A YAML subtree kept as written (for fields reported as unsupported).
pub type RawYaml = yaml_serde::Value;
