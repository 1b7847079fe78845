//! The compiled ruleset: validated once, then read by every evaluation. Indices replace names,
//! literals are parsed, lists are sorted for binary search, and seeds carry their separator.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use serde_json::Value;

use crate::bucket::Lanes;
use crate::literal::Semver;
use crate::model::FlagKind;

/// A prompt version the ruleset can serve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PromptMeta {
    /// The content id (64 lowercase hex digits): the prompt version's identity, body and model
    /// configuration together; the key of the ruleset's `prompts`.
    pub content_id: String,
    /// The SHA-256 of the body (64 lowercase hex digits), which names the body in KV.
    pub hash: String,
    /// The prompt family's id.
    pub id: String,
    /// The semantic version.
    pub version: String,
    /// The model name.
    pub model: String,
    /// Model parameters, a JSON object.
    pub parameters: Value,
    /// The output JSON schema, when the version declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The version's lifecycle status (`draft`, `canary`, `production`, `archived`), when the
    /// ruleset states it. Not part of the value a prompt flag serves (every runtime serves the
    /// same object, docs/ruleset.md): it is for the admin authority's draft gate.
    #[serde(skip)]
    pub status: Option<String>,
}

/// A validated ruleset, ready to evaluate. Build it with [`Ruleset::from_json`] or
/// [`crate::compile`].
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) schema: u32,
    pub(crate) environment: String,
    pub(crate) revision: u64,
    pub(crate) source: String,
    /// Sorted by content id.
    pub(crate) prompts: Vec<PromptMeta>,
    pub(crate) segments: Vec<Segment>,
    /// Sorted by key.
    pub(crate) flags: Vec<Flag>,
    /// Finds a flag by key without comparing keys along the way.
    pub(crate) flag_index: FlagIndex,
}

impl Ruleset {
    /// The format version.
    pub fn schema(&self) -> u32 {
        self.schema
    }

    /// The environment this ruleset serves.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The revision number.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The git commit it was built from (empty when unknown).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every prompt version, sorted by content id.
    pub fn prompts(&self) -> &[PromptMeta] {
        &self.prompts
    }

    /// The prompt version with this content id.
    pub fn prompt(&self, content_id: &str) -> Option<&PromptMeta> {
        self.prompts
            .binary_search_by(|prompt| prompt.content_id.as_str().cmp(content_id))
            .ok()
            .map(|index| &self.prompts[index])
    }

    /// The flag keys, sorted.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|flag| flag.key.as_str())
    }

    /// The kind of a flag, if it exists.
    pub fn flag_kind(&self, key: &str) -> Option<FlagKind> {
        self.flag(key).map(|flag| flag.kind)
    }

    pub(crate) fn flag(&self, key: &str) -> Option<&Flag> {
        self.flag_index.find(&self.flags, key)
    }

    /// The names of the context attributes that evaluating the flag `key` can read, sorted and
    /// without repeats; `None` when no flag has that key. An evaluation reads nothing else of a
    /// context, so a context holding only these attributes gets the same answer as the whole
    /// one, and a flag that reads none (no rules and a fixed default, or disabled) gets the
    /// same answer for every context. Date conditions on `currentTime` read the caller's clock
    /// when the context lacks it; the clock is not an attribute and is not listed.
    pub fn attributes_read(&self, key: &str) -> Option<Vec<&str>> {
        let flag = self.flag(key)?;
        let mut names: Vec<&str> = Vec::new();
        if flag.enabled {
            let mut segments_seen: Vec<usize> = Vec::new();
            for rule in &flag.rules {
                self.conditions_read(&rule.conditions, &mut names, &mut segments_seen);
                serve_reads(&rule.serve, &mut names);
            }
            serve_reads(&flag.default, &mut names);
        }
        names.sort_unstable();
        names.dedup();
        Some(names)
    }

    fn conditions_read<'r>(
        &'r self,
        conditions: &'r [Condition],
        names: &mut Vec<&'r str>,
        segments_seen: &mut Vec<usize>,
    ) {
        for condition in conditions {
            // `in_segment` names no attribute of its own: it reads the segments' attributes.
            let Test::InSegment(targets) = &condition.test else {
                names.push(&condition.attribute.text);
                continue;
            };
            for &index in targets {
                if segments_seen.contains(&index) {
                    continue;
                }
                segments_seen.push(index);
                if let Some(segment) = self.segments.get(index) {
                    names.push(&segment.match_by.text);
                    self.conditions_read(&segment.conditions, names, segments_seen);
                }
            }
        }
    }
}

