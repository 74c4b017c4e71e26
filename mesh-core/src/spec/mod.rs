//! Serde types shaped exactly like Istio's YAML, one file per kind.

pub mod security;
