//! The Markdown files whose blocks are tested, one list shared by the library and the build script.

/// The files, relative to the repository root. `docs/benchmarks.md` and `docs/fuzzing.md` are
/// left out: their commands take minutes of measurement or fuzzing each.
pub const FILES: &[&str] = &[
    "README.md",
    "ARCHITECTURE.md",
    "docs/companion.md",
    "docs/collector.md",
    "docs/interfaces.md",
    "docs/ruleset.md",
    "docs/statistics.md",
    "docs/evals.md",
    "docs/ci.md",
    "npm/README.md",
];
