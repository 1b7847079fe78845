//! The evaluation context: the attributes of one request (OpenFeature's evaluation context),
//! plus the caller's clock for date operators, since core reads no clock of its own.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use crate::ruleset::{Name, Print, compare_keys};

/// The attribute OpenFeature uses for the unit of bucketing.
pub const TARGETING_KEY: &str = "targetingKey";

/// The attribute date operators read when the condition names it and the context lacks it.
pub const CURRENT_TIME: &str = "currentTime";

/// One context attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A number (JSON numbers are read as `f64`; integers keep their exact text, see below).
    Number(f64),
    /// An integer that fits `i64`, kept exactly so a numeric user id buckets the same everywhere.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// An array or object: no operator reads it, and a condition that does reports
    /// `INVALID_CONTEXT`.
    Unsupported,
}

impl AttributeValue {
    /// The value as text, as string operators and bucketing see it.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            AttributeValue::String(text) => Some(Cow::Borrowed(text)),
            AttributeValue::Integer(number) => Some(Cow::Owned(number.to_string())),
            AttributeValue::Number(number) => Some(Cow::Owned(format!("{number}"))),
            AttributeValue::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
            AttributeValue::Unsupported => None,
        }
    }

    fn from_json(value: &Value) -> Option<AttributeValue> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(flag) => AttributeValue::Bool(*flag),
            Value::String(text) => AttributeValue::String(text.clone()),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => AttributeValue::Integer(integer),
                None => AttributeValue::Number(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::Array(_) | Value::Object(_) => AttributeValue::Unsupported,
        })
    }
}

/// Why a context could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// The text is not JSON.
    Parse(String),
    /// The JSON is not an object.
    NotAnObject,
}

impl core::fmt::Display for ContextError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ContextError::Parse(message) => write!(f, "the context is not valid JSON: {message}"),
            ContextError::NotAnObject => {
                f.write_str("the context must be a JSON object of attributes")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ContextError {}

/// Up to this many attributes, [`Context::get`] scans instead of searching.
const LINEAR_LOOKUP_MAX: usize = 16;

/// The attributes of one evaluation, sorted by name for binary search. Build it once and reuse
/// it for every flag of a request (that is the fast path: nothing is re-parsed per flag).
///
/// Laid out for lookups by the names rules read. Each attribute's entry holds its value and
/// its name's [`Print`]; a small context also keeps a 32-byte table from a print's
/// bucket to its entry, so finding an attribute reads the table, one entry and nothing else
/// (not the names' own bytes), whichever position it has. What lookups read of the first few
/// entries (name print, a short string value) is also kept in the struct itself, next to the
/// table, so a rule's conditions on those attributes never wait for the entries' allocation.
/// The targeting key, the usual bucketing unit, is copied into the struct too, so a split
/// hashes it without following the entry's and then the string's pointer.
#[derive(Debug, Clone, Default, PartialEq)]
// What every lookup reads (the entries' address and count, the table) comes first, so it
// shares the first cache line.
#[repr(C, align(64))]
pub struct Context {
    /// The print of each name and its value, in name order.
    entries: Vec<Entry>,
    /// For contexts of up to [`LINEAR_LOOKUP_MAX`] attributes: bucket → `index + 1` of the one
    /// entry whose print falls in it, 0 when none does, [`SHARED_BUCKET`] when several do.
    table: [u8; Print::BUCKETS],
    /// Whether any attribute is [`AttributeValue::Unsupported`], kept exact by every change,
    /// so evaluation can skip looking up an attribute only to rule that out.
    has_unsupported: bool,
    /// What lookups read of the first [`HOT`] entries, kept inside the struct: the line after
    /// the table's, so a lookup does not first wait for the struct and then for the entries.
    hot: [Hot; HOT],
    /// The names, sorted.
    names: Vec<String>,
    now_millis: Option<i64>,
    /// A copy of the targeting key, the usual bucketing unit, when it is a string of 1 to
    /// [`INLINE_UNIT`] bytes: a split hashes it from here, in the struct the evaluation already
    /// reads, rather than from the entry's and then the string's allocations.
    unit: InlineUnit,
}

/// The longest targeting key a [`Context`] keeps a copy of (a UUID is 36 bytes).
pub(crate) const INLINE_UNIT: usize = 64;

#[derive(Debug, Clone, PartialEq)]
struct InlineUnit {
    bytes: [u8; INLINE_UNIT],
    /// 0 when there is no copy.
    length: u8,
}

impl Default for InlineUnit {
    fn default() -> InlineUnit {
        InlineUnit {
            bytes: [0; INLINE_UNIT],
            length: 0,
        }
    }
}

/// Entries whose lookup part is also kept inside the `Context`.
const HOT: usize = 5;

/// The lookup part of an entry: its name's print and, for a string value, the value's first
/// sixteen bytes and its length.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Hot {
    print: Print,
    text: [u64; 2],
    /// The string value's length, or `u32::MAX` for any other value (or an unused slot).
    text_length: u32,
}

