//! Connection information for the inbound layers (the `MeshServer` builder lands here next).

use std::net::SocketAddr;

/// The client's address, put in request extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

/// The local (destination) address of the connection, put in request extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalAddr(pub SocketAddr);
