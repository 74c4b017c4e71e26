//! Istio's string forms (exact, `prefix*`, `*suffix`, `*`), compiled once.

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
    fn ignore_case() {
        assert!(StrMatch::new_lowercase("*.Example.com").matches_ignore_case("api.EXAMPLE.com"));
        assert!(StrMatch::new_lowercase("API.*").matches_ignore_case("api.example.com"));
        assert!(StrMatch::new_lowercase("Host").matches_ignore_case("hOST"));
        assert!(!StrMatch::new_lowercase("host").matches_ignore_case("hos"));
        assert!(!StrMatch::new_lowercase("*.com").matches_ignore_case("om"));
    }
}