/// What a lookup found: a short string value's print (its bytes, whole), or the value itself.
pub(crate) enum Found<'c> {
    Short(Print),
    Value(&'c AttributeValue),
}

/// A bucket that more than one attribute falls in: look them up by scanning.
const SHARED_BUCKET: u8 = u8::MAX;

/// One attribute as lookups see it: one cache line.
#[derive(Debug, Clone, PartialEq)]
#[repr(align(64))]
pub(crate) struct Entry {
    /// The print of the name.
    pub(crate) print: Print,
    /// The first sixteen bytes of a string value, as in a [`Print`] (the length is the
    /// string's own), so tests on short values read them here rather than from the string's
    /// allocation; zero for other values.
    text: [u64; 2],
    pub(crate) value: AttributeValue,
}

impl Entry {
    fn new(name: &str, value: AttributeValue) -> Entry {
        let text = match &value {
            AttributeValue::String(text) => {
                let print = Print::of(text);
                [print.head, print.tail]
            }
            _ => [0, 0],
        };
        Entry {
            print: Print::of(name),
            text,
            value,
        }
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// A context from a JSON object; `null` attributes are left out.
    pub fn from_json_value(value: &Value) -> Result<Context, ContextError> {
        let Value::Object(map) = value else {
            return Err(ContextError::NotAnObject);
        };
        let mut attributes: Vec<(&String, AttributeValue)> = map
            .iter()
            .filter_map(|(name, value)| Some((name, AttributeValue::from_json(value)?)))
            .collect();
        // serde_json's map is sorted already; sorting again keeps this independent of its features.
        attributes.sort_by(|a, b| a.0.cmp(b.0));
        let mut context = Context::new();
        context.names.reserve(attributes.len());
        context.entries.reserve(attributes.len());
        for (name, value) in attributes {
            context.has_unsupported |= value == AttributeValue::Unsupported;
            context.entries.push(Entry::new(name, value));
            context.names.push(name.clone());
        }
        context.rebuild_table();
        Ok(context)
    }

    /// A context from JSON text.
    pub fn from_json_str(text: &str) -> Result<Context, ContextError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ContextError::Parse(e.to_string()))?;
        Context::from_json_value(&value)
    }

    /// Fills the bucket table and the hot entries from the entries (for a small context; a large
    /// one is searched).
    fn rebuild_table(&mut self) {
        self.hot = [Hot {
            text_length: u32::MAX,
            ..Hot::default()
        }; HOT];
        for (hot, entry) in self.hot.iter_mut().zip(&self.entries) {
            *hot = Hot {
                print: entry.print,
                text: entry.text,
                text_length: match &entry.value {
                    AttributeValue::String(text) => u32::try_from(text.len()).unwrap_or(u32::MAX),
                    _ => u32::MAX,
                },
            };
        }
        let mut unit = InlineUnit::default();
        if let Some((_, entry)) = self.search(TARGETING_KEY)
            && let AttributeValue::String(text) = &entry.value
            && (1..=INLINE_UNIT).contains(&text.len())
        {
            unit.bytes[..text.len()].copy_from_slice(text.as_bytes());
            unit.length = text.len() as u8;
        }
        self.unit = unit;
        self.table = [0; Print::BUCKETS];
        if self.entries.len() > LINEAR_LOOKUP_MAX {
            return;
        }
        for (index, entry) in self.entries.iter().enumerate() {
            let slot = &mut self.table[entry.print.bucket()];
            *slot = if *slot == 0 {
                index as u8 + 1
            } else {
                SHARED_BUCKET
            };
        }
    }

    /// Sets an attribute, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: AttributeValue) -> &mut Context {
        match self.names.binary_search_by(|key| key.as_str().cmp(name)) {
            Ok(index) => {
                self.entries[index] = Entry::new(name, value);
                self.rebuild_table();
            }
            Err(index) => {
                self.names.insert(index, String::from(name));
                self.entries.insert(index, Entry::new(name, value));
                self.rebuild_table();
            }
        }
        self.has_unsupported = self
            .entries
            .iter()
            .any(|entry| entry.value == AttributeValue::Unsupported);
        self
    }

    /// Builder form of [`Context::set`] for a string attribute.
    pub fn with(mut self, name: &str, value: &str) -> Context {
        self.set(name, AttributeValue::String(String::from(value)));
        self
    }

    /// Sets the targeting key (the default bucketing unit).
    pub fn with_targeting_key(self, key: &str) -> Context {
        self.with(TARGETING_KEY, key)
    }

    /// Supplies the current time (milliseconds since the Unix epoch) for date operators.
    pub fn with_now_millis(mut self, now_millis: i64) -> Context {
        self.now_millis = Some(now_millis);
        self
    }

    /// Sets or clears the current time.
    pub fn set_now_millis(&mut self, now_millis: Option<i64>) {
        self.now_millis = now_millis;
    }

    /// The caller's current time, if given.
    pub fn now_millis(&self) -> Option<i64> {
        self.now_millis
    }

    /// The attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        let print = Print::of(name);
        self.entry(&print, print.bucket(), name)
            .map(|entry| &entry.value)
    }

    /// The attribute a rule names, as its entry: [`Context::get`] with the name's print made
    /// beforehand.
    #[inline(always)]
    pub(crate) fn entry_named(&self, name: &Name) -> Option<&Entry> {
        self.entry(&name.print, name.bucket, &name.text)
    }

    /// Where the attribute a rule names is, and what it holds: a short string value comes from
    /// the hot entries without touching the entry itself.
    #[inline(always)]
    pub(crate) fn find_named(&self, name: &Name) -> Option<(usize, Found<'_>)> {
        if let Some((index, print)) = self.short_text(name) {
            return Some((index, Found::Short(print)));
        }
        let (index, entry) = self.entry_at(&name.print, name.bucket, &name.text)?;
        Some((index, Found::Value(&entry.value)))
    }

    /// The attribute a rule names, when it is a string of up to sixteen bytes held in the hot
    /// entries: its index and its print, which is its bytes whole. `None` for everything else
    /// (a long or non-string value, a missing attribute, a long name, a shared bucket, a large
    /// context), which [`Context::find_named`] sorts out. Written to stay small and in
    /// registers: the condition loop inlines it for every condition it reads.
    #[inline(always)]
    pub(crate) fn short_text(&self, name: &Name) -> Option<(usize, Print)> {
        // A large context's table is all zeros (see `rebuild_table`), so it finds nothing here.
        let slot = *self.table.get(name.bucket)?;
        // 0 (no entry) and SHARED_BUCKET both fall outside the hot entries.
        let index = usize::from(slot).wrapping_sub(1);
        let hot = self.hot.get(index)?;
        let differs = (hot.print.head ^ name.print.head)
            | (hot.print.tail ^ name.print.tail)
            | (hot.print.length ^ name.print.length) as u64;
        if differs != 0
            || name.print.length > Print::EXACT
            || hot.text_length as usize > Print::EXACT
        {
            return None;
        }
        let print = Print {
            head: hot.text[0],
            tail: hot.text[1],
            length: hot.text_length as usize,
        };
        Some((index, print))
    }

    /// The targeting key's bytes, when it is a string of 1 to [`INLINE_UNIT`] bytes.
    #[inline(always)]
    pub(crate) fn inline_unit(&self) -> Option<&[u8]> {
        let length = usize::from(self.unit.length);
        (length > 0)
            .then(|| self.unit.bytes.get(..length))
            .flatten()
    }

    /// The value of the attribute at `index` (from [`Context::find_named`]).
    #[inline(always)]
    pub(crate) fn value_at(&self, index: usize) -> Option<&AttributeValue> {
        self.entries.get(index).map(|entry| &entry.value)
    }

    /// The attribute a rule names.
    #[inline(always)]
    pub(crate) fn get_named(&self, name: &Name) -> Option<&AttributeValue> {
        self.entry_named(name).map(|entry| &entry.value)
    }

    #[inline(always)]
    fn entry(&self, print: &Print, bucket: usize, name: &str) -> Option<&Entry> {
        self.entry_at(print, bucket, name).map(|(_, entry)| entry)
    }

    #[inline(always)]
    fn entry_at(&self, print: &Print, bucket: usize, name: &str) -> Option<(usize, &Entry)> {
        if self.entries.len() > LINEAR_LOOKUP_MAX {
            return self.search(name);
        }
        // A small context: the one entry in the print's bucket, or a scan when several share it.
        let index = match self.table.get(bucket).copied().unwrap_or(SHARED_BUCKET) {
            0 => return None,
            SHARED_BUCKET => return self.scan(print, name),
            slot => usize::from(slot - 1),
        };
        let entry = self.entries.get(index)?;
        let held = || self.names.get(index).map_or("", String::as_str);
        entry
            .print
            .names_with(print, held, name)
            .then_some((index, entry))
    }

    /// [`Context::entry`] for a bucket that several attributes share.
    #[cold]
    #[inline(never)]
    fn scan(&self, print: &Print, name: &str) -> Option<(usize, &Entry)> {
        self.entries
            .iter()
            .zip(&self.names)
            .enumerate()
            .find(|(_, (entry, key))| entry.print.names_with(print, || key.as_str(), name))
            .map(|(index, (entry, _))| (index, entry))
    }

    /// [`Context::entry`] for a large context: a binary search by name.
    #[inline(never)]
    fn search(&self, name: &str) -> Option<(usize, &Entry)> {
        let index = self
            .names
            .binary_search_by(|key| compare_keys(key, name))
            .ok()?;
        Some((index, self.entries.get(index)?))
    }

    /// Whether some attribute is an array or an object.
    pub(crate) fn has_unsupported(&self) -> bool {
        self.has_unsupported
    }

    /// Iterates over the attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttributeValue)> {
        self.names
            .iter()
            .zip(&self.entries)
            .map(|(name, entry)| (name.as_str(), &entry.value))
    }
}
