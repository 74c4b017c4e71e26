//! Istio durations: `10s`, `1.5s`, `500ms`, `1m`, `1h30m`.
//!
//! Istio's YAML durations are Go duration strings: one or more decimal numbers, each with a unit
//! among `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`, without spaces. Istio then requires a duration to
//! be at least 1 ms and a whole number of milliseconds. [`parse`] checks the Go syntax, lets
//! `humantime` compute the value, and applies Istio's checks on top.

use std::time::Duration;

/// Why a duration string was refused (lowercase, meant to follow the field's path).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty string.
    #[error("empty duration")]
    Empty,
    /// A leading `-`.
    #[error("duration `{0}` must be positive")]
    Negative(String),
    /// Not a Go/Istio duration string.
    #[error("malformed duration `{0}` (expected e.g. `10s`, `1.5s`, `500ms`, `1m`, `1h30m`)")]
    Malformed(String),
    /// Below Istio's minimum of 1 ms.
    #[error("duration `{0}` must be at least 1ms")]
    TooShort(String),
    /// Not a whole number of milliseconds.
    #[error("duration `{0}` must be a whole number of milliseconds")]
    SubMillisecond(String),
}

/// Parses an Istio duration: Go syntax, at least 1 ms, millisecond precision.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(s.to_owned()));
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    let d = if body == "0" {
        // Go's special unitless zero
        Duration::ZERO
    } else {
        let normalized = go_syntax(body).ok_or_else(|| DurationError::Malformed(s.to_owned()))?;
        humantime::parse_duration(&normalized)
            .map_err(|_| DurationError::Malformed(s.to_owned()))?
    };
    if d < Duration::from_millis(1) {
        return Err(DurationError::TooShort(s.to_owned()));
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(DurationError::SubMillisecond(s.to_owned()));
    }
    Ok(d)
}

/// Go's `time.ParseDuration` grammar (sign already removed): one or more `number unit`, with
/// `number` = digits, optionally `.` and digits (at least one digit overall). Returns the
/// components spaced and with a leading `0` before a bare fraction, as humantime reads them.
fn go_syntax(s: &str) -> Option<String> {
    let mut rest = s;
    let mut out = String::with_capacity(s.len() + 8);
    if rest.is_empty() {
        return None;
    }
    // Slicing below is at ASCII-digit counts or after a matched prefix: always char boundaries.
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        // longest unit first: `ms` before `m`
        let unit = ["ms", "ns", "us", "µs", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(if int.is_empty() { "0" } else { int });
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push_str(unit);
    }
    Some(out)
}

/// Formats a duration the way Go prints it, for messages and round trips (`1h30m0s` style is
/// avoided: the shortest exact form among `h`, `m`, `s`, `ms` is used).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn istio_examples() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2000us"), Ok(Duration::from_millis(2)));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("-1s"), Err(DurationError::Negative(_))));
        assert!(matches!(parse("10"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("10 s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("1d"), Err(DurationError::Malformed(_))));
        assert!(matches!(
            parse("ten seconds"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(parse("."), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("0"), Err(DurationError::TooShort(_))));
        assert!(matches!(parse("0s"), Err(DurationError::TooShort(_))));
        assert!(matches!(parse("500us"), Err(DurationError::TooShort(_))));
        assert!(matches!(
            parse("1500us"),
            Err(DurationError::SubMillisecond(_))
        ));
        assert!(matches!(
            parse("99999999999999999999h"),
            Err(DurationError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(ms in 1u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn unit_forms_agree(n in 1u64..100_000) {
            prop_assert_eq!(parse(&format!("{n}ms")), Ok(Duration::from_millis(n)));
            prop_assert_eq!(parse(&format!("{n}s")), Ok(Duration::from_secs(n)));
            prop_assert_eq!(parse(&format!("{n}m")), Ok(Duration::from_secs(n * 60)));
        }

        #[test]
        fn fractions_of_seconds(whole in 0u64..1000, tenths in 1u64..10) {
            let d = parse(&format!("{whole}.{tenths}s"));
            prop_assert_eq!(d, Ok(Duration::from_millis(whole * 1000 + tenths * 100)));
        }

        #[test]
        fn negatives_refused(n in 1u64..1_000_000, unit in prop::sample::select(vec!["ms", "s", "m", "h"])) {
            let text = format!("-{n}{unit}");
            prop_assert!(matches!(parse(&text), Err(DurationError::Negative(_))));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse(&s);
        }

        #[test]
        fn garbage_refused(s in "[a-z ]{1,12}") {
            // letters only (no digits) can never be a duration
            prop_assert!(parse(&s).is_err());
        }
    }
}
