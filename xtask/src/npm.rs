//! Building the npm package (`npm/`) from the Wasm bindings (`crates/wasm`) with the pinned
//! wasm-bindgen CLI.
//!
//! 1. `cargo build -p promptflag-wasm --target wasm32-unknown-unknown --profile wasm-release`;
//! 2. the pinned `wasm-bindgen --target web` into `npm/pkg/wasm/` (one glue module for every
//!    runtime: Node and workerd instantiate synchronously with `initSync`, browsers with `init`);
//! 3. `wasm-opt` from npm `binaryen`;
//! 4. `tsc -p npm/tsconfig.json` into `npm/dist/`, then the glue and the `.wasm` next to it;
//! 5. CommonJS builds of the Node entry and the OpenFeature entry (esbuild), and `.d.cts` types
//!    for them, so `require("promptflag")` works without relying on `require(esm)`.
//!
//! Everything it writes (`npm/pkg`, `npm/dist`) is ignored by git. It also makes sure Debian's
//! Chromium is installed for the package's browser test (as root, with apt-get).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::tools::Toolchain;

/// wasm-opt settings: `-O3` keeps the evaluation path fast; `-Oz` would save about 10 % of the
/// (gzipped) size at a measurable cost per evaluation.
const WASM_OPT_LEVEL: &str = "-O3";

/// Packages compiled at `opt-level = 3` in the npm build (see `build`).
const SPEED_PACKAGES: [&str; 3] = ["promptflag-core", "xxhash-rust", "promptflag-wasm"];

/// Builds the package.
pub fn build(tools: &Toolchain) -> Result<()> {
    let root = &tools.root;
    let npm = root.join("npm");
    let pkg = npm.join("pkg").join("wasm");
    let dist = npm.join("dist");

    // The profile is shared with the Worker (size first); the evaluation path itself (the engine,
    // its hash, the bindings) is built for speed: about 1.5x faster evaluation in Node for about
    // a fifth more gzipped Wasm. Parsing and everything else stay at the profile's `opt-level`.
    let mut build = tools.cargo(&[
        "build",
        "-p",
        "promptflag-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ]);
    for package in SPEED_PACKAGES {
        build = build.arg("--config").arg(format!(
            "profile.wasm-release.package.{package}.opt-level=3"
        ));
    }
    build.run()?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let wasm = target_dir
        .join("wasm32-unknown-unknown")
        .join("wasm-release")
        .join("promptflag_wasm.wasm");

    recreate_dir(&pkg)?;
    tools
        .command(
            tools.wasm_bindgen(),
            &[
                "--target",
                "web",
                "--weak-refs",
                "--out-name",
                "promptflag_wasm",
                "--out-dir",
            ],
        )
        .arg(&pkg)
        .arg(&wasm)
        .run()?;
    let bindgen_wasm = pkg.join("promptflag_wasm_bg.wasm");
    tools
        .command(
            tools.node_modules_bin("wasm-opt"),
            &[WASM_OPT_LEVEL, "--strip-debug", "--strip-producers"],
        )
        .arg(&bindgen_wasm)
        .arg("-o")
        .arg(&bindgen_wasm)
        .run()?;

    recreate_dir(&dist)?;
    let tsc = root
        .join("node_modules")
        .join("typescript")
        .join("bin")
        .join("tsc");
    tools
        .node(&[])
        .arg(&tsc)
        .arg("-p")
        .arg(npm.join("tsconfig.json"))
        .run()
        .context("compiling the TypeScript in npm/src")?;

    let dist_wasm = dist.join("wasm");
    std::fs::create_dir_all(&dist_wasm)
        .with_context(|| format!("creating {}", dist_wasm.display()))?;
    for name in [
        "promptflag_wasm.js",
        "promptflag_wasm.d.ts",
        "promptflag_wasm_bg.wasm",
    ] {
        copy(&pkg.join(name), &dist_wasm.join(name))?;
    }

    // CommonJS: esbuild bundles the ESM output; `import.meta.url` becomes the bundle's file URL.
    let esbuild = root.join("node_modules").join(".bin").join("esbuild");
    for entry in ["node", "openfeature"] {
        let mut command = tools
            .command(&esbuild, &[])
            .arg(dist.join(format!("{entry}.js")));
        for flag in [
            "--bundle",
            "--platform=node",
            "--format=cjs",
            "--target=node20",
            "--log-level=warning",
            "--external:@openfeature/server-sdk",
            "--define:import.meta.url=__promptflag_module_url",
            "--banner:js=const __promptflag_module_url = require(\"node:url\").pathToFileURL(__filename).href;",
        ] {
            command = command.arg(flag);
        }
        command
            .arg(format!(
                "--outfile={}",
                dist.join(format!("{entry}.cjs")).display()
            ))
            .run()
            .with_context(|| format!("bundling dist/{entry}.cjs"))?;
    }
    write_cts_types(&dist)?;
    copy(&dist.join("index.d.cts"), &dist.join("node.d.cts"))?;

    ensure_chromium()?;
    report_size(&dist)?;
    Ok(())
}

/// Copies every `.d.ts` under `dist` to a `.d.cts` twin whose relative imports name `.cjs`
/// files, so TypeScript resolves CommonJS types for the `require` condition.
fn write_cts_types(dist: &Path) -> Result<()> {
    for path in files_under(dist)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(stem) = name.strip_suffix(".d.ts") else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let text = text.replace(".js\";", ".cjs\";").replace(".js';", ".cjs';");
        let twin = path.with_file_name(format!("{stem}.d.cts"));
        std::fs::write(&twin, text).with_context(|| format!("writing {}", twin.display()))?;
    }
    Ok(())
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn recreate_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// The browser test drives Debian's Chromium. Installs it when missing (needs root and apt-get).
fn ensure_chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    if !is_root {
        bail!(
            "the npm browser test needs /usr/bin/chromium: run `sudo apt-get install -y chromium`"
        );
    }
    eprintln!("xtask: installing Debian's chromium for the npm browser test (once)");
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", "chromium"][..],
    ] {
        let status = std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
    }
    Ok(())
}

/// Prints the package's size: the Wasm raw and gzipped, and the JavaScript of one entry.
fn report_size(dist: &Path) -> Result<()> {
    let wasm = std::fs::metadata(dist.join("wasm").join("promptflag_wasm_bg.wasm"))?.len();
    let mut js = 0;
    for path in files_under(dist)? {
        let name = path.to_string_lossy();
        if name.ends_with(".js") {
            js += std::fs::metadata(&path)?.len();
        }
    }
    eprintln!("xtask: npm/dist: promptflag_wasm_bg.wasm {wasm} bytes; ESM JavaScript {js} bytes");
    Ok(())
}
