use std::sync::Arc;

use http::{HeaderName, StatusCode};
use mesh_core::policy::*;
use proptest::prelude::*;

use super::super::matching::{RequestView, matches};
use super::super::table::Entry;
use super::*;

const PATHS: [&str; 7] = ["/", "/a", "/a/b", "/ab", "/b", "/a/", "/é/x"];

fn route(n: usize, matches: Vec<RequestMatch>) -> Arc<Entry<()>> {
    Arc::new(Entry {
        route: Arc::new(HttpRoute {
            name: Some(n.to_string()),
            matches,
            action: RouteAction::DirectResponse(DirectResponse {
                status: StatusCode::OK,
                body: None,
            }),
            rewrite: None,
            timeout: None,
            retries: RetryPolicy::default(),
            fault: None,
            mirrors: vec![],
            headers: HeaderRules::default(),
            cors: None,
        }),
        data: (),
    })
}

/// One `match[]` entry: kind 0 exact, 1 prefix, 2 prefix ignoring case, 3 a header only.
fn one_match(kind: u8, path: usize, header: bool) -> RequestMatch {
    let p = PATHS[path % PATHS.len()].to_owned();
    let mut m = RequestMatch::default();
    match kind % 4 {
        0 => m.uri = Some(StringMatch::Exact(p)),
        1 => m.uri = Some(StringMatch::Prefix(p)),
        2 => {
            m.uri = Some(StringMatch::Prefix(p.to_uppercase()));
            m.ignore_uri_case = true;
        }
        _ => {}
    }
    if header || kind % 4 == 3 {
        m.headers = vec![(HeaderName::from_static("x-v"), StringMatch::Present)];
    }
    m
}

/// The first route of `entries` that matches, tried one by one.
fn linear(entries: &[Arc<Entry<()>>], view: &RequestView<'_>) -> Option<usize> {
    entries.iter().position(|e| {
        e.route.matches.is_empty() || e.route.matches.iter().any(|m| matches(m, view, "mesh"))
    })
}

fn indexed(index: &PathIndex, entries: &[Arc<Entry<()>>], view: &RequestView<'_>) -> Option<usize> {
    index
        .lookup(entries, view, "mesh")
        .and_then(|(e, _)| entries.iter().position(|x| Arc::ptr_eq(x, e)))
}

proptest! {
    #[test]
    fn the_index_finds_the_route_a_linear_scan_finds(
        routes in proptest::collection::vec(
            proptest::collection::vec((0u8..4, 0usize..7, any::<bool>()), 0..3),
            MIN_INDEXED_ROUTES..60,
        ),
        path in 0usize..7,
        suffix in prop::sample::select(vec!["", "x", "/c"]),
        header in any::<bool>(),
    ) {
        let entries: Vec<_> = routes
            .iter()
            .enumerate()
            .map(|(n, ms)| route(n, ms.iter().map(|&(k, p, h)| one_match(k, p, h)).collect()))
            .collect();
        let index = PathIndex::build(&entries).unwrap();
        let uri = format!("http://service2{}{suffix}", PATHS[path]);
        let mut builder = http::Request::get(uri.as_str());
        if header {
            builder = builder.header("x-v", "1");
        }
        let req = builder.body(()).unwrap();
        let view = RequestView::new(&req);
        prop_assert_eq!(indexed(&index, &entries, &view), linear(&entries, &view));
    }
}

#[test]
fn short_lists_are_not_indexed() {
    let entries: Vec<_> = (0..MIN_INDEXED_ROUTES - 1)
        .map(|n| route(n, vec![one_match(0, n, false)]))
        .collect();
    assert!(PathIndex::build(&entries).is_none());
}

#[test]
fn an_early_catch_all_beats_a_later_exact_path() {
    let mut entries: Vec<_> = (0..MIN_INDEXED_ROUTES)
        .map(|n| route(n, vec![one_match(0, 4, false)]))
        .collect();
    entries.insert(3, route(99, vec![]));
    entries.push(route(100, vec![one_match(0, 1, false)]));
    let index = PathIndex::build(&entries).unwrap();
    let req = http::Request::get("http://service2/a").body(()).unwrap();
    let view = RequestView::new(&req);
    assert_eq!(indexed(&index, &entries, &view), Some(3));
    let req = http::Request::get("http://service2/b").body(()).unwrap();
    let view = RequestView::new(&req);
    assert_eq!(indexed(&index, &entries, &view), Some(0));
}
