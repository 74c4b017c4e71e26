//! String and header matching shared by routes and authorization.

use std::fmt;
use std::hash::{Hash, Hasher};

/// A compiled regular expression that compares and hashes by its source text.
///
/// Istio's regexes are RE2; the `regex` crate has the same guarantees (linear time, no
/// backreferences), and matches must cover the whole string, so the source is anchored.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
    anchored: bool,
}

impl Pattern {
    /// Compiles `source` as a full-string match (`^(?:source)$`).
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = regex::Regex::new(&format!("^(?:{source})$"))?;
        Ok(Self {
            source: source.to_owned(),
            regex,
            anchored: true,
        })
    }

    /// Compiles `source` to search anywhere in a string, as Envoy's `regex_rewrite` does: its
    /// `uriRegexRewrite` replaces every match in the path, not only a whole-path match.
    pub fn unanchored(source: &str) -> Result<Self, regex::Error> {
        let regex = regex::Regex::new(source)?;
        Ok(Self {
            source: source.to_owned(),
            regex,
            anchored: false,
        })
    }

    /// Whether the pattern must match the whole string ([`Pattern::new`]) or may match
    /// anywhere ([`Pattern::unanchored`]).
    pub fn is_anchored(&self) -> bool {
        self.anchored
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled regex (anchored unless built with [`Pattern::unanchored`]).
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// Whether `s` matches: the whole of it, or anywhere in it for an unanchored pattern.
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.anchored == other.anchored
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
        self.anchored.hash(state);
    }
}

/// Istio's `StringMatch`: exact, prefix or regex; `Present` is the `{}` form for headers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StringMatch {
    /// `exact: value`.
    Exact(String),
    /// `prefix: value`.
    Prefix(String),
    /// `regex: value` (RE2 syntax, whole string).
    Regex(Pattern),
    /// `{}`: the header or parameter is present, with any value.
    Present,
}

impl StringMatch {
    /// Whether `value` matches; with `ignore_case`, exact and prefix compare ASCII
    /// case-insensitively (Istio's `ignoreUriCase`).
    pub fn matches(&self, value: &str, ignore_case: bool) -> bool {
        match self {
            StringMatch::Exact(s) if ignore_case => s.eq_ignore_ascii_case(value),
            StringMatch::Exact(s) => s == value,
            StringMatch::Prefix(p) if ignore_case => value
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p)),
            StringMatch::Prefix(p) => value.starts_with(p.as_str()),
            StringMatch::Regex(r) => r.is_match(value),
            StringMatch::Present => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_patterns_match_whole_strings_only() {
        let p = Pattern::new("/v[0-9]+").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.is_match("/v1"));
        assert!(!p.is_match("/api/v1/x"));
        assert!(p.is_anchored());
    }

    #[test]
    fn unanchored_patterns_replace_every_match_as_envoy_regex_rewrite() {
        let p = Pattern::unanchored("/v1/").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.is_match("/api/v1/x"));
        assert_eq!(
            p.regex().replace_all("/api/v1/x/v1/", "/v2/"),
            "/api/v2/x/v2/"
        );
        assert_ne!(p, Pattern::new("/v1/").unwrap_or_else(|e| panic!("{e}")));
    }
}
