//! The request head each attempt gets: a copy of the head the retry loop keeps for replay.
//!
//! Every attempt (the first included) is sent a copy, as Envoy keeps the original headers to
//! rebuild a retried request. The header map of the copy is taken from a small per-thread store
//! of spare maps, cleared but with their tables still allocated, and the original map goes back
//! to that store when the loop ends: a request's copy reuses the allocation of an earlier
//! request's head, so replay costs no allocation on the usual path (a fresh map would cost two,
//! its index and its entries).
//!
//! The extensions are not copied on the usual path either: when every extension of the request
//! is of a type the loop knows how to rebuild ([`Carried`]: the split's `Target`, the gRPC
//! `Deadline`, the caller's `SourceAddr` and, with the `tonic` feature, tonic's `GrpcMethod`),
//! the first attempt takes the original map and a retry gets a new map of those values. A
//! request with any other extension keeps its map in the loop and every attempt gets a copy of
//! it, so a retried attempt always carries every extension the request came with.

use std::cell::RefCell;
use std::sync::Arc;

use http::{Extensions, HeaderMap, Request};
use mesh_core::grpc::Deadline;
use mesh_core::policy::Destination;

use crate::context::{SourceAddr, Target};

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

/// The extensions a retry rebuilds when the request carried nothing else (see the
/// [module docs](self)); the target is kept apart by the loop, which names its host.
#[derive(Debug, Default)]
pub(super) struct Carried {
    deadline: Option<Deadline>,
    source: Option<SourceAddr>,
    /// tonic puts the called method on every request it makes.
    #[cfg(feature = "tonic")]
    method: Option<tonic::GrpcMethod<'static>>,
}

impl Carried {
    /// The values to rebuild `extensions` from, when every one of them is of a known type
    /// (`None` when any other extension rides along: the map is then copied per attempt).
    pub(super) fn of(extensions: &Extensions) -> Option<Self> {
        // The usual HTTP request carries the split's target alone: one lookup, not four.
        if extensions.is_empty() || (extensions.len() == 1 && extensions.get::<Target>().is_some())
        {
            return Some(Self::default());
        }
        let carried = Self {
            deadline: extensions.get::<Deadline>().copied(),
            source: extensions.get::<SourceAddr>().copied(),
            #[cfg(feature = "tonic")]
            method: extensions.get::<tonic::GrpcMethod<'static>>().cloned(),
        };
        let known = usize::from(extensions.get::<Target>().is_some())
            + usize::from(carried.deadline.is_some())
            + usize::from(carried.source.is_some())
            + carried.methods();
        (known == extensions.len()).then_some(carried)
    }

    #[cfg(feature = "tonic")]
    fn methods(&self) -> usize {
        usize::from(self.method.is_some())
    }

    #[cfg(not(feature = "tonic"))]
    fn methods(&self) -> usize {
        0
    }

    /// A new map of the carried values and the target.
    fn rebuild(&self, target: &Option<Arc<Destination>>) -> Extensions {
        let mut extensions = Extensions::new();
        if let Some(destination) = target {
            extensions.insert(Target {
                destination: Arc::clone(destination),
            });
        }
        if let Some(deadline) = self.deadline {
            extensions.insert(deadline);
        }
        if let Some(source) = self.source {
            extensions.insert(source);
        }
        #[cfg(feature = "tonic")]
        if let Some(method) = &self.method {
            extensions.insert(method.clone());
        }
        extensions
    }
}

/// The head of the next attempt: a copy of `parts`, with the original extensions the first
/// time when they were all of known types (`carried`, then rebuilt from it for a retry), a copy
/// of `parts`' extensions otherwise.
pub(super) fn head(
    parts: &http::request::Parts,
    first_extensions: &mut Option<Extensions>,
    target: &Option<Arc<Destination>>,
    carried: Option<&Carried>,
) -> http::request::Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = copy_headers(&parts.headers);
    head.extensions = match (first_extensions.take(), carried) {
        (Some(original), _) => original,
        (None, Some(carried)) => carried.rebuild(target),
        (None, None) => parts.extensions.clone(),
    };
    head
}

#[cfg(test)]
mod tests;
