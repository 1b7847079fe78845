//! Validation and compilation: a [`RawRuleset`] becomes a [`Ruleset`] only if it is wholly
//! sound. Every problem is reported, each with the path of the offending field
//! (`flags.support.rules[2].when[0].values`), so one build run shows them all.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use serde_json::Value;

use crate::bucket::{LAYER_SEED_PREFIX, Lanes, SLOTS};
use crate::case::to_lowercase;
use crate::context::TARGETING_KEY;
use crate::literal::{Semver, parse_number, parse_rfc3339_millis};
use crate::model::{
    Entries, FlagKind, RawCondition, RawFlag, RawLayerRange, RawRuleset, RawSegment, RawServe,
    RawSplit, SCHEMA_VERSION,
};
use crate::ruleset::{
    Condition, Flag, FlagIndex, InList, LayerSpan, Name, NumberTest, Prefix, PromptMeta, Rule,
    Ruleset, Segment, Serve, Split, StringTest, Test, Variant,
};

/// Size limits a ruleset must respect, so one bad publish cannot exhaust an edge isolate.
pub mod limits {
    /// Bytes of ruleset JSON.
    pub const MAX_RULESET_BYTES: usize = 16 * 1024 * 1024;
    /// Flags in one ruleset.
    pub const MAX_FLAGS: usize = 10_000;
    /// Segments in one ruleset.
    pub const MAX_SEGMENTS: usize = 10_000;
    /// Prompt versions in one ruleset.
    pub const MAX_PROMPTS: usize = 10_000;
    /// Variants of one flag.
    pub const MAX_VARIANTS: usize = 100;
    /// Rules of one flag.
    pub const MAX_RULES: usize = 1_000;
    /// Conditions of one rule or segment.
    pub const MAX_CONDITIONS: usize = 100;
    /// Values of one condition.
    pub const MAX_VALUES: usize = 10_000;
    /// Units on one segment's include or exclude list.
    pub const MAX_LIST_UNITS: usize = 100_000;
    /// Bytes of a key, attribute name or condition value.
    pub const MAX_NAME_BYTES: usize = 256;
    /// Bytes of a condition value or list unit.
    pub const MAX_VALUE_BYTES: usize = 1_024;
    /// How deeply segments may refer to segments.
    pub const MAX_SEGMENT_DEPTH: usize = 8;
    /// Condition tests one rule or segment may expand to through `in_segment`, counting each
    /// reference to a segment as all of that segment's tests, every time it is referred to.
    /// This bounds the work of evaluating a rule whatever the ruleset's shape: a few short
    /// segments that each refer to the next several times would otherwise multiply.
    pub const MAX_EXPANDED_CONDITIONS: u64 = 10_000;
}

use limits::*;

/// One thing wrong with a ruleset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where: a dotted path with indices, `$` for the document itself.
    pub path: String,
    /// A stable, machine-readable name for the kind of problem (`unknown_variant`, …).
    pub code: &'static str,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a ruleset was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesetError {
    /// The bytes are larger than [`limits::MAX_RULESET_BYTES`].
    TooLarge {
        /// The size given.
        bytes: usize,
    },
    /// The text is not JSON, or not of the ruleset's shape (serde's message, with line and column).
    Syntax {
        /// What the parser said.
        message: String,
    },
    /// The ruleset parsed but is unsound; every problem is listed.
    Invalid {
        /// The problems, in document order.
        problems: Vec<Problem>,
    },
}

impl RulesetError {
    /// The problems as a list (a syntax or size error is one problem at `$`).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            RulesetError::TooLarge { bytes } => alloc::vec![Problem {
                path: String::from("$"),
                code: "too_large",
                message: format!("the ruleset is {bytes} bytes; the limit is {MAX_RULESET_BYTES}"),
            }],
            RulesetError::Syntax { message } => {
                alloc::vec![Problem {
                    path: String::from("$"),
                    code: "syntax",
                    message: message.clone()
                }]
            }
            RulesetError::Invalid { problems } => problems.clone(),
        }
    }
}

impl fmt::Display for RulesetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesetError::TooLarge { bytes } => {
                write!(
                    f,
                    "ruleset rejected: {bytes} bytes is over the {MAX_RULESET_BYTES}-byte limit"
                )
            }
            RulesetError::Syntax { message } => write!(f, "ruleset rejected: {message}"),
            RulesetError::Invalid { problems } => {
                write!(f, "ruleset rejected: {} problem(s)", problems.len())?;
                for problem in problems {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RulesetError {}

impl Ruleset {
    /// Parses and validates ruleset JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Ruleset, RulesetError> {
        if bytes.len() > MAX_RULESET_BYTES {
            return Err(RulesetError::TooLarge { bytes: bytes.len() });
        }
        let raw: RawRuleset = serde_json::from_slice(bytes).map_err(|e| RulesetError::Syntax {
            message: e.to_string(),
        })?;
        compile(&raw)
    }

    /// Parses and validates ruleset JSON text.
    pub fn from_json_str(text: &str) -> Result<Ruleset, RulesetError> {
        Ruleset::from_json(text.as_bytes())
    }
}

/// Validates a raw ruleset and compiles it; reports every problem found.
pub fn compile(raw: &RawRuleset) -> Result<Ruleset, RulesetError> {
    let mut compiler = Compiler {
        problems: Vec::new(),
    };
    let ruleset = compiler.ruleset(raw);
    if compiler.problems.is_empty() {
        Ok(ruleset)
    } else {
        Err(RulesetError::Invalid {
            problems: compiler.problems,
        })
    }
}

/// Validates without keeping the result.
pub fn validate(raw: &RawRuleset) -> Vec<Problem> {
    match compile(raw) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems(),
    }
}

