//! Parsers for the literals conditions compare: numbers, RFC 3339 dates and semantic versions.
//! They follow Unleash's constraint semantics: a context value that does not parse makes the
//! condition false (before `negate`); a ruleset literal that does not parse is a validation error.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Parses a decimal number as Unleash does (`Number(x)` minus its quirks): surrounding
/// whitespace is allowed, an empty string and non-finite results are not.
pub fn parse_number(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    // Rust accepts "inf" and "nan", which are not numbers a user means.
    let value: f64 = trimmed.parse().ok()?;
    value.is_finite().then_some(value)
}

/// Parses an RFC 3339 timestamp (`2025-05-15T10:23:45Z`, `2025-05-15T12:23:45.5+02:00`) into
/// milliseconds since the Unix epoch. Lowercase `t`/`z` and a space separator are accepted, as
/// RFC 3339 §5.6 allows; sub-millisecond digits are truncated.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let year = digits(bytes, 0, 4)? as i64;
    let month = digits(bytes, 5, 2)?;
    let day = digits(bytes, 8, 2)?;
    let hour = digits(bytes, 11, 2)?;
    let minute = digits(bytes, 14, 2)?;
    let second = digits(bytes, 17, 2)?;
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // A leap second (60) is legal RFC 3339; it is read as the last second of the minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut index = 19;
    let mut millis = 0u32;
    if bytes[index] == b'.' {
        index += 1;
        let start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            if index - start < 3 {
                millis = millis * 10 + u32::from(bytes[index] - b'0');
            }
            index += 1;
        }
        let count = index - start;
        if count == 0 {
            return None;
        }
        for _ in count..3 {
            millis *= 10;
        }
    }
    let offset_minutes: i64 = match bytes.get(index)? {
        b'Z' | b'z' if index + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if index + 6 == bytes.len() => {
            if bytes[index + 3] != b':' {
                return None;
            }
            let hours = digits(bytes, index + 1, 2)?;
            let minutes = digits(bytes, index + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = i64::from(hours * 60 + minutes);
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400
        + i64::from(hour) * 3_600
        + i64::from(minute) * 60
        + i64::from(second.min(59))
        - offset_minutes * 60;
    Some(seconds * 1_000 + i64::from(millis))
}

fn digits(bytes: &[u8], start: usize, count: usize) -> Option<u32> {
    let slice = bytes.get(start..start + count)?;
    let mut value = 0u32;
    for byte in slice {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil: days since 1970-01-01 in the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A semantic version (semver.org 2.0.0). Build metadata is parsed and ignored in comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<PreIdentifier>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PreIdentifier {
    Numeric(u64),
    Alphanumeric(String),
}

impl Semver {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, with an optional leading `v` or `=` and
    /// surrounding whitespace, as node-semver (which Unleash uses) does in strict mode.
    pub fn parse(text: &str) -> Option<Semver> {
        let text = text.trim();
        let text = text.strip_prefix('=').unwrap_or(text);
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, build) = match text.split_once('+') {
            Some((head, build)) => (head, Some(build)),
            None => (text, None),
        };
        if let Some(build) = build {
            if !build
                .split('.')
                .all(|id| !id.is_empty() && id.bytes().all(is_identifier_byte))
            {
                return None;
            }
        }
        let (core, pre) = match text.split_once('-') {
            Some((head, pre)) => (head, Some(pre)),
            None => (text, None),
        };
        let mut numbers = core.split('.');
        let major = numeric_identifier(numbers.next()?)?;
        let minor = numeric_identifier(numbers.next()?)?;
        let patch = numeric_identifier(numbers.next()?)?;
        if numbers.next().is_some() {
            return None;
        }
        let mut identifiers = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                if id.is_empty() || !id.bytes().all(is_identifier_byte) {
                    return None;
                }
                if id.bytes().all(|b| b.is_ascii_digit()) {
                    identifiers.push(PreIdentifier::Numeric(numeric_identifier(id)?));
                } else {
                    identifiers.push(PreIdentifier::Alphanumeric(String::from(id)));
                }
            }
        }
        Some(Semver {
            major,
            minor,
            patch,
            pre: identifiers,
        })
    }
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-'
}

fn numeric_identifier(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

impl Ord for Semver {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                // A pre-release sorts before its release.
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Semver {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn compare_pre(left: &[PreIdentifier], right: &[PreIdentifier]) -> Ordering {
    for (a, b) in left.iter().zip(right) {
        let order = match (a, b) {
            (PreIdentifier::Numeric(x), PreIdentifier::Numeric(y)) => x.cmp(y),
            (PreIdentifier::Numeric(_), PreIdentifier::Alphanumeric(_)) => Ordering::Less,
            (PreIdentifier::Alphanumeric(_), PreIdentifier::Numeric(_)) => Ordering::Greater,
            (PreIdentifier::Alphanumeric(x), PreIdentifier::Alphanumeric(y)) => {
                x.as_bytes().cmp(y.as_bytes())
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_epoch_values() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2025-05-15T10:23:45Z"),
            Some(1_747_304_625_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-05-15T12:23:45.5+02:00"),
            Some(1_747_304_625_500)
        );
        assert_eq!(
            parse_rfc3339_millis("2000-02-29T00:00:00z"),
            Some(951_782_400_000)
        );
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_rfc3339_millis("2001-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_millis("2025-05-15"), None);
        assert_eq!(parse_rfc3339_millis("2025-05-15T10:23:45"), None);
        assert_eq!(parse_rfc3339_millis("2025-05-15T10:23:45+0200"), None);
    }

    #[test]
    fn semver_orders_prereleases_before_releases() {
        let v = |s| Semver::parse(s).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
        assert!(v("1.0.0-beta.2") < v("1.0.0-beta.11"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("v1.2.3+build.5"), v("1.2.3"));
        assert!(Semver::parse("1.2").is_none());
        assert!(Semver::parse("01.2.3").is_none());
        assert!(Semver::parse("1.2.3-").is_none());
    }

    #[test]
    fn numbers_reject_empty_and_non_finite() {
        assert_eq!(parse_number(" 12.5 "), Some(12.5));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("nan"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("1e3"), Some(1000.0));
    }
}
