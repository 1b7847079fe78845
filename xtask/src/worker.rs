//! Building and running the Worker (`worker/`): cargo, wasm-bindgen and wasm-opt with the pinned
//! tools, and the dev loop on local workerd with seeded local KV.
//!
//! - `build`: two Worker scripts from the one crate (`SCRIPTS`): the serving Worker into
//!   `worker/build/` and the admin authority into `worker/build/authority/`. For each, `cargo
//!   build --profile worker-release` of `promptflag-worker` for wasm32 with the script's feature
//!   alone (the root manifest's small, abort-on-panic Wasm profile at opt-level "z"), with `std`
//!   compiled alongside and immediate-abort panics (`BUILD_STD_ENV`); wasm-bindgen's glue
//!   (`--target web`); wasm-opt (`optimize`); and the Worker's own JavaScript (`worker/js/*.js`:
//!   the entries `index.js` and `authority.js` and the modules they import) beside them. First it writes the compiled-in fallback
//!   (`worker/fallback/bundle.json`) from a build of the example prompt repository
//!   (`fallback_bundle`). Skipped when `worker/build/` was built the same way and is newer than every
//!   input. ARCHITECTURE.md ("The Worker's build") says why there is no worker-build.
//! - `dev`: the main job. Build the Worker and the companion, start `wrangler dev` on 127.0.0.1
//!   twice, the admin authority (`wrangler.authority.toml`, port + 2, with the admin credentials)
//!   and then the serving Worker (`wrangler.toml`, the port), which finds it through a dev
//!   registry of their own (local KV under `target/dev/wrangler-state`; `--reseed` starts over) with the companion's
//!   collector (`promptflag serve --control`) as its exposure sink, publish the example prompt
//!   repository (`examples/prompts-repo`) with `promptflag publish`, print requests that work,
//!   and run until Ctrl-C.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use promptflag_harness::walkthrough;

use crate::tools::Toolchain;

/// The cargo profile the Worker is built with (root `Cargo.toml`).
const PROFILE: &str = "worker-release";
/// The dev collector's writer token, which the dev Worker sends with its exposures.
const DEV_COLLECTOR_TOKEN: &str = "dev-collector-token-0123456789abcdef";
/// Written into `worker/build/` last, once the build and wasm-opt have both succeeded: how the
/// build was made (the compiler and the settings below). The build is skipped only when this
/// says the same and is newer than every input.
const STAMP: &str = ".xtask-build";

/// How the Worker's Rust is compiled, on top of the `worker-release` profile. Set for the
/// Worker's cargo build only, so no other build sees them. ARCHITECTURE.md ("The Worker's
/// build") gives the reasons; in short:
///
/// - The standard library is compiled with the Worker (cargo's `build-std`, from rustup's
///   `rust-src`), at the profile's opt-level "z" and LTO instead of the prebuilt one's
///   opt-level 3, with `std`'s `optimize_for_size` feature (smaller formatting and sorting).
/// - `-Cpanic=immediate-abort`: a panic is a trap (`unreachable`) at once, so the panic
///   machinery and every panic message leave the Wasm. What changes: a panic's message is not
///   logged (no panic hook runs); the trap still reaches the Worker's entry as a
///   `WebAssembly.RuntimeError`, which logs it with the Wasm stack, fails that request and gets
///   the next one a fresh instance. The Worker does not panic on
///   any input (every failure is a JSON response), so this only changes what a bug would log.
/// - `-Zlocation-detail=none`: no source file names and lines for `#[track_caller]` code
///   (`RefCell` borrows, wasm-bindgen's `unwrap_throw`); with immediate aborts nothing would
///   print them but the strings stayed in the Wasm.
/// - All of these are unstable cargo/rustc options. `RUSTC_BOOTSTRAP=1` lets the stable
///   toolchain the rest of the workspace uses accept them, instead of a nightly that would be a
///   second toolchain to install for every build. That toolchain is one exact release,
///   pinned by `rust-toolchain.toml`: the options were checked with it, and a newer release is
///   adopted by changing that file (if it renamed an option, the fallback below still builds the
///   Worker, only larger). The options go through cargo's environment
///   config (`CARGO_UNSTABLE_*`, and `CARGO_ENCODED_RUSTFLAGS`, which with `--target` reaches
///   only the wasm32 crates, not build scripts or proc macros). The profile's directories under
///   `target/` are the Worker's alone, so no other build is rebuilt because of them.
const BUILD_STD_ENV: [(&str, &str); 4] = [
    ("RUSTC_BOOTSTRAP", "1"),
    ("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort"),
    ("CARGO_UNSTABLE_BUILD_STD_FEATURES", "optimize_for_size"),
    (
        "CARGO_ENCODED_RUSTFLAGS",
        "-Zunstable-options\x1f-Cpanic=immediate-abort\x1f-Zlocation-detail=none",
    ),
];

