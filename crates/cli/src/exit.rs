//! Process exit codes and how each stage's error maps to one.
//!
//! Exit codes are part of the command's contract (CI scripts branch on them) and documented in
//! `docs/companion.md`; the library crates know nothing of them.

use promptflag_authoring::Diagnostic;
use promptflag_contracts::admin::Problem;

/// Process exit codes of `promptflag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// The command ran and found problems: lint errors, an invalid build, a broken audit chain.
    Problems = 1,
    /// Bad usage or local I/O failure: unknown flags, unreadable files, malformed input.
    Usage = 2,
    /// Another publisher changed the environment first (HTTP 409); nothing was overwritten.
    Conflict = 3,
    /// A governance gate refused: prod before staging, a missing approval, a draft in prod.
    Refused = 4,
    /// The remote store failed or the Worker did not serve the change in time.
    Remote = 5,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Its stable name, the `code` of a `--json` error.
    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::Problems => "problems",
            ExitCode::Usage => "usage",
            ExitCode::Conflict => "conflict",
            ExitCode::Refused => "refused",
            ExitCode::Remote => "remote",
        }
    }
}

/// What a failed command reports besides its message: the exit code, the repository's
/// diagnostics (file and line) and a rejected ruleset's problems (path and code).
#[derive(Debug, Default)]
pub struct Failure {
    /// The exit code.
    pub code: Option<ExitCode>,
    /// Lint and build diagnostics.
    pub diagnostics: Vec<Diagnostic>,
    /// A rejected ruleset's problems.
    pub problems: Vec<Problem>,
}

impl Failure {
    fn of(code: ExitCode) -> Failure {
        Failure {
            code: Some(code),
            ..Failure::default()
        }
    }

    /// The exit code (usage when nothing more specific is known).
    pub fn exit_code(&self) -> ExitCode {
        self.code.unwrap_or(ExitCode::Usage)
    }
}

/// What a failed command reports, from the first stage error found in the chain of causes;
/// anything else (argument and local errors) is usage.
pub fn classify(error: &anyhow::Error) -> Failure {
    for cause in error.chain() {
        if let Some(found) = cause
            .downcast_ref::<promptflag_authoring::Error>()
            .map(authoring)
            .or_else(|| {
                cause
                    .downcast_ref::<promptflag_release::Error>()
                    .map(release)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<promptflag_controller::Error>()
                    .map(controller)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<promptflag_telemetry::Error>()
                    .map(|_| Failure::of(ExitCode::Usage))
            })
            .or_else(|| {
                cause
                    .downcast_ref::<promptflag_rollout::Error>()
                    .map(|_| Failure::of(ExitCode::Usage))
            })
            .or_else(|| {
                // A model endpoint that cannot be reached or answers with an error is remote.
                cause
                    .downcast_ref::<promptflag_evals::openai::Error>()
                    .map(|_| Failure::of(ExitCode::Remote))
            })
        {
            return found;
        }
    }
    Failure::of(ExitCode::Usage)
}

fn authoring(error: &promptflag_authoring::Error) -> Failure {
    use promptflag_authoring::Error;
    match error {
        Error::Problems { diagnostics } => Failure {
            code: Some(ExitCode::Problems),
            diagnostics: diagnostics.clone(),
            problems: Vec::new(),
        },
        Error::Ruleset { problems, .. } => Failure {
            code: Some(ExitCode::Usage),
            diagnostics: Vec::new(),
            problems: problems.clone(),
        },
        _ => Failure::of(ExitCode::Usage),
    }
}

fn release(error: &promptflag_release::Error) -> Failure {
    use promptflag_release::Error;
    match error {
        Error::Authoring(inner) => authoring(inner),
        Error::Rejected(rejection) => Failure {
            code: Some(ExitCode::Problems),
            diagnostics: Vec::new(),
            problems: rejection.problems.clone(),
        },
        Error::Conflict { .. } => Failure::of(ExitCode::Conflict),
        Error::Refused(_) => Failure::of(ExitCode::Refused),
        Error::RefusedPrompts { problems } => Failure {
            code: Some(ExitCode::Refused),
            diagnostics: Vec::new(),
            problems: problems.clone(),
        },
        Error::Remote { .. } | Error::NotServed { .. } => Failure::of(ExitCode::Remote),
        _ => Failure::of(ExitCode::Usage),
    }
}

fn controller(error: &promptflag_controller::Error) -> Failure {
    use promptflag_controller::Error;
    match error {
        Error::Authoring(inner) => authoring(inner),
        Error::Release(inner) => release(inner),
        _ => Failure::of(ExitCode::Usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_error_keeps_its_exit_code_through_the_chain() {
        let conflict = promptflag_release::Error::Conflict {
            message: String::from("revision 2 is not above 2"),
        };
        assert_eq!(
            classify(&anyhow::Error::new(conflict)).exit_code().code(),
            3
        );
        let refused = promptflag_controller::Error::Release(promptflag_release::Error::Refused(
            String::from("prod before staging"),
        ));
        assert_eq!(
            classify(&anyhow::Error::new(refused)).exit_code(),
            ExitCode::Refused
        );
        let problems =
            promptflag_release::Error::Authoring(promptflag_authoring::Error::Problems {
                diagnostics: Vec::new(),
            });
        let wrapped = anyhow::Error::new(problems).context("publishing dev");
        assert_eq!(classify(&wrapped).exit_code(), ExitCode::Problems);
        let database = promptflag_telemetry::Error::Invalid(String::from("bad address"));
        assert_eq!(
            classify(&anyhow::Error::new(database)).exit_code(),
            ExitCode::Usage
        );
        let remote = promptflag_release::Error::NotServed {
            revision: 4,
            waited_ms: 100,
        };
        assert_eq!(
            classify(&anyhow::Error::new(remote)).exit_code(),
            ExitCode::Remote
        );
    }
}
