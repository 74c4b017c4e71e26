//! `spec.exportTo` of VirtualService, DestinationRule and ServiceEntry.

use super::Cx;
use crate::policy::ExportTo;

/// Checks `list` (`*`, `.`, `~` or namespace names); `None` when it is empty (visible
/// everywhere, Istio's default) or wrong (the errors are reported).
pub(crate) fn compile(list: &[String], cx: &mut Cx<'_>) -> Option<ExportTo> {
    if list.is_empty() {
        return None;
    }
    let mut ok = true;
    for (i, entry) in list.iter().enumerate() {
        let valid = matches!(entry.as_str(), "*" | "." | "~") || is_namespace(entry);
        if !valid {
            ok = false;
            cx.error(
                &format!("spec.exportTo[{i}]"),
                format!(
                    "`{entry}` is neither `*`, `.`, `~` nor a namespace name (lowercase letters, digits and `-`)"
                ),
            );
        }
    }
    if list.iter().any(|e| e == "*") {
        return None;
    }
    ok.then(|| ExportTo(list.to_vec()))
}

/// A DNS-1123 label, as Kubernetes namespace names are.
fn is_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