struct Compiler {
    problems: Vec<Problem>,
}

/// Names used as keys and attributes: non-empty, bounded, and safe in URLs and KV keys.
fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_NAME_BYTES
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

struct LayerClaim {
    flag: String,
    path: String,
    start: u32,
    end: u32,
}

impl Compiler {
    fn problem(&mut self, path: &str, code: &'static str, message: String) {
        self.problems.push(Problem {
            path: String::from(path),
            code,
            message,
        });
    }

    fn check_key(&mut self, path: &str, what: &str, key: &str) {
        if !is_valid_key(key) {
            self.problem(
                path,
                "invalid_key",
                format!(
                    "{what} {key:?} must be 1 to {MAX_NAME_BYTES} bytes of letters, digits, '_', '-', '.' or ':'"
                ),
            );
        }
    }

    fn check_count(&mut self, path: &str, what: &str, count: usize, limit: usize) -> bool {
        if count > limit {
            self.problem(
                path,
                "too_many",
                format!("{count} {what} is over the limit of {limit}"),
            );
            return false;
        }
        true
    }

    /// Reports duplicated keys and returns an index from key to the first position.
    fn index_entries<T>(&mut self, path: &str, entries: &Entries<T>) -> BTreeMap<String, usize> {
        let mut index = BTreeMap::new();
        for (position, (key, _)) in entries.0.iter().enumerate() {
            if index.contains_key(key) {
                self.problem(
                    &format!("{path}.{key}"),
                    "duplicate_key",
                    format!("{key:?} is defined more than once"),
                );
            } else {
                index.insert(key.clone(), position);
            }
        }
        index
    }

    fn ruleset(&mut self, raw: &RawRuleset) -> Ruleset {
        if raw.schema != SCHEMA_VERSION {
            self.problem(
                "schema",
                "unsupported_schema",
                format!(
                    "schema {} is not supported; this engine reads schema {SCHEMA_VERSION}",
                    raw.schema
                ),
            );
        }
        if !is_valid_key(&raw.environment) {
            self.check_key("environment", "the environment", &raw.environment);
        }
        self.check_count("prompts", "prompts", raw.prompts.len(), MAX_PROMPTS);
        self.check_count("segments", "segments", raw.segments.len(), MAX_SEGMENTS);
        self.check_count("flags", "flags", raw.flags.len(), MAX_FLAGS);
        self.check_count("runtime", "runtime decisions", raw.runtime.len(), MAX_FLAGS);

        // Prompts, sorted by content id so evaluation can binary-search them.
        self.index_entries("prompts", &raw.prompts);
        let mut prompts: Vec<PromptMeta> = Vec::new();
        for (content_id, prompt) in raw.prompts.iter() {
            let path = format!("prompts.{content_id}");
            if !is_sha256_hex(content_id) {
                self.problem(
                    &path,
                    "bad_hash",
                    format!("{content_id:?} is not a content id (64 lowercase hex digits)"),
                );
            }
            // Without `body`, the key is the body's hash (rulesets written before content ids).
            let body = prompt.body_hash(content_id);
            if prompt.body.is_some() && !is_sha256_hex(body) {
                self.problem(
                    &format!("{path}.body"),
                    "bad_hash",
                    format!("{body:?} is not a SHA-256 hash (64 lowercase hex digits)"),
                );
            }
            if prompt.id.is_empty() {
                self.problem(
                    &format!("{path}.id"),
                    "missing",
                    String::from("the prompt id is empty"),
                );
            }
            if Semver::parse(&prompt.version).is_none() {
                self.problem(
                    &format!("{path}.version"),
                    "bad_semver",
                    format!(
                        "{:?} is not a semantic version (MAJOR.MINOR.PATCH)",
                        prompt.version
                    ),
                );
            }
            if !prompt.parameters.is_object() {
                self.problem(
                    &format!("{path}.parameters"),
                    "wrong_type",
                    String::from("parameters must be a JSON object"),
                );
            }
            if let Some(status) = prompt
                .status
                .as_deref()
                .filter(|status| !crate::model::PROMPT_STATUSES.contains(status))
            {
                self.problem(
                    &format!("{path}.status"),
                    "bad_status",
                    format!("status {status:?} is not one of draft, canary, production, archived"),
                );
            }
            prompts.push(PromptMeta {
                content_id: content_id.clone(),
                hash: String::from(body),
                id: prompt.id.clone(),
                version: prompt.version.clone(),
                model: prompt.model.clone(),
                parameters: prompt.parameters.clone(),
                output_schema: prompt.output_schema.clone(),
                status: prompt.status.clone(),
            });
        }
        prompts.sort_by(|a, b| a.content_id.cmp(&b.content_id));
        prompts.dedup_by(|a, b| a.content_id == b.content_id);

        // Layers.
        let layer_index = self.index_entries("layers", &raw.layers);
        for (name, _) in raw.layers.iter() {
            self.check_key(&format!("layers.{name}"), "the layer name", name);
        }

        // Segments: indices first, so conditions can refer to any segment, then cycles.
        let segment_index = self.index_entries("segments", &raw.segments);
        let mut segments = Vec::with_capacity(raw.segments.len());
        for (key, segment) in raw.segments.iter() {
            let path = format!("segments.{key}");
            self.check_key(&path, "the segment key", key);
            segments.push(self.segment(&path, segment, &segment_index));
        }
        let segment_costs = self.check_segment_cycles(&segment_index, &segments);

        // Flags.
        // Duplicated keys are reported here; the first definition is the one compiled.
        self.index_entries("flags", &raw.flags);
        let mut flags = Vec::with_capacity(raw.flags.len());
        let mut layer_claims: BTreeMap<String, Vec<LayerClaim>> = BTreeMap::new();
        for (key, flag) in raw.flags.iter() {
            let path = format!("flags.{key}");
            self.check_key(&path, "the flag key", key);
            let context = FlagContext {
                key,
                prompts: &prompts,
                segments: &segment_index,
                layers: &layer_index,
                raw_layers: raw,
            };
            flags.push(self.flag(&path, flag, &context, &mut layer_claims));
        }
        self.check_layer_overlaps(&layer_claims);
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        flags.dedup_by(|a, b| a.key == b.key);
        self.check_rule_costs(&flags, &segment_costs);
        // Only a valid ruleset is flattened: a cycle of segments would never end.
        if self.problems.is_empty() {
            let mut flattened = alloc::vec![None; segments.len()];
            for rule in flags.iter_mut().flat_map(|flag| flag.rules.iter_mut()) {
                rule.conditions = inline_segments(&rule.conditions, &segments, &mut flattened);
            }
        }

        Ruleset {
            schema: raw.schema,
            environment: raw.environment.clone(),
            revision: raw.revision,
            source: raw.source.clone(),
            prompts,
            segments,
            flag_index: FlagIndex::new(&flags),
            flags,
        }
    }

