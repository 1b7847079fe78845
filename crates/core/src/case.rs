//! `str::to_lowercase`, exactly, from compact tables.
//!
//! The standard library's version links about 15 KB of Unicode tables and code into every Wasm
//! build (the Worker's upload is budgeted). [`to_lowercase`] returns the same string for every
//! input, final sigma included, from three smaller tables in `case_tables.rs`:
//!
//! - `LOWER_RUNS`: runs of characters whose lowercase is one character at a fixed distance,
//!   every character (`A`–`Z`) or every other one (`Ā`, `Ă`, … in Latin Extended-A);
//! - `SIGMA_SKIP` and `SIGMA_STOP`: the ranges Unicode's Final_Sigma rule skips (Case_Ignorable)
//!   and the ranges that end it (Cased and not Case_Ignorable).
//!
//! The tables are generated from the standard library itself, by the ignored test
//! `case::tests::write_tables` (`cargo test -p promptflag-core --lib -- --ignored write_tables`),
//! and a test checks every character against `char::to_lowercase` and the final-sigma rule, so a
//! Rust release with a newer Unicode shows up as a failing test, not as a silent difference.

use alloc::string::String;

use crate::case_tables::{LOWER_RUNS, SIGMA_SKIP, SIGMA_STOP};

/// The same string as `text.to_lowercase()`.
pub(crate) fn to_lowercase(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    for (index, c) in text.char_indices() {
        match c {
            'Σ' => out.push(final_sigma(&text[..index], &text[index + 'Σ'.len_utf8()..])),
            'İ' => out.push_str("i\u{307}"),
            _ => out.push(lower(c)),
        }
    }
    out
}

/// The lowercase of `c` when it is one character (all but `İ`).
fn lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let code = u32::from(c);
    // The last run starting at or before `code`.
    let at = LOWER_RUNS.partition_point(|&run| (run & 0x1F_FFFF) as u32 <= code);
    let Some(&run) = at.checked_sub(1).and_then(|i| LOWER_RUNS.get(i)) else {
        return c;
    };
    let start = (run & 0x1F_FFFF) as u32;
    let count = ((run >> 21) & 0xFF) as u32 + 1;
    let stride = if run & (1 << 29) != 0 { 2 } else { 1 };
    let delta = (run >> 32) as u32;
    let offset = code - start;
    if offset >= count * stride || !offset.is_multiple_of(stride) {
        return c;
    }
    char::from_u32(code.wrapping_add(delta)).unwrap_or(c)
}

/// `ς` when the `Σ` between `before` and `after` ends a word (Unicode's Final_Sigma), else `σ`.
fn final_sigma(before: &str, after: &str) -> char {
    if cased_after_ignorable(before.chars().rev()) && !cased_after_ignorable(after.chars()) {
        'ς'
    } else {
        'σ'
    }
}

/// Whether the first character that is not Case_Ignorable is Cased.
fn cased_after_ignorable(mut chars: impl Iterator<Item = char>) -> bool {
    chars
        .find(|&c| !in_ranges(&SIGMA_SKIP, c))
        .is_some_and(|c| in_ranges(&SIGMA_STOP, c))
}