/// One of the two Worker scripts built from the crate (ARCHITECTURE.md, "The Worker's build"):
/// the cargo feature that selects its exports, where its build goes under `worker/build/`, its
/// entry (from `worker/js/`) and the name of its Wasm, which the entry imports.
struct Script {
    feature: &'static str,
    dir: &'static str,
    entry: &'static str,
    wasm: &'static str,
    /// wasm-opt's optimization level for this script (see [`optimize`]).
    opt_level: &'static str,
}

/// The serving Worker (`worker/build/`, `wrangler.toml`) and the admin authority
/// (`worker/build/authority/`, `wrangler.authority.toml`), which the serving Worker binds by
/// `script_name`. Each Wasm exports only its own script's functions, so neither links the other's
/// code and each upload stays within its budget.
const SCRIPTS: [Script; 2] = [
    Script {
        feature: "serving",
        dir: "",
        entry: "index.js",
        wasm: "index_bg.wasm",
        opt_level: "-O3",
    },
    Script {
        feature: "authority",
        dir: "authority",
        entry: "authority.js",
        wasm: "authority_bg.wasm",
        opt_level: "-Os",
    },
];

/// Builds `worker/build/` (the serving Worker) and `worker/build/authority/` (the admin
/// authority), unless they are already newer than their inputs: each Wasm (cargo with the
/// script's feature, then wasm-bindgen's glue for `--target web`, then wasm-opt) and the
/// JavaScript beside it.
pub fn build(tools: &Toolchain) -> Result<()> {
    let worker_dir = tools.root.join("worker");
    if !worker_dir.join("Cargo.toml").exists() {
        return Ok(());
    }
    fallback_bundle(tools)?;
    let build_dir = worker_dir.join("build");
    let stamp = build_dir.join(STAMP);
    let settings = build_settings(tools.rust_src);
    let built = SCRIPTS.iter().all(|script| {
        let dir = build_dir.join(script.dir);
        dir.join(script.entry).exists() && dir.join(script.wasm).exists()
    });
    if built
        && std::fs::read_to_string(&stamp).is_ok_and(|text| text == settings)
        && is_newer_than_inputs(&stamp, tools)?
    {
        eprintln!("xtask: worker/build is up to date");
        return Ok(());
    }
    let _ = std::fs::remove_file(&stamp);
    // wasm-bindgen writes each script's glue and Wasm here first: both scripts come from one
    // cargo output file, so each is taken right after its own compile.
    let staging = tools.root.join("target").join("worker-bindgen");
    let own_std = match compile_scripts(tools, &staging, tools.rust_src) {
        Ok(()) => tools.rust_src,
        // The options are unstable: a later rustc may rename one. The Worker still builds, and
        // behaves the same, against the prebuilt std; only its size suffers.
        Err(error) if tools.rust_src => {
            eprintln!(
                "xtask: warning: building the Worker with its own std failed ({error:#}); \
                 building it against the prebuilt std instead (about 22 KB larger gzipped)"
            );
            compile_scripts(tools, &staging, false)?;
            false
        }
        Err(error) => return Err(error),
    };
    // Start from an empty directory, so nothing of an earlier layout is left to be uploaded.
    if build_dir.exists() {
        std::fs::remove_dir_all(&build_dir)
            .with_context(|| format!("removing {}", build_dir.display()))?;
    }
    let js_dir = worker_dir.join("js");
    for script in &SCRIPTS {
        let dir = build_dir.join(script.dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let generated = staging.join(script.feature);
        let glue = format!("{GLUE}.js");
        std::fs::copy(generated.join(&glue), dir.join(&glue))
            .with_context(|| format!("copying {glue} to {}", dir.display()))?;
        optimize(
            tools,
            script,
            &generated.join(format!("{GLUE}_bg.wasm")),
            &dir.join(script.wasm),
        )?;
        copy_javascript(&js_dir, &dir)?;
    }
    let settings = build_settings(own_std);
    std::fs::write(&stamp, settings).with_context(|| format!("writing {}", stamp.display()))
}

/// Compiles each script's Wasm and generates its glue into `staging/<feature>/`.
fn compile_scripts(tools: &Toolchain, staging: &Path, own_std: bool) -> Result<()> {
    for script in &SCRIPTS {
        compile(tools, own_std, script.feature)?;
        let out = staging.join(script.feature);
        if out.exists() {
            std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
        }
        bindgen(tools, &out)?;
    }
    Ok(())
}

/// Copies the Worker's JavaScript (every `worker/js/*.js`: the entries and the modules they
/// import) into a script's build directory. Each script gets all of them; wrangler's bundle
/// and Miniflare take only what the script's entry imports.
fn copy_javascript(js_dir: &Path, target_dir: &Path) -> Result<()> {
    for entry in
        std::fs::read_dir(js_dir).with_context(|| format!("reading {}", js_dir.display()))?
    {
        let source = entry?.path();
        if source.extension().is_some_and(|ext| ext == "js") {
            let Some(name) = source.file_name() else {
                continue;
            };
            let target = target_dir.join(name);
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
        }
    }
    Ok(())
}

/// Writes the Worker's compiled-in fallback, `worker/fallback/bundle.json`, from a build of a
/// prompt repository: `PROMPTFLAG_FALLBACK_REPO` (default `examples/prompts-repo`), environment
/// `PROMPTFLAG_FALLBACK_ENV` (default `prod`). The file is rewritten only when the bundle
/// changed, so an unchanged repository does not rebuild the Worker. The source stamp is the
/// repository path, not the commit, for the same reason.
fn fallback_bundle(tools: &Toolchain) -> Result<()> {
    let repo = std::env::var("PROMPTFLAG_FALLBACK_REPO")
        .unwrap_or_else(|_| String::from("examples/prompts-repo"));
    let environment =
        std::env::var("PROMPTFLAG_FALLBACK_ENV").unwrap_or_else(|_| String::from("prod"));
    let out = tools.root.join("target").join("worker-fallback");
    let out_text = out.to_string_lossy().into_owned();
    let repo_path = tools.root.join(&repo);
    let repo_text = repo_path.to_string_lossy().into_owned();
    tools
        .cargo(&[
            "run",
            "-q",
            "-p",
            "promptflag-cli",
            "--bin",
            "promptflag",
            "--",
            "--repo",
            &repo_text,
            "build",
            "--env",
            &environment,
            "--source",
            &repo,
            "--out",
            &out_text,
        ])
        .run()
        .context("building the Worker's fallback bundle (promptflag build)")?;
    let built = out.join("fallback").join(format!("{environment}.json"));
    let bundle = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let target = tools
        .root
        .join("worker")
        .join("fallback")
        .join("bundle.json");
    if std::fs::read(&target).ok().as_deref() != Some(bundle.as_slice()) {
        eprintln!("xtask: worker/fallback/bundle.json from {repo} ({environment})");
        std::fs::write(&target, bundle).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// The name wasm-bindgen gives its glue (`glue.js`) and, before wasm-opt, the Wasm.
const GLUE: &str = "glue";

/// `cargo build` of the Worker's crate for wasm32 with one script's feature alone, with the
/// standard library compiled alongside when `own_std`.
fn compile(tools: &Toolchain, own_std: bool, feature: &str) -> Result<()> {
    let mut command = tools.cargo(&[
        "build",
        "--lib",
        "-p",
        "promptflag-worker",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        PROFILE,
        "--no-default-features",
        "--features",
        feature,
    ]);
    if own_std {
        eprintln!(
            "xtask: building the Worker's {feature} Wasm with its own std and immediate-abort panics"
        );
        for (name, value) in BUILD_STD_ENV {
            command = command.env(name, value);
        }
    }
    command
        .run()
        .with_context(|| format!("building the Worker's {feature} Wasm (cargo)"))
}

/// wasm-bindgen's glue for `--target web`: `initSync({module})` instantiates the module the
/// entry imports (workerd gives a `.wasm` import as a compiled `WebAssembly.Module`), and
/// `__wbg_reset_state` (`--experimental-reset-state-function`) gives the entry a fresh instance
/// after a trap.
fn bindgen(tools: &Toolchain, build_dir: &Path) -> Result<()> {
    let wasm = tools
        .root
        .join("target/wasm32-unknown-unknown")
        .join(PROFILE)
        .join("promptflag_worker.wasm");
    let wasm_text = wasm.to_string_lossy().into_owned();
    let out_dir = build_dir.to_string_lossy().into_owned();
    tools
        .command(
            tools.wasm_bindgen(),
            &[
                &wasm_text,
                "--out-dir",
                &out_dir,
                "--out-name",
                GLUE,
                "--target",
                "web",
                "--no-typescript",
                "--experimental-reset-state-function",
            ],
        )
        .run()
        .context("generating the Worker's bindings (wasm-bindgen)")
}

/// What the build depends on besides its input files: the compiler and the settings above.
fn build_settings(own_std: bool) -> String {
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let mut settings = format!("{rustc}profile={PROFILE}\n");
    for script in &SCRIPTS {
        settings.push_str(&format!(
            "{}: wasm-opt {} {}\n",
            script.feature,
            script.opt_level,
            WASM_OPT.join(" ")
        ));
    }
    if own_std {
        for (name, value) in BUILD_STD_ENV {
            settings.push_str(&format!("{name}={value:?}\n"));
        }
    }
    if std::env::var_os("PROMPTFLAG_WORKER_KEEP_NAMES").is_some() {
        settings.push_str("names kept\n");
    }
    settings
}

/// wasm-opt's settings beside each script's level (see `optimize`).
const WASM_OPT: [&str; 1] = ["--low-memory-unused"];

/// wasm-opt at the script's level, names stripped (`PROMPTFLAG_WORKER_KEEP_NAMES=1` keeps them
/// for readable stack traces). The features are the ones rustc's wasm32 target emits and workerd
/// runs; none newer, so binaryen never emits an encoding workerd does not read yet.
///
/// The serving Worker takes `-O3`: binaryen's inliner then folds the many tiny functions rustc
/// leaves uninlined at opt-level "z" into their callers, about 8 % less time in the Wasm per
/// request for 0.15 KB more gzipped (benchmarks.md, "The Wasm's build"). The authority, whose
/// requests are few and whose time goes to storage, takes `-Os`: `-Oz` writes slightly fewer
/// bytes that compress worse, and the upload is measured gzipped (0.5 KB smaller).
///
/// `--low-memory-unused` lets binaryen fold `pointer + constant` (constants under 1024) into
/// the access's offset field, which differs from the addition only when it would wrap past 4 GiB
/// into the first KiB of memory, which binaryen then assumes holds nothing. rustc's wasm32 layout
/// puts the stack first, growing down from 1 MiB towards 0, and the data above it, so the first
/// KiB is only the bottom of a nearly exhausted stack; reaching it through a wrapped pointer
/// would take both (1.6 KB smaller).
fn optimize(tools: &Toolchain, script: &Script, input: &Path, output: &Path) -> Result<()> {
    let input_text = input.to_string_lossy().into_owned();
    let output_text = output.to_string_lossy().into_owned();
    let mut command = tools.command(
        tools.node_modules_bin("wasm-opt"),
        &[&input_text, "-o", &output_text, script.opt_level],
    );
    for arg in WASM_OPT {
        command = command.arg(arg);
    }
    for feature in [
        "mutable-globals",
        "sign-ext",
        "nontrapping-float-to-int",
        "bulk-memory",
        "multivalue",
        "reference-types",
        "exception-handling",
    ] {
        command = command.arg(format!("--enable-{feature}"));
    }
    if std::env::var_os("PROMPTFLAG_WORKER_KEEP_NAMES").is_some() {
        command = command.arg("--debuginfo");
    } else {
        command = command.arg("--strip-debug").arg("--strip-producers");
    }
    command
        .run()
        .context("optimizing the Worker's Wasm (wasm-opt)")
}

/// True when `output` exists and is newer than every file the Worker is built from.
fn is_newer_than_inputs(output: &Path, tools: &Toolchain) -> Result<bool> {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    let root = &tools.root;
    let mut newest = SystemTime::UNIX_EPOCH;
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "worker/Cargo.toml",
        "crates/core/Cargo.toml",
        "crates/contracts/Cargo.toml",
    ] {
        newest = newest.max(modified(&root.join(file)));
    }
    for dir in [
        "worker/src",
        "worker/js",
        "worker/fallback",
        "crates/core/src",
        "crates/contracts/src",
    ] {
        newest = newest.max(newest_in(&root.join(dir))?);
    }
    Ok(built > newest)
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn newest_in(dir: &Path) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(newest);
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        newest = newest.max(if path.is_dir() {
            newest_in(&path)?
        } else {
            modified(&path)
        });
    }
    Ok(newest)
}

/// The main job: the Worker on local workerd plus the companion, with the example repository
/// published. Runs until Ctrl-C (which reaches wrangler and the companion too: they share the
/// terminal's process group).
pub fn dev(tools: &Toolchain, args: &[String]) -> Result<()> {
    let mut port: u16 = 8787;
    let mut reseed = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--port" => {
                let value = rest.next().context("--port needs a value")?;
                port = value
                    .parse()
                    .with_context(|| format!("--port {value:?} is not a port"))?;
            }
            "--reseed" => reseed = true,
            other => {
                bail!("unknown argument {other:?} (usage: cargo xtask dev [--port N] [--reseed])")
            }
        }
    }
    build(tools)?;
    tools
        .cargo(&["build", "-p", "promptflag-cli", "--bin", "promptflag"])
        .run()
        .context("building the companion")?;
    let promptflag = tools.root.join("target/debug/promptflag");
    let dev_dir = tools.root.join("target").join("dev");
    let state = dev_dir.join("wrangler-state");
    // A working copy of the example with throwaway signing keys, so the example is never
    // edited. It and the Worker's state go together (the Worker keeps the key registry it
    // accepted), so a missing copy starts both afresh.
    let repo = dev_dir.join("prompts-repo");
    if (reseed || !repo.exists()) && dev_dir.exists() {
        std::fs::remove_dir_all(&dev_dir)
            .with_context(|| format!("removing {}", dev_dir.display()))?;
    }
    if !repo.exists() {
        walkthrough::prepare_repository(
            &tools.root.join("examples").join("prompts-repo"),
            &repo,
            &promptflag,
        )?;
    }
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    let owner_keys_file = walkthrough::owner_keys_file(&repo);
    let owner_keys = std::fs::read_to_string(&owner_keys_file)
        .with_context(|| format!("reading {}", owner_keys_file.display()))?;
    let audit_db = dev_dir.join("audit.sqlite3");
    let telemetry_db = dev_dir.join("telemetry.sqlite3");
    let collector_port = port + 1;
    let base = format!("http://127.0.0.1:{port}");
    let collector = format!("http://127.0.0.1:{collector_port}");
    // Throwaway read keys, new on every run: a server key (the ruleset and bodies, for the
    // companion and local evaluation) and a client key (the evaluation routes only).
    let keys = DevKeys::generate()?;
    // The ruleset signing key pair: the authority signs every revision it makes live with the
    // seed, the serving Worker serves only what verifies with the public key. Kept with the
    // Worker's state, so the revisions it signed on an earlier run still verify.
    let signing = RulesetSigningKeys::load_or_generate(&promptflag, &dev_dir)?;

    let credentials = dev_credentials()?;
    let dev_token = credentials[0].1.clone();
    let setup = walkthrough::Setup {
        promptflag: promptflag.clone(),
        repository: repo.clone(),
        worker_url: base.clone(),
        tokens: credentials.clone(),
        read_key: keys.server.clone(),
        audit_db: Some(audit_db.clone()),
    };
    // The two Workers run as two `wrangler dev` processes over one local state, so each gets
    // exactly its own secrets, as when deployed: `wrangler dev -c wrangler.toml -c
    // wrangler.authority.toml` runs both in one process, but its `--var` reaches only the first
    // Worker. The serving Worker's binding finds the authority through wrangler's dev registry,
    // kept under target/dev so no other checkout's `promptflag-authority` answers for this one.
    let registry = dev_dir.join("wrangler-registry");
    let authority_port = port + 2;
    let authority_vars = [
        (
            "ADMIN_CREDENTIALS",
            walkthrough::credentials_json(&credentials),
            "ADMIN_CREDENTIALS:…".to_string(),
        ),
        (
            "ENVIRONMENT_POLICY",
            walkthrough::DEV_ENVIRONMENT_POLICY.to_string(),
            "ENVIRONMENT_POLICY:…".to_string(),
        ),
        (
            "OWNER_KEYS",
            owner_keys.trim().to_string(),
            "OWNER_KEYS:…".to_string(),
        ),
        (
            "RULESET_SIGNING_KEY",
            signing.signing_key.clone(),
            "RULESET_SIGNING_KEY:…".to_string(),
        ),
    ];
    let mut authority = start_wrangler(
        tools,
        &["-c", "wrangler.authority.toml"],
        authority_port,
        &state,
        &registry,
        &authority_vars,
    )?;
    // Its default fetch refuses direct requests with a 404: that answer means it is up. The
    // serving Worker starts after it, so the two never run the build at once.
    if let Err(error) = wait_until_answering(
        &mut authority,
        authority_port,
        "/",
        404,
        Duration::from_secs(180),
    ) {
        stop(&mut authority);
        return Err(error);
    }
    let serving_vars = [
        (
            "EXPOSURE_SINK_URL",
            format!("{collector}/v1/events"),
            format!("EXPOSURE_SINK_URL:{collector}/v1/events"),
        ),
        (
            "EXPOSURE_SINK_TOKEN",
            DEV_COLLECTOR_TOKEN.to_string(),
            "EXPOSURE_SINK_TOKEN:…".to_string(),
        ),
        (
            "CACHE_TTL_MS",
            "1000".to_string(),
            "CACHE_TTL_MS:1000".to_string(),
        ),
        (
            "READ_KEYS",
            keys.read_keys_json(),
            "READ_KEYS:…".to_string(),
        ),
        (
            "RULESET_PUBLIC_KEY",
            signing.public_key.clone(),
            format!("RULESET_PUBLIC_KEY:{}", signing.public_key),
        ),
    ];
    let mut wrangler_child =
        match start_wrangler(tools, &[], port, &state, &registry, &serving_vars) {
            Ok(child) => child,
            Err(error) => {
                stop(&mut authority);
                return Err(error);
            }
        };
    if let Err(error) = wait_until_answering(
        &mut wrangler_child,
        port,
        "/healthz",
        200,
        Duration::from_secs(180),
    ) {
        stop(&mut wrangler_child);
        stop(&mut authority);
        return Err(error);
    }

    // The companion: collector and control loop, writing through the Worker's admin API.
    let mut companion = match std::process::Command::new(&promptflag)
        .arg("serve")
        .arg("--repo")
        .arg(&repo)
        .arg("--listen")
        .arg(format!("127.0.0.1:{collector_port}"))
        .arg("--db")
        .arg(&telemetry_db)
        .arg("--state-db")
        .arg(telemetry_db.with_file_name("rollouts.sqlite3"))
        .arg("--audit-db")
        .arg(&audit_db)
        .args([
            "--control",
            "--worker",
            &base,
            "--admin-token",
            &dev_token,
            "--read-key",
            &keys.server,
            "--token",
            DEV_COLLECTOR_TOKEN,
        ])
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            stop(&mut wrangler_child);
            stop(&mut authority);
            return Err(error).context("starting promptflag serve");
        }
    };

    // The working copy, published to dev on the local Worker (dev has no gates), by the same
    // command the walk-through's test runs.
    let seed = walkthrough::seed(&setup);
    let published = std::process::Command::new("sh")
        .arg("-c")
        .arg(&seed.command)
        .status();
    match published {
        Ok(status) if status.success() => {
            print_examples(&base, &collector, &setup, &keys, &signing)
        }
        outcome => {
            stop(&mut companion);
            stop(&mut wrangler_child);
            stop(&mut authority);
            bail!(
                "publishing {} to the local Worker failed ({outcome:?})",
                repo.display()
            );
        }
    }
    let status = wrangler_child.wait().context("waiting for wrangler")?;
    eprintln!("xtask: wrangler dev exited ({status})");
    stop(&mut companion);
    stop(&mut authority);
    Ok(())
}