    fn segment(
        &mut self,
        path: &str,
        raw: &RawSegment,
        segments: &BTreeMap<String, usize>,
    ) -> Segment {
        let match_by = raw
            .match_by
            .clone()
            .unwrap_or_else(|| String::from(TARGETING_KEY));
        if raw.match_by.is_some() {
            self.check_key(&format!("{path}.match_by"), "the attribute", &match_by);
        }
        let included = self.unit_list(&format!("{path}.included"), &raw.included);
        let excluded = self.unit_list(&format!("{path}.excluded"), &raw.excluded);
        let conditions = self.conditions(&format!("{path}.conditions"), &raw.conditions, segments);
        Segment {
            match_by: Name::new(match_by),
            included,
            excluded,
            conditions,
        }
    }

    fn unit_list(&mut self, path: &str, units: &[String]) -> Vec<String> {
        self.check_count(path, "units", units.len(), MAX_LIST_UNITS);
        for (index, unit) in units.iter().enumerate() {
            if unit.len() > MAX_VALUE_BYTES {
                self.problem(
                    &format!("{path}[{index}]"),
                    "too_long",
                    format!("a unit is at most {MAX_VALUE_BYTES} bytes"),
                );
            }
        }
        let mut sorted = units.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted
    }

    /// Reports cycles and segments nested too deep, and returns how many condition tests each
    /// segment expands to through `in_segment` (saturating), reporting each one over
    /// [`MAX_EXPANDED_CONDITIONS`]. The costs are computed once per segment, from those of the
    /// segments it refers to, so this work is linear in the ruleset's size.
    fn check_segment_cycles(
        &mut self,
        index: &BTreeMap<String, usize>,
        segments: &[Segment],
    ) -> Vec<u64> {
        // Depth-first search with colours; a grey node reached again closes a cycle.
        fn references(segment: &Segment) -> Vec<usize> {
            let mut out = Vec::new();
            for condition in &segment.conditions {
                if let Test::InSegment(targets) = &condition.test {
                    out.extend(targets.iter().copied());
                }
            }
            out
        }
        // The search keeps its own stack on the heap: a ruleset may chain thousands of segments
        // (only validation rejects that), and recursing once per link would overflow the call
        // stack, which aborts the process (a Worker isolate, a 1 MiB wasm stack) instead of
        // reporting a problem.
        fn depth_of(
            root: usize,
            references: &[Vec<usize>],
            colour: &mut [u8],
            depth: &mut [usize],
            cycle: &mut Option<usize>,
        ) -> usize {
            if colour[root] == 2 {
                return depth[root];
            }
            colour[root] = 1;
            // Each entry is a grey node and how many of its references were followed.
            let mut stack = alloc::vec![(root, 0usize)];
            while let Some(&(node, next)) = stack.last() {
                match references[node].get(next) {
                    Some(&target) => {
                        if let Some(top) = stack.last_mut() {
                            top.1 += 1;
                        }
                        match colour.get(target) {
                            Some(0) => {
                                colour[target] = 1;
                                stack.push((target, 0));
                            }
                            Some(1) => {
                                cycle.get_or_insert(target);
                            }
                            _ => {}
                        }
                    }
                    None => {
                        // A reference to a grey node (an ancestor, so a cycle) adds no depth.
                        let deepest = references[node]
                            .iter()
                            .filter(|&&target| colour.get(target) == Some(&2))
                            .map(|&target| depth[target])
                            .max()
                            .unwrap_or(0);
                        colour[node] = 2;
                        depth[node] = deepest + 1;
                        stack.pop();
                    }
                }
            }
            depth[root]
        }
        let references: Vec<Vec<usize>> = segments.iter().map(references).collect();
        let mut colour = alloc::vec![0u8; segments.len()];
        let mut depth = alloc::vec![0usize; segments.len()];
        for (key, &position) in index {
            let mut cycle = None;
            let node_depth = depth_of(position, &references, &mut colour, &mut depth, &mut cycle);
            if cycle.is_some() {
                self.problem(
                    &format!("segments.{key}"),
                    "segment_cycle",
                    format!("segment {key:?} refers back to itself through in_segment conditions"),
                );
            } else if node_depth > MAX_SEGMENT_DEPTH {
                self.problem(
                    &format!("segments.{key}"),
                    "too_deep",
                    format!("segments nest {node_depth} deep; the limit is {MAX_SEGMENT_DEPTH}"),
                );
            }
        }
        // A segment refers only to segments less deep than itself (a cycle, already reported,
        // is cut where the search found it), so costs in order of depth are all known when used.
        let mut order: Vec<usize> = (0..segments.len()).collect();
        order.sort_by_key(|&position| depth[position]);
        let mut costs = alloc::vec![0u64; segments.len()];
        for position in order {
            costs[position] = expanded_cost(&segments[position].conditions, &costs);
        }
        for (key, &position) in index {
            let cost = costs[position];
            if cost > MAX_EXPANDED_CONDITIONS {
                self.problem(
                    &format!("segments.{key}"),
                    "too_complex",
                    format!(
                        "segment {key:?} expands to {cost} condition tests through in_segment; \
                         the limit is {MAX_EXPANDED_CONDITIONS}"
                    ),
                );
            }
        }
        costs
    }

