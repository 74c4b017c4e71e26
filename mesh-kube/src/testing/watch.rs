//! `?watch=true`: a stream of JSON lines (`{"type": "ADDED", "object": {...}}`), resumable from
//! a resourceVersion while the history holds it, 410 Gone beyond, BOOKMARK events on request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Event, EventType, ResourceType, at_version};

/// What one watch request asked for.
pub(crate) struct WatchRequest {
    pub(crate) resource: ResourceType,
    pub(crate) version: String,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    /// `None` (or `"0"`): start with the current objects as ADDED events.
    pub(crate) resource_version: Option<u64>,
    pub(crate) bookmarks: bool,
    pub(crate) timeout: Duration,
}

impl WatchRequest {
    fn selects(&self, object: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) => {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            }
            None => true,
        };
        ns_ok && self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event this watch sees for `event`, if any (a modification that makes an object
    /// start or stop matching the selector is an ADDED or DELETED, as the API server does).
    fn view(&self, event: &Event) -> Option<(EventType, Value)> {
        if event.resource != (self.resource.group.clone(), self.resource.plural.clone()) {
            return None;
        }
        let now = self.selects(&event.object);
        let kind = match (event.kind, event.old.as_ref().map(|o| self.selects(o))) {
            (EventType::Modified, Some(true)) if !now => EventType::Deleted,
            (EventType::Modified, Some(false)) if now => EventType::Added,
            (EventType::Modified, Some(false)) => return None,
            (kind, _) if now => kind,
            _ => return None,
        };
        Some((
            kind,
            at_version(&event.object, &self.resource, &self.version),
        ))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The ERROR event a watch gets when its resourceVersion is older than the history.
fn gone(rv: u64, oldest: u64) -> Bytes {
    line(
        "ERROR",
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("too old resource version: {rv} ({oldest})"),
            "reason": "Expired",
            "code": 410
        }),
    )
}

/// Starts the stream: the initial events are computed under the state lock, together with the
/// subscription, so no write falls between them.
pub(crate) fn start(shared: Arc<Shared>, req: WatchRequest) -> Response {
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    let mut initial = Vec::new();
    let (events, mut last, mut ended) = {
        let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let events = shared.events.subscribe();
        let mut ended = false;
        match req.resource_version {
            Some(rv) if rv < state.compacted => {
                initial.push(gone(rv, state.compacted + 1));
                ended = true;
            }
            Some(rv) => {
                for e in state.history.iter().filter(|e| e.rv > rv) {
                    if let Some((kind, object)) = req.view(e) {
                        initial.push(line(kind.as_str(), &object));
                    }
                }
            }
            None => {
                let key = (req.resource.group.clone(), req.resource.plural.clone());
                for object in state.objects.get(&key).into_iter().flat_map(|b| b.values()) {
                    if req.selects(object) {
                        let object = at_version(object, &req.resource, &req.version);
                        initial.push(line("ADDED", &object));
                    }
                }
            }
        }
        (events, state.rv, ended)
    };
    let mut drops = shared.drops.subscribe();
    drops.mark_unchanged();
    let bookmark_every = shared.options.bookmark_every;
    let counted = shared.clone();
    let count = move || {
        counted
            .events_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::spawn(async move {
        for l in initial {
            count();
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if ended {
            return;
        }
        let mut events = events;
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        while !ended {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => {
                        if event.rv <= last {
                            continue;
                        }
                        last = event.rv;
                        if let Some((kind, object)) = req.view(&event) {
                            count();
                            if tx.send(line(kind.as_str(), &object)).await.is_err() {
                                ended = true;
                            }
                        }
                    }
                    // a watcher that fell behind is cut off; the client resumes or relists
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => ended = true,
                },
                _ = ticker.tick(), if req.bookmarks => {
                    let bookmark = json!({
                        "kind": req.resource.kind,
                        "apiVersion": req.resource.group_version(&req.version),
                        "metadata": {"resourceVersion": last.to_string()}
                    });
                    if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                        ended = true;
                    }
                }
                () = &mut deadline => ended = true,
                _ = drops.changed() => ended = true,
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
