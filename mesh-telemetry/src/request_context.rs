//! The inbound request's context: the server span's [`TraceContext`] and the [`RequestId`],
//! carried as one request extension, [`RequestContext`] (one insert instead of two: the server
//! trace layer and the request id layer each fill their field of the same value).
//!
//! Read it with [`TraceContext::from_extensions`] and [`RequestId::from_extensions`], which also
//! find a bare [`TraceContext`] or [`RequestId`] extension (one an application put on an outbound
//! request itself, or a layer of an older build):
//!
//! ```
//! use mesh_telemetry::{RequestContext, RequestId, TraceContext};
//!
//! let mut ext = http::Extensions::new();
//! assert!(TraceContext::from_extensions(&ext).is_none());
//! RequestContext::entry(&mut ext).trace = Some(TraceContext::new_root(true));
//! assert!(TraceContext::from_extensions(&ext).is_some());
//! assert!(RequestId::from_extensions(&ext).is_none());
//! ```

use http::Extensions;

use crate::request_id::RequestId;
use crate::trace_context::TraceContext;

/// Request extension put by the inbound layers (`mesh_server::trace`, `mesh_server::request_id`):
/// what they know of the request, for the layers below them and the application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The server span's context (set by the server trace layer).
    pub trace: Option<TraceContext>,
    /// The request's id (set by the request id layer).
    pub request_id: Option<RequestId>,
}

impl RequestContext {
    /// The context in `ext`, when an inbound layer put one there.
    pub fn of(ext: &Extensions) -> Option<&RequestContext> {
        ext.get::<RequestContext>()
    }

    /// The context in `ext`, put there empty first when absent (a layer used without the others).
    pub fn entry(ext: &mut Extensions) -> &mut RequestContext {
        ext.get_or_insert_default::<RequestContext>()
    }
}

impl TraceContext {
    /// The trace context of a request: the inbound [`RequestContext`]'s, else a bare
    /// [`TraceContext`] extension.
    pub fn from_extensions(ext: &Extensions) -> Option<&TraceContext> {
        RequestContext::of(ext)
            .and_then(|c| c.trace.as_ref())
            .or_else(|| ext.get::<TraceContext>())
    }
}

impl RequestId {
    /// The id of a request: the inbound [`RequestContext`]'s, else a bare [`RequestId`]
    /// extension.
    pub fn from_extensions(ext: &Extensions) -> Option<&RequestId> {
        RequestContext::of(ext)
            .and_then(|c| c.request_id.as_ref())
            .or_else(|| ext.get::<RequestId>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn accessors_read_the_context_first_then_the_bare_extensions() {
        let mut ext = Extensions::new();
        let bare = TraceContext::new_root(false);
        ext.insert(bare.clone());
        ext.insert(RequestId::from_generated(HeaderValue::from_static("bare")));
        assert_eq!(TraceContext::from_extensions(&ext), Some(&bare));
        assert_eq!(RequestId::from_extensions(&ext).unwrap().as_str(), "bare");
        // An empty context does not hide the bare values.
        RequestContext::entry(&mut ext);
        assert_eq!(TraceContext::from_extensions(&ext), Some(&bare));
        let server = TraceContext::new_root(true);
        let ctx = RequestContext::entry(&mut ext);
        ctx.trace = Some(server.clone());
        ctx.request_id = Some(RequestId::from_generated(HeaderValue::from_static("ctx")));
        assert_eq!(TraceContext::from_extensions(&ext), Some(&server));
        assert_eq!(RequestId::from_extensions(&ext).unwrap().as_str(), "ctx");
    }

    #[test]
    fn entry_keeps_what_another_layer_set() {
        let mut ext = Extensions::new();
        RequestContext::entry(&mut ext).request_id =
            Some(RequestId::from_generated(HeaderValue::from_static("id")));
        RequestContext::entry(&mut ext).trace = Some(TraceContext::new_root(false));
        let ctx = RequestContext::of(&ext).unwrap();
        assert!(ctx.trace.is_some());
        assert_eq!(ctx.request_id.as_ref().unwrap().as_str(), "id");
    }
}
