//! The HTTP surface: paths as the API server lays them out, one handler for all of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::Shared;
use super::docs;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ResourceType, WriteError, at_version, merge_patch, not_found};
use super::watch::{self, WatchRequest};

/// A Kubernetes `Status` failure answer.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    });
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

fn reason_of(code: u16) -> &'static str {
    match code {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

fn write_error(e: WriteError) -> Response {
    status(e.0, e.1, &e.2)
}

/// Where a request goes, from its path.
enum Target<'a> {
    Version,
    Core,
    Groups,
    Group(&'a str),
    Resources(&'a str, &'a str),
    Objects {
        group: &'a str,
        version: &'a str,
        namespace: Option<&'a str>,
        plural: &'a str,
        name: Option<&'a str>,
    },
}

fn target(path: &str) -> Option<Target<'_>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Target::Version),
        ["api"] => return Some(Target::Core),
        ["apis"] => return Some(Target::Groups),
        ["apis", g] => return Some(Target::Group(g)),
        ["api", "v1"] => return Some(Target::Resources("", "v1")),
        ["apis", g, v] => return Some(Target::Resources(g, v)),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, plural, name) = match rest {
        [p] => (None, *p, None),
        ["namespaces", ns, p] => (Some(*ns), *p, None),
        ["namespaces", ns, p, n] | ["namespaces", ns, p, n, _] => (Some(*ns), *p, Some(*n)),
        [p, n] => (None, *p, Some(*n)),
        _ => return None,
    };
    Some(Target::Objects {
        group,
        version,
        namespace,
        plural,
        name,
    })
}

/// Every request lands here.
pub(crate) async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.log(format!("{method} {uri}"));
    if let Some(expected) = &shared.options.token {
        let sent = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(expected.as_str()) {
            return status(401, "Unauthorized", "Unauthorized");
        }
    }
    shared.wait_while_hanging().await;
    if let Some(code) = shared.injected_failure(uri.path()) {
        return status(
            code,
            reason_of(code),
            &format!("injected failure {code} for {}", uri.path()),
        );
    }
    let Some(target) = target(uri.path()) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let state = || shared.state.lock().unwrap_or_else(|e| e.into_inner());
    match target {
        Target::Version => ok(docs::version()),
        Target::Core => ok(docs::core_versions(&shared.address)),
        Target::Groups => ok(docs::group_list(&state())),
        Target::Group(g) => match docs::group(&state(), g) {
            Some(doc) => ok(doc),
            None => status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        },
        Target::Resources(g, v) => match docs::resource_list(&state(), g, v) {
            Some(doc) => ok(doc),
            None => status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        },
        Target::Objects {
            group,
            version,
            namespace,
            plural,
            name,
        } => {
            let Some(t) = state().find(group, version, plural).cloned() else {
                return status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                );
            };
            let namespace = namespace.filter(|_| t.namespaced);
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json");
            match (method, name) {
                (Method::GET, None)
                    if query.get("watch").is_some_and(|w| w == "true" || w == "1") =>
                {
                    watch_request(&shared, t, version, namespace, &query)
                }
                (Method::GET, None) => list(&shared, &t, version, namespace, &query),
                (Method::GET, Some(name)) => {
                    let key = (namespace.unwrap_or_default().to_owned(), name.to_owned());
                    match state().get(&t, &key) {
                        Some(o) => ok(at_version(o, &t, version)),
                        None => write_error(not_found(&t, name)),
                    }
                }
                (Method::POST, None) => match parse(&body, content_type) {
                    Ok(object) => {
                        match shared.write(|s| s.create(&t, version, namespace, object)) {
                            Ok(o) => (StatusCode::CREATED, axum::Json(o)).into_response(),
                            Err(e) => write_error(e),
                        }
                    }
                    Err(e) => write_error(e),
                },
                (Method::PUT, Some(name)) => match parse(&body, content_type) {
                    Ok(mut object) => {
                        object["metadata"]["name"] = name.into();
                        match shared.write(|s| s.replace(&t, version, namespace, object)) {
                            Ok(o) => ok(o),
                            Err(e) => write_error(e),
                        }
                    }
                    Err(e) => write_error(e),
                },
                (Method::PATCH, Some(name)) => {
                    patch(&shared, &t, version, namespace, name, content_type, &body)
                }
                (Method::DELETE, Some(name)) => {
                    match shared.write(|s| s.delete(&t, namespace, name)) {
                        Ok(o) => ok(o),
                        Err(e) => write_error(e),
                    }
                }
                _ => status(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                ),
            }
        }
    }
}

