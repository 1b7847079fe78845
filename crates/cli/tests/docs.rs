//! The documentation, run: every console session of `README.md`, `docs/` and `npm/README.md`
//! runs with the real `promptflag` binary and its output is compared with the documented one;
//! every JavaScript block runs under Node 22 against the built npm package; every Rust block is
//! compiled into `promptflag-docs` and run here; JSON blocks must parse, and YAML blocks marked
//! `file=PATH` must lint clean as that file of the example repository. A doc that drifts from the
//! code fails.
//!
//! How a page is written for it (`promptflag_docs` has the details):
//!
//! - ```` ```console ````: `$ command` lines (continued by `> ` lines), each followed by its
//!   output, standard error included; `[..]` stands for any text within a line and a line `...`
//!   for any lines, for what truly varies (times, a git commit); a last line `? N` is an exit
//!   status other than 0. A session's commands run in one shell, in a scratch folder holding a
//!   copy of `examples/`, so relative paths read as in a clone and nothing is written to the
//!   source tree; `PROMPTFLAG_ADMIN_TOKEN`, `PROMPTFLAG_READ_KEY` (the Worker's server read key)
//!   and `PROMPTFLAG_CLIENT_KEY` (its client read key) are set as the pages assume.
//! - ```` ```js ````: a page's blocks run in order as one ES module; `edge`, `readKey` (the
//!   server read key), `rulesetJson` (the example repository's prod ruleset), `fallbackRuleset`,
//!   `userIds`, `userId` and `queue` are given, as the snippets take them to be.
//! - ```` ```rust ````: the body of a function given `edge` and `read_key`, returning any error
//!   with `?`.
//! - ```` ```sh ````: shown, not run (a command that serves until stopped, the test suite itself,
//!   a download); it must parse. ```` ```text ````, ```` ```yaml ````, ```` ```json ````: not run.
//!
//! Where a page talks to a Worker, this test starts the built one (through `promptflag-harness`)
//! on a free port, serving the environment the page's examples use, seeded as the page assumes
//! (`setup()`); the documented URL `http://127.0.0.1:8787` is replaced by the real one in
//! commands and back in their output, so parallel runs never collide. `cargo run -q -p
//! promptflag-cli --` in a documented command is the binary under test, as is `promptflag` on
//! `PATH`.
//!
//! Needs Node 22, the built Worker and the built npm package: `cargo xtask test` provides them;
//! run alone, after `cargo xtask setup`, `cargo xtask build-worker` and `cargo xtask build-npm`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use promptflag_docs::{Fence, markdown};
use promptflag_harness::{
    Locations, TEST_CLIENT_KEY, TEST_SERVER_KEY, WorkerOptions, WorkerProcess,
};

/// The admin token the pages' sessions hold in `PROMPTFLAG_ADMIN_TOKEN`, as `cargo xtask dev`
/// tells its user to export one (its own tokens are random); the harness grants it every
/// environment the pages write.
const ADMIN_TOKEN: &str = "docs-admin-token-0123456789abcdef0123";
/// The Worker's URL as the docs write it.
const DOC_WORKER: &str = "http://127.0.0.1:8787";
/// The edge URL of the npm package's examples.
const DOC_EDGE: &str = "https://flags.example.com";
/// A guard against a hung command (never a timing check): a session that has not finished by then
/// is killed and fails.
const SESSION_LIMIT: Duration = Duration::from_secs(180);

/// How a file is set up before its blocks run.
#[derive(Clone, Copy)]
struct Setup {
    /// The environment of the Worker to start, if the file needs one.
    worker: Option<&'static str>,
    /// Commands run first, as the page assumes has happened (`cargo xtask dev` publishes the
    /// example repository to dev with its own audit log).
    seed: &'static [&'static str],
}

/// `cargo xtask dev`'s publish.
const SEED_DEV: &str = "promptflag --repo examples/prompts-repo --audit-db target/dev/audit.sqlite3 \
     publish --env dev --worker http://127.0.0.1:8787 --reason 'cargo xtask dev'";
/// The example repository in prod, through staging as its gate wants.
const SEED_PROD: &[&str] = &[
    "promptflag --repo examples/prompts-repo publish --env staging --worker http://127.0.0.1:8787",
    "promptflag --repo examples/prompts-repo publish --env prod --worker http://127.0.0.1:8787",
];

