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
    // The grammar and value of `str::parse::<f64>`, minus "inf" and "nan" (not numbers a user
    // means) and results out of range.
    crate::decimal::parse(trimmed.as_bytes())
}

/// Formats milliseconds since the Unix epoch as RFC 3339 in UTC with milliseconds,
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: what [`parse_rfc3339_millis`] reads back to the same number (for
/// years 0 to 9999). Used wherever promptflag writes a timestamp (telemetry, the audit log).
pub fn format_rfc3339_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let milliseconds = millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days, the inverse of `days_from_civil` below.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    alloc::format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milliseconds:03}Z",
        of_day / 3600,
        (of_day % 3600) / 60,
        of_day % 60
    )
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
        let parts = SemverParts::parse(text)?;
        let mut pre = Vec::new();
        for id in parts.pre_identifiers() {
            pre.push(match id {
                PreIdentifierRef::Numeric(number) => PreIdentifier::Numeric(number),
                PreIdentifierRef::Alphanumeric(bytes) => {
                    // Identifier bytes are ASCII, so this is the text as written.
                    PreIdentifier::Alphanumeric(bytes.iter().map(|&b| char::from(b)).collect())
                }
            });
        }
        Some(Semver {
            major: parts.major,
            minor: parts.minor,
            patch: parts.patch,
            pre,
        })
    }

    /// How the version written in `text` compares to this one, or `None` when `text` is not a
    /// version: `Semver::parse(text).map(|v| v.cmp(self))`, without building the version, so
    /// evaluating a semver condition allocates nothing.
    pub fn compare_text(&self, text: &str) -> Option<Ordering> {
        self.compare_bytes(text.as_bytes())
    }

    /// [`Semver::compare_text`], given the text's bytes from wherever they are cheapest to read
    /// (`bytes` must equal `text.as_bytes()`; the text itself is read only off the usual path).
    /// The usual text, `MAJOR.MINOR.PATCH` and nothing else, is compared inline; the rest in
    /// [`Semver::compare_unusual`].
    #[inline(always)]
    pub(crate) fn compare_bytes(&self, bytes: &[u8]) -> Option<Ordering> {
        match plain_core(bytes) {
            Some(((major, minor, patch), end)) if end == bytes.len() => Some(
                (major, minor, patch)
                    .cmp(&(self.major, self.minor, self.patch))
                    .then(
                        // A release sorts after its pre-releases.
                        if self.pre.is_empty() {
                            Ordering::Equal
                        } else {
                            Ordering::Greater
                        },
                    ),
            ),
            core => self.compare_unusual(bytes, core),
        }
    }

    /// [`Semver::compare_bytes`] for a text that is not a plain core alone: `core` is what
    /// [`plain_core`] made of it.
    #[inline(never)]
    fn compare_unusual(
        &self,
        bytes: &[u8],
        core: Option<((u64, u64, u64), usize)>,
    ) -> Option<Ordering> {
        let parts = match core {
            // A pre-release or build after a plain core: read on from there. Anything the
            // short route does not accept whole (white space after it, say) goes the long way.
            Some(((major, minor, patch), end)) => SemverParts::after_core(bytes, end)
                .map(|pre| SemverParts {
                    major,
                    minor,
                    patch,
                    pre,
                })
                .or_else(|| SemverParts::parse(core::str::from_utf8(bytes).ok()?))?,
            None => SemverParts::parse(core::str::from_utf8(bytes).ok()?)?,
        };
        Some(
            (parts.major, parts.minor, parts.patch)
                .cmp(&(self.major, self.minor, self.patch))
                .then_with(|| match (parts.pre.is_empty(), self.pre.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => compare_pre_text(parts.pre_identifiers(), &self.pre),
                }),
        )
    }
}

/// `MAJOR.MINOR.PATCH` of numeric identifiers at the start of the text, and where it ends:
/// `None` unless the core is followed by the end, `-` or `+`. A prefix (`v`, `=`) or white
/// space gets `None` here; [`SemverParts::parse`] strips those and then reads the core with this.
#[inline(always)]
fn plain_core(bytes: &[u8]) -> Option<((u64, u64, u64), usize)> {
    let mut cursor = 0;
    let major = numeric_at(bytes, &mut cursor)?;
    expect(bytes, &mut cursor, b'.')?;
    let minor = numeric_at(bytes, &mut cursor)?;
    expect(bytes, &mut cursor, b'.')?;
    let patch = numeric_at(bytes, &mut cursor)?;
    matches!(bytes.get(cursor), None | Some(b'-' | b'+')).then_some(((major, minor, patch), cursor))
}