/// Starts `wrangler dev` on local workerd at 127.0.0.1:`port` with the configuration `config`
/// (`-c FILE`, or none for `wrangler.toml`), the shared local state and dev registry, and `vars`
/// (name, value, and how the echoed command shows it: secrets are not printed).
fn start_wrangler(
    tools: &Toolchain,
    config: &[&str],
    port: u16,
    state: &Path,
    registry: &Path,
    vars: &[(&str, String, String)],
) -> Result<Child> {
    let wrangler = tools.node_modules_bin("wrangler");
    let port_text = port.to_string();
    let state_text = state.to_string_lossy().into_owned();
    let mut arguments = vec![
        "dev",
        "--local",
        "--ip",
        "127.0.0.1",
        "--port",
        &port_text,
        "--persist-to",
        &state_text,
    ];
    arguments.extend_from_slice(config);
    let mut command = tools.command(&wrangler, &arguments);
    let mut shown = format!("$ wrangler {}", arguments.join(" "));
    for (name, value, display) in vars {
        command = command.arg("--var").arg(format!("{name}:{value}"));
        shown.push_str(&format!(" --var {display}"));
    }
    let mut command = command.env("WRANGLER_REGISTRY_PATH", registry).into_inner();
    command.stdin(Stdio::null());
    eprintln!("{shown}");
    command
        .spawn()
        .with_context(|| format!("starting {}", wrangler.display()))
}