    /// Reports each rule whose conditions expand to more than [`MAX_EXPANDED_CONDITIONS`]
    /// tests through the segments they refer to.
    fn check_rule_costs(&mut self, flags: &[Flag], segment_costs: &[u64]) {
        for flag in flags {
            for (index, rule) in flag.rules.iter().enumerate() {
                let cost = expanded_cost(&rule.conditions, segment_costs);
                if cost > MAX_EXPANDED_CONDITIONS {
                    self.problem(
                        &format!("flags.{}.rules[{index}].when", flag.key),
                        "too_complex",
                        format!(
                            "the rule expands to {cost} condition tests through in_segment; the \
                             limit is {MAX_EXPANDED_CONDITIONS}"
                        ),
                    );
                }
            }
        }
    }

    fn conditions(
        &mut self,
        path: &str,
        raw: &[RawCondition],
        segments: &BTreeMap<String, usize>,
    ) -> Vec<Condition> {
        self.check_count(path, "conditions", raw.len(), MAX_CONDITIONS);
        raw.iter()
            .enumerate()
            .filter_map(|(index, condition)| {
                self.condition(&format!("{path}[{index}]"), condition, segments)
            })
            .collect()
    }

    fn condition(
        &mut self,
        path: &str,
        raw: &RawCondition,
        segments: &BTreeMap<String, usize>,
    ) -> Option<Condition> {
        let values_path = format!("{path}.values");
        let mut negate = raw.negate;
        let op = raw.op.as_str();
        let is_string_op = matches!(op, "str_contains" | "str_starts_with" | "str_ends_with");
        if raw.case_insensitive && !is_string_op {
            self.problem(
                &format!("{path}.case_insensitive"),
                "not_applicable",
                format!("case_insensitive applies only to str_* operators, not {op:?}"),
            );
        }
        if op == "in_segment" {
            if !raw.attribute.is_empty() {
                self.problem(
                    &format!("{path}.attribute"),
                    "not_applicable",
                    String::from("in_segment reads no attribute"),
                );
            }
        } else if !is_valid_key(&raw.attribute) {
            self.check_key(
                &format!("{path}.attribute"),
                "the attribute",
                &raw.attribute,
            );
        }
        if raw.values.is_empty() {
            self.problem(
                &values_path,
                "missing",
                format!("{op:?} needs at least one value"),
            );
            return None;
        }
        if !self.check_count(&values_path, "values", raw.values.len(), MAX_VALUES) {
            return None;
        }
        for (index, value) in raw.values.iter().enumerate() {
            if value.len() > MAX_VALUE_BYTES {
                self.problem(
                    &format!("{values_path}[{index}]"),
                    "too_long",
                    format!("a value is at most {MAX_VALUE_BYTES} bytes"),
                );
            }
        }
        let single = |compiler: &mut Compiler| -> Option<String> {
            if raw.values.len() != 1 {
                compiler.problem(
                    &values_path,
                    "wrong_arity",
                    format!("{op:?} takes exactly one value, not {}", raw.values.len()),
                );
                return None;
            }
            Some(raw.values[0].clone())
        };
        let number = |compiler: &mut Compiler, test| -> Option<Test> {
            let text = single(compiler)?;
            match parse_number(&text) {
                Some(value) => Some(Test::Number { test, value }),
                None => {
                    compiler.problem(
                        &format!("{values_path}[0]"),
                        "bad_number",
                        format!("{text:?} is not a number"),
                    );
                    None
                }
            }
        };
        let date = |compiler: &mut Compiler| -> Option<i64> {
            let text = single(compiler)?;
            let parsed = parse_rfc3339_millis(&text);
            if parsed.is_none() {
                compiler.problem(
                    &format!("{values_path}[0]"),
                    "bad_date",
                    format!("{text:?} is not an RFC 3339 date-time (such as 2025-05-15T10:23:45Z)"),
                );
            }
            parsed
        };
        let semver = |compiler: &mut Compiler, ordering| -> Option<Test> {
            let text = single(compiler)?;
            match Semver::parse(&text) {
                Some(version) => Some(Test::Semver(ordering, version)),
                None => {
                    compiler.problem(
                        &format!("{values_path}[0]"),
                        "bad_semver",
                        format!("{text:?} is not a semantic version"),
                    );
                    None
                }
            }
        };
        let strings = |test| {
            let values = if raw.case_insensitive {
                raw.values.iter().map(|v| to_lowercase(v)).collect()
            } else {
                raw.values.clone()
            };
            let prefixes = match test {
                StringTest::StartsWith if !raw.case_insensitive => Prefix::all(&values),
                _ => None,
            };
            Some(Test::Str {
                test,
                values,
                case_insensitive: raw.case_insensitive,
                prefixes,
            })
        };
        let test = match op {
            "in" | "not_in" => {
                if op == "not_in" {
                    negate = !negate;
                }
                Some(Test::In(InList::new(raw.values.clone())))
            }
            "str_contains" => strings(StringTest::Contains),
            "str_starts_with" => strings(StringTest::StartsWith),
            "str_ends_with" => strings(StringTest::EndsWith),
            "num_eq" => number(self, NumberTest::Eq),
            "num_gt" => number(self, NumberTest::Gt),
            "num_gte" => number(self, NumberTest::Gte),
            "num_lt" => number(self, NumberTest::Lt),
            "num_lte" => number(self, NumberTest::Lte),
            "date_after" => date(self).map(Test::DateAfter),
            "date_before" => date(self).map(Test::DateBefore),
            "semver_eq" => semver(self, Ordering::Equal),
            "semver_gt" => semver(self, Ordering::Greater),
            "semver_lt" => semver(self, Ordering::Less),
            "in_segment" => {
                let mut targets = Vec::new();
                for (index, key) in raw.values.iter().enumerate() {
                    match segments.get(key) {
                        Some(&target) => targets.push(target),
                        None => self.problem(
                            &format!("{values_path}[{index}]"),
                            "unknown_segment",
                            format!("no segment is named {key:?}"),
                        ),
                    }
                }
                Some(Test::InSegment(targets))
            }
            other => {
                self.problem(
                    &format!("{path}.op"),
                    "unknown_operator",
                    format!(
                        "{other:?} is not an operator; use one of in, not_in, str_contains, str_starts_with, \
                         str_ends_with, num_eq, num_gt, num_gte, num_lt, num_lte, date_after, date_before, \
                         semver_eq, semver_gt, semver_lt, in_segment"
                    ),
                );
                None
            }
        }?;
        Some(Condition {
            attribute: Name::new(raw.attribute.clone()),
            test,
            negate,
        })
    }

