//! Route matching: VirtualService `http[]` routes compiled into a per-host table.
//!
//! A [`RouteTable`] is built once per config snapshot and gateway context ([`MESH`] for calls
//! between services, a Gateway's name at a gateway). A lookup takes the request's host (from the
//! URI authority, else the `Host` header; port stripped), finds the VirtualServices bound to it
//! (exact host, then the longest `*.suffix`, then `*`), and tries their `http[]` routes in order:
//! the first whose `match[]` has an entry that holds wins (no `match` matches everything). Each
//! entry checks uri, scheme, method, authority (exact, prefix or regex), headers (with `{}` for
//! presence), withoutHeaders, queryParams, port, gateways and sourceLabels (from the
//! [`SourceWorkload`](crate::context::SourceWorkload) extension), with `ignoreUriCase`.
//!
//! A host with many routes (16 or more) also has an index by path: exact `uri` paths are one
//! hash lookup and prefixes one per distinct prefix length, so the lookup does not grow with the
//! number of routes that ask for other paths, while the first matching route still wins.
//!
//! A host without VirtualService goes to the host itself; a host whose VirtualServices match
//! nothing gets Envoy's answer, `404` with flag `NR`. [`rewrite`] applies `rewrite` and builds
//! `redirect` answers.
//!
//! ```
//! use mesh_client::route::{Lookup, MESH, RouteTable};
//! use mesh_core::policy::MeshConfig;
//!
//! let table = RouteTable::new(&MeshConfig::default(), MESH);
//! let req = http::Request::get("http://service2/hello").body(()).unwrap();
//! assert!(matches!(table.lookup(&req), Lookup::NoVirtualService));
//! ```

mod error;
mod index;
pub mod matching;
pub mod rewrite;
mod table;

pub use self::error::{InvalidPath, NoRoute};
pub use self::matching::RequestView;
pub use self::table::{Entry, HostRoutes, Lookup, MESH, Reuse, RouteTable};

#[cfg(test)]
mod tests;