/// A version as written, checked but not built: the pre-release stays text, read on demand.
struct SemverParts<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    /// The dot-separated pre-release identifiers, each checked; empty when there are none.
    pre: &'a [u8],
}

#[derive(Clone, Copy)]
enum PreIdentifierRef<'a> {
    Numeric(u64),
    Alphanumeric(&'a [u8]),
}

impl<'a> SemverParts<'a> {
    // One pass over the bytes, because this runs for every semver condition evaluated. It
    // accepts exactly what splitting at the first `+`, then at the first `-`, then at every `.`
    // accepts: `MAJOR.MINOR.PATCH`, then optionally `-` and dot-separated identifiers (those of
    // digits numeric), then optionally `+` and dot-separated identifiers, then nothing.
    fn parse(text: &'a str) -> Option<SemverParts<'a>> {
        let bytes = text.as_bytes();
        // Only Unicode white space is trimmed, and it never starts with these bytes or ends
        // with an ASCII letter or digit, so the usual version skips the trim.
        let plain = matches!(bytes.first(), Some(b) if b.is_ascii_alphanumeric() || *b == b'=')
            && matches!(bytes.last(), Some(b) if b.is_ascii_alphanumeric());
        let bytes = if plain { bytes } else { text.trim().as_bytes() };
        let mut cursor = 0;
        if bytes.first() == Some(&b'=') {
            cursor = 1;
        }
        if bytes.get(cursor) == Some(&b'v') {
            cursor += 1;
        }
        let ((major, minor, patch), end) = plain_core(bytes.get(cursor..)?)?;
        let pre = SemverParts::after_core(bytes, cursor + end)?;
        Some(SemverParts {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Reads what follows the core, from `cursor`: optionally `-` and the pre-release
    /// identifiers, then optionally `+` and build identifiers, then the end of the text. Returns
    /// the pre-release (empty when there is none).
    fn after_core(bytes: &'a [u8], mut cursor: usize) -> Option<&'a [u8]> {
        let mut pre: &[u8] = &[];
        if bytes.get(cursor) == Some(&b'-') {
            let start = cursor + 1;
            cursor = identifiers_end(bytes, start, true)?;
            pre = &bytes[start..cursor];
        }
        if bytes.get(cursor) == Some(&b'+') {
            cursor = identifiers_end(bytes, cursor + 1, false)?;
        }
        (cursor == bytes.len()).then_some(pre)
    }

    /// The pre-release identifiers; only called on parts that [`SemverParts::parse`] checked.
    fn pre_identifiers(&self) -> impl Iterator<Item = PreIdentifierRef<'a>> + use<'a> {
        let pre = self.pre;
        pre.split(|&b| b == b'.')
            .filter(move |_| !pre.is_empty())
            // Checked identifiers of digits always read as numbers; the rest are not numbers.
            .map(|id| match numeric_identifier(id) {
                Some(number) => PreIdentifierRef::Numeric(number),
                None => PreIdentifierRef::Alphanumeric(id),
            })
    }
}

/// Reads a numeric identifier (digits up to the next non-digit) starting at `cursor`: what
/// [`numeric_identifier`] accepts, in the same pass that finds its end. Inlined, so the value
/// and the cursor stay in registers.
#[inline(always)]
fn numeric_at(bytes: &[u8], cursor: &mut usize) -> Option<u64> {
    let start = *cursor;
    let mut value: u64 = 0;
    while let Some(&byte) = bytes.get(*cursor) {
        if !byte.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
        *cursor += 1;
    }
    let digits = *cursor - start;
    // Empty, or a leading zero, is not a numeric identifier.
    if digits == 0 || (digits > 1 && bytes[start] == b'0') {
        return None;
    }
    Some(value)
}

#[inline(always)]
fn expect(bytes: &[u8], cursor: &mut usize, byte: u8) -> Option<()> {
    (bytes.get(*cursor) == Some(&byte)).then(|| *cursor += 1)
}

/// Checks dot-separated identifiers from `start`, each non-empty (and, when `numbers_checked`,
/// each of digits a valid numeric identifier); returns where they end.
fn identifiers_end(bytes: &[u8], start: usize, numbers_checked: bool) -> Option<usize> {
    let mut cursor = start;
    loop {
        let id_start = cursor;
        let mut all_digits = true;
        while let Some(&byte) = bytes.get(cursor) {
            let class = IDENTIFIER_BYTES[usize::from(byte)];
            if class == 0 {
                break;
            }
            all_digits &= class == DIGIT;
            cursor += 1;
        }
        if cursor == id_start {
            return None;
        }
        if numbers_checked && all_digits {
            numeric_identifier(&bytes[id_start..cursor])?;
        }
        if bytes.get(cursor) != Some(&b'.') {
            return Some(cursor);
        }
        cursor += 1;
    }
}

/// The class of each byte in a pre-release or build identifier: [`DIGIT`], [`OTHER`] (a letter
/// or '-'), or 0 for a byte that ends the identifier. One load per byte, where testing the
/// three ranges costs a dozen instructions.
const IDENTIFIER_BYTES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let character = byte as u8;
        classes[byte] = if character.is_ascii_digit() {
            DIGIT
        } else if character.is_ascii_alphabetic() || character == b'-' {
            OTHER
        } else {
            0
        };
        byte += 1;
    }
    classes
};
const DIGIT: u8 = 1;
const OTHER: u8 = 2;

/// Digits without a leading zero that fit a `u64`.
fn numeric_identifier(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if text.len() > 1 && text[0] == b'0' {
        return None;
    }
    text.iter().try_fold(0u64, |value, &digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
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

fn compare_pre_text<'a>(
    left: impl Iterator<Item = PreIdentifierRef<'a>>,
    right: &[PreIdentifier],
) -> Ordering {
    let mut count = 0;
    for a in left {
        let Some(b) = right.get(count) else {
            // Every shared identifier is equal and the text has more: it sorts after.
            return Ordering::Greater;
        };
        count += 1;
        let order = match (a, b) {
            (PreIdentifierRef::Numeric(x), PreIdentifier::Numeric(y)) => x.cmp(y),
            (PreIdentifierRef::Numeric(_), PreIdentifier::Alphanumeric(_)) => Ordering::Less,
            (PreIdentifierRef::Alphanumeric(_), PreIdentifier::Numeric(_)) => Ordering::Greater,
            (PreIdentifierRef::Alphanumeric(x), PreIdentifier::Alphanumeric(y)) => {
                x.cmp(y.as_bytes())
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    count.cmp(&right.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting_reads_back() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_747_304_625_500),
            "2025-05-15T10:23:45.500Z"
        );
        assert_eq!(
            format_rfc3339_millis(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        // Every day from 1900 to 2200 at a varying time of day, and back.
        let day = 86_400_000i64;
        let mut millis = -2_208_988_800_000i64;
        while millis < 7_258_118_400_000 {
            let text = format_rfc3339_millis(millis);
            assert_eq!(parse_rfc3339_millis(&text), Some(millis), "{text}");
            millis += day + 3_600_007;
        }
    }

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
    fn compare_text_agrees_with_parse_then_cmp() {
        let versions = [
            "1.0.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0-rc.1.1",
            "1.0.0-0",
            "1.0.0-00",
            "1.0.0-x-y",
            "2.4.0",
            "2.10.3",
            "3.1.0-beta.2",
            "v1.2.3+build.5",
            "=1.2.3",
            " 1.2.3 ",
            "1.2",
            "01.2.3",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "1.2.3-+",
            "18446744073709551615.0.0",
            "18446744073709551616.0.0",
            "1.0.0-18446744073709551616",
            "1.2.3.4",
            "",
            "x.y.z",
            "0.0.0",
            "0.1.0",
            "1.0.0-alpha.0",
            "10.20.30",
            "1.02.3",
            "1.2.03",
            "1..3",
            ".1.2",
            "1.2.",
            "1.2.3 ",
            "999999999999999999.0.0",
            "1.2.999999999999999999",
            "1.2.3-0",
            "1.2.3-beta ",
            "1.2.3+build",
            "1.2.3-rc.1+build.7",
            "1.2.3-+x",
            "1.2.3-01",
            "1.2.3-a.-b",
            "01.2.3-beta",
        ];
        for literal in versions {
            let Some(version) = Semver::parse(literal) else {
                continue;
            };
            for text in versions {
                let expected = Semver::parse(text).map(|parsed| parsed.cmp(&version));
                assert_eq!(
                    version.compare_text(text),
                    expected,
                    "{text:?} vs {literal:?}"
                );
            }
        }
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
