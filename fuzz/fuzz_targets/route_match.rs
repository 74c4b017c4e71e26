//! Route matching and rewriting with fuzzed config and fuzzed requests.
//!
//! Input: a YAML config, then a line `===`, then the request: the first line is the path and
//! query, the second the authority, each further line a `name: value` header. Without the
//! separator a fixed config with every match kind (exact, prefix, regex, headers, query
//! parameters, ignoreUriCase, regex rewrite) is used. Route lookup and rewriting must never panic
//! whatever the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_client::route::{Lookup, MESH, RouteTable, rewrite};

const FIXED: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fuzz}
spec:
  hosts: [svc, "*.example.com"]
  http:
  - match:
    - uri: {regex: "/api/v[0-9]+/.*"}
      headers: {x-user: {prefix: admin}}
    rewrite:
      uriRegexRewrite: {match: "/api/v([0-9]+)/(.*)", rewrite: "/v\\1/\\2"}
    route: [{destination: {host: svc}}]
  - match:
    - uri: {prefix: /Static}
      ignoreUriCase: true
      queryParams: {q: {exact: "1"}}
    rewrite: {uri: /s, authority: other}
    route: [{destination: {host: svc}}]
  - match:
    - withoutHeaders: {x-skip: {}}
      method: {exact: GET}
    route: [{destination: {host: svc}}]
"#;

fn fixed() -> &'static mesh_core::policy::MeshConfig {
    static CONFIG: std::sync::OnceLock<mesh_core::policy::MeshConfig> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| match mesh_core::load::load_str("fixed.yaml", FIXED) {
        Ok(l) => l.config,
        Err(e) => panic!("the fixed fuzz config must load: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (loaded, request) = match text.split_once("\n===\n") {
        Some((yaml, request)) => match mesh_core::load::load_str("fuzz.yaml", yaml) {
            Ok(l) => (Some(l.config), request),
            Err(_) => return,
        },
        None => (None, text),
    };
    let config = loaded.as_ref().unwrap_or_else(|| fixed());
    let table = RouteTable::new(config, MESH);

    let mut lines = request.lines();
    let path = lines.next().unwrap_or("/");
    let authority = lines.next().unwrap_or("svc");
    let mut builder = http::Request::get(format!("http://{authority}{path}"));
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    // Requests the http crate refuses never reach the mesh.
    let Ok(mut req) = builder.body(()) else {
        return;
    };
    let found = match table.lookup(&req) {
        Lookup::Matched { entry, matched } => Some((entry.route.clone(), matched.cloned())),
        Lookup::NoRoute | Lookup::NoVirtualService => None,
    };
    if let Some((route, matched)) = found {
        if let Some(rw) = &route.rewrite {
            rewrite::apply(rw, matched.as_ref(), &mut req);
        }
    }
});