/// Polls `path` until it answers `status`, wrangler exits, or the time runs out.
fn wait_until_answering(
    child: &mut Child,
    port: u16,
    path: &str,
    status: u16,
    limit: Duration,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().context("checking on wrangler")? {
            bail!("wrangler dev exited before serving ({exit})");
        }
        if http_status(port, path) == Some(status) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("wrangler dev did not answer http://127.0.0.1:{port}{path} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The status of a plain HTTP/1.1 GET, if anything answered.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    let text = std::str::from_utf8(&head).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}

/// Stops wrangler by TERM to its own process (which stops workerd too).
fn stop(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// A throwaway credential per environment of [`walkthrough::DEV_CREDENTIALS`]: `(environment, token)`, the
/// token 24 random bytes as hex after `dev-<env>-` (well over the Worker's 32-byte minimum).
fn dev_credentials() -> Result<Vec<(String, String)>> {
    let mut random = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut credentials = Vec::new();
    for (environment, _) in walkthrough::DEV_CREDENTIALS {
        let mut bytes = [0u8; 24];
        random
            .read_exact(&mut bytes)
            .context("reading /dev/urandom")?;
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        credentials.push((environment.to_string(), format!("dev-{environment}-{hex}")));
    }
    Ok(credentials)
}

/// The ruleset signing key pair of `cargo xtask dev` (`promptflag keys ruleset-signing`).
struct RulesetSigningKeys {
    signing_key: String,
    public_key: String,
}

impl RulesetSigningKeys {
    /// The pair kept in `target/dev/ruleset-signing.env`, made there by `promptflag keys
    /// ruleset-signing` when it is not (and with `--reseed`, which starts the state over).
    fn load_or_generate(promptflag: &Path, dev_dir: &Path) -> Result<RulesetSigningKeys> {
        let file = dev_dir.join("ruleset-signing.env");
        if !file.exists() {
            let output = std::process::Command::new(promptflag)
                .args(["keys", "ruleset-signing"])
                .output()
                .context("running promptflag keys ruleset-signing")?;
            if !output.status.success() {
                bail!(
                    "promptflag keys ruleset-signing failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::fs::write(&file, &output.stdout)
                .with_context(|| format!("writing {}", file.display()))?;
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_string)
                .with_context(|| format!("{} has no {name}", file.display()))
        };
        Ok(RulesetSigningKeys {
            signing_key: value("RULESET_SIGNING_KEY")?,
            public_key: value("RULESET_PUBLIC_KEY")?,
        })
    }
}

/// The read keys `cargo xtask dev` configures, generated per run.
struct DevKeys {
    server: String,
    client: String,
}

impl DevKeys {
    /// Two keys of 32 random bytes each, in hex (from the system's random source).
    fn generate() -> Result<DevKeys> {
        let mut bytes = [0u8; 64];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .context("reading /dev/urandom for the dev read keys")?;
        let hex = |part: &[u8]| part.iter().map(|b| format!("{b:02x}")).collect::<String>();
        Ok(DevKeys {
            server: format!("dev-server-{}", hex(&bytes[..32])),
            client: format!("dev-client-{}", hex(&bytes[32..])),
        })
    }

    /// The Worker's `READ_KEYS` secret holding both.
    fn read_keys_json(&self) -> String {
        format!(
            r#"[{{"name":"dev-server","key":"{}","kind":"server"}},{{"name":"dev-client","key":"{}","kind":"client"}}]"#,
            self.server, self.client
        )
    }
}

fn print_examples(
    base: &str,
    collector: &str,
    setup: &walkthrough::Setup,
    keys: &DevKeys,
    signing: &RulesetSigningKeys,
) {
    let dev_token = &setup.tokens[0].1;
    let tokens: Vec<String> = setup
        .tokens
        .iter()
        .zip(walkthrough::DEV_CREDENTIALS)
        .map(|((environment, token), (_, role))| format!("  #   {environment} ({role}): {token}"))
        .collect();
    let tokens = tokens.join("\n");
    let hash = fetch_ruleset_text(base, &keys.server)
        .and_then(|text| first_sha256(&text))
        .unwrap_or_else(|| "<sha256>".into());
    let json = "-H 'content-type: application/json'";
    let admin = "-H \"authorization: Bearer $PROMPTFLAG_ADMIN_TOKEN\"";
    let server = "-H \"authorization: Bearer $PROMPTFLAG_READ_KEY\"";
    let client = "-H \"authorization: Bearer $PROMPTFLAG_CLIENT_KEY\"";
    let companion = "cargo run -q -p promptflag-cli -- --repo examples/prompts-repo --audit-db target/dev/audit.sqlite3";
    let governance = walkthrough::render(&walkthrough::walkthrough(setup));
    let repository = setup.repository.display();
    let owner_keys = walkthrough::owner_keys_file(&setup.repository);
    let owner_keys = owner_keys.display();
    let policy = walkthrough::DEV_ENVIRONMENT_POLICY;
    let worker = format!("--worker {base}");
    println!(
        "
promptflag on {base} (the Worker on local workerd, local KV holding a working copy of
examples/prompts-repo at {repository}) and the companion's collector and control loop on {collector}

  # this run's read keys (new every run): a server key reads the ruleset and the prompt
  # bodies, a client key only the evaluation routes; the commands below read them from here
  export PROMPTFLAG_READ_KEY={server_key}
  export PROMPTFLAG_CLIENT_KEY={client_key}

  # health (open), and the live ruleset (a server key)
  curl -s {base}/healthz
  curl -s {server} {base}/v1/ruleset

  # a prompt for a user, body inline (one round trip; a client key is enough)
  curl -s -X POST {base}/v1/resolve/support_prompt {client} {json} -d '{{\"context\": {{\"targetingKey\": \"user-42\"}}}}'
  # a prompt body by hash (immutable; a server key)
  curl -s {server} {base}/v1/prompts/{hash}
  # without a key: 401
  curl -s {base}/v1/ruleset

  # signed rulesets: the admin authority signs every revision it makes live (its
  # RULESET_SIGNING_KEY is in target/dev/ruleset-signing.env), and this Worker serves only what
  # verifies with its RULESET_PUBLIC_KEY, {public_key};
  # give it to clients (npm `rulesetPublicKey`, native `ClientConfig::with_ruleset_public_key`)
  # so they verify too. The signature travels with the ruleset:
  curl -s -o /dev/null -D - {server} {base}/v1/ruleset | grep -i x-promptflag-signature

  # OFREP: one flag, then every flag
  curl -s -X POST {base}/ofrep/v1/evaluate/flags/support_prompt {client} {json} -d '{{\"context\": {{\"targetingKey\": \"user-42\", \"plan\": \"pro\"}}}}'
  curl -s -i -X POST {base}/ofrep/v1/evaluate/flags {client} {json} -d '{{\"context\": {{\"targetingKey\": \"user-42\"}}}}'

  # throwaway admin credentials, one per environment (ADMIN_CREDENTIALS of this Worker only):
{tokens}
  export PROMPTFLAG_ADMIN_TOKEN={dev_token}

  # the companion: why a user gets a variant, the kill switch, a rollback, the history
  {companion} eval support_prompt --env dev --context '{{\"targetingKey\": \"user-42\"}}'
  {companion} kill support_prompt --env dev {worker} --reason 'trying the kill switch'
  {companion} rollback --env dev {worker}
  {companion} history --env dev {worker}
  {companion} audit verify

  # the admin API (the dev credential) and the collector's metrics (exposures arrive there)
  curl -s {admin} {base}/admin/v1/rulesets/dev
  curl -s {collector}/metrics

  # governance: the working copy has throwaway signing keys (promptflag keys init --dev:
  # dev-owner, dev-author, dev-reviewer), the Worker's OWNER_KEYS is {owner_keys}
  # and its ENVIRONMENT_POLICY is {policy};
  # approve and publish, copied as is:
{governance}
Ctrl-C stops it.
",
        server_key = keys.server,
        client_key = keys.client,
        public_key = signing.public_key,
    );
}

/// The live ruleset's text, from a plain HTTP/1.1 GET with the server read key.
fn fetch_ruleset_text(base: &str, read_key: &str) -> Option<String> {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /v1/ruleset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {read_key}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The first run of 64 lowercase hex digits in `text` (a prompt hash of the fixture ruleset).
fn first_sha256(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut run = 0;
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(byte, b'0'..=b'9' | b'a'..=b'f') {
            run += 1;
            if run == 64 && !bytes.get(index + 1).is_some_and(|b| b.is_ascii_hexdigit()) {
                return Some(text[index + 1 - 64..=index].to_string());
            }
        } else {
            run = 0;
        }
    }
    None
}