    fn flag(
        &mut self,
        path: &str,
        raw: &RawFlag,
        context: &FlagContext<'_>,
        layer_claims: &mut BTreeMap<String, Vec<LayerClaim>>,
    ) -> Flag {
        let variants_path = format!("{path}.variants");
        if raw.variants.is_empty() {
            self.problem(
                &variants_path,
                "missing",
                String::from("a flag needs at least one variant"),
            );
        }
        self.check_count(&variants_path, "variants", raw.variants.len(), MAX_VARIANTS);
        let variant_index = self.index_entries(&variants_path, &raw.variants);
        let mut variants = Vec::with_capacity(raw.variants.len());
        for (key, variant) in raw.variants.iter() {
            let vpath = format!("{variants_path}.{key}");
            self.check_key(&vpath, "the variant name", key);
            let mut compiled = Variant {
                key: key.clone(),
                value: Value::Null,
                prompt: None,
            };
            if raw.kind == FlagKind::Prompt {
                if variant.value.is_some() {
                    self.problem(
                        &format!("{vpath}.value"),
                        "not_applicable",
                        String::from("a prompt variant names its body with `prompt`, not `value`"),
                    );
                }
                match &variant.prompt {
                    None => self.problem(
                        &format!("{vpath}.prompt"),
                        "missing",
                        String::from("a prompt variant needs the content id of its prompt version"),
                    ),
                    Some(content_id) => match context
                        .prompts
                        .binary_search_by(|p| p.content_id.as_str().cmp(content_id))
                    {
                        Ok(position) => {
                            let meta = &context.prompts[position];
                            compiled.prompt = Some(position);
                            compiled.value = prompt_value(meta);
                        }
                        Err(_) => self.problem(
                            &format!("{vpath}.prompt"),
                            "unknown_prompt",
                            format!(
                                "no prompt with content id {content_id:?} is listed under `prompts`"
                            ),
                        ),
                    },
                }
            } else {
                if variant.prompt.is_some() {
                    self.problem(
                        &format!("{vpath}.prompt"),
                        "not_applicable",
                        format!(
                            "only prompt flags name prompt bodies; this flag is {:?}",
                            raw.kind.as_str()
                        ),
                    );
                }
                match &variant.value {
                    None => self.problem(
                        &format!("{vpath}.value"),
                        "missing",
                        String::from("the variant has no value"),
                    ),
                    Some(value) => {
                        let fits = match raw.kind {
                            FlagKind::Boolean => value.is_boolean(),
                            FlagKind::String => value.is_string(),
                            FlagKind::Number => value.is_number(),
                            FlagKind::Object => value.is_object(),
                            FlagKind::Prompt => false,
                        };
                        if !fits {
                            self.problem(
                                &format!("{vpath}.value"),
                                "wrong_type",
                                format!(
                                    "the value must be a {} for a {} flag",
                                    kind_noun(raw.kind),
                                    raw.kind.as_str()
                                ),
                            );
                        }
                        compiled.value = value.clone();
                    }
                }
            }
            variants.push(compiled);
        }
        let baseline = match variant_index.get(&raw.baseline) {
            Some(&position) => position,
            None => {
                self.problem(
                    &format!("{path}.baseline"),
                    "unknown_variant",
                    format!("the baseline {:?} is not one of the variants", raw.baseline),
                );
                0
            }
        };
        let variants_ctx = ServeContext {
            flag_key: context.key,
            variants: &variant_index,
            baseline: &raw.baseline,
            context,
        };
        self.check_count(
            &format!("{path}.rules"),
            "rules",
            raw.rules.len(),
            MAX_RULES,
        );
        let mut rule_ids = BTreeSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (index, rule) in raw.rules.iter().enumerate() {
            let rpath = format!("{path}.rules[{index}]");
            if let Some(id) = &rule.id {
                self.check_key(&format!("{rpath}.id"), "the rule id", id);
                if !rule_ids.insert(id.clone()) {
                    self.problem(
                        &format!("{rpath}.id"),
                        "duplicate_key",
                        format!("rule id {id:?} is used more than once"),
                    );
                }
            }
            let conditions =
                self.conditions(&format!("{rpath}.when"), &rule.when, context.segments);
            let serve = self.serve(
                &format!("{rpath}.serve"),
                &rule.serve,
                &variants_ctx,
                layer_claims,
            );
            rules.push(Rule {
                id: rule.id.clone(),
                conditions,
                serve,
            });
        }
        let default = match &raw.default {
            Some(serve) => self.serve(
                &format!("{path}.default"),
                serve,
                &variants_ctx,
                layer_claims,
            ),
            None => Serve::Variant(baseline),
        };
        Flag {
            key: String::from(context.key),
            kind: raw.kind,
            variants,
            baseline,
            enabled: raw.enabled,
            rules,
            default,
        }
    }

