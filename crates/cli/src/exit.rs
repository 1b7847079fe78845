//! Process exit codes and how each stage's error maps to one.
//!
//! Exit codes are part of the command's contract (CI scripts branch on them) and documented in
//! `docs/companion.md`; the library crates know nothing of them.

use promptflag_authoring::Diagnostic;

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

/// The exit code of a failed command and the diagnostics it carries, from the first stage
/// error found in the chain of causes; anything else (argument and local errors) is usage.
pub fn classify(error: &anyhow::Error) -> (ExitCode, Vec<Diagnostic>) {
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
                    .map(|_| (ExitCode::Usage, Vec::new()))
            })
            .or_else(|| {
                cause
                    .downcast_ref::<promptflag_rollout::Error>()
                    .map(|_| (ExitCode::Usage, Vec::new()))
            })
        {
            return found;
        }
    }
    (ExitCode::Usage, Vec::new())
}

fn authoring(error: &promptflag_authoring::Error) -> (ExitCode, Vec<Diagnostic>) {
    match error {
        promptflag_authoring::Error::Problems { diagnostics } => {
            (ExitCode::Problems, diagnostics.clone())
        }
        _ => (ExitCode::Usage, Vec::new()),
    }
}

fn release(error: &promptflag_release::Error) -> (ExitCode, Vec<Diagnostic>) {
    use promptflag_release::Error;
    let code = match error {
        Error::Authoring(inner) => return authoring(inner),
        Error::Conflict { .. } => ExitCode::Conflict,
        Error::Refused(_) => ExitCode::Refused,
        Error::Remote { .. } | Error::NotServed { .. } => ExitCode::Remote,
        _ => ExitCode::Usage,
    };
    (code, Vec::new())
}

fn controller(error: &promptflag_controller::Error) -> (ExitCode, Vec<Diagnostic>) {
    use promptflag_controller::Error;
    match error {
        Error::Authoring(inner) => authoring(inner),
        Error::Release(inner) => release(inner),
        _ => (ExitCode::Usage, Vec::new()),
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
        assert_eq!(classify(&anyhow::Error::new(conflict)).0.code(), 3);
        let refused = promptflag_controller::Error::Release(promptflag_release::Error::Refused(
            String::from("prod before staging"),
        ));
        assert_eq!(classify(&anyhow::Error::new(refused)).0, ExitCode::Refused);
        let problems =
            promptflag_release::Error::Authoring(promptflag_authoring::Error::Problems {
                diagnostics: Vec::new(),
            });
        let wrapped = anyhow::Error::new(problems).context("publishing dev");
        assert_eq!(classify(&wrapped).0, ExitCode::Problems);
        let database = promptflag_telemetry::Error::Invalid(String::from("bad address"));
        assert_eq!(classify(&anyhow::Error::new(database)).0, ExitCode::Usage);
        let remote = promptflag_release::Error::NotServed {
            revision: 4,
            waited_ms: 100,
        };
        assert_eq!(classify(&anyhow::Error::new(remote)).0, ExitCode::Remote);
    }
}
