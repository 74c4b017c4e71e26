//! Istio's string forms (exact, `prefix*`, `*suffix`, `*`), and for paths its templates
//! (`{*}`, `{**}`), compiled once.

use mesh_core::policy::Pattern;

/// One compiled Istio string value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StrMatch {
    /// `*`: any value, as long as the attribute is present.
    Any,
    /// `abc`.
    Exact(Box<str>),
    /// `abc*`.
    Prefix(Box<str>),
    /// `*abc`.
    Suffix(Box<str>),
    /// A path template: `/api/{*}/items/{**}` (checked by mesh-core's compile step).
    Template(Pattern),
}

impl StrMatch {
    /// Compiles one value as written in a policy.
    pub(crate) fn new(value: &str) -> Self {
        if value == "*" {
            StrMatch::Any
        } else if let Some(prefix) = value.strip_suffix('*') {
            StrMatch::Prefix(prefix.into())
        } else if let Some(suffix) = value.strip_prefix('*') {
            StrMatch::Suffix(suffix.into())
        } else {
            StrMatch::Exact(value.into())
        }
    }

    /// Compiles one path value: a template when it holds `{*}` or `{**}` (Envoy's URI template
    /// semantics: `{*}` is one non-empty segment, `{**}` any rest of the path, slashes
    /// included), else one of the string forms.
    pub(crate) fn new_path(value: &str) -> Self {
        if !(value.contains("{*}") || value.contains("{**}")) {
            return Self::new(value);
        }
        let mut source = String::with_capacity(value.len() + 16);
        let mut rest = value;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("{**}") {
                source.push_str(".*");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("{*}") {
                source.push_str("[^/]+");
                rest = r;
            } else {
                let end = rest[1..].find('{').map_or(rest.len(), |i| i + 1);
                source.push_str(&regex_escape(&rest[..end]));
                rest = &rest[end..];
            }
        }
        match Pattern::new(&source) {
            Ok(p) => StrMatch::Template(p),
            // escaped literals and two fixed operators always compile; should one not, the
            // value stays a literal that no real path equals
            Err(_) => StrMatch::Exact(value.into()),
        }
    }

    /// Compiles one value for case-insensitive matching (hosts).
    pub(crate) fn new_lowercase(value: &str) -> Self {
        Self::new(&value.to_ascii_lowercase())
    }

    /// Whether `value` matches, comparing bytes exactly.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            StrMatch::Any => true,
            StrMatch::Exact(s) => &**s == value,
            StrMatch::Prefix(p) => value.starts_with(&**p),
            StrMatch::Suffix(s) => value.ends_with(&**s),
            StrMatch::Template(t) => t.is_match(value),
        }
    }

    /// Whether `value` matches, ignoring ASCII case (the pattern is already lowercase).
    pub(crate) fn matches_ignore_case(&self, value: &str) -> bool {
        let v = value.as_bytes();
        match self {
            StrMatch::Any => true,
            StrMatch::Exact(s) => s.eq_ignore_ascii_case(value),
            StrMatch::Prefix(p) => {
                v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            StrMatch::Suffix(s) => {
                v.len() >= s.len() && v[v.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
            StrMatch::Template(t) => t.is_match(value),
        }
    }
}

/// A list of values: matches when any entry matches.
pub(crate) fn any_of(list: &[StrMatch], value: Option<&str>) -> bool {
    value.is_some_and(|v| list.iter().any(|m| m.matches(v)))
}

/// Compiles a list of values.
pub(crate) fn compile_all(values: &[String]) -> Box<[StrMatch]> {
    values.iter().map(|v| StrMatch::new(v)).collect()
}

/// Compiles a list of paths (templates allowed).
pub(crate) fn compile_paths(values: &[String]) -> Box<[StrMatch]> {
    values.iter().map(|v| StrMatch::new_path(v)).collect()
}

/// `text` with every regex metacharacter escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::StrMatch;

    #[test]
    fn istio_forms() {
        assert!(StrMatch::new("/api/*").matches("/api/users"));
        assert!(StrMatch::new("/api/*").matches("/api/"));
        assert!(!StrMatch::new("/api/*").matches("/apix"));
        assert!(StrMatch::new("*.html").matches("/index.html"));
        assert!(!StrMatch::new("*.html").matches("/index.htm"));
        assert!(StrMatch::new("*").matches(""));
        assert!(StrMatch::new("/exact").matches("/exact"));
        assert!(!StrMatch::new("/exact").matches("/exact/"));
    }

    #[test]
    fn path_templates_follow_envoy() {
        let t = |p: &str| StrMatch::new_path(p);
        assert!(t("/foo/{*}").matches("/foo/bar"));
        assert!(!t("/foo/{*}").matches("/foo/bar/baz"));
        assert!(!t("/foo/{*}").matches("/foo/"));
        assert!(t("/foo/{**}/").matches("/foo/bar/"));
        assert!(t("/foo/{**}/").matches("/foo//"));
        assert!(!t("/foo/{**}/").matches("/foo/bar"));
        assert!(t("/foo/{*}/bar/{**}").matches("/foo/buzz/bar/"));
        assert!(t("/foo/{*}/bar/{**}").matches("/foo/buzz/bar/baz"));
        assert!(!t("/foo/{*}/bar/{**}").matches("/foo/buzz/baz/x"));
        // literals are literal: `.` is no wildcard
        assert!(t("/v1.0/{*}").matches("/v1.0/x"));
        assert!(!t("/v1.0/{*}").matches("/v1x0/x"));
        // no template: the usual string forms
        assert_eq!(t("/api/*"), StrMatch::Prefix("/api/".into()));
    }

    #[test]
    fn ignore_case() {
        assert!(StrMatch::new_lowercase("*.Example.com").matches_ignore_case("api.EXAMPLE.com"));
        assert!(StrMatch::new_lowercase("API.*").matches_ignore_case("api.example.com"));
        assert!(StrMatch::new_lowercase("Host").matches_ignore_case("hOST"));
        assert!(!StrMatch::new_lowercase("host").matches_ignore_case("hos"));
        assert!(!StrMatch::new_lowercase("*.com").matches_ignore_case("om"));
    }
}
