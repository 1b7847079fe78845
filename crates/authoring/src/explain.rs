//! `promptflag eval`: evaluate one flag for one context with `promptflag-core`, and say why —
//! the rule that matched, the slot, the lane and its range.

use promptflag_core::model::{RawRuleset, RawServe};
use promptflag_core::{Context, Ruleset};
use serde_json::Value;

use crate::diff::{describe_rule, describe_serve};
use crate::error::{Error, Result};

/// The outcome of an evaluation, explained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    /// The flag.
    pub flag: String,
    /// The environment of the ruleset.
    pub environment: String,
    /// Its revision.
    pub revision: u64,
    /// Core's evaluation, as the runtimes report it.
    pub evaluation: Value,
    /// One sentence per step of the decision.
    pub why: Vec<String>,
}

/// Evaluates `flag` for `context` (a JSON object) against a raw ruleset. A flag the ruleset
/// does not have is an error naming the flags it has: explaining "the baseline is served" for a
/// typo would hide it.
pub fn explain(
    raw: &RawRuleset,
    flag: &str,
    context: &Value,
    now_millis: Option<i64>,
) -> Result<Explanation> {
    if raw.flags.get(flag).is_none() {
        let known: Vec<&str> = raw.flags.iter().map(|(key, _)| key.as_str()).collect();
        return Err(Error::Invalid(format!(
            "no flag {flag:?} in the {} ruleset (its flags: {})",
            raw.environment,
            known.join(", ")
        )));
    }
    let ruleset: Ruleset =
        promptflag_core::compile(raw).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut context =
        Context::from_json_value(context).map_err(|e| Error::Invalid(e.to_string()))?;
    context.set_now_millis(now_millis);
    let evaluation = ruleset.evaluate(flag, &context);
    let mut why = Vec::new();
    let raw_flag = raw.flags.get(flag);
    match (&evaluation.reason, raw_flag) {
        (_, None) => why.push(format!("no flag {flag:?} in this ruleset")),
        (promptflag_core::Reason::Disabled, Some(f)) => {
            why.push(format!(
                "the flag is disabled (kill switch): everyone gets the baseline {:?}",
                f.baseline
            ));
        }
        (promptflag_core::Reason::Error, Some(f)) => why.push(format!(
            "evaluation failed ({}): the baseline {:?} is served",
            evaluation.error_message.unwrap_or("error"),
            f.baseline
        )),
        (_, Some(f)) => {
            let serve: Option<&RawServe> = match evaluation.rule_index {
                Some(index) => {
                    let index = index as usize;
                    for (earlier, rule) in f.rules.iter().enumerate().take(index) {
                        why.push(format!("no match: rule {}", describe_rule(earlier, rule)));
                    }
                    f.rules.get(index).map(|rule| {
                        why.push(format!("match: rule {}", describe_rule(index, rule)));
                        &rule.serve
                    })
                }
                None => {
                    for (index, rule) in f.rules.iter().enumerate() {
                        why.push(format!("no match: rule {}", describe_rule(index, rule)));
                    }
                    let default = f.default.as_ref();
                    why.push(format!(
                        "no rule matched: the default serves {}",
                        default
                            .map_or_else(|| format!("the baseline {}", f.baseline), describe_serve)
                    ));
                    default
                }
            };
            if let (Some(bucket), Some(split)) =
                (evaluation.bucket, serve.and_then(|s| s.split.as_ref()))
            {
                let k = split.treatments.len().max(1) as u32;
                let width = 100_000 / k;
                let unit_attribute = split.bucket_by.as_deref().unwrap_or("targetingKey");
                let seed = split.seed.as_deref().unwrap_or(flag);
                why.push(format!(
                    "split on {unit_attribute} with seed {seed:?}: slot {} of 100000 (xxh3_64(seed + \"/\" + unit) scaled)",
                    bucket.slot
                ));
                if let Some(layer_slot) = bucket.layer_slot {
                    why.push(format!(
                        "layer slot {layer_slot}; in the experiment: {}",
                        bucket.in_experiment
                    ));
                }
                match bucket.lane {
                    Some(lane) => {
                        let treatment = &split.treatments[lane as usize];
                        why.push(format!(
                            "the slot is in lane {lane} [{}, {}) owned by {:?}",
                            lane * width,
                            lane * width + treatment.weight,
                            treatment.variant
                        ));
                    }
                    None => {
                        let lanes: Vec<String> = split
                            .treatments
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                format!(
                                    "{} [{}, {})",
                                    t.variant,
                                    i as u32 * width,
                                    i as u32 * width + t.weight
                                )
                            })
                            .collect();
                        why.push(format!(
                            "the slot is outside every treatment lane ({}): the baseline {:?}",
                            lanes.join(", "),
                            f.baseline
                        ));
                    }
                }
            }
        }
    }
    if let Some(variant) = evaluation.variant {
        let mut served = format!(
            "served variant {variant:?} ({})",
            evaluation.reason.as_str()
        );
        if let Some(prompt) = evaluation.prompt {
            served.push_str(&format!(
                ": prompt {}@{} ({}) on {}",
                prompt.id, prompt.version, &prompt.hash, prompt.model
            ));
        }
        why.push(served);
    }
    let evaluation_json =
        serde_json::to_value(&evaluation).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(Explanation {
        flag: flag.to_string(),
        environment: raw.environment.clone(),
        revision: raw.revision,
        evaluation: evaluation_json,
        why,
    })
}
