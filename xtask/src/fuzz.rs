//! The fuzz targets (`fuzz/`, cargo-fuzz over libFuzzer; docs/fuzzing.md). They build on a
//! nightly toolchain with sanitizer flags, so they are their own workspace, built into
//! `target/fuzz`. Each run starts from the committed seed corpus `fuzz/corpus/<target>` and
//! writes what it finds to `target/fuzz-corpus/<target>`, so the committed corpus changes only
//! by hand. A crash stops the run and leaves its input under `fuzz/artifacts/<target>/`.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::tools::Toolchain;

/// cargo-fuzz, installed with `--locked` into `target/tools`.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The toolchain the fuzz build uses (`-Zsanitizer` is unstable).
const NIGHTLY: &str = "nightly";
/// Every target, in the order they run.
pub const TARGETS: [&str; 6] = [
    "ruleset",
    "event",
    "collector_body",
    "repo_yaml",
    "worker_request",
    "governance",
];
/// `cargo xtask fuzz` runs each target this long unless `--seconds` says otherwise.
pub const DEFAULT_SECONDS: u64 = 300;
/// `cargo xtask test` runs each target this long.
pub const TEST_SECONDS: u64 = 15;

/// How long each target runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// For this many seconds.
    Seconds(u64),
    /// For this many executions (libFuzzer's `-runs`), however long they take.
    Runs(u64),
}

/// Whether the targets are built with AddressSanitizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanitizer {
    /// AddressSanitizer (cargo-fuzz's default), into `target/fuzz`.
    Address,
    /// None (`--no-sanitizer`), into `target/fuzz-nosan`: the crates the targets drive are safe
    /// Rust, so a panic, an overflow or a stack overflow is still caught, at two to three times
    /// the executions per second.
    None,
}

/// `cargo xtask fuzz [TARGET] [--seconds N | --runs N] [--no-sanitizer]`.
pub fn command(tools: &Toolchain, args: &[String]) -> Result<()> {
    let mut budget = Budget::Seconds(DEFAULT_SECONDS);
    let mut sanitizer = Sanitizer::Address;
    let mut only = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" | "--runs" => {
                let value = args
                    .next()
                    .with_context(|| format!("{arg} needs a number"))?;
                let number: u64 = value
                    .parse()
                    .with_context(|| format!("{arg} {value:?} is not a number"))?;
                budget = if arg == "--runs" {
                    Budget::Runs(number)
                } else {
                    Budget::Seconds(number)
                };
            }
            "--no-sanitizer" => sanitizer = Sanitizer::None,
            target if TARGETS.contains(&target) => only = Some(target),
            other => bail!(
                "unknown fuzz argument {other:?}: use a target ({}), --seconds N, --runs N or --no-sanitizer",
                TARGETS.join(", ")
            ),
        }
    }
    let targets: Vec<&str> = match only {
        Some(target) => vec![target],
        None => TARGETS.to_vec(),
    };
    run(tools, &targets, budget, sanitizer)
}

/// Builds every target once, then runs each of `targets` within `budget`.
pub fn run(
    tools: &Toolchain,
    targets: &[&str],
    budget: Budget,
    sanitizer: Sanitizer,
) -> Result<()> {
    ensure_nightly()?;
    tools.ensure_cargo_tool("cargo-fuzz", CARGO_FUZZ_VERSION, "cargo-fuzz", true)?;
    let (directory, sanitizer_name) = match sanitizer {
        Sanitizer::Address => ("fuzz", "address"),
        Sanitizer::None => ("fuzz-nosan", "none"),
    };
    let target_dir = tools.root.join("target").join(directory);
    let target_dir = target_dir.to_string_lossy().into_owned();
    let common = [
        "--fuzz-dir",
        "fuzz",
        "--target-dir",
        &target_dir,
        "--sanitizer",
        sanitizer_name,
    ];
    cargo_fuzz(tools, &["build"]).args(&common).run()?;
    for target in targets {
        let found = tools.root.join("target").join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&found).with_context(|| format!("creating {}", found.display()))?;
        let seeds = tools.root.join("fuzz").join("corpus").join(target);
        cargo_fuzz(tools, &["run"])
            .args(&common)
            .arg(target)
            .arg(&found)
            .arg(&seeds)
            .arg("--")
            .arg(match budget {
                Budget::Seconds(seconds) => format!("-max_total_time={seconds}"),
                Budget::Runs(runs) => format!("-runs={runs}"),
            })
            .arg("-print_final_stats=1")
            .run()
            .with_context(|| {
                format!("fuzz target {target} failed: its input is under fuzz/artifacts/{target}/")
            })?;
    }
    Ok(())
}

/// `cargo fuzz …` on the nightly toolchain, whatever toolchain runs xtask.
fn cargo_fuzz(tools: &Toolchain, args: &[&str]) -> crate::tools::Cmd {
    let mut command = tools.command("rustup", &["run", NIGHTLY, "cargo", "fuzz"]);
    for arg in args {
        command = command.arg(arg);
    }
    // The variables cargo sets for xtask name the stable toolchain's cargo and rustc.
    command
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTUP_TOOLCHAIN")
}

/// Installs the nightly toolchain (minimal profile) when rustup does not have it.
fn ensure_nightly() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("xtask: installing the {NIGHTLY} toolchain (minimal profile) for the fuzz targets");
    let status = Command::new("rustup")
        .args(["toolchain", "install", NIGHTLY, "--profile", "minimal"])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("rustup toolchain install {NIGHTLY} --profile minimal failed");
    }
    Ok(())
}
