//! The Prometheus text exposition format (0.0.4), read into samples.
//!
//! Written here rather than taken from a crate: the one maintained-looking parser on crates.io
//! (`prometheus-parse`) pulls `chrono` and `regex` for what is about a hundred lines, and the
//! dashboard needs only names, labels and values. `# HELP` / `# TYPE` lines and comments are
//! skipped (a histogram's series are recognised by their `_bucket` suffix and `le` label);
//! timestamps after the value are accepted and ignored; a malformed line is skipped and counted,
//! so one odd line never hides the rest of a scrape.

use std::collections::BTreeMap;

#[cfg(test)]
mod tests;

/// One sample: a metric name, its labels, its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name, e.g. `istio_requests_total`.
    pub name: String,
    /// Label names to values (unescaped).
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or `""` when absent (as PromQL treats a missing label).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// A parsed exposition: the samples, and how many lines could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Samples in the order they appeared.
    pub samples: Vec<Sample>,
    /// Lines that were neither comments, blank, nor a well-formed sample.
    pub skipped: usize,
}

/// Parses a text exposition.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(sample) => out.samples.push(sample),
            None => out.skipped += 1,
        }
    }
    out
}

/// `name{label="value",...} value [timestamp]`.
fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail.trim_start();
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = parse_value(fields.next()?)?;
    // An optional timestamp (milliseconds), then nothing.
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `a="x",b="y"}` (the opening brace already consumed); returns the labels and what
/// follows the closing brace.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(tail) = s.strip_prefix('}') {
            return Some((labels, tail));
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let (value, tail) = parse_quoted(s)?;
        labels.insert(name.to_owned(), value);
        s = tail.trim_start();
        if let Some(tail) = s.strip_prefix(',') {
            s = tail;
        } else if !s.starts_with('}') {
            return None;
        }
    }
}

/// Reads an escaped label value up to its closing quote (`\\`, `\"` and `\n` escapes).
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}
