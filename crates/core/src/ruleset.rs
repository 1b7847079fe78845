//! The compiled ruleset: validated once, then read by every evaluation. Indices replace names,
//! literals are parsed, lists are sorted for binary search, and seeds carry their separator.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::literal::Semver;
use crate::model::FlagKind;

/// A prompt version the ruleset can serve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PromptMeta {
    /// The SHA-256 of the body (64 lowercase hex digits): the prompt version's identity.
    pub hash: String,
    /// The prompt family's id.
    pub id: String,
    /// The semantic version.
    pub version: String,
    /// The model name.
    pub model: String,
    /// Model parameters, a JSON object.
    pub parameters: Value,
}

/// A validated ruleset, ready to evaluate. Build it with [`Ruleset::from_json`] or
/// [`crate::compile`].
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) schema: u32,
    pub(crate) environment: String,
    pub(crate) revision: u64,
    pub(crate) source: String,
    /// Sorted by hash.
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

    /// Every prompt version, sorted by hash.
    pub fn prompts(&self) -> &[PromptMeta] {
        &self.prompts
    }

    /// The prompt version with this body hash.
    pub fn prompt(&self, hash: &str) -> Option<&PromptMeta> {
        self.prompts
            .binary_search_by(|prompt| prompt.hash.as_str().cmp(hash))
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
}

/// An open-addressing hash table from flag key to position in `Ruleset::flags`. A lookup hashes
/// the key once and usually reads one slot, where a binary search over the sorted keys compares
/// strings at every step (and that dominated evaluating a simple flag).
#[derive(Debug, Clone, Default)]
pub(crate) struct FlagIndex {
    /// `(xxh3_64(key), position + 1)`, 0 marking an empty slot; a power of two long, at most
    /// half full, so probe runs stay short.
    slots: Vec<(u64, u32)>,
}

impl FlagIndex {
    pub(crate) fn new(flags: &[Flag]) -> FlagIndex {
        let capacity = (flags.len() * 2).next_power_of_two().max(2);
        let mut slots = alloc::vec![(0u64, 0u32); capacity];
        let mask = capacity - 1;
        for (position, flag) in flags.iter().enumerate() {
            let hash = xxh3_64(flag.key.as_bytes());
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
        let hash = xxh3_64(key.as_bytes());
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
    pub(crate) bucket_by: String,
    /// `seed + "/"`, ready to prepend to the unit.
    pub(crate) seed_prefix: Vec<u8>,
    /// Variant indices of the treatments, in lane order.
    pub(crate) treatments: Vec<usize>,
    /// Slots each treatment holds of its lane.
    pub(crate) weights: Vec<u32>,
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
    pub(crate) match_by: String,
    /// Sorted.
    pub(crate) included: Vec<String>,
    /// Sorted.
    pub(crate) excluded: Vec<String>,
    pub(crate) conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) attribute: String,
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

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Sorted values.
    In(Vec<String>),
    /// Values, lowercased beforehand when `case_insensitive`.
    Str {
        test: StringTest,
        values: Vec<String>,
        case_insensitive: bool,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
