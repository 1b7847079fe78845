//! `cargo xtask <command>`: every workflow of the workspace, needing only cargo and rustc.
//!
//! - `setup`: installs the pinned tools under `target/tools` (idempotent, cached).
//! - `test`: the one test command (what `.ci/run` calls): formatting, lints, native tests,
//!   wasm32 tests, the Worker and npm suites, and a bounded run of each fuzz target.
//! - `dev`: the main job: the Worker on local workerd with local KV seeded from a governed working
//!   copy of the example repo, and an approve-and-publish walk-through printed.
//! - `fuzz`: the fuzz targets, each for a while (`test` runs each briefly).
//! - `deny`: the dependency policy (`deny.toml`); `test` runs it without the advisories.
//! - `build-worker`, `build-npm`, `bench`.

mod deny;
mod fuzz;
mod npm;
mod tools;
mod worker;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use tools::Toolchain;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    // `cargo xtask <command> --help` prints the usage rather than running the command.
    if rest.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    match command {
        "setup" => Toolchain::setup().map(|_| ()),
        "test" => test(rest),
        "dev" => worker::dev(&Toolchain::setup()?, rest),
        "build-worker" => worker::build(&Toolchain::setup()?),
        "build-npm" => npm::build(&Toolchain::setup()?),
        "bench" => bench(rest),
        "fuzz" => fuzz::command(&Toolchain::unprepared()?, rest),
        "deny" => deny::command(&Toolchain::unprepared()?, rest),
        "help" | "--help" | "-h" => {
            println!("{}", USAGE);
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

const USAGE: &str = "usage: cargo xtask <command>
  setup          install the pinned toolchain under target/tools (cached)
  test           run every check and test suite (what .ci/run runs)
  dev            build the Worker and run it on local workerd with seeded local KV
  build-worker   build the Worker (cargo, wasm-bindgen, wasm-opt, its JavaScript entry)
  build-npm      build the npm package from the Wasm bindings
  bench [WHICH]  run the benchmarks: core, client, npm, worker, collector, exposures or all
  fuzz [TARGET] [--seconds N | --runs N] [--no-sanitizer]
                 run the fuzz targets (ruleset, event, collector_body, repo_yaml,
                 worker_request, governance; all by default), each for N seconds (default
                 300) or N executions, from the seed corpus in fuzz/corpus; with
                 --no-sanitizer built without AddressSanitizer (faster)
  deny [--advisories]
                 check the dependencies against deny.toml (licenses, bans, sources; with
                 --advisories also the RustSec database, which needs GitHub)";

fn test(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--no-lint");
    let tools = Toolchain::setup()?;
    if !quick {
        step("cargo fmt --check");
        tools
            .cargo(&["fmt", "--all", "--", "--check"])
            .run()
            .context("formatting differs: run `cargo fmt --all`")?;
        step("cargo clippy");
        tools
            .cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
            .run()?;
        step("cargo deny check licenses bans sources (deny.toml; advisories need GitHub)");
        deny::check(&tools, false)?;
    }
    step("build the Worker");
    worker::build(&tools)?;
    step("build the npm package");
    npm::build(&tools)?;
    step("native tests");
    // The documentation's pages run in the next step, where their counts are printed.
    tools
        .cargo(&["test", "--workspace", "--", "--skip", "doc_page_"])
        .run()?;
    step(
        "the documentation's commands and snippets (README.md, docs/, npm/README.md; crates/cli/tests/docs.rs)",
    );
    tools
        .cargo(&[
            "test",
            "-p",
            "promptflag-cli",
            "--test",
            "docs",
            "--",
            "--nocapture",
        ])
        .run()?;
    step(
        "install the CLI as the README says (cargo install --locked --path crates/cli) and run it",
    );
    install_check(&tools)?;
    step("wasm32 tests (core under wasm-bindgen-test-runner in Node)");
    tools
        .cargo(&[
            "test",
            "-p",
            "promptflag-core",
            "--target",
            "wasm32-unknown-unknown",
            "--no-default-features",
        ])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            tools.wasm_bindgen_test_runner(),
        )
        .run()?;
    let suites = tools::node_test_files(&tools.root)?;
    if !suites.is_empty() {
        step("Node suites (node:test, Miniflare over the built Worker and the built package)");
        let mut command = tools.node(&["--test", "--test-concurrency=1"]);
        for file in &suites {
            command = command.arg(file);
        }
        command.run()?;
    }
    step(&format!(
        "fuzz targets, {} s each (nightly, cargo-fuzz; `cargo xtask fuzz` runs them longer)",
        fuzz::TEST_SECONDS
    ));
    fuzz::run(
        &tools,
        &fuzz::TARGETS,
        fuzz::Budget::Seconds(fuzz::TEST_SECONDS),
        fuzz::Sanitizer::Address,
    )?;
    step("all checks passed");
    Ok(())
}

/// Installs `promptflag` with the README's command into a scratch `--root` and runs the installed
/// binary on the example repository. `--debug` and the workspace's target folder let it reuse
/// the test build instead of compiling everything again in release mode; the command is
/// otherwise the documented one.
fn install_check(tools: &Toolchain) -> Result<()> {
    let install_root = tools.root.join("target").join("install-check");
    if install_root.exists() {
        std::fs::remove_dir_all(&install_root)
            .with_context(|| format!("removing {}", install_root.display()))?;
    }
    tools
        .cargo(&[
            "install",
            "--locked",
            "--debug",
            "--quiet",
            "--path",
            "crates/cli",
            "--root",
        ])
        .arg(&install_root)
        .env("CARGO_TARGET_DIR", tools.root.join("target"))
        .run()?;
    let installed = install_root.join("bin").join("promptflag");
    let status = std::process::Command::new(&installed)
        .args(["--repo", "examples/prompts-repo", "lint"])
        .current_dir(&tools.root)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", installed.display()))?;
    if !status.success() {
        bail!(
            "the installed {} failed to lint the example repository ({status})",
            installed.display()
        );
    }
    Ok(())
}

/// `cargo xtask bench [core|client|npm|worker|collector|exposures|all]`: the benchmarks, each side by side with
/// the peers its issue names (see docs/benchmarks.md). `all` (the default) runs every one.
fn bench(args: &[String]) -> Result<()> {
    let which = args.first().map(String::as_str).unwrap_or("all");
    let all = which == "all";
    if !all
        && !matches!(
            which,
            "core" | "client" | "npm" | "worker" | "collector" | "exposures"
        )
    {
        bail!(
            "unknown benchmark {which:?}: use core, client, npm, worker, collector, exposures or all"
        );
    }
    let tools = Toolchain::setup()?;
    if all || which == "core" {
        step("core evaluation vs unleash-yggdrasil (criterion)");
        tools
            .cargo(&["bench", "-p", "promptflag-core", "--bench", "evaluate"])
            .run()?;
    }
    if all || which == "client" {
        step(
            "native client read path vs raw core, while the ruleset swaps every 10 ms (criterion)",
        );
        tools
            .cargo(&["bench", "-p", "promptflag-client", "--bench", "read_path"])
            .run()?;
    }
    if all || which == "npm" {
        step("npm package vs GrowthBook, flagd-core and unleash-client (Node)");
        npm::build(&tools)?;
        tools
            .node(&["--expose-gc", "benches/npm/bench.mjs"])
            .run()?;
    }
    if all || which == "worker" {
        step("Worker size and load vs a GrowthBook Worker on one workerd");
        worker::build(&tools)?;
        tools.node(&["benches/worker/run.mjs"]).run()?;
    }
    if all || which == "collector" {
        step("collector ingestion with durable acknowledgements");
        tools
            .cargo(&[
                "bench",
                "-p",
                "promptflag-cli",
                "--bench",
                "collector_ingest",
            ])
            .run()?;
    }
    if all || which == "exposures" {
        step("promptflag exposures over ten million exposures in a real SQLite file");
        tools
            .cargo(&[
                "bench",
                "-p",
                "promptflag-cli",
                "--bench",
                "exposures_query",
            ])
            .run()?;
    }
    Ok(())
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}
