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
}

impl Pattern {
    /// Compiles `source` as a full-string match (`^(?:source)$`).
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = regex::Regex::new(&format!("^(?:{source})$"))?;
        Ok(Self { source: source.to_owned(), regex })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled, anchored regex.
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// Whether the whole of `s` matches.
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
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
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