/// Whether `c` is in one of `ranges`, each `start | (length - 1) << 21`, sorted and disjoint.
fn in_ranges(ranges: &[u32], c: char) -> bool {
    let code = u32::from(c);
    let at = ranges.partition_point(|&range| range & 0x1F_FFFF <= code);
    at.checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&range| code - (range & 0x1F_FFFF) <= range >> 21)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    fn all_chars() -> impl Iterator<Item = char> {
        (0..=0x10_FFFF).filter_map(char::from_u32)
    }

    /// How the standard library's final-sigma rule classes `c`: 2 when it ends the rule
    /// (Cased, not Case_Ignorable), 1 when the rule skips it (Case_Ignorable), 0 otherwise.
    /// Read from `str::to_lowercase` itself, so the tables follow the standard library.
    fn sigma_class(c: char) -> u8 {
        let ends = format!("{c}Σ").to_lowercase().ends_with('ς');
        let skipped_or_ends = format!("A{c}Σ").to_lowercase().ends_with('ς');
        match (ends, skipped_or_ends) {
            (true, _) => 2,
            (false, true) => 1,
            (false, false) => 0,
        }
    }

    #[test]
    fn every_character_lowercases_as_the_standard_library_does() {
        for c in all_chars() {
            let text = format!("{c}");
            assert_eq!(
                to_lowercase(&text),
                text.to_lowercase(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn every_character_has_the_standard_librarys_final_sigma_class() {
        for c in all_chars() {
            let ours = if in_ranges(&SIGMA_SKIP, c) {
                1
            } else if in_ranges(&SIGMA_STOP, c) {
                2
            } else {
                0
            };
            assert_eq!(ours, sigma_class(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn sigma_in_context_lowercases_as_the_standard_library_does() {
        let pieces = [
            "Σ",
            "ΣΑΣ",
            "Α",
            "α",
            "'",
            ".",
            " ",
            "\u{301}",
            "\u{345}",
            "ǅ",
            "A",
            "1",
            "İ",
            "ß",
            "ᾼ",
            "\u{10400}",
            "Ω",
            "-",
            "\u{200D}",
            "a\u{301}",
        ];
        let mut text = String::new();
        // Every sequence of up to four pieces.
        let n = pieces.len();
        for code in 0..n * n * n * n {
            text.clear();
            let mut rest = code;
            for _ in 0..4 {
                text.push_str(pieces[rest % n]);
                rest /= n;
            }
            assert_eq!(to_lowercase(&text), text.to_lowercase(), "{text:?}");
        }
        for text in [
            "",
            "ÀÉÎÕÜ",
            "ΟΔΟΣ ΟΔΟΣ.",
            "Σ",
            "AΣ",
            "AΣB",
            "ǅΣ",
            "Hello WORLD ΣΙΣΥΦΟΣ",
        ] {
            assert_eq!(to_lowercase(text), text.to_lowercase(), "{text:?}");
        }
    }

    /// Writes `case_tables.rs` from the standard library's Unicode data.
    #[test]
    #[ignore = "regenerates src/case_tables.rs; run by hand after a Rust upgrade"]
    fn write_tables() {
        extern crate std;
        // Lowercase runs.
        let mapped: Vec<(u32, u32)> = all_chars()
            .filter(|&c| c != 'İ')
            .filter_map(|c| {
                let mut lower = c.to_lowercase();
                let first = lower.next()?;
                assert!(
                    lower.next().is_none(),
                    "U+{:04X} lowercases to several",
                    u32::from(c)
                );
                (first != c).then(|| (u32::from(c), u32::from(first).wrapping_sub(u32::from(c))))
            })
            .collect();
        let is_mapped = |code: u32| mapped.binary_search_by_key(&code, |&(c, _)| c).is_ok();
        let mut runs: Vec<u64> = Vec::new();
        let mut i = 0;
        while i < mapped.len() {
            let (start, delta) = mapped[i];
            let mut best = (1_usize, 1_u32);
            for stride in [1_u32, 2] {
                let mut len = 1;
                while len < 256
                    && i + len < mapped.len()
                    && mapped[i + len] == (start + stride * len as u32, delta)
                    && (stride == 1 || !is_mapped(start + stride * len as u32 - 1))
                {
                    len += 1;
                }
                if len > best.0 {
                    best = (len, stride);
                }
            }
            let (len, stride) = best;
            runs.push(
                u64::from(start)
                    | ((len as u64 - 1) << 21)
                    | (u64::from(stride == 2) << 29)
                    | (u64::from(delta) << 32),
            );
            i += len;
        }
        // Final-sigma ranges.
        let ranges = |class: u8| {
            let mut out: Vec<u32> = Vec::new();
            let mut open: Option<(u32, u32)> = None;
            for c in all_chars() {
                let code = u32::from(c);
                if sigma_class(c) != class {
                    continue;
                }
                open = match open {
                    Some((start, end)) if end + 1 == code && code - start < 2048 => {
                        Some((start, code))
                    }
                    Some((start, end)) => {
                        out.push(start | ((end - start) << 21));
                        Some((code, code))
                    }
                    None => Some((code, code)),
                };
            }
            if let Some((start, end)) = open {
                out.push(start | ((end - start) << 21));
            }
            out
        };
        let list = |values: Vec<alloc::string::String>| {
            let mut text = String::new();
            for chunk in values.chunks(6) {
                text.push_str("   ");
                for value in chunk {
                    text.push(' ');
                    text.push_str(value);
                    text.push(',');
                }
                text.push('\n');
            }
            text
        };
        let runs_text = list(runs.iter().map(|r| format!("0x{r:016X}")).collect());
        let skip = ranges(1);
        let stop = ranges(2);
        let skip_text = list(skip.iter().map(|r| format!("0x{r:08X}")).collect());
        let stop_text = list(stop.iter().map(|r| format!("0x{r:08X}")).collect());
        let source = format!(
            "//! Generated by `case::tests::write_tables` from the standard library's Unicode data\n\
             //! (`char::to_lowercase` and `str::to_lowercase`'s final sigma); do not edit by hand.\n\n\
             /// Lowercase runs: `start | (count - 1) << 21 | every_other << 29 | delta << 32`.\n\
             #[rustfmt::skip]\n\
             pub(crate) static LOWER_RUNS: [u64; {}] = [\n{runs_text}];\n\n\
             /// Case_Ignorable ranges: `start | (length - 1) << 21`.\n\
             #[rustfmt::skip]\n\
             pub(crate) static SIGMA_SKIP: [u32; {}] = [\n{skip_text}];\n\n\
             /// Cased and not Case_Ignorable ranges: `start | (length - 1) << 21`.\n\
             #[rustfmt::skip]\n\
             pub(crate) static SIGMA_STOP: [u32; {}] = [\n{stop_text}];\n",
            runs.len(),
            skip.len(),
            stop.len(),
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/case_tables.rs");
        std::fs::write(path, source).expect("writing case_tables.rs");
    }
}