/// The attribute a serve reads: a split's unit.
fn serve_reads<'r>(serve: &'r Serve, names: &mut Vec<&'r str>) {
    if let Serve::Split(split) = serve {
        names.push(&split.bucket_by.text);
    }
}

/// An open-addressing hash table from flag key to position in `Ruleset::flags`. A lookup hashes
/// the key once and usually reads one slot, where a binary search over the sorted keys compares
/// strings at every step (and that dominated evaluating a simple flag).
#[derive(Debug, Clone, Default)]
pub(crate) struct FlagIndex {
    /// `(key_hash(key), position + 1)`, 0 marking an empty slot; a power of two long, at most
    /// half full, so probe runs stay short.
    slots: Vec<(u64, u32)>,
}

impl FlagIndex {
    pub(crate) fn new(flags: &[Flag]) -> FlagIndex {
        let capacity = (flags.len() * 2).next_power_of_two().max(2);
        let mut slots = alloc::vec![(0u64, 0u32); capacity];
        let mask = capacity - 1;
        for (position, flag) in flags.iter().enumerate() {
            let hash = key_hash(flag.key.as_bytes());
            let mut slot = hash as usize & mask;
            while slots[slot].1 != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = (hash, position as u32 + 1);
        }
        FlagIndex { slots }
    }

    fn find<'f>(&self, flags: &'f [Flag], key: &str) -> Option<&'f Flag> {
        let mask = self.slots.len().checked_sub(1)?;
        let hash = key_hash(key.as_bytes());
        let mut slot = hash as usize & mask;
        // The table is never full, so the probe meets an empty slot.
        loop {
            let (entry_hash, entry) = self.slots[slot];
            if entry == 0 {
                return None;
            }
            if entry_hash == hash {
                // Two keys may share a hash; the key itself decides.
                let flag = flags.get(entry as usize - 1)?;
                if keys_equal(&flag.key, key) {
                    return Some(flag);
                }
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// A hash of a flag key for [`FlagIndex`]: a few word loads and one wide multiplication
/// (wyhash's folded multiply), several times cheaper than `xxh3_64` for keys this short. Its
/// quality only decides how often two slots are probed; the key itself confirms every hit,
/// and the table's contents come from the ruleset, not from requests.
#[inline]
pub(crate) fn key_hash(bytes: &[u8]) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    const SECRET: u64 = 0xA076_1D64_78BD_642F;
    let length = bytes.len();
    let (mut a, b) = if length >= 8 {
        (le_word_at(bytes, 0), le_word_at(bytes, length - 8))
    } else if length >= 4 {
        (
            u64::from(le_u32_at(bytes, 0)),
            u64::from(le_u32_at(bytes, length - 4)),
        )
    } else if length > 0 {
        let spread = u64::from(bytes[0])
            | u64::from(bytes[length / 2]) << 8
            | u64::from(bytes[length - 1]) << 16;
        (spread, 0)
    } else {
        (0, 0)
    };
    // Keys over sixteen bytes fold in every word between the first and the last.
    let mut at = 8;
    while at + 8 < length {
        a = (a ^ le_word_at(bytes, at))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(31);
        at += 8;
    }
    let product = u128::from(a ^ MULTIPLIER) * u128::from(b ^ SECRET ^ length as u64);
    (product as u64) ^ ((product >> 64) as u64)
}

#[inline(always)]
fn le_word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline(always)]
fn le_u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// `a.cmp(b)`, for binary searches over long lists: the same lexicographic byte order,
/// compared eight bytes at a time in registers rather than through a call to the C library's
/// `memcmp`, which costs more than the comparison itself for keys this short.
pub(crate) fn compare_keys(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.len().min(b.len());
    let mut index = 0;
    if common >= 8 {
        loop {
            // The last word overlaps the one before; its leading bytes are equal on both
            // sides, so comparing it again still finds the first difference.
            let at = index.min(common - 8);
            let (left, right) = (word_at(a, at), word_at(b, at));
            if left != right {
                return left.cmp(&right);
            }
            if at + 8 == common {
                return a.len().cmp(&b.len());
            }
            index += 8;
        }
    }
    while index < common {
        if a[index] != b[index] {
            return a[index].cmp(&b[index]);
        }
        index += 1;
    }
    a.len().cmp(&b.len())
}