/// What each file's blocks need; a file missing here fails the test.
fn setup(file: &str) -> Setup {
    match file {
        "README.md" | "npm/README.md" => Setup {
            worker: Some("dev"),
            seed: &[SEED_DEV],
        },
        // The rollout section publishes prod itself.
        "docs/companion.md" => Setup {
            worker: Some("prod"),
            seed: &[],
        },
        "docs/collector.md" => Setup {
            worker: Some("prod"),
            seed: SEED_PROD,
        },
        // The eval gate's refusal publishes staging, then prod, itself.
        "docs/evals.md" => Setup {
            worker: Some("prod"),
            seed: &[],
        },
        "ARCHITECTURE.md" | "docs/interfaces.md" | "docs/ruleset.md" | "docs/statistics.md"
        | "docs/ci.md" => Setup {
            worker: None,
            seed: &[],
        },
        other => panic!("{other}: say in setup() what its blocks need"),
    }
}

/// A scratch folder for one file, and what runs for it.
struct Page {
    file: &'static str,
    dir: tempfile::TempDir,
    bin: PathBuf,
    worker: Option<(WorkerProcess, String)>,
    /// How many commands and snippets ran.
    ran: Counts,
}

#[derive(Default, Debug)]
struct Counts {
    sessions: usize,
    commands: usize,
    js: usize,
    rust: usize,
    shell_checked: usize,
    /// JSON blocks parsed and YAML blocks linted as repository files.
    formats: usize,
}