    fn serve(
        &mut self,
        path: &str,
        raw: &RawServe,
        ctx: &ServeContext<'_>,
        layer_claims: &mut BTreeMap<String, Vec<LayerClaim>>,
    ) -> Serve {
        match (&raw.variant, &raw.split) {
            (Some(variant), None) => match ctx.variants.get(variant) {
                Some(&position) => Serve::Variant(position),
                None => {
                    self.problem(
                        &format!("{path}.variant"),
                        "unknown_variant",
                        format!("{variant:?} is not one of the flag's variants"),
                    );
                    Serve::Variant(0)
                }
            },
            (None, Some(split)) => {
                Serve::Split(self.split(&format!("{path}.split"), split, ctx, layer_claims))
            }
            _ => {
                self.problem(
                    path,
                    "bad_serve",
                    String::from("a serve names exactly one of `variant` or `split`"),
                );
                Serve::Variant(0)
            }
        }
    }

    fn split(
        &mut self,
        path: &str,
        raw: &RawSplit,
        ctx: &ServeContext<'_>,
        layer_claims: &mut BTreeMap<String, Vec<LayerClaim>>,
    ) -> Split {
        let bucket_by = raw
            .bucket_by
            .clone()
            .unwrap_or_else(|| String::from(TARGETING_KEY));
        if raw.bucket_by.is_some() {
            self.check_key(&format!("{path}.bucket_by"), "the attribute", &bucket_by);
        }
        let seed = raw
            .seed
            .clone()
            .unwrap_or_else(|| String::from(ctx.flag_key));
        if seed.is_empty() || seed.len() > MAX_NAME_BYTES {
            self.problem(
                &format!("{path}.seed"),
                "invalid_key",
                format!("the seed must be 1 to {MAX_NAME_BYTES} bytes"),
            );
        }
        let treatments_path = format!("{path}.treatments");
        let count = raw.treatments.len();
        if count == 0 {
            self.problem(
                &treatments_path,
                "missing",
                String::from("a split needs at least one treatment"),
            );
        }
        self.check_count(&treatments_path, "treatments", count, MAX_VARIANTS);
        let width = if count == 0 {
            SLOTS
        } else {
            SLOTS / count as u32
        };
        let mut seen = BTreeSet::new();
        let mut treatments = Vec::with_capacity(count);
        let mut weights = Vec::with_capacity(count);
        for (index, treatment) in raw.treatments.iter().enumerate() {
            let tpath = format!("{treatments_path}[{index}]");
            match ctx.variants.get(&treatment.variant) {
                Some(&position) => treatments.push(position),
                None => {
                    self.problem(
                        &format!("{tpath}.variant"),
                        "unknown_variant",
                        format!("{:?} is not one of the flag's variants", treatment.variant),
                    );
                    treatments.push(0);
                }
            }
            if treatment.variant == ctx.baseline {
                self.problem(&format!("{tpath}.variant"), "baseline_in_split", String::from("the baseline takes every slot outside the treatment lanes; it cannot be a treatment"));
            }
            if !seen.insert(treatment.variant.clone()) {
                self.problem(
                    &format!("{tpath}.variant"),
                    "duplicate_key",
                    format!("{:?} has more than one lane", treatment.variant),
                );
            }
            if treatment.weight > width {
                self.problem(
                    &format!("{tpath}.weight"),
                    "lane_overflow",
                    format!(
                        "weight {} is over the lane width {width} (100000 / {count} treatments)",
                        treatment.weight
                    ),
                );
            }
            weights.push(treatment.weight.min(width));
        }
        let layer = raw.layer.as_ref().and_then(|range| {
            self.layer_span(
                &format!("{path}.layer"),
                range,
                &bucket_by,
                ctx,
                layer_claims,
            )
        });
        let mut seed_prefix = seed.into_bytes();
        seed_prefix.push(b'/');
        Split {
            by_targeting_key: bucket_by == TARGETING_KEY,
            bucket_by: Name::new(bucket_by),
            seed_prefix,
            treatments,
            lanes: Lanes::new(weights),
            layer,
        }
    }