/// `a == b` for the short names and values evaluation compares: lengths first, then the bytes
/// in at most a few overlapping loads, with no loop and no call for up to sixteen bytes.
#[inline(always)]
pub(crate) fn keys_equal(a: &str, b: &str) -> bool {
    bytes_equal(a.as_bytes(), b.as_bytes())
}

/// [`keys_equal`] for byte strings.
#[inline(always)]
pub(crate) fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    let length = a.len();
    if length != b.len() {
        return false;
    }
    match length {
        0 => true,
        1..=3 => a[0] == b[0] && a[length / 2] == b[length / 2] && a[length - 1] == b[length - 1],
        4..=8 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, length - 4) == u32_at(b, length - 4),
        9..=16 => {
            word_at(a, 0) == word_at(b, 0) && word_at(a, length - 8) == word_at(b, length - 8)
        }
        _ => a == b,
    }
}

/// Bytes `[at, at + 4)` as a big-endian word.
#[inline(always)]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

/// Bytes `[at, at + 8)` as a big-endian word, so words order like their bytes.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// The first sixteen bytes of a name and its length, in three words: two prints are equal
/// exactly when the names are, for names of up to sixteen bytes (nearly every attribute name).
/// Contexts keep one per attribute in a dense array and rules keep one per attribute they read,
/// so a lookup compares words in one or two cache lines instead of following each name's
/// pointer to its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Print {
    pub(crate) head: u64,
    pub(crate) tail: u64,
    pub(crate) length: usize,
}

impl Print {
    /// Names up to this many bytes are told apart by their prints alone.
    pub(crate) const EXACT: usize = 16;

    /// How many lookup buckets a small context has.
    pub(crate) const BUCKETS: usize = 32;

    /// Which of a context's [`Print::BUCKETS`] lookup buckets the name falls in.
    #[inline(always)]
    pub(crate) fn bucket(&self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.length as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 59) as usize
    }

    /// Whether this print, of the name `held`, is the print of `name` (whose print is `other`):
    /// equal prints settle it up to sixteen bytes, the text beyond (read only then).
    #[inline(always)]
    pub(crate) fn names_with<'a>(
        &self,
        other: &Print,
        held: impl FnOnce() -> &'a str,
        name: &str,
    ) -> bool {
        *self == *other && (self.length <= Print::EXACT || keys_equal(held(), name))
    }

    /// The bytes a print holds whole (up to sixteen), spelled out into `buffer`; `None` for
    /// longer text, which the print only begins.
    #[inline(always)]
    pub(crate) fn spell<'b>(&self, buffer: &'b mut [u8; Print::EXACT]) -> Option<&'b [u8]> {
        if self.length > Print::EXACT {
            return None;
        }
        buffer[..8].copy_from_slice(&self.head.to_le_bytes());
        buffer[8..].copy_from_slice(&self.tail.to_le_bytes());
        buffer.get(..self.length)
    }

    /// The text's bytes and length in one word, for a text of at most seven bytes (whose
    /// print leaves the top byte free).
    #[inline(always)]
    pub(crate) fn narrow_key(&self) -> u64 {
        self.head | ((self.length as u64) << 56)
    }

    /// The text's bytes and length in two words, for a text of at most fifteen bytes.
    #[inline(always)]
    pub(crate) fn wide_key(&self) -> [u64; 2] {
        [self.head, self.tail | ((self.length as u64) << 56)]
    }

    /// The print of `name`, read in a few word loads (no copy, no call).
    #[inline]
    pub(crate) fn of(name: &str) -> Print {
        let bytes = name.as_bytes();
        let length = bytes.len();
        let (head, tail) = if length >= 16 {
            (le_word_at(bytes, 0), le_word_at(bytes, 8))
        } else if length > 8 {
            // The last eight bytes, shifted so that only those past the eighth remain.
            let last = le_word_at(bytes, length - 8) >> (8 * (16 - length));
            (le_word_at(bytes, 0), last)
        } else if length == 8 {
            (le_word_at(bytes, 0), 0)
        } else if length >= 4 {
            // Two overlapping loads; where they overlap they hold the same bytes.
            let low = u64::from(le_u32_at(bytes, 0));
            let high = u64::from(le_u32_at(bytes, length - 4)) << (8 * (length - 4));
            (low | high, 0)
        } else if length > 0 {
            let middle = length / 2;
            let spread = u64::from(bytes[0])
                | u64::from(bytes[middle]) << (8 * middle)
                | u64::from(bytes[length - 1]) << (8 * (length - 1));
            (spread, 0)
        } else {
            (0, 0)
        };
        Print { head, tail, length }
    }
}

