//! `promptflag`: the thin binary over the companion crates (authoring, release, telemetry, rollout,
//! controller). It parses arguments, calls those libraries, prints text or `--json`, and maps
//! errors to the documented exit codes
//! (0 ok, 1 problems found, 2 usage or I/O, 3 conflict, 4 refused by a gate, 5 remote failure).

mod args;
mod commands;
mod exit;
mod serve;
mod simulate;

use std::io::Write;

use anyhow::Result;
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use promptflag_release::store::Progress;
use serde_json::{Value, json};

use args::{HiArgs, HiCommand, LowArgs};
use exit::ExitCode;

/// An indicatif bar on stderr; hidden for `--json` and when stderr is not a terminal.
pub(crate) struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub(crate) fn new(hidden: bool) -> Bar {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }
}

impl Bar {
    /// A spinner for waits whose end is not known.
    pub(crate) fn spinner(hidden: bool) -> Bar {
        let bar = Bar::new(hidden);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.bar.set_style(style);
        }
        bar
    }

    /// Shows a new message and advances the spinner.
    pub(crate) fn tick(&self, message: &str) {
        self.bar.set_message(message.to_string());
        self.bar.tick();
    }

    /// Clears the bar or spinner.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn begin(&self, total: u64, message: &str) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(message.to_string());
    }
    fn advance(&self, units: u64) {
        self.bar.inc(units);
    }
    fn end(&self) {
        self.bar.finish_and_clear();
    }
}

/// What a command produced: text for people, JSON for machines, and the exit code.
pub(crate) struct Output {
    pub(crate) text: String,
    pub(crate) json: Value,
    pub(crate) code: ExitCode,
}

fn main() {
    let low = match LowArgs::try_parse() {
        Ok(low) => low,
        Err(error) => usage_error(error),
    };
    let json_mode = low.json;
    let code = match HiArgs::from_low(low).and_then(run) {
        Ok(output) => {
            emit(json_mode, &output);
            output.code
        }
        Err(error) => report(json_mode, &error),
    };
    std::process::exit(code.code());
}

fn emit(json_mode: bool, output: &Output) {
    let mut stdout = std::io::stdout().lock();
    let written = if json_mode {
        let mut json = output.json.clone();
        // A command that ran but found problems is a failure too: it carries the same
        // `exit_code` and stable `code` as an error does.
        if output.code != ExitCode::Ok
            && let Some(object) = json.as_object_mut()
        {
            object.insert(String::from("exit_code"), json!(output.code.code()));
            object.insert(String::from("code"), json!(output.code.name()));
        }
        writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        )
    } else {
        write!(stdout, "{}", output.text)
    };
    // A closed pipe (`promptflag … | head`) is not an error worth a message.
    let _ = written;
}

/// Arguments clap refused. With `--json` anywhere on the line the refusal is a JSON error on
/// stdout like every other failure; help and version print as clap prints them.
fn usage_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os().any(|arg| arg == "--json");
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !wants_json || informational {
        error.exit();
    }
    print_json_error(&error.render().to_string(), &exit::Failure::default());
    std::process::exit(ExitCode::Usage.code());
}

/// A failure as JSON on stdout: `{ok: false, exit_code, code, error, diagnostics, problems}`,
/// where `code` is the stable name of the exit code (`docs/companion.md`), `diagnostics` the
/// repository's (file and line) and `problems` a rejected ruleset's (`{path, code, message}`).
fn print_json_error(message: &str, failure: &exit::Failure) {
    let code = failure.exit_code();
    let value = json!({
        "ok": false,
        "exit_code": code.code(),
        "code": code.name(),
        "error": message.trim_end(),
        "diagnostics": failure.diagnostics,
        "problems": failure.problems,
    });
    // A closed pipe is not worth a panic, as in `emit`.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

fn report(json_mode: bool, error: &anyhow::Error) -> ExitCode {
    let failure = exit::classify(error);
    let code = failure.exit_code();
    let diagnostics = &failure.diagnostics;
    if json_mode {
        print_json_error(&format!("{error:#}"), &failure);
    } else {
        for diagnostic in diagnostics {
            eprintln!("{diagnostic}");
        }
        eprintln!("error: {error:#}");
    }
    code
}

fn run(args: HiArgs) -> Result<Output> {
    use commands::{authoring, governance, release};
    match &args.command {
        HiCommand::Serve {
            args: serve,
            target,
        } => serve::run_serve(&args, serve, target.as_ref()),
        HiCommand::Rollout(command) => serve::run_rollout(&args, command),
        HiCommand::Analyze { input, overrides } => commands::run_analyze(input, overrides),
        HiCommand::Simulate(simulate) => simulate::run(&args, simulate),
        HiCommand::Lint => authoring::run_lint(&args.repo, args.owner_keys.as_deref()),
        HiCommand::Approve {
            prompt,
            environment,
            signing,
        } => governance::run_approve(&args, prompt, environment, signing),
        HiCommand::Keys(command) => governance::run_keys(&args, command),
        HiCommand::Exposures {
            args: exposures,
            from_ms,
            to_ms,
        } => commands::forensics::run_exposures(&args, exposures, *from_ms, *to_ms),
        HiCommand::Attribute {
            args: attribute,
            metrics,
            since_ms,
            until_ms,
            now_ms,
        } => commands::forensics::run_attribute(
            &args, attribute, metrics, *since_ms, *until_ms, *now_ms,
        ),
        HiCommand::Build {
            out,
            environments,
            source,
        } => authoring::run_build(
            &args.repo,
            out,
            environments,
            source,
            args.owner_keys.as_deref(),
        ),
        HiCommand::Diff {
            old,
            new,
            environment,
        } => authoring::run_diff(&args.repo, old, new.as_deref(), environment.as_deref()),
        HiCommand::Eval {
            flag,
            context,
            ruleset,
            environment,
            now_millis,
        } => authoring::run_eval(&args.repo, flag, context, ruleset, environment, *now_millis),
        HiCommand::Publish(command) => release::run_publish(&args, command),
        HiCommand::Revert(revert) => release::run_revert(&args, revert),
        HiCommand::History {
            environment,
            target,
            http,
        } => release::run_history(&args, environment, target, http),
        HiCommand::Status {
            environment,
            target,
            http,
        } => release::run_status(&args, environment, target, http),
        HiCommand::Sync {
            environment,
            target,
            http,
        } => release::run_sync(&args, environment.as_deref(), target, http),
        HiCommand::AuditList {
            environment,
            server,
        } => release::run_audit_list(&args, environment, server.as_ref()),
        HiCommand::AuditVerify {
            expect_head,
            server,
        } => release::run_audit_verify(&args, expect_head, server.as_ref()),
        HiCommand::EvalsRun(run) => commands::evals::run_evals(&args, run),
        HiCommand::Hygiene {
            window_seconds,
            today,
        } => commands::hygiene::run_hygiene(&args, *window_seconds, today.as_deref()),
    }
}
