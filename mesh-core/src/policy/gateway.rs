//! Gateways.

use super::{Labels, Origin};

/// A checked Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// `selector`.
    pub selector: Labels,
    /// `servers[]`.
    pub servers: Vec<GatewayServer>,
}

/// One `servers[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayServer {
    /// `port.number`: the port this server represents.
    pub port: u16,
    /// `port.name`.
    pub port_name: Option<String>,
    /// `port.protocol` (HTTP, HTTP2, ...), upper case.
    pub protocol: String,
    /// `hosts`: `*`, `*.example.com`, `ns/host`.
    pub hosts: Vec<String>,
}