    fn layer_span(
        &mut self,
        path: &str,
        range: &RawLayerRange,
        bucket_by: &str,
        ctx: &ServeContext<'_>,
        layer_claims: &mut BTreeMap<String, Vec<LayerClaim>>,
    ) -> Option<LayerSpan> {
        let Some(layer) = ctx
            .context
            .layers
            .get(&range.name)
            .and_then(|&i| ctx.context.raw_layers.layers.0.get(i))
        else {
            self.problem(
                &format!("{path}.name"),
                "unknown_layer",
                format!("no layer is named {:?}", range.name),
            );
            return None;
        };
        let layer_bucket_by = layer.1.bucket_by.as_deref().unwrap_or(TARGETING_KEY);
        if layer_bucket_by != bucket_by {
            self.problem(
                path,
                "layer_unit_mismatch",
                format!("the split buckets by {bucket_by:?} but layer {:?} buckets by {layer_bucket_by:?}", range.name),
            );
        }
        if range.start >= range.end || range.end > SLOTS {
            self.problem(
                path,
                "bad_range",
                format!(
                    "the range [{}, {}) must be non-empty and within [0, {SLOTS})",
                    range.start, range.end
                ),
            );
            return None;
        }
        layer_claims
            .entry(range.name.clone())
            .or_default()
            .push(LayerClaim {
                flag: String::from(ctx.flag_key),
                path: String::from(path),
                start: range.start,
                end: range.end,
            });
        let mut seed_prefix = String::from(LAYER_SEED_PREFIX);
        seed_prefix.push_str(&range.name);
        seed_prefix.push('/');
        Some(LayerSpan {
            seed_prefix: seed_prefix.into_bytes(),
            start: range.start,
            end: range.end,
        })
    }

