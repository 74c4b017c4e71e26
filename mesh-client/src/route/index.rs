//! An index over one host's routes by path, so that a lookup among thousands of `http[]` entries
//! does not try them one by one.
//!
//! Each route is filed under what its `match[]` entries ask of the path: an exact path, a path
//! prefix, or anything else (a regex, `ignoreUriCase`, a match without `uri`, a route without
//! `match`), which is always a candidate. A lookup gathers the candidates of the request's path
//! (one hash lookup for exact paths, one per distinct prefix length for prefixes) and checks them
//! fully, lowest position first: the first route of the list that matches still wins, as in a
//! linear scan, because a route that is not a candidate cannot match the path.

use mesh_core::policy::{RequestMatch, StringMatch};

use super::matching::{RequestView, matches};
use super::table::Entry;
use crate::hostmap::HostMap;

/// Below this many routes a linear scan is as fast as the index.
pub(super) const MIN_INDEXED_ROUTES: usize = 16;

/// Routes of one host filed by the path they can match; positions in the host's list.
#[derive(Debug, Default)]
pub(super) struct PathIndex {
    exact: HostMap<Vec<u32>>,
    prefixes: HostMap<Vec<u32>>,
    /// Distinct prefix lengths, shortest first.
    prefix_lens: Vec<usize>,
    /// Routes that any path may match.
    always: Vec<u32>,
}

/// How one `match[]` entry constrains the path.
enum PathKey<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    Any,
}

fn path_key(m: &RequestMatch) -> PathKey<'_> {
    match &m.uri {
        Some(StringMatch::Exact(p)) if !m.ignore_uri_case => PathKey::Exact(p),
        Some(StringMatch::Prefix(p)) if !m.ignore_uri_case => PathKey::Prefix(p),
        _ => PathKey::Any,
    }
}

impl PathIndex {
    /// Files `entries` (in match order); `None` when so few that a linear scan is as fast.
    pub(super) fn build<T>(entries: &[std::sync::Arc<Entry<T>>]) -> Option<Self> {
        if entries.len() < MIN_INDEXED_ROUTES || u32::try_from(entries.len()).is_err() {
            return None;
        }
        let mut index = PathIndex::default();
        for (position, entry) in (0u32..).zip(entries) {
            let matches = &entry.route.matches;
            if matches.is_empty() || matches.iter().any(|m| matches!(path_key(m), PathKey::Any)) {
                index.always.push(position);
                continue;
            }
            for m in matches {
                let list = match path_key(m) {
                    PathKey::Exact(p) => index.exact.get_or_insert_with(p, Vec::new),
                    PathKey::Prefix(p) => {
                        if !index.prefix_lens.contains(&p.len()) {
                            index.prefix_lens.push(p.len());
                        }
                        index.prefixes.get_or_insert_with(p, Vec::new)
                    }
                    PathKey::Any => continue,
                };
                // Two entries of one route under the same key file it once.
                if list.last() != Some(&position) {
                    list.push(position);
                }
            }
        }
        index.prefix_lens.sort_unstable();
        Some(index)
    }

    /// The first of `entries` whose `match[]` holds for `view`, with the entry that held
    /// (`None` for a route without `match`).
    pub(super) fn lookup<'a, T>(
        &self,
        entries: &'a [std::sync::Arc<Entry<T>>],
        view: &RequestView<'_>,
        gateway: &str,
    ) -> Option<(&'a std::sync::Arc<Entry<T>>, Option<&'a RequestMatch>)> {
        let mut best: Option<(usize, Option<&'a RequestMatch>)> = None;
        let mut scan = |list: &[u32]| {
            for &position in list {
                let position = position as usize;
                if best.is_some_and(|(b, _)| b <= position) {
                    return;
                }
                if let Some(matched) = entries.get(position).and_then(|e| check(e, view, gateway)) {
                    best = Some((position, matched));
                    return;
                }
            }
        };
        let path = view.path;
        if let Some(list) = self.exact.get(path) {
            scan(list);
        }
        for &len in &self.prefix_lens {
            let Some(head) = path.get(..len) else {
                // Longer than the path (or inside a character, where no prefix can end).
                if len > path.len() {
                    break;
                }
                continue;
            };
            if let Some(list) = self.prefixes.get(head) {
                scan(list);
            }
        }
        scan(&self.always);
        let (position, matched) = best?;
        entries.get(position).map(|e| (e, matched))
    }
}

/// Whether `entry` matches `view`: `Some(matched)` with the `match[]` entry that held (`None`
/// when the route has none), as the linear scan decides it.
fn check<'a, T>(
    entry: &'a Entry<T>,
    view: &RequestView<'_>,
    gateway: &str,
) -> Option<Option<&'a RequestMatch>> {
    let route = &entry.route;
    if route.matches.is_empty() {
        return Some(None);
    }
    route
        .matches
        .iter()
        .find(|m| matches(m, view, gateway))
        .map(Some)
}

#[cfg(test)]
mod tests;
