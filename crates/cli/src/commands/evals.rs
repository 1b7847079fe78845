//! `promptflag evals run`: each selected prompt version's golden set through a model (or its
//! recorded outputs), checked against the suite's criteria, with the result recorded for the
//! version's content id (`docs/evals.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::Output;
use crate::args::{EvalsRunArgs, HiArgs};
use crate::exit::ExitCode;
use promptflag_authoring::evals::{self, LoadedSuite, Recording};
use promptflag_authoring::repo::{PromptVersion, Repo};
use promptflag_evals::criteria::{self, Answer, Failure};
use promptflag_evals::openai::ChatClient;
use promptflag_evals::result::{CaseResult, EvalResult, SCHEMA};
use promptflag_evals::{judge, suite};

/// Where outputs come from.
enum Source {
    /// A live endpoint, recording into a folder when asked.
    Live {
        client: ChatClient,
        record: Option<PathBuf>,
    },
    /// Recorded outputs.
    Replay(PathBuf),
}

/// One case's answer: the output, its token count and the judge's score when judged.
struct CaseAnswer {
    text: String,
    output_tokens: u64,
    judgement: Option<Result<judge::Judgement, String>>,
}

pub(crate) fn run_evals(args: &HiArgs, run: &EvalsRunArgs) -> Result<Output> {
    let (repo, _) = promptflag_authoring::repo::load(&args.repo)?;
    let results_dir = run
        .results
        .clone()
        .unwrap_or_else(|| args.repo.join(evals::RESULTS_DIR));
    let source = match &run.replay {
        Some(dir) => Source::Replay(dir.clone()),
        None => {
            let Some(base_url) = &run.base_url else {
                bail!("evals run needs --base-url (PROMPTFLAG_EVAL_BASE_URL) or --replay DIR");
            };
            Source::Live {
                client: ChatClient::new(
                    base_url,
                    run.api_key.clone(),
                    Duration::from_secs(run.timeout.max(1)),
                ),
                record: run.record.clone(),
            }
        }
    };
    let selected = select(&repo, run)?;
    let mut text = String::new();
    let mut results = Vec::new();
    let mut all_passed = true;
    for (suite, version) in &selected {
        let result = run_version(&repo, suite, version, &source)?;
        let path = evals::write_result(&results_dir, &result)?;
        all_passed &= result.passed;
        text.push_str(&format!(
            "{} {}: {}/{} case(s) passed (min pass rate {}), {}\n  content id {}\n  result {}\n",
            if result.passed { "PASS" } else { "FAIL" },
            result.prompt,
            result.passed_cases,
            result.total_cases,
            result.min_pass_rate,
            result.mode,
            result.content_id,
            path.display()
        ));
        for case in result.cases.iter().filter(|case| !case.passed) {
            for failure in &case.failures {
                text.push_str(&format!(
                    "    {}: {}: {}\n",
                    case.id, failure.check, failure.message
                ));
            }
        }
        results.push(json!({"result": result, "path": path.display().to_string()}));
    }
    let json = json!({"ok": all_passed, "results": results});
    Ok(Output {
        text,
        json,
        code: if all_passed {
            ExitCode::Ok
        } else {
            ExitCode::Problems
        },
    })
}

/// The versions to run: every family with a suite (or `--family`), every version of it that is
/// not archived (or `--version`).
fn select<'a>(repo: &'a Repo, run: &EvalsRunArgs) -> Result<Vec<(LoadedSuite, &'a PromptVersion)>> {
    let folders = evals::suite_folders(&repo.root)?;
    if let Some(family) = &run.family
        && !folders.contains(family)
    {
        bail!("the family {family:?} has no eval suite (evals/{family}/eval.yaml)");
    }
    let mut selected = Vec::new();
    for folder in folders {
        if run.family.as_ref().is_some_and(|f| f != &folder) {
            continue;
        }
        let Some(family) = repo.families.get(&folder) else {
            bail!("evals/{folder}/ names no prompt family (lint reports it)");
        };
        let Some(suite) = evals::load_suite(&repo.root, &folder)? else {
            bail!("evals/{folder}/ has no eval.yaml");
        };
        for version in &family.versions {
            let archived = version
                .status
                .as_ref()
                .is_some_and(|status| status.value == "archived");
            let wanted = match &run.version {
                Some(wanted) => wanted == &version.version,
                None => run.include_archived || !archived,
            };
            if wanted {
                selected.push((suite.clone(), version));
            }
        }
    }
    if selected.is_empty() {
        bail!(
            "no prompt version matches: check --family and --version (evals/<family>/eval.yaml must exist)"
        );
    }
    Ok(selected)
}