impl Page {
    fn new(file: &'static str) -> Page {
        let dir = tempfile::tempdir().unwrap();
        support::copy_dir(
            &support::workspace_root().join("examples"),
            &dir.path().join("examples"),
        );
        // `promptflag` on PATH is the binary under test, as `cargo install` would put it.
        let bin = dir.path().join(".bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_promptflag"), bin.join("promptflag"))
            .unwrap();
        // `import … from "promptflag"` resolves to the built package, and its peers to the
        // workspace's dev dependencies.
        let modules = dir.path().join("node_modules");
        std::fs::create_dir_all(&modules).unwrap();
        let root = support::workspace_root();
        assert!(
            root.join("npm/dist/node.js").is_file(),
            "the npm package is not built: run `cargo xtask build-npm` (cargo xtask test does)"
        );
        std::os::unix::fs::symlink(root.join("npm"), modules.join("promptflag")).unwrap();
        std::os::unix::fs::symlink(
            root.join("node_modules/@openfeature"),
            modules.join("@openfeature"),
        )
        .unwrap();
        let setup = setup(file);
        let mut page = Page {
            file,
            dir,
            bin,
            worker: None,
            ran: Counts::default(),
        };
        if let Some(environment) = setup.worker {
            let locations = Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
            let options = WorkerOptions {
                admin_token: Some(ADMIN_TOKEN.to_string()),
                environment: environment.to_string(),
                quiet: true,
                ..WorkerOptions::default()
            };
            let process =
                WorkerProcess::start(&locations, &options).unwrap_or_else(|e| panic!("{e}"));
            let url = process.url().to_string();
            page.worker = Some((process, url));
        }
        for command in setup.seed {
            let (status, output) = page.shell(command);
            assert_eq!(
                status, 0,
                "{file}: setting up with `{command}` failed:\n{output}"
            );
        }
        page
    }

    fn worker_url(&self) -> Option<&str> {
        self.worker.as_ref().map(|(_, url)| url.as_str())
    }

    /// The documented text with the real URLs and the binary in.
    fn to_real(&self, text: &str) -> String {
        let mut text = text
            .replace("cargo run -q -p promptflag-cli --", "promptflag")
            .replace("cargo run -p promptflag-cli --", "promptflag");
        if let Some(url) = self.worker_url() {
            text = text.replace(DOC_WORKER, url).replace(DOC_EDGE, url);
        }
        text
    }

    /// Real output with the documented URLs and paths back in.
    fn to_doc(&self, text: &str) -> String {
        let mut text = text.replace(&self.dir.path().display().to_string(), "[CWD]");
        if let Some(url) = self.worker_url() {
            text = text.replace(url, DOC_WORKER);
        }
        text
    }

    /// Runs a bash script in the page's folder with standard error merged into standard output;
    /// the status and the output.
    fn shell(&self, script: &str) -> (i32, String) {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("exec 2>&1\n{}", self.to_real(script)))
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("PROMPTFLAG_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PROMPTFLAG_READ_KEY", TEST_SERVER_KEY)
            .env("PROMPTFLAG_CLIENT_KEY", TEST_CLIENT_KEY)
            .env("PROMPTFLAG_ACTOR", "docs@example.com")
            .env_remove("PROMPTFLAG_REPO")
            .env_remove("PROMPTFLAG_AUDIT_DB")
            .env_remove("PROMPTFLAG_DB")
            .env_remove("PROMPTFLAG_WORKER_URL")
            .env_remove("PROMPTFLAG_ALERT_WEBHOOK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its own process group, so a session that hangs is stopped with whatever it started
            // in the background.
            .process_group(0)
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).unwrap();
            text
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > SESSION_LIMIT {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                panic!(
                    "{}: a session ran past {SESSION_LIMIT:?}:\n{script}",
                    self.file
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = reader.join().unwrap();
        (status.code().unwrap_or(-1), self.to_doc(&output))
    }

    /// Runs one console block: its commands in one shell (so a variable set by one is seen by
    /// the next), each followed by a marker with its status.
    fn console(&mut self, line: usize, text: &str) {
        let steps = markdown::session(text);
        assert!(
            !steps.is_empty(),
            "{}:{line}: a console block with no `$ ` command",
            self.file
        );
        let mut script = String::new();
        for step in &steps {
            script.push_str(&step.command);
            script.push_str("\nprintf '\\n\\001status %d\\n' $?\n");
        }
        let (_, output) = self.shell(&script);
        self.ran.sessions += 1;
        let mut outputs = Vec::new();
        let mut current = String::new();
        for out in output.lines() {
            if let Some(status) = out.strip_prefix("\u{1}status ") {
                outputs.push((status.parse::<i32>().unwrap(), std::mem::take(&mut current)));
            } else {
                current.push_str(out);
                current.push('\n');
            }
        }
        assert_eq!(
            outputs.len(),
            steps.len(),
            "{}:{line}: the session stopped early; its output:\n{output}",
            self.file
        );
        for (step, (status, actual)) in steps.iter().zip(outputs) {
            let at = line + step.line;
            assert!(
                promptflag_docs::matches(&step.expected, &actual) && status == step.status,
                "{}:{at}: `{}` does not do what the doc says.\n--- documented (status {}):\n{}\n--- actual (status {status}):\n{actual}",
                self.file,
                step.command,
                step.status,
                step.expected.join("\n"),
            );
            self.ran.commands += 1;
        }
    }

    /// Runs the page's JavaScript blocks as one ES module, in order (a later block uses what an
    /// earlier one defined, as a reader would), after a prelude that defines the names the
    /// snippets take as given.
    fn javascript(&mut self, blocks: &[&markdown::Block]) {
        if blocks.is_empty() {
            return;
        }
        let (status, output) =
            self.shell("promptflag --repo examples/prompts-repo build --out .ruleset-build");
        assert_eq!(
            status, 0,
            "building the example repository failed:\n{output}"
        );
        let edge = self.worker_url().unwrap_or(DOC_EDGE);
        let mut module = format!(
            "// The names the documentation's snippets take as given.\n\
             import {{ readFileSync as readFileSync__ }} from \"node:fs\";\n\
             const edge = {edge:?};\n\
             const readKey = process.env.PROMPTFLAG_READ_KEY;\n\
             const rulesetJson = readFileSync__(\".ruleset-build/rulesets/prod.json\", \"utf8\");\n\
             const fallbackRuleset = rulesetJson;\n\
             const userIds = [\"user-1\", \"user-2\", \"user-3\"];\n\
             const userId = \"user-42\";\n\
             const queue = [];\n"
        );
        for block in blocks {
            module.push_str(&format!("// {}:{}\n", self.file, block.line));
            module.push_str(&self.to_real(&block.text));
        }
        // A client's refresh timer would keep Node running.
        module.push_str("process.exit(0);\n");
        let script = self.dir.path().join("snippets.mjs");
        std::fs::write(&script, &module).unwrap();
        let node = Locations::from_env().unwrap_or_else(|e| panic!("{e}")).node;
        let (status, output) = self.shell(&format!("'{}' snippets.mjs", node.display()));
        assert_eq!(
            status, 0,
            "{}: the JavaScript blocks failed:\n{output}\n--- the module:\n{module}",
            self.file
        );
        self.ran.js += blocks.len();
    }

    /// Runs the Rust blocks that `promptflag-docs` compiled from this file.
    fn rust(&mut self) {
        for (file, line, snippet) in promptflag_docs::snippets::ALL {
            if *file != self.file {
                continue;
            }
            let edge = self.worker_url().unwrap_or(DOC_WORKER).to_string();
            if let Err(error) = snippet(&edge, TEST_SERVER_KEY) {
                panic!("{file}:{line}: the Rust block failed: {error}");
            }
            self.ran.rust += 1;
        }
    }

    /// Writes the page's repository files over a copy of the example repository and lints it.
    fn file_formats(&mut self, files: &[(usize, &str, &str)]) {
        if files.is_empty() {
            return;
        }
        let repo = self.dir.path().join("documented-repo");
        support::copy_dir(&support::example_repo(), &repo);
        for (_, path, text) in files {
            std::fs::write(repo.join(path), text).unwrap();
        }
        let (status, output) = self.shell("promptflag --repo documented-repo lint");
        let lines: Vec<usize> = files.iter().map(|(line, _, _)| *line).collect();
        assert!(
            status == 0 && output.trim_end() == "0 error(s), 0 warning(s)",
            "{}: the repository files of the blocks at lines {lines:?}, written over the example \
             repository, do not lint clean:\n{output}",
            self.file
        );
        self.ran.formats += files.len();
    }

    fn shell_syntax(&mut self, line: usize, text: &str) {
        let mut child = Command::new("bash")
            .arg("-n")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}:{line}: the shell block does not parse: {}",
            self.file,
            String::from_utf8_lossy(&output.stderr)
        );
        self.ran.shell_checked += 1;
    }
}

