//! Diagnostics: every config problem as `file:line: Kind/name: message`.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The config is refused.
    Error,
    /// Reported, the config still loads (e.g. a skipped unknown kind).
    Warning,
}

/// One problem found in a config folder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file (as given to the loader).
    pub file: String,
    /// 1-based line of the offending field (or of the manifest when no better line is known).
    pub line: usize,
    /// `Kind/name` of the resource, or empty when the manifest could not be identified.
    pub resource: String,
    /// Lowercase message naming the bad field, e.g. `spec.http[0].retries.attempts: must not be negative`.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.resource.is_empty() {
            write!(f, "{}: ", self.resource)?;
        }
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// All errors found while loading a config: the config is refused as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// Every error, in file and line order.
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// The candidate closest to `word` when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