    fn check_layer_overlaps(&mut self, claims: &BTreeMap<String, Vec<LayerClaim>>) {
        // One flag may reuse its range across rules; two flags in one layer must not overlap,
        // or the layer would no longer keep their experiments apart.
        for (layer, list) in claims {
            for (i, a) in list.iter().enumerate() {
                for b in &list[i + 1..] {
                    if a.flag != b.flag && a.start < b.end && b.start < a.end {
                        self.problem(
                            &b.path,
                            "layer_overlap",
                            format!(
                                "[{}, {}) of layer {layer:?} overlaps [{}, {}) held by flag {:?} ({})",
                                b.start, b.end, a.start, a.end, a.flag, a.path
                            ),
                        );
                    }
                }
            }
        }
    }
}

struct FlagContext<'a> {
    key: &'a str,
    prompts: &'a [PromptMeta],
    segments: &'a BTreeMap<String, usize>,
    layers: &'a BTreeMap<String, usize>,
    raw_layers: &'a RawRuleset,
}

struct ServeContext<'a> {
    flag_key: &'a str,
    variants: &'a BTreeMap<String, usize>,
    baseline: &'a str,
    context: &'a FlagContext<'a>,
}

fn kind_noun(kind: FlagKind) -> &'static str {
    match kind {
        FlagKind::Boolean => "boolean",
        FlagKind::String => "string",
        FlagKind::Number => "number",
        FlagKind::Object | FlagKind::Prompt => "JSON object",
    }
}

/// The value a prompt variant serves: the reference to its body, with model and parameters.
fn prompt_value(meta: &PromptMeta) -> Value {
    let mut object = serde_json::Map::new();
    object.insert(String::from("id"), Value::String(meta.id.clone()));
    object.insert(String::from("version"), Value::String(meta.version.clone()));
    object.insert(String::from("hash"), Value::String(meta.hash.clone()));
    object.insert(
        String::from("content_id"),
        Value::String(meta.content_id.clone()),
    );
    object.insert(String::from("model"), Value::String(meta.model.clone()));
    object.insert(String::from("parameters"), meta.parameters.clone());
    if let Some(schema) = &meta.output_schema {
        object.insert(String::from("output_schema"), schema.clone());
    }
    Value::Object(object)
}

/// Rule conditions with each `in_segment` of one segment made only of conditions replaced by
/// those conditions, preceded by the check on the segment's unit that `in_segment` makes, so
/// evaluation reads one flat list rather than calling into the segment. The outcome is the
/// same, errors included: `in_segment` of such a segment holds exactly when its conditions all
/// hold, checked in order, and stops at the same condition. Segments with unit lists, empty
/// segments, negated conditions and lists of several segments stay as they are, and so does
/// anything that would grow past [`INLINED_CONDITIONS_MAX`] conditions.
///
/// `flattened` keeps each segment's own flattened conditions once computed, so a segment that is
/// referred to many times is flattened once: the work is linear in the ruleset's size.
fn inline_segments(
    conditions: &[Condition],
    segments: &[Segment],
    flattened: &mut Vec<Option<Vec<Condition>>>,
) -> Vec<Condition> {
    let mut flat = Vec::with_capacity(conditions.len());
    for (index, condition) in conditions.iter().enumerate() {
        let inlinable = match (&condition.test, condition.negate) {
            (Test::InSegment(targets), false) if targets.len() == 1 => {
                segments.get(targets[0]).filter(|segment| {
                    segment.included.is_empty()
                        && segment.excluded.is_empty()
                        && !segment.conditions.is_empty()
                })
            }
            _ => None,
        };
        let Some(segment) = inlinable else {
            flat.push(condition.clone());
            continue;
        };
        let target = match &condition.test {
            Test::InSegment(targets) => targets[0],
            _ => continue,
        };
        let inner = match flattened.get(target).cloned().flatten() {
            Some(inner) => inner,
            None => {
                let inner = inline_segments(&segment.conditions, segments, flattened);
                if let Some(slot) = flattened.get_mut(target) {
                    *slot = Some(inner.clone());
                }
                inner
            }
        };
        let remaining = conditions.len() - index - 1;
        if flat.len() + 1 + inner.len() + remaining > INLINED_CONDITIONS_MAX {
            flat.push(condition.clone());
            continue;
        }
        flat.push(Condition {
            attribute: segment.match_by.clone(),
            test: Test::UsableUnit,
            negate: false,
        });
        flat.extend(inner);
    }
    flat
}

/// How many condition tests these conditions expand to, each `in_segment` counting as one test
/// plus every test of each segment it names (their costs given), saturating.
fn expanded_cost(conditions: &[Condition], segment_costs: &[u64]) -> u64 {
    conditions.iter().fold(0u64, |total, condition| {
        let referred = match &condition.test {
            Test::InSegment(targets) => targets.iter().fold(0u64, |sum, &target| {
                sum.saturating_add(segment_costs.get(target).copied().unwrap_or(0))
            }),
            _ => 0,
        };
        total.saturating_add(1).saturating_add(referred)
    })
}

/// The most conditions [`inline_segments`] leaves in one rule.
const INLINED_CONDITIONS_MAX: usize = 32;
