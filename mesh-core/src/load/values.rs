//! YAML values built from the same event pass that indexes the lines (`lines.rs`), so that a
//! file is parsed once. The values are the ones `yaml_serde` gives for the same text: plain
//! scalars resolve by its rules (null, booleans, integers in decimal, `0x`, `0o`, `0b`,
//! floats, `.inf`, `.nan`, else strings; quoted and block scalars are strings). A document
//! with anything else (a tag, an anchor or alias, a complex or duplicate key, an integer
//! beyond 64 bits, deep nesting) is [`Unusual`]: the loader then reads the file with
//! `yaml_serde` as before, so its values and its errors stay exactly `yaml_serde`'s.

use saphyr_parser::{Event, ScalarStyle};
use yaml_serde::{Mapping, Number, Value};

/// A document this builder leaves to `yaml_serde`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unusual;

/// Nesting deeper than this is left to `yaml_serde` (whose own limit is 128).
const MAX_DEPTH: usize = 100;

enum Open {
    Seq(Vec<Value>),
    /// A mapping and the key awaiting its value.
    Map(Mapping, Option<Value>),
}

/// Builds one document's value from its events.
#[derive(Default)]
pub(crate) struct Builder {
    stack: Vec<Open>,
    done: Option<Value>,
}

impl Builder {
    /// Feeds one event of the document (between its start and end).
    pub(crate) fn event(&mut self, event: &Event<'_>) -> Result<(), Unusual> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if *anchor != 0 || tag.is_some() {
                    return Err(Unusual);
                }
                // an empty key (`: v`): libyaml refuses some of these where saphyr does not
                if text.is_empty() && matches!(self.stack.last(), Some(Open::Map(_, None))) {
                    return Err(Unusual);
                }
                let value = match style {
                    ScalarStyle::Plain => resolve_plain(text)?,
                    _ => Value::String(text.to_string()),
                };
                self.value(value)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if *anchor != 0 || tag.is_some() || self.stack.len() >= MAX_DEPTH {
                    return Err(Unusual);
                }
                // a container as a mapping key
                if let Some(Open::Map(_, None)) = self.stack.last() {
                    return Err(Unusual);
                }
                self.stack.push(match event {
                    Event::SequenceStart(..) => Open::Seq(Vec::new()),
                    _ => Open::Map(Mapping::new(), None),
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let value = match self.stack.pop() {
                    Some(Open::Seq(items)) => Value::Sequence(items),
                    Some(Open::Map(map, None)) => Value::Mapping(map),
                    Some(Open::Map(_, Some(_))) | None => return Err(Unusual),
                };
                self.value(value)
            }
            Event::Alias(_) => Err(Unusual),
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => Ok(()),
        }
    }

    /// A complete node: an item, a key, a key's value, or the document's root.
    fn value(&mut self, value: Value) -> Result<(), Unusual> {
        match self.stack.last_mut() {
            None => {
                if self.done.is_some() {
                    return Err(Unusual);
                }
                self.done = Some(value);
            }
            Some(Open::Seq(items)) => items.push(value),
            Some(Open::Map(_, key @ None)) => *key = Some(value),
            Some(Open::Map(map, key @ Some(_))) => {
                // a duplicate key, found when its value is in (one hash per entry)
                if let Some(k) = key.take()
                    && map.insert(k, value).is_some()
                {
                    return Err(Unusual);
                }
            }
        }
        Ok(())
    }

    /// The document's value (null for an empty document).
    pub(crate) fn finish(self) -> Result<Value, Unusual> {
        if !self.stack.is_empty() {
            return Err(Unusual);
        }
        Ok(self.done.unwrap_or(Value::Null))
    }
}

/// A plain scalar as `yaml_serde` resolves it.
fn resolve_plain(s: &str) -> Result<Value, Unusual> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    // every number starts with a digit, a sign or a dot: most scalars (names, hosts, paths)
    // are strings at the first byte, without the five number parsers below
    if !s
        .as_bytes()
        .first()
        .is_some_and(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'.'))
    {
        return Ok(Value::String(s.to_owned()));
    }
    if let Some(n) = unsigned(s) {
        return Ok(Value::Number(Number::from(n)));
    }
    if let Some(n) = negative(s) {
        return Ok(Value::Number(Number::from(n)));
    }
    if wide_integer(s) {
        return Err(Unusual);
    }
    if !leading_zero_digits(s)
        && let Some(f) = float(s)
    {
        return Ok(Value::Number(Number::from(f)));
    }
    Ok(Value::String(s.to_owned()))
}

/// `0123`, `-007`: digits after a leading zero are a string (YAML 1.2), not an octal number.
fn leading_zero_digits(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit())
}

/// `0x`, `0o`, `0b`: the radix and the digits after the prefix.
fn radix_prefixed(s: &str) -> Option<(u32, &str)> {
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return Some((radix, rest));
        }
    }
    None
}

type Radix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

fn unsigned(s: &str) -> Option<u64> {
    unsigned_with(s, u64::from_str_radix)
}

fn negative(s: &str) -> Option<i64> {
    negative_with(s, i64::from_str_radix)
}

/// An integer `yaml_serde` would read as 128 bits: left to it.
fn wide_integer(s: &str) -> bool {
    unsigned_with(s, u128::from_str_radix).is_some()
        || negative_with(s, i128::from_str_radix).is_some()
}

/// `+`-signed or unsigned, decimal or prefixed.
fn unsigned_with<T>(s: &str, parse: Radix<T>) -> Option<T> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if let Some((radix, digits)) = radix_prefixed(body) {
        if digits.starts_with(['+', '-']) {
            return None;
        }
        if let Ok(n) = parse(digits, radix) {
            return Some(n);
        }
    }
    if body.starts_with(['+', '-']) || leading_zero_digits(s) {
        return None;
    }
    parse(body, 10).ok()
}

/// `-`-signed, decimal or prefixed.
fn negative_with<T>(s: &str, parse: Radix<T>) -> Option<T> {
    if let Some(rest) = s.strip_prefix('-')
        && let Some((radix, digits)) = radix_prefixed(rest)
        && let Ok(n) = parse(&format!("-{digits}"), radix)
    {
        return Some(n);
    }
    if leading_zero_digits(s) {
        return None;
    }
    parse(s, 10).ok()
}

fn float(s: &str) -> Option<f64> {
    let body = match s.strip_prefix('+') {
        Some(b) if b.starts_with(['+', '-']) => return None,
        Some(b) => b,
        None => s,
    };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    match s {
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN.copysign(1.0)),
        _ => {}
    }
    body.parse::<f64>().ok().filter(|f| f.is_finite())
}
