//! # mesh-examples
//!
//! The article's set-up, built on the proxyless mesh: `service1` calls `service2` (versions `v1`
//! and `v2`), which calls `service3`; an ingress `gateway` routes `/service1` and `/service2`; a
//! `demo` starts all of them in one process with a demo JWT issuer and runs each of the article's
//! scenarios (routing, JWT, mirroring, the 90/10 split, a canary, A/B by header, retries) and a
//! gRPC one (tonic through the gateway and the chain).
//!
//! The binaries are thin: each app is built here so the demo and the tests start exactly what
//! the binaries start, and each has an `app(..) -> Router` usable without a socket.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod gateway;
pub mod gateway_ports;
pub mod gateway_tls;
pub mod grpc;
pub mod hop;
pub mod issuer;
pub mod kube;
pub mod lab;
pub mod lab_tls;
pub mod mesh;
pub mod plain_tls;
pub mod run;
pub mod scenarios;
pub mod scenarios_mtls;
pub mod tls;
pub mod upstream;

/// The README's code example, compiled as a doc test so that it stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
