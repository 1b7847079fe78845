//! The Markdown files whose blocks are tested, one list shared by the library and the build script.

/// The files, relative to the repository root. `docs/benchmarks.md` is left out: its commands
/// take minutes of measurement each.
pub const FILES: &[&str] = &[
    "README.md",
    "ARCHITECTURE.md",
    "docs/companion.md",
    "docs/collector.md",
    "docs/interfaces.md",
    "docs/ruleset.md",
    "docs/statistics.md",
    "npm/README.md",
];
