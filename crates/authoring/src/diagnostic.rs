//! Diagnostics: one problem in the prompt repository, with the file and line it is about.
//!
//! Lint, build and publish all report through this type, so every message a user sees has the
//! same shape: `prompts/support_reply/metadata.yaml:12: error[missing_field]: …`.

use std::fmt;

/// How bad a diagnostic is. Only errors make `lint` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks build and publish; `lint` exits 1.
    Error,
    /// Worth a look; does not fail anything.
    Warning,
}

/// One problem, located in a repository file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the repository root, with `/` separators.
    pub file: String,
    /// The 1-based line (1 when the problem is about the whole file).
    pub line: u32,
    /// A stable, machine-readable name (`missing_field`, `forbidden_phrase`, …).
    pub code: &'static str,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl Diagnostic {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {severity}[{}]: {}",
            self.file, self.line, self.code, self.message
        )
    }
}

/// A growing list of diagnostics.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Records an error.
    pub fn error(&mut self, file: &str, line: u32, code: &'static str, message: impl Into<String>) {
        self.push(Severity::Error, file, line, code, message.into());
    }

    /// Records a warning.
    pub fn warning(
        &mut self,
        file: &str,
        line: u32,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, file, line, code, message.into());
    }

    fn push(
        &mut self,
        severity: Severity,
        file: &str,
        line: u32,
        code: &'static str,
        message: String,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: file.to_string(),
            line: line.max(1),
            code,
            message,
        });
    }

    /// True when at least one error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Appends another list.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// The diagnostics sorted by file, line, severity and code, deduplicated, so output is stable.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (&a.file, a.line, a.severity, a.code, &a.message)
                .cmp(&(&b.file, b.line, b.severity, b.code, &b.message))
        });
        self.items.dedup();
        self.items
    }

    /// The diagnostics in the order recorded.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }
}
