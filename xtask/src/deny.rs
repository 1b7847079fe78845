//! `cargo deny`: the dependency policy in `deny.toml` (licenses, banned and duplicate crates,
//! where crates may come from), checked by `cargo xtask test` and by `cargo xtask deny`.
//!
//! The advisories check reads the RustSec database from GitHub, which the test machines cannot
//! reach, so `cargo xtask test` leaves it out; `cargo xtask deny --advisories` adds it on a
//! machine that can.
//!
//! The first `cargo xtask test` on a machine installs cargo-deny into the tools cache
//! (`cargo install --locked`): measured on a shared two-core machine, 32 min 35 s of wall-clock
//! time for 3 min 43 s of CPU time in cargo itself (the compile jobs waited on a busy machine).
//! Later runs find it there; the check itself takes a few seconds.

use anyhow::{Result, bail};

use crate::tools::Toolchain;

/// cargo-deny, installed with `--locked` into `target/tools`.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// The checks that need no network beyond the crates registry.
const OFFLINE_CHECKS: [&str; 3] = ["licenses", "bans", "sources"];

/// `cargo xtask deny [--advisories]`.
pub fn command(tools: &Toolchain, args: &[String]) -> Result<()> {
    let mut advisories = false;
    for arg in args {
        match arg.as_str() {
            "--advisories" => advisories = true,
            other => bail!("unknown deny argument {other:?}: the only option is --advisories"),
        }
    }
    check(tools, advisories)
}

/// Runs `cargo deny check` over the workspace: licenses, bans and sources, and the RustSec
/// advisories when `advisories`.
pub fn check(tools: &Toolchain, advisories: bool) -> Result<()> {
    tools.ensure_cargo_tool("cargo-deny", CARGO_DENY_VERSION, "cargo-deny", true)?;
    let mut checks: Vec<&str> = OFFLINE_CHECKS.to_vec();
    if advisories {
        checks.push("advisories");
    }
    // Duplicate versions are warnings (deny.toml); without their inclusion graphs they take a
    // few lines each instead of a screen.
    let mut command = tools.command(
        tools.bin("cargo-deny"),
        &["--locked", "check", "--hide-inclusion-graph"],
    );
    for check in checks {
        command = command.arg(check);
    }
    command.run()
}