fn run_version(
    repo: &Repo,
    suite: &LoadedSuite,
    version: &PromptVersion,
    source: &Source,
) -> Result<EvalResult> {
    let name = version.reference();
    let content_id = version
        .content_id(&repo.root)
        .with_context(|| format!("{name} has no body or no model, so no content id (run lint)"))?;
    let body = version
        .body
        .as_deref()
        .with_context(|| format!("{name}: the body cannot be read"))?;
    let model = version
        .model
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_default();
    let parameters = version
        .parameters
        .as_ref()
        .map(|p| p.value.clone())
        .unwrap_or_default();
    let schema = if suite.suite.output_schema {
        evals::output_schema(repo, version)
    } else {
        None
    };
    let replayed = match source {
        Source::Replay(dir) => {
            Some(evals::read_recording(dir, &content_id)?.with_context(|| {
                format!(
                    "no recording for {name} (content id {content_id}) in {}: record one with \
                 `promptflag evals run --record DIR` against a live endpoint",
                    dir.display()
                )
            })?)
        }
        Source::Live { .. } => None,
    };
    let mut recording = Recording::new();
    let mut cases = Vec::new();
    for case in &suite.suite.cases {
        let rendered = suite::render(body, &case.variables);
        let messages = suite::messages(&rendered, case.input.as_deref());
        let answer = match (source, &replayed) {
            (Source::Replay(dir), Some(recorded)) => replay_case(recorded, &case.id, dir, &name)?,
            (Source::Live { client, .. }, _) => {
                let completion = client
                    .complete(&model, &messages, &parameters)
                    .with_context(|| format!("{name}, case {}", case.id))?;
                let output_tokens = completion
                    .output_tokens
                    .unwrap_or_else(|| promptflag_authoring::tokens::estimate(&completion.content));
                let judgement = match &suite.suite.judge {
                    Some(config) => {
                        let judge_model = config.model.clone().unwrap_or_else(|| model.clone());
                        let input = messages_text(&messages);
                        let asked = judge::messages(&config.rubric, &input, &completion.content);
                        let zero = json!({"temperature": 0});
                        let empty = serde_json::Map::new();
                        let graded = client
                            .complete(&judge_model, &asked, zero.as_object().unwrap_or(&empty))
                            .with_context(|| format!("{name}, case {}: the judge", case.id))?;
                        Some(judge::parse(&graded.content).ok_or_else(|| {
                            format!("the judge's answer holds no score: {:?}", graded.content)
                        }))
                    }
                    None => None,
                };
                CaseAnswer {
                    text: completion.content,
                    output_tokens,
                    judgement,
                }
            }
            (Source::Replay(_), None) => bail!("no recording loaded for {name}"),
        };
        let mut recorded = json!({"content": answer.text, "output_tokens": answer.output_tokens});
        if let Some(Ok(judgement)) = &answer.judgement {
            recorded["judge_score"] = json!(judgement.score);
            recorded["judge_reason"] = json!(judgement.reason);
        }
        recording.insert(case.id.clone(), recorded);
        let criteria = suite.suite.criteria.merged(&case.expect);
        let mut verdict = criteria::check(
            &criteria,
            schema.as_ref(),
            Answer {
                text: &answer.text,
                output_tokens: answer.output_tokens,
            },
        );
        let mut judge_score = None;
        if let Some(config) = &suite.suite.judge {
            match answer.judgement {
                Some(Ok(judgement)) => {
                    judge_score = Some(judgement.score);
                    if judgement.score < config.threshold {
                        verdict.failures.push(Failure {
                            check: String::from("judge"),
                            message: format!(
                                "the judge scored {} (below {}): {}",
                                judgement.score, config.threshold, judgement.reason
                            ),
                        });
                    }
                }
                Some(Err(message)) => verdict.failures.push(Failure {
                    check: String::from("judge"),
                    message,
                }),
                None => verdict.failures.push(Failure {
                    check: String::from("judge"),
                    message: String::from("no judgement was recorded for this case"),
                }),
            }
        }
        cases.push(CaseResult {
            id: case.id.clone(),
            passed: verdict.passed(),
            output_tokens: answer.output_tokens,
            judge_score,
            failures: verdict.failures,
        });
    }
    if let Source::Live {
        record: Some(dir), ..
    } = source
    {
        evals::write_recording(dir, &content_id, &recording)?;
    }
    let total = cases.len() as u32;
    let passed_cases = cases.iter().filter(|case| case.passed).count() as u32;
    let min_pass_rate = suite.suite.min_pass_rate;
    let mut result = EvalResult {
        schema: SCHEMA,
        content_id,
        prompt: name,
        body_sha256: version.sha256.clone().unwrap_or_default(),
        model,
        suite_hash: suite.hash_for(repo, version),
        mode: String::from(match source {
            Source::Live { .. } => "live",
            Source::Replay(_) => "replay",
        }),
        passed: total > 0 && f64::from(passed_cases) >= min_pass_rate * f64::from(total),
        passed_cases,
        total_cases: total,
        min_pass_rate,
        cases,
        result_hash: String::new(),
    };
    result.seal();
    Ok(result)
}

fn replay_case(recorded: &Recording, case: &str, dir: &Path, name: &str) -> Result<CaseAnswer> {
    let Some(entry) = recorded.get(case) else {
        bail!(
            "the recording of {name} in {} has no case {case:?}: record the suite again",
            dir.display()
        );
    };
    let text = entry
        .get("content")
        .and_then(Value::as_str)
        .with_context(|| format!("the recording of {name}, case {case:?}, has no `content`"))?
        .to_string();
    let output_tokens = entry
        .get("output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| promptflag_authoring::tokens::estimate(&text));
    let judgement = entry
        .get("judge_score")
        .and_then(Value::as_f64)
        .map(|score| {
            Ok(judge::Judgement {
                score,
                reason: entry
                    .get("judge_reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
        });
    Ok(CaseAnswer {
        text,
        output_tokens,
        judgement,
    })
}

/// The messages as one text, for the judge to read as "the input".
fn messages_text(messages: &[Value]) -> String {
    messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n\n")
}