/// Runs every block of one file; what ran, for the summary.
fn run(file: &'static str) -> Counts {
    let text = std::fs::read_to_string(support::workspace_root().join(file)).unwrap();
    let blocks = markdown::blocks(&text);
    let mut page = Page::new(file);
    let mut js = Vec::new();
    let mut yaml = Vec::new();
    for block in &blocks {
        let fence = promptflag_docs::fence(&block.lang).unwrap_or_else(|| {
            panic!(
                "{file}:{}: the fence language {:?} is not one of {:?}: name it, so the block is \
                 run or declared not to be",
                block.line,
                block.lang,
                promptflag_docs::FENCES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
            )
        });
        match fence {
            Fence::Console => page.console(block.line, &block.text),
            Fence::JavaScript => js.push(block),
            Fence::Shell => page.shell_syntax(block.line, &block.text),
            Fence::Text if block.lang == "json" => {
                if let Err(error) = serde_json::from_str::<serde_json::Value>(&block.text) {
                    panic!(
                        "{file}:{}: the JSON block does not parse: {error}",
                        block.line
                    );
                }
                page.ran.formats += 1;
            }
            Fence::Text => {
                if let Some(path) = block.attribute("file") {
                    yaml.push((block.line, path, block.text.as_str()));
                }
            }
            Fence::Rust => {}
        }
    }
    page.file_formats(&yaml);
    page.javascript(&js);
    page.rust();
    let ran = &page.ran;
    eprintln!(
        "{file}: {} command(s) in {} console session(s), {} JavaScript and {} Rust snippet(s) run; \
         {} shell block(s) only parsed; {} file-format block(s) checked",
        ran.commands, ran.sessions, ran.js, ran.rust, ran.shell_checked, ran.formats
    );
    page.ran
}

macro_rules! doc_tests {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() {
                run($file);
            }
        )*

        /// Every tested file has a test here, and the build script compiled the same list.
        #[test]
        fn doc_page_list_is_complete() {
            let here: Vec<&str> = vec![$($file),*];
            assert_eq!(here, promptflag_docs::FILES);
        }
    };
}

// The tests' names start with `doc_page_`, so `cargo xtask test` can run them as a step of their
// own (which prints what each file ran) and skip them in the workspace's run.
doc_tests! {
    doc_page_readme => "README.md",
    doc_page_architecture => "ARCHITECTURE.md",
    doc_page_companion => "docs/companion.md",
    doc_page_collector => "docs/collector.md",
    doc_page_interfaces => "docs/interfaces.md",
    doc_page_ruleset => "docs/ruleset.md",
    doc_page_statistics => "docs/statistics.md",
    doc_page_evals => "docs/evals.md",
    doc_page_ci => "docs/ci.md",
    doc_page_npm_readme => "npm/README.md",
}
