//! The native side of the npm package's cross-runtime identity test (`npm/tests/identity.test.mjs`).
//!
//! Usage: `identity RULESET.json…` with NDJSON on standard input, one request per line:
//! `{"ruleset": <index into the arguments>, "now": <millis or null>, "context": {…}}`.
//! For each line it prints one JSON array with an entry per flag of that ruleset, in key order:
//! `[flag, variant, reason, errorCode, slot]` (`null` where there is none). The Node test prints
//! the same from the Wasm build and compares the two line by line.

use std::io::{BufRead, BufWriter, Write};

use promptflag_core::{Context, Ruleset, context_error};
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rulesets = Vec::new();
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        rulesets.push(Ruleset::from_json_str(&text).map_err(|e| format!("{path}: {e}"))?);
    }
    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (number, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let index = request["ruleset"]
            .as_u64()
            .ok_or_else(|| format!("line {}: no ruleset index", number + 1))?;
        let ruleset = rulesets
            .get(index as usize)
            .ok_or_else(|| format!("line {}: no ruleset {index}", number + 1))?;
        let row: Vec<Value> = match Context::from_json_value(&request["context"]) {
            Ok(mut context) => {
                context.set_now_millis(request["now"].as_i64());
                ruleset
                    .evaluate_all(&context)
                    .iter()
                    .map(|evaluation| {
                        json!([
                            evaluation.key,
                            evaluation.variant,
                            evaluation.reason,
                            evaluation.error_code,
                            evaluation.bucket.map(|bucket| bucket.slot)
                        ])
                    })
                    .collect()
            }
            Err(problem) => ruleset
                .flag_keys()
                .map(|key| {
                    let evaluation = context_error(ruleset, key, &problem);
                    json!([
                        key,
                        evaluation.variant,
                        evaluation.reason,
                        evaluation.error_code,
                        null
                    ])
                })
                .collect(),
        };
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
