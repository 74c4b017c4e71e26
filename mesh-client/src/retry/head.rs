//! The request head each attempt gets, and what the retry loop keeps of it for replay.
//!
//! The first attempt is sent the request's own header map. Before it goes, the loop saves the
//! headers as a plain list of name and value pairs ([`SavedHeaders`]), as Envoy keeps the
//! original headers to rebuild a retried request; a retry gets a new map built from that list.
//! Saving a pair is two reference-count increments (a name and a value clone) and a push: no
//! hashing and no probing of a map's index, which is what copying into a map costs (about 330
//! instructions per header on the benchmark's hop). The list's vector is taken from a small
//! per-thread store of spare vectors, cleared but still allocated, and goes back to it when the
//! loop ends: saving costs no allocation on the usual path. Only a retry pays for a new map.
//!
//! The extensions are not copied on the usual path either: when every extension of the request
//! is of a type the loop knows how to rebuild ([`Carried`]: the split's `Target`, the gRPC
//! `Deadline`, the caller's `SourceAddr` and, with the `tonic` feature, tonic's `GrpcMethod`),
//! the first attempt takes the original map and a retry gets a new map of those values. A
//! request with any other extension keeps its map in the loop and every attempt gets a copy of
//! it, so a retried attempt always carries every extension the request came with.

use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Request};
use mesh_core::grpc::Deadline;
use mesh_core::policy::Destination;

use crate::context::{SourceAddr, Target};
use crate::spare::{self, Spares};

/// Spare vectors kept per thread: as many as requests usually finish on one thread between two
/// starts. More are dropped.
const MAX_SPARE: usize = 8;

/// A vector that holds more than this many pairs is not kept (an unusual head must not pin its
/// memory).
const MAX_SPARE_CAPACITY: usize = 64;

/// Room a retry's new map leaves beyond the saved pairs, for the headers the layers below add
/// (the transport's `Host`, the trace context) without the map growing.
const ROOM_BELOW: usize = 2;

type Pairs = Vec<(HeaderName, HeaderValue)>;

thread_local! {
    static SPARE: Spares<Pairs> = const { Spares::new() };
}

/// A request's headers as the retry loop keeps them: every value in the order the map yields
/// them (a repeated name's values together, in their order).
#[derive(Debug)]
pub(super) struct SavedHeaders {
    pairs: Pairs,
}

impl SavedHeaders {
    /// Saves `headers`, in a spare vector when the thread has one.
    pub(super) fn of(headers: &HeaderMap) -> Self {
        let mut pairs = spare::take(&SPARE).unwrap_or_default();
        pairs.reserve(headers.len());
        pairs.extend(
            headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        Self { pairs }
    }

    /// A new map holding the saved headers (a retry's).
    pub(super) fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.pairs.len() + ROOM_BELOW);
        for (name, value) in &self.pairs {
            map.append(name, value.clone());
        }
        map
    }
}

impl Drop for SavedHeaders {
    /// Keeps the vector's allocation for a later request's [`SavedHeaders::of`] (cleared first).
    fn drop(&mut self) {
        let mut pairs = std::mem::take(&mut self.pairs);
        if pairs.capacity() == 0 || pairs.capacity() > MAX_SPARE_CAPACITY {
            return;
        }
        pairs.clear();
        spare::keep(&SPARE, pairs, MAX_SPARE);
    }
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

/// The head of the next attempt: `parts`' own headers the first time (taken, and `sent` set),
/// a map of the `saved` ones for a retry; the original extensions the first time when they were
/// all of known types (`carried`, then rebuilt from it for a retry), a copy of `parts`'
/// extensions otherwise.
pub(super) fn head(
    parts: &mut http::request::Parts,
    sent: &mut bool,
    saved: &SavedHeaders,
    first_extensions: &mut Option<Extensions>,
    target: &Option<Arc<Destination>>,
    carried: Option<&Carried>,
) -> http::request::Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = if std::mem::replace(sent, true) {
        saved.to_map()
    } else {
        std::mem::take(&mut parts.headers)
    };
    head.extensions = match (first_extensions.take(), carried) {
        (Some(original), _) => original,
        (None, Some(carried)) => carried.rebuild(target),
        (None, None) => parts.extensions.clone(),
    };
    head
}

#[cfg(test)]
mod tests;