/// An attribute name a rule reads, with its [`Print`] made once at compile time.
#[derive(Debug, Clone)]
pub(crate) struct Name {
    pub(crate) text: String,
    pub(crate) print: Print,
    /// `print.bucket()`.
    pub(crate) bucket: usize,
}

impl Name {
    pub(crate) fn new(text: String) -> Name {
        let print = Print::of(&text);
        let bucket = print.bucket();
        Name {
            text,
            print,
            bucket,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Flag {
    pub(crate) key: String,
    pub(crate) kind: FlagKind,
    pub(crate) variants: Vec<Variant>,
    pub(crate) baseline: usize,
    pub(crate) enabled: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Serve,
}

#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub(crate) key: String,
    pub(crate) value: Value,
    /// Index into `Ruleset::prompts`, for prompt flags.
    pub(crate) prompt: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: Option<String>,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) serve: Serve,
}

#[derive(Debug, Clone)]
pub(crate) enum Serve {
    Variant(usize),
    Split(Split),
}

#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) bucket_by: Name,
    /// Whether `bucket_by` is the targeting key, which a context keeps a copy of inside itself
    /// (see `Context::inline_unit`).
    pub(crate) by_targeting_key: bool,
    /// `seed + "/"`, ready to prepend to the unit.
    pub(crate) seed_prefix: Vec<u8>,
    /// Variant indices of the treatments, in lane order.
    pub(crate) treatments: Vec<usize>,
    /// Slots each treatment holds of its lane.
    pub(crate) lanes: Lanes,
    pub(crate) layer: Option<LayerSpan>,
}