/// A JSON body (YAML for server-side apply); a bad body is a 400.
fn parse(body: &[u8], content_type: &str) -> Result<Value, WriteError> {
    let parsed = if content_type.contains("yaml") {
        yaml_serde::from_slice::<Value>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        WriteError(
            400,
            "BadRequest",
            format!("the body of the request could not be decoded: {e}"),
        )
    })
}

fn patch(
    shared: &Arc<Shared>,
    t: &ResourceType,
    version: &str,
    namespace: Option<&str>,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    let patch = match parse(body, content_type) {
        Ok(p) => p,
        Err(e) => return write_error(e),
    };
    if content_type.starts_with("application/json-patch+json") {
        return status(
            415,
            "UnsupportedMediaType",
            "json patches are not supported by the test server; use a merge patch",
        );
    }
    let apply = content_type.starts_with("application/apply-patch");
    let key = (namespace.unwrap_or_default().to_owned(), name.to_owned());
    let result = shared.write(|s| match s.get(t, &key).cloned() {
        Some(mut current) => {
            merge_patch(&mut current, &patch);
            // a patch does not carry a precondition unless it says so
            if patch.pointer("/metadata/resourceVersion").is_none()
                && let Some(meta) = current.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.remove("resourceVersion");
            }
            s.replace(t, version, namespace, current)
        }
        None if apply => {
            let mut object = patch.clone();
            object["metadata"]["name"] = name.into();
            s.create(t, version, namespace, object)
        }
        None => Err(not_found(t, name)),
    });
    match result {
        Ok(o) => ok(o),
        Err(e) => write_error(e),
    }
}

fn selectors(
    query: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), WriteError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| WriteError(400, "BadRequest", e))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| WriteError(400, "BadRequest", e))?;
    Ok((labels, fields))
}

fn list(
    shared: &Arc<Shared>,
    t: &ResourceType,
    version: &str,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(e) => return write_error(e),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let offset = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => match c.parse::<usize>() {
            Ok(o) => o,
            Err(_) => return status(400, "BadRequest", "invalid continue token"),
        },
        None => 0,
    };
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let key = (t.group.clone(), t.plural.clone());
    let matching: Vec<&Value> = state
        .objects
        .get(&key)
        .into_iter()
        .flat_map(|b| b.values())
        .filter(|o| {
            namespace.is_none_or(|ns| {
                o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
            })
        })
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let end = limit.map_or(matching.len(), |l| (offset + l).min(matching.len()));
    let items: Vec<Value> = matching
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|o| at_version(o, t, version))
        .collect();
    let mut metadata = json!({"resourceVersion": state.rv.to_string()});
    if end < matching.len() {
        metadata["continue"] = end.to_string().into();
        metadata["remainingItemCount"] = (matching.len() - end).into();
    }
    ok(json!({
        "kind": format!("{}List", t.kind),
        "apiVersion": t.group_version(version),
        "metadata": metadata,
        "items": items,
    }))
}

fn watch_request(
    shared: &Arc<Shared>,
    t: ResourceType,
    version: &str,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(e) => return write_error(e),
    };
    let resource_version = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return status(
                    400,
                    "BadRequest",
                    &format!("invalid resource version: {rv}"),
                );
            }
        },
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    watch::start(
        shared.clone(),
        WatchRequest {
            resource: t,
            version: version.to_owned(),
            namespace: namespace.map(str::to_owned),
            labels,
            fields,
            resource_version,
            bookmarks,
            timeout,
        },
    )
}
