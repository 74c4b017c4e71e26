//! The request head each attempt gets: a copy of the head the retry loop keeps for replay.
//!
//! Every attempt (the first included) is sent a copy, as Envoy keeps the original headers to
//! rebuild a retried request. The header map of the copy is taken from a small per-thread store
//! of spare maps, cleared but with their tables still allocated, and the original map goes back
//! to that store when the loop ends: a request's copy reuses the allocation of an earlier
//! request's head, so replay costs no allocation on the usual path (a fresh map would cost two,
//! its index and its entries).

use std::cell::RefCell;
use std::sync::Arc;

use http::{Extensions, HeaderMap, Request};
use mesh_core::policy::Destination;

use crate::context::Target;

/// Spare maps kept per thread: as many as requests usually finish on one thread between two
/// starts. More are dropped.
const MAX_SPARE_MAPS: usize = 8;

/// A map whose table holds more than this many entries is not kept (an unusual head must not
/// pin its memory).
const MAX_SPARE_CAPACITY: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// A copy of `headers`, in a spare map when one is large enough.
pub(super) fn copy_headers(headers: &HeaderMap) -> HeaderMap {
    let spare = SPARE
        .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    match spare {
        // `capacity` counts entries the map takes without growing; extra values of a repeated
        // name live in a vector of their own, which an empty map has kept too.
        Some(mut map) if map.capacity() >= headers.keys_len() => {
            for (name, value) in headers {
                map.append(name, value.clone());
            }
            map
        }
        _ => headers.clone(),
    }
}

/// Keeps `headers`' allocation for a later [`copy_headers`] (cleared first).
pub(super) fn recycle(mut headers: HeaderMap) {
    if headers.capacity() == 0 || headers.capacity() > MAX_SPARE_CAPACITY {
        return;
    }
    headers.clear();
    // On thread teardown or re-entry the map is simply dropped.
    let _ = SPARE.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut()
            && spare.len() < MAX_SPARE_MAPS
        {
            spare.push(headers);
        }
    });
}

/// The head of the next attempt: a copy of `parts`, with the original extensions the first
/// time when they were only the target (then rebuilt from `target` for a retry).
pub(super) fn head(
    parts: &http::request::Parts,
    first_extensions: &mut Option<Extensions>,
    target: &Option<Arc<Destination>>,
) -> http::request::Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = copy_headers(&parts.headers);
    head.extensions = match (first_extensions.take(), target) {
        (Some(original), _) => original,
        (None, Some(destination)) if parts.extensions.is_empty() => {
            let mut extensions = Extensions::new();
            extensions.insert(Target {
                destination: Arc::clone(destination),
            });
            extensions
        }
        (None, _) => parts.extensions.clone(),
    };
    head
}

#[cfg(test)]
mod tests;