#[derive(Debug, Clone)]
pub(crate) struct LayerSpan {
    /// `"layer:" + name + "/"`.
    pub(crate) seed_prefix: Vec<u8>,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) match_by: Name,
    /// Sorted.
    pub(crate) included: Vec<String>,
    /// Sorted.
    pub(crate) excluded: Vec<String>,
    pub(crate) conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) attribute: Name,
    pub(crate) test: Test,
    /// `negate` from the ruleset, folded with `not_in` (which is a negated `in`).
    pub(crate) negate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringTest {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberTest {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A `str_starts_with` value of up to sixteen bytes, as words to compare a text's print with:
/// the text starts with it when the masked words agree and the text is long enough.
#[derive(Debug, Clone)]
pub(crate) struct Prefix {
    head: u64,
    tail: u64,
    head_mask: u64,
    tail_mask: u64,
    length: usize,
}

impl Prefix {
    /// The prefixes of `values`, or `None` when one is longer than a print holds.
    pub(crate) fn all(values: &[String]) -> Option<Vec<Prefix>> {
        values
            .iter()
            .map(|value| {
                let length = value.len();
                if length > Print::EXACT {
                    return None;
                }
                let print = Print::of(value);
                // Bytes past the prefix are masked out: `length` low bytes of the 16.
                let mask = |bytes: usize| match bytes {
                    0 => 0,
                    8.. => u64::MAX,
                    _ => (1u64 << (8 * bytes)) - 1,
                };
                Some(Prefix {
                    head: print.head,
                    tail: print.tail,
                    head_mask: mask(length.min(8)),
                    tail_mask: mask(length.saturating_sub(8)),
                    length,
                })
            })
            .collect()
    }

    /// Whether the text whose print is `text` starts with any of `prefixes`. Every prefix is
    /// tested, without stopping at a match, so where the match is makes no branch to predict.
    #[inline(always)]
    pub(crate) fn any_begins(prefixes: &[Prefix], text: &Print) -> bool {
        prefixes
            .iter()
            .fold(false, |found, prefix| found | prefix.begins(text))
    }

    /// Whether the text whose print is `text` starts with this prefix.
    #[inline(always)]
    pub(crate) fn begins(&self, text: &Print) -> bool {
        (((text.head ^ self.head) & self.head_mask) | ((text.tail ^ self.tail) & self.tail_mask))
            == 0
            && text.length >= self.length
    }
}

/// The values of an `in` condition: sorted, and for a short list of short values, as words to
/// compare a text's print with.
#[derive(Debug, Clone)]
pub(crate) struct InList {
    /// Sorted, deduplicated.
    pub(crate) values: Vec<String>,
    pub(crate) keys: ShortKeys,
}

/// A list of at most [`ShortKeys::MAX`] values, each its bytes and length packed in words (the
/// length in the top byte, which a value that short leaves free), so a value equals a text when
/// their words are equal: one comparison per word, no pointer followed.
#[derive(Debug, Clone)]
pub(crate) enum ShortKeys {
    /// Every value is seven bytes or shorter: one word each.
    Narrow(Vec<u64>),
    /// Every value is fifteen bytes or shorter: two words each.
    Wide(Vec<[u64; 2]>),
    /// A longer list, or a longer value: the values are searched.
    Unpacked,
}

impl ShortKeys {
    /// The longest list packed: beyond it a binary search of the values compares less.
    pub(crate) const MAX: usize = 8;

    fn of(values: &[String]) -> ShortKeys {
        let longest = values.iter().map(String::len).max().unwrap_or(0);
        let prints = values.iter().map(|value| Print::of(value));
        match (values.len(), longest) {
            (count, _) if count > ShortKeys::MAX => ShortKeys::Unpacked,
            (_, 0..=7) => ShortKeys::Narrow(prints.map(|print| print.narrow_key()).collect()),
            (_, 8..=15) => ShortKeys::Wide(prints.map(|print| print.wide_key()).collect()),
            _ => ShortKeys::Unpacked,
        }
    }

    /// Whether the text whose print is `text` is one of the values; `None` when the values are
    /// not packed. Every value is compared, without stopping at a match: a loop whose length
    /// does not depend on where the text sits in the list is one the branch predictor gets
    /// right.
    #[inline(always)]
    pub(crate) fn contain(&self, text: &Print) -> Option<bool> {
        match self {
            // A text too long for the keys' width is none of the values.
            ShortKeys::Narrow(keys) => Some(
                text.length <= 7 && {
                    let key = text.narrow_key();
                    keys.iter()
                        .fold(false, |found, value| found | (*value == key))
                },
            ),
            ShortKeys::Wide(keys) => Some(
                text.length <= 15 && {
                    let [head, tail] = text.wide_key();
                    keys.iter().fold(false, |found, value| {
                        found | ((value[0] ^ head) | (value[1] ^ tail) == 0)
                    })
                },
            ),
            ShortKeys::Unpacked => None,
        }
    }
}

impl InList {
    pub(crate) fn new(mut values: Vec<String>) -> InList {
        values.sort();
        values.dedup();
        let keys = ShortKeys::of(&values);
        InList { values, keys }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Sorted values.
    In(InList),
    /// Values, lowercased beforehand when `case_insensitive`.
    Str {
        test: StringTest,
        values: Vec<String>,
        case_insensitive: bool,
        /// For a case-sensitive `str_starts_with` whose values are all sixteen bytes or
        /// shorter: the values as [`Prefix`]es.
        prefixes: Option<Vec<Prefix>>,
    },
    Number {
        test: NumberTest,
        value: f64,
    },
    DateAfter(i64),
    DateBefore(i64),
    /// Holds when the context version compares to the literal as `Ordering`.
    Semver(Ordering, Semver),
    /// Indices into `Ruleset::segments`.
    InSegment(Vec<usize>),
    /// Always holds, unless the attribute is an array or an object: the check `in_segment`
    /// makes on a segment's unit, left in a rule when the segment's conditions are inlined.
    UsableUnit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_are_the_first_sixteen_bytes_and_the_length() {
        let text = "abcdefghijklmnopqrstuvwxyz";
        for length in 0..=text.len() {
            let name = &text[..length];
            let mut padded = [0u8; 16];
            let kept = length.min(16);
            padded[..kept].copy_from_slice(&name.as_bytes()[..kept]);
            let expected = Print {
                head: u64::from_le_bytes(padded[..8].try_into().unwrap()),
                tail: u64::from_le_bytes(padded[8..].try_into().unwrap()),
                length,
            };
            assert_eq!(Print::of(name), expected, "{name:?}");
        }
    }

    #[test]
    fn prefixes_agree_with_starts_with() {
        let words = [
            "",
            "p",
            "pr",
            "pro",
            "pro-",
            "pro-mont",
            "pro-month",
            "pro-monthly",
            "pro-monthly-plan",
            "pro-monthly-plan+",
            "team",
            "tea",
            "é",
            "éa",
            "pro-monthlx",
        ];
        for value in words {
            let prefixes = Prefix::all(&[String::from(value)]);
            let Some(prefixes) = prefixes else {
                assert!(value.len() > Print::EXACT, "{value:?}");
                continue;
            };
            for text in words {
                assert_eq!(
                    prefixes[0].begins(&Print::of(text)),
                    text.starts_with(value),
                    "{text:?} starts with {value:?}"
                );
            }
        }
    }

    #[test]
    fn short_keys_agree_with_the_values() {
        let words = [
            "",
            "a",
            "I",
            "IE",
            "IEx",
            "ie",
            "é",
            "seven!!",
            "eight!!!",
            "seven!!\u{0}",
            "fifteen bytes!!",
            "sixteen bytes!!!",
            "seventeen bytes!!",
            "pro-monthly",
        ];
        let lists: [&[&str]; 6] = [
            &["IE", "GB", "FR"],
            &["", "a", "seven!!"],
            &["eight!!!", "IE", "fifteen bytes!!"],
            &["sixteen bytes!!!", "IE"],
            &["a", "b", "c", "d", "e", "f", "g", "h", "IE"],
            &[],
        ];
        for list in lists {
            let values: Vec<String> = list.iter().map(|value| String::from(*value)).collect();
            let in_list = InList::new(values.clone());
            for text in words.iter().chain(list.iter()) {
                let expected = values.iter().any(|value| value == text);
                match in_list.keys.contain(&Print::of(text)) {
                    Some(found) => assert_eq!(found, expected, "{text:?} in {list:?}"),
                    None => assert!(
                        matches!(in_list.keys, ShortKeys::Unpacked),
                        "{list:?} is packed but left {text:?} undecided"
                    ),
                }
            }
            let packed = !matches!(in_list.keys, ShortKeys::Unpacked);
            let short = list.len() <= ShortKeys::MAX && list.iter().all(|value| value.len() < 16);
            assert_eq!(packed, short, "{list:?}");
        }
    }

    #[test]
    fn key_hash_reads_every_byte() {
        // Keys that differ in one byte anywhere, at every length up to 40, hash apart.
        let base: alloc::vec::Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for length in 0..=base.len() {
            let key = &base[..length];
            for at in 0..length {
                let mut other = key.to_vec();
                other[at] ^= 0x20;
                assert_ne!(
                    key_hash(key),
                    key_hash(&other),
                    "length {length}, byte {at}"
                );
            }
        }
        let mut seen = alloc::collections::BTreeSet::new();
        for index in 0..10_000 {
            seen.insert(key_hash(
                alloc::format!("flag-{index:05}-prompt").as_bytes(),
            ));
        }
        assert_eq!(seen.len(), 10_000);
    }

    #[test]
    fn compare_keys_orders_like_str_cmp() {
        let keys = [
            "",
            "a",
            "b",
            "ab",
            "abc",
            "abcdefg",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "abcdefgh0",
            "flag-01-targeted",
            "flag-01-targetee",
            "flag-10-static",
            "flag-1",
            "Z",
            "é",
            "ée",
            "e",
            "targetingKey",
            "targetingKeys",
            "country",
            "appVersion",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(compare_keys(a, b), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(keys_equal(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
