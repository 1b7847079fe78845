//! Command-line arguments: clap's raw view ([`LowArgs`]) and the validated options the commands
//! run on ([`HiArgs`]), as ripgrep splits them. Everything that can be checked before touching
//! the network or the disk is checked in [`HiArgs::from_low`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use promptflag_release::store::{CLOUDFLARE_API, Http, KvRest, RetryPolicy, Store, WorkerAdmin};

/// promptflag: feature flags for LLM prompts — the native companion.
#[derive(Debug, Parser)]
#[command(name = "promptflag", version, about, long_about = None)]
pub struct LowArgs {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// The prompt repository (the folder holding promptflag.yaml).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value = ".",
        env = "PROMPTFLAG_REPO"
    )]
    pub repo: PathBuf,
    /// The audit database (default: <repo>/.promptflag/audit.sqlite3).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PROMPTFLAG_AUDIT_DB"
    )]
    pub audit_db: Option<PathBuf>,
    /// Who is acting, for the audit log (default: $PROMPTFLAG_ACTOR, git user.email, $USER).
    #[arg(long, global = true, help_heading = "Global options")]
    pub actor: Option<String>,
    /// The telemetry database the collector writes and the control loop reads
    /// (default: <repo>/.promptflag/telemetry.sqlite3).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PROMPTFLAG_DB"
    )]
    pub db: Option<PathBuf>,
    /// The control loop's own state: rollouts, checks and queued commands
    /// (default: <repo>/.promptflag/rollouts.sqlite3).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PROMPTFLAG_STATE_DB"
    )]
    pub state_db: Option<PathBuf>,
    /// The root owner keys the key registry's first change must be signed by: a file of
    /// `ssh-ed25519` lines, as the Worker's OWNER_KEYS secret holds them (without it the local
    /// checks trust registry 1's own owners).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PROMPTFLAG_OWNER_KEYS_FILE"
    )]
    pub owner_keys: Option<PathBuf>,
    #[command(subcommand)]
    pub command: LowCommand,
}

/// Where to publish.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// The Worker's base URL; its admin API receives the writes.
    #[arg(long, env = "PROMPTFLAG_WORKER_URL")]
    pub worker: Option<String>,
    /// The token of one of the Worker's ADMIN_CREDENTIALS (scoped to one environment and role).
    #[arg(long, env = "PROMPTFLAG_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A server read key of the Worker (its READ_KEYS), for reading GET /v1/ruleset.
    #[arg(long, env = "PROMPTFLAG_READ_KEY", hide_env_values = true)]
    pub read_key: Option<String>,
    /// Write through the Cloudflare KV REST API instead (CLOUDFLARE_ACCOUNT_ID,
    /// PROMPTFLAG_KV_NAMESPACE_ID, CLOUDFLARE_API_TOKEN; PROMPTFLAG_KV_API_URL overrides the base URL).
    #[arg(long, conflicts_with = "worker")]
    pub kv: bool,
    /// Seconds before one HTTP request gives up.
    #[arg(long, default_value_t = 30)]
    pub http_timeout: u64,
}

/// Waiting for the Worker to serve a change.
#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// Where to poll GET /v1/ruleset (default: --worker).
    #[arg(long, env = "PROMPTFLAG_SERVE_URL")]
    pub serve_url: Option<String>,
    /// Do not wait for the Worker to serve the change.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the Worker to serve the change.
    #[arg(long, default_value_t = 60)]
    pub wait_timeout: u64,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum LowCommand {
    /// Check the repository: metadata, variables, limits, schemas, rulesets. Exit 1 on errors.
    Lint,
    /// Build content-addressed bodies and one ruleset per environment.
    Build {
        /// Output folder (default: <repo>/build).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Build only this environment (repeatable).
        #[arg(long = "env")]
        environments: Vec<String>,
        /// Stamp this source instead of `git rev-parse HEAD`.
        #[arg(long)]
        source: Option<String>,
    },
    /// Compare two builds or revisions: variants, weights, rules, bodies, prompt tokens.
    Diff {
        /// A build folder (with manifest.json) or a git revision of the repository.
        old: String,
        /// A build folder or a git revision (default: the working tree).
        new: Option<String>,
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
    },
    /// Publish an environment's ruleset: bodies, then the revision, then the pointer.
    Publish {
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        /// Publish a build folder instead of building the repository now.
        #[arg(long)]
        build: Option<PathBuf>,
        /// Override the promotion gate (promote_from); needs --reason; audited.
        #[arg(long)]
        force: bool,
        /// Why; recorded in the audit log.
        #[arg(long, default_value = "")]
        reason: String,
        /// Check the gates and show the plan without writing.
        #[arg(long)]
        dry_run: bool,
        /// Revert the live runtime decisions git does not hold (kills, the loop's rollbacks and
        /// promotions) instead of keeping them; needs --reason; audited.
        #[arg(long)]
        revert_runtime: bool,
        /// The recorded eval results the require_evals gate reads (default: <repo>/evals/results).
        #[arg(long, env = "PROMPTFLAG_EVAL_RESULTS")]
        eval_results: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Write the decisions taken on the live environment (kills, the loop's rollbacks and
    /// promotions) back into the repository files, for review; nothing is committed.
    Sync {
        /// Only this environment (default: every declared environment with a live ruleset).
        #[arg(long = "env")]
        environment: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Per flag: what git intends, what is live, and why they differ.
    Status {
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Approve a prompt version for an environment: sign its exact content (body hash, model,
    /// parameters, output schema, author) with your SSH key into approvals/.
    Approve {
        /// `<family>@<version>`.
        prompt: String,
        /// The environment the approval is for.
        #[arg(long = "env")]
        environment: String,
        /// Your OpenSSH ed25519 private key, unencrypted (default: $PROMPTFLAG_SIGNING_KEY,
        /// then ~/.ssh/id_ed25519).
        #[arg(long, env = "PROMPTFLAG_SIGNING_KEY")]
        key: Option<PathBuf>,
        /// Print the message to sign and stop (for `ssh-keygen -Y sign -n promptflag`).
        #[arg(long, conflicts_with_all = ["key", "signature"])]
        message_only: bool,
        /// Store this signature (made by `ssh-keygen -Y sign -n promptflag` over the message)
        /// instead of signing.
        #[arg(long, conflicts_with = "key")]
        signature: Option<PathBuf>,
    },
    /// The signed key registry: list it, verify it, sign a change, make throwaway dev keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Turn a flag off in an environment (everyone gets the baseline) and wait until it is served.
    Kill {
        /// The flag.
        flag: String,
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        /// Why; recorded in the audit log.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Point an environment back at a kept revision and wait until it is served.
    Rollback {
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        /// The revision (default: the kept revision before the live one).
        #[arg(long)]
        to: Option<u64>,
        /// Why; recorded in the audit log.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// An environment's live, latest and kept revisions, with the audit entries behind them.
    History {
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Eval suites: run a family's golden set against a model (or recorded outputs) and record
    /// the result for the exact content id.
    Evals {
        #[command(subcommand)]
        command: EvalsCommand,
    },
    /// Prompts and flags past their review or deletion date, without an owner, or with no
    /// exposure in the window. Exit 1 when any is found.
    Hygiene {
        /// The exposure window: 60d, 12h, or integer seconds.
        #[arg(long, default_value = "60d")]
        since: String,
        /// The date to judge review and deletion dates by (YYYY-MM-DD; default: today, UTC).
        #[arg(long)]
        today: Option<String>,
    },
    /// Evaluate a flag for a context and explain the outcome.
    Eval {
        /// The flag.
        flag: String,
        /// The evaluation context, a JSON object.
        #[arg(long)]
        context: String,
        /// A ruleset JSON file.
        #[arg(long, conflicts_with = "environment")]
        ruleset: Option<PathBuf>,
        /// Build this environment of the repository and evaluate against it.
        #[arg(long = "env")]
        environment: Option<String>,
        /// The current time for date operators (RFC 3339; default: now).
        #[arg(long)]
        now: Option<String>,
    },
    /// Run the telemetry collector (POST /v1/events, GET /metrics) and, with --control, the
    /// rollout control loop.
    Serve(Box<ServeArgs>),
    /// Steer the rollout control loop.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Treatment against baseline from summary statistics (JSON file, or - for stdin).
    Analyze {
        /// The input file.
        input: PathBuf,
        /// fixed or sequential (overrides the file).
        #[arg(long, value_parser = ["fixed", "sequential"])]
        test: Option<String>,
        /// Significance level (overrides the file).
        #[arg(long)]
        alpha: Option<f64>,
        /// Sequential tuning parameter (overrides the file).
        #[arg(long)]
        tuning_parameter: Option<f64>,
        /// two_sided, greater or less (overrides the file).
        #[arg(long, value_parser = ["two_sided", "greater", "less"])]
        alternative: Option<String>,
    },
    /// Synthetic LLM traffic through the Worker and the collector, driving a real rollout.
    Simulate(Box<SimulateArgs>),
    /// Who saw what: a flag's exposures in a window, per variant and prompt version, and the units.
    Exposures(ExposuresArgs),
    /// Find when a per-variant metric degraded and the version, revision and publish behind it.
    Attribute(AttributeArgs),
}

/// `promptflag exposures`.
#[derive(Debug, Args, Clone)]
pub struct ExposuresArgs {
    /// The flag.
    #[arg(long)]
    pub flag: String,
    /// Only exposures of this prompt version.
    #[arg(long)]
    pub version: Option<String>,
    /// Start, inclusive: RFC 3339, or a duration ago (`30m`, `2h`, `7d`).
    #[arg(long)]
    pub from: String,
    /// End, exclusive: RFC 3339, a duration ago, or `now` (the default).
    #[arg(long, default_value = "now")]
    pub to: String,
    /// text (a summary), csv (every row) or json.
    #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
    pub format: String,
    /// The most unit rows listed; the per-variant counts stay exact.
    #[arg(long, default_value_t = 100_000)]
    pub max_units: usize,
}

/// `promptflag attribute`.
#[derive(Debug, Args, Clone)]
pub struct AttributeArgs {
    /// The metric to watch (default: every rate, latency_p95_ms and cost_per_request_usd).
    #[arg(long)]
    pub metric: Option<String>,
    /// Watch from here: RFC 3339, or a duration ago (`30m`, `2h`, `7d`).
    #[arg(long)]
    pub since: String,
    /// Watch until here (default: now).
    #[arg(long, default_value = "now")]
    pub until: String,
    /// Only this flag (default: every flag with calls in the range).
    #[arg(long)]
    pub flag: Option<String>,
    /// Only this environment.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// The window of the metric's time series, in seconds.
    #[arg(long, default_value_t = 60)]
    pub window: u64,
    /// How much history before --since is the variants' own baseline, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub history: u64,
}

/// `promptflag rollout …`: steer the control loop that `promptflag serve` runs.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start the rollout of `rollouts/<flag>.yaml` (read from --repo).
    Start {
        /// The flag.
        flag: String,
        /// Why; recorded in the audit log.
        #[arg(long, default_value = "")]
        reason: String,
        /// Seconds to wait for the loop to take the command (0: queue and return).
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Where a rollout stands, with its last checks.
    Status {
        /// The flag.
        flag: String,
        /// How many recent checks to show.
        #[arg(long, default_value_t = 5)]
        checks: usize,
    },
    /// Stop checking (the allocation stays as it is).
    Pause {
        /// The flag.
        flag: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Seconds to wait for the loop to take the command.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Check again (a fresh stage window).
    Resume {
        /// The flag.
        flag: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Seconds to wait for the loop to take the command.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Take the treatment back to 0 and stop.
    Abort {
        /// The flag.
        flag: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Seconds to wait for the loop to take the command.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
}

/// `promptflag serve` options.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on (127.0.0.1 by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8788")]
    pub listen: String,
    /// SQLite sync level: full (acknowledged events survive power loss) or normal (they
    /// survive a process crash).
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    pub synchronous: String,
    /// HTTP batches the write queue holds before answering 429.
    #[arg(long, default_value_t = 256)]
    pub queue_capacity: usize,
    /// Most events in one group commit.
    #[arg(long, default_value_t = 50_000)]
    pub max_batch_events: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds in the Retry-After of a 429.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// A bearer token writers must send (repeat it, or separate with commas, to accept several
    /// while one is rotated); at least 32 bytes. Without one the collector listens on loopback
    /// only.
    #[arg(
        long = "token",
        env = "PROMPTFLAG_COLLECTOR_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// Refuse events older than this many seconds (0: no limit).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub max_event_age: u64,
    /// Refuse events more than this many seconds in the future (clock skew).
    #[arg(long, default_value_t = 300)]
    pub max_event_ahead: u64,
    /// Run the rollout control loop too (needs --worker/--admin-token or --kv).
    #[arg(long)]
    pub control: bool,
    /// Milliseconds between control-loop passes (checks run when due by their policy).
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// POSTed (JSON) on every automatic rollback.
    #[arg(long, env = "PROMPTFLAG_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// On a promotion by the loop, write it back into the repository (--repo) as `promptflag
    /// sync` does: files written for review, not committed.
    #[arg(long)]
    pub sync_on_promote: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `promptflag simulate` options.
#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// verbose (+40 % cost), regression (−8 points success), improvement (+5 points), aa.
    #[arg(long, default_value = "regression", value_parser = ["verbose", "regression", "improvement", "aa"])]
    pub scenario: String,
    /// Repeat on fresh seeds and print the rate of each decision (in process; one run also
    /// goes through the Worker unless --no-worker).
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Calls per simulated minute.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Distinct users in the traffic.
    #[arg(long, default_value_t = 5000)]
    pub users: u64,
    /// Policy: standard (1 → 5 → 10 → 25 → 50 → 100 %) or quick (10 → 50 → 100 %, minutes).
    #[arg(long, default_value = "standard", value_parser = ["standard", "quick"])]
    pub preset: String,
    /// A rollout policy file to use instead of the preset.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Simulated hours before a run stops without a decision.
    #[arg(long, default_value_t = 12.0)]
    pub max_hours: f64,
    /// Per-check CSV of the run through the Worker (or of the first run).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Statistics only, in process: no Worker, no collector.
    #[arg(long)]
    pub no_worker: bool,
    /// Leave the calls' pre-exposure covariate out of the metrics (no CUPED); the traffic is
    /// the same.
    #[arg(long)]
    pub no_cuped: bool,
    /// Power with its false-alarm rate: --runs A/A runs, then --runs runs of each other
    /// scenario, with and without CUPED, in process and in shadow mode (nothing is rolled back;
    /// each check records what would have fired). Prints, per scenario, each rule's rollback
    /// rate and time to detection beside its A/A rate, the naive rule tuned to the sequential
    /// rule's A/A rate. Ignores --scenario.
    #[arg(long)]
    pub power: bool,
    /// Use a running Worker (its admin token in --admin-token) instead of starting the harness.
    #[arg(long, env = "PROMPTFLAG_SIM_WORKER_URL")]
    pub worker_url: Option<String>,
    /// The Worker's admin token when --worker-url is given.
    #[arg(long, default_value = "simulate")]
    pub admin_token: String,
    /// A server read key of the Worker when --worker-url is given.
    #[arg(long, env = "PROMPTFLAG_READ_KEY", hide_env_values = true)]
    pub read_key: Option<String>,
}

/// `promptflag evals …`.
#[derive(Debug, Subcommand)]
pub enum EvalsCommand {
    /// Run eval suites and record a result per content id. Exit 1 when a suite fails.
    Run(EvalsRunArgs),
}

/// `promptflag evals run`.
#[derive(Debug, Args, Clone)]
pub struct EvalsRunArgs {
    /// Only this family.
    #[arg(long)]
    pub family: Option<String>,
    /// Only this version (with --family, or of every family that has it).
    #[arg(long)]
    pub version: Option<String>,
    /// Replay recorded outputs from this folder (<content id>.json) instead of calling a model.
    #[arg(long, conflicts_with = "record")]
    pub replay: Option<PathBuf>,
    /// Call the model and save its outputs into this folder for later --replay.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Where results are written (default: <repo>/evals/results).
    #[arg(long, env = "PROMPTFLAG_EVAL_RESULTS")]
    pub results: Option<PathBuf>,
    /// The OpenAI-compatible API base URL, such as https://api.openai.com/v1.
    #[arg(long, env = "PROMPTFLAG_EVAL_BASE_URL")]
    pub base_url: Option<String>,
    /// The API key, sent as a bearer token.
    #[arg(long, env = "PROMPTFLAG_EVAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Seconds before one model call gives up.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Also run archived versions.
    #[arg(long)]
    pub include_archived: bool,
}

/// `promptflag keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The accepted registry's members, keys and roles, and whether every change is signed.
    List,
    /// Check the registry's chain of signatures. Exit 1 when a change is not signed by an owner.
    Verify,
    /// Sign a registry file (governance/registry/<serial>.json) with an owner key; writes
    /// <file>.sig.
    Sign {
        /// The registry file.
        file: PathBuf,
        /// The owner's OpenSSH ed25519 private key (default: $PROMPTFLAG_SIGNING_KEY, then
        /// ~/.ssh/id_ed25519).
        #[arg(long, env = "PROMPTFLAG_SIGNING_KEY")]
        key: Option<PathBuf>,
    },
    /// Generate an Ed25519 key pair for signed rulesets: prints `RULESET_SIGNING_KEY` (the
    /// admin authority's secret, the 32-byte seed as hex) and `RULESET_PUBLIC_KEY` (for the
    /// Worker and the clients).
    RulesetSigning,
    /// Generate throwaway keys (an owner, an author, a reviewer) into a folder and register them
    /// as registry 1, signed by the new owner. For development only.
    Init {
        /// Required: these keys are for development and tests, never for production.
        #[arg(long, required = true)]
        dev: bool,
        /// Where the private keys go (default: <repo>/.promptflag/dev-keys).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Replace an existing registry.
        #[arg(long)]
        force: bool,
    },
}

/// `promptflag audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries: the Worker's log with --worker, else the local mirror.
    List {
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Check the hash chain of the local mirror and, with --worker, of the Worker's log against
    /// the anchors KV's revisions carry. Exit 1 when an entry was edited, removed or reordered.
    Verify {
        /// A head hash recorded elsewhere that must still be in the chain.
        #[arg(long)]
        expect_head: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Stale prompts and flags (the same as `promptflag hygiene`, with the window in days).
    Stale {
        /// The exposure window in days.
        #[arg(long, default_value_t = 60)]
        days: u64,
        /// The date to judge review and deletion dates by (YYYY-MM-DD; default: today, UTC).
        #[arg(long)]
        today: Option<String>,
    },
}

/// A validated store target.
pub enum Target {
    /// The Worker admin API.
    Worker {
        /// Base URL.
        url: String,
        /// Admin token.
        token: String,
        /// The server read key, for `GET /v1/ruleset`.
        read_key: Option<String>,
    },
    /// The KV REST API.
    Kv {
        /// API base.
        base: String,
        /// Account.
        account: String,
        /// Namespace.
        namespace: String,
        /// API token.
        token: String,
    },
}

impl Target {
    /// Opens the store.
    pub fn open(&self, http: Http) -> Box<dyn Store> {
        match self {
            Target::Worker {
                url,
                token,
                read_key,
            } => Box::new(WorkerAdmin::new(url, token, http).with_read_key(read_key.as_deref())),
            Target::Kv {
                base,
                account,
                namespace,
                token,
            } => Box::new(KvRest::new(base, account, namespace, token, http)),
        }
    }

    /// The Worker URL, when the target is one.
    pub fn worker_url(&self) -> Option<&str> {
        match self {
            Target::Worker { url, .. } => Some(url),
            Target::Kv { .. } => None,
        }
    }
}

/// Validated wait options.
pub struct Wait {
    /// Where to poll, if anywhere.
    pub serve_url: Option<String>,
    /// The server read key the poll sends.
    pub read_key: Option<String>,
    /// The deadline.
    pub timeout: Duration,
}

/// What a revert does: the kill switch on one flag, or a rollback of the whole environment.
pub enum RevertAction {
    /// Disable the flag: everyone gets its baseline.
    Kill { flag: String },
    /// Move the live pointer back, to a named kept revision or the default target.
    Rollback { to: Option<u64> },
}

/// A publish: the build (a folder, or the repository built now) to one environment.
pub struct PublishCommand {
    pub environment: String,
    pub eval_results: PathBuf,
    pub build: Option<PathBuf>,
    pub force: bool,
    pub revert_runtime: bool,
    pub reason: String,
    pub dry_run: bool,
    pub target: Target,
    pub http: Http,
}

/// A kill or a rollback: one pointer write, then a wait until the Worker serves it.
pub struct Revert {
    pub action: RevertAction,
    pub environment: String,
    pub reason: String,
    pub target: Target,
    pub http: Http,
    pub wait: Wait,
}

/// A validated command.
pub enum HiCommand {
    Lint,
    Build {
        out: PathBuf,
        environments: Vec<String>,
        source: Option<String>,
    },
    Diff {
        old: String,
        new: Option<String>,
        environment: Option<String>,
    },
    Publish(PublishCommand),
    Revert(Revert),
    History {
        environment: String,
        target: Target,
        http: Http,
    },
    Status {
        environment: String,
        target: Target,
        http: Http,
    },
    Sync {
        environment: Option<String>,
        target: Target,
        http: Http,
    },
    AuditList {
        environment: Option<String>,
        /// The Worker whose log to read; the local mirror when `None`.
        server: Option<WorkerAdmin>,
    },
    AuditVerify {
        expect_head: Option<String>,
        /// The Worker whose log to check too.
        server: Option<WorkerAdmin>,
    },
    EvalsRun(EvalsRunArgs),
    Hygiene {
        window_seconds: u64,
        today: Option<String>,
    },
    Approve {
        prompt: String,
        environment: String,
        signing: Signing,
    },
    Keys(KeysCommand),
    Eval {
        flag: String,
        context: serde_json::Value,
        ruleset: Option<PathBuf>,
        environment: Option<String>,
        now_millis: i64,
    },
    Serve {
        args: Box<ServeArgs>,
        target: Option<(Target, Http)>,
    },
    Rollout(RolloutCommand),
    Analyze {
        input: PathBuf,
        overrides: serde_json::Value,
    },
    Simulate(Box<SimulateArgs>),
    Exposures {
        args: ExposuresArgs,
        from_ms: i64,
        to_ms: i64,
    },
    Attribute {
        args: AttributeArgs,
        metrics: Vec<promptflag_authoring::policy::Metric>,
        since_ms: i64,
        until_ms: i64,
        now_ms: i64,
    },
}

/// How an approval gets its signature.
pub enum Signing {
    /// Print the message only.
    MessageOnly,
    /// Sign with this private key file.
    Key(PathBuf),
    /// Store this signature file.
    Signature(PathBuf),
}

/// The private key file to sign with: the one given, or ~/.ssh/id_ed25519.
pub fn signing_key(key: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(key) = key {
        return Ok(key);
    }
    let home = std::env::var_os("HOME")
        .context("give the signing key with --key (or PROMPTFLAG_SIGNING_KEY): $HOME is not set")?;
    Ok(PathBuf::from(home).join(".ssh").join("id_ed25519"))
}

/// Validated arguments.
pub struct HiArgs {
    pub json: bool,
    pub repo: PathBuf,
    pub audit_db: PathBuf,
    pub db: PathBuf,
    pub state_db: PathBuf,
    pub actor: String,
    /// The root owner keys' text (`--owner-keys`), when given.
    pub owner_keys: Option<String>,
    pub command: HiCommand,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Where to write and the HTTP client to write with. On a terminal, and not with `--json`, each
/// retry of a request is shown on stderr as it waits.
/// The Worker whose audit log `audit list|verify` read: `None` without `--worker` (the local
/// mirror only). The KV REST API holds no audit log.
fn audit_server(args: &TargetArgs, quiet: bool) -> Result<Option<WorkerAdmin>> {
    if args.kv {
        bail!("the audit log of record is the Worker's: use --worker URL, not --kv");
    }
    if args.worker.is_none() {
        return Ok(None);
    }
    match target(args, quiet)? {
        (
            Target::Worker {
                url,
                token,
                read_key,
            },
            http,
        ) => Ok(Some(
            WorkerAdmin::new(&url, &token, http).with_read_key(read_key.as_deref()),
        )),
        (Target::Kv { .. }, _) => {
            bail!("the audit log of record is the Worker's: use --worker URL")
        }
    }
}

fn target(args: &TargetArgs, quiet: bool) -> Result<(Target, Http)> {
    let mut http = Http::new(
        Duration::from_secs(args.http_timeout.max(1)),
        retry_policy()?,
    );
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        http = http.with_retry_observer(std::sync::Arc::new(
            |request: &str, attempt: u32, attempts: u32, wait: Duration, why: &str| {
                eprintln!(
                    "retrying {request} in {} ms (attempt {attempt} of {attempts}): {why}",
                    wait.as_millis()
                );
            },
        ));
    }
    if args.kv {
        let need = |name: &str| {
            env_var(name).with_context(|| format!("--kv needs the environment variable {name}"))
        };
        let target = Target::Kv {
            base: env_var("PROMPTFLAG_KV_API_URL").unwrap_or_else(|| CLOUDFLARE_API.to_string()),
            account: need("CLOUDFLARE_ACCOUNT_ID")?,
            namespace: need("PROMPTFLAG_KV_NAMESPACE_ID")?,
            token: need("CLOUDFLARE_API_TOKEN")?,
        };
        return Ok((target, http));
    }
    let Some(url) = &args.worker else {
        bail!(
            "say where to publish: --worker URL (or PROMPTFLAG_WORKER_URL) for the Worker admin API, or --kv for the Cloudflare KV REST API"
        );
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("--worker must be an http:// or https:// URL, not {url:?}");
    }
    let Some(token) = &args.admin_token else {
        bail!("--worker needs --admin-token (or PROMPTFLAG_ADMIN_TOKEN)");
    };
    Ok((
        Target::Worker {
            url: url.clone(),
            token: token.clone(),
            read_key: args.read_key.clone(),
        },
        http,
    ))
}

/// Retry tuning from the environment (`PROMPTFLAG_RETRY_BASE_MS`, `PROMPTFLAG_RETRY_ATTEMPTS`).
fn retry_policy() -> Result<RetryPolicy> {
    let mut policy = RetryPolicy::default();
    if let Some(base) = env_var("PROMPTFLAG_RETRY_BASE_MS") {
        policy.base = Duration::from_millis(
            base.parse()
                .context("PROMPTFLAG_RETRY_BASE_MS must be an integer")?,
        );
    }
    if let Some(attempts) = env_var("PROMPTFLAG_RETRY_ATTEMPTS") {
        policy.attempts = attempts
            .parse()
            .context("PROMPTFLAG_RETRY_ATTEMPTS must be an integer")?;
    }
    Ok(policy)
}

pub fn wait(args: &WaitArgs, target: &Target, read_key: Option<&str>) -> Wait {
    let serve_url = if args.no_wait {
        None
    } else {
        args.serve_url
            .clone()
            .or_else(|| target.worker_url().map(str::to_string))
    };
    Wait {
        serve_url,
        read_key: read_key.map(str::to_string),
        timeout: Duration::from_secs(args.wait_timeout),
    }
}

fn check_environment_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        bail!("{name:?} is not an environment name (letters, digits, '_' and '-')");
    }
    Ok(())
}

fn parse_now(now: Option<&str>) -> Result<i64> {
    match now {
        Some(text) => promptflag_core::literal::parse_rfc3339_millis(text)
            .with_context(|| format!("--now {text:?} is not an RFC 3339 time")),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)),
    }
}

/// A point in time on the command line: RFC 3339, `now`, or a duration before now (`90s`, `30m`,
/// `2h`, `7d`).
pub fn parse_instant(flag: &str, text: &str, now_ms: i64) -> Result<i64> {
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(millis) = promptflag_core::literal::parse_rfc3339_millis(text) {
        return Ok(millis);
    }
    let unit_ms = match text.chars().last() {
        Some('s') => 1_000,
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        Some('d') => 86_400_000,
        _ => 0,
    };
    let amount = text
        .get(..text.len().saturating_sub(1))
        .and_then(|digits| digits.parse::<i64>().ok());
    match amount {
        Some(amount) if unit_ms > 0 && amount >= 0 => {
            Ok(now_ms.saturating_sub(amount.saturating_mul(unit_ms)))
        }
        _ => bail!(
            "{flag} {text:?} is not a time: give RFC 3339 (2026-11-21T14:00:00Z), `now`, or a duration ago (30m, 2h, 7d)"
        ),
    }
}

fn revert(
    quiet: bool,
    action: RevertAction,
    environment: String,
    reason: String,
    target_args: &TargetArgs,
    wait_args: &WaitArgs,
) -> Result<HiCommand> {
    check_environment_name(&environment)?;
    let (target, http) = target(target_args, quiet)?;
    let wait = wait(wait_args, &target, target_args.read_key.as_deref());
    Ok(HiCommand::Revert(Revert {
        action,
        environment,
        reason,
        target,
        http,
        wait,
    }))
}

impl HiArgs {
    /// Validates the raw arguments.
    pub fn from_low(low: LowArgs) -> Result<HiArgs> {
        let quiet = low.json;
        let repo = low.repo;
        let audit_db = low
            .audit_db
            .unwrap_or_else(|| repo.join(".promptflag").join("audit.sqlite3"));
        let db = low
            .db
            .unwrap_or_else(|| repo.join(".promptflag").join("telemetry.sqlite3"));
        let state_db = low
            .state_db
            .unwrap_or_else(|| repo.join(".promptflag").join("rollouts.sqlite3"));
        let actor = low
            .actor
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| promptflag_authoring::git::default_actor(&repo));
        let command = match low.command {
            LowCommand::Lint => HiCommand::Lint,
            LowCommand::Build {
                out,
                environments,
                source,
            } => HiCommand::Build {
                out: out.unwrap_or_else(|| repo.join("build")),
                environments,
                source,
            },
            LowCommand::Diff {
                old,
                new,
                environment,
            } => HiCommand::Diff {
                old,
                new,
                environment,
            },
            LowCommand::Publish {
                environment,
                build,
                force,
                reason,
                dry_run,
                revert_runtime,
                eval_results,
                target: target_args,
            } => {
                check_environment_name(&environment)?;
                if force && reason.trim().is_empty() {
                    bail!(
                        "--force needs --reason \"why\": the override is recorded in the audit log"
                    );
                }
                if revert_runtime && reason.trim().is_empty() {
                    bail!(
                        "--revert-runtime needs --reason \"why\": the revert is recorded in the audit log"
                    );
                }
                let (target, http) = target(&target_args, quiet)?;
                HiCommand::Publish(PublishCommand {
                    environment,
                    eval_results: eval_results
                        .unwrap_or_else(|| repo.join(promptflag_authoring::evals::RESULTS_DIR)),
                    build,
                    force,
                    revert_runtime,
                    reason,
                    dry_run,
                    target,
                    http,
                })
            }
            LowCommand::Kill {
                flag,
                environment,
                reason,
                target: target_args,
                wait: wait_args,
            } => revert(
                quiet,
                RevertAction::Kill { flag },
                environment,
                reason,
                &target_args,
                &wait_args,
            )?,
            LowCommand::Rollback {
                environment,
                to,
                reason,
                target: target_args,
                wait: wait_args,
            } => revert(
                quiet,
                RevertAction::Rollback { to },
                environment,
                reason,
                &target_args,
                &wait_args,
            )?,
            LowCommand::History {
                environment,
                target: target_args,
            } => {
                check_environment_name(&environment)?;
                let (target, http) = target(&target_args, quiet)?;
                HiCommand::History {
                    environment,
                    target,
                    http,
                }
            }
            LowCommand::Sync {
                environment,
                target: target_args,
            } => {
                if let Some(environment) = &environment {
                    check_environment_name(environment)?;
                }
                let (target, http) = target(&target_args, quiet)?;
                HiCommand::Sync {
                    environment,
                    target,
                    http,
                }
            }
            LowCommand::Status {
                environment,
                target: target_args,
            } => {
                check_environment_name(&environment)?;
                let (target, http) = target(&target_args, quiet)?;
                HiCommand::Status {
                    environment,
                    target,
                    http,
                }
            }
            LowCommand::Audit {
                command:
                    AuditCommand::List {
                        environment,
                        target: target_args,
                    },
            } => HiCommand::AuditList {
                environment,
                server: audit_server(&target_args, quiet)?,
            },
            LowCommand::Audit {
                command:
                    AuditCommand::Verify {
                        expect_head,
                        target: target_args,
                    },
            } => HiCommand::AuditVerify {
                expect_head,
                server: audit_server(&target_args, quiet)?,
            },
            LowCommand::Audit {
                command: AuditCommand::Stale { days, today },
            } => HiCommand::Hygiene {
                window_seconds: days.saturating_mul(86_400),
                today,
            },
            LowCommand::Hygiene { since, today } => HiCommand::Hygiene {
                window_seconds: since
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .or_else(|| {
                        promptflag_authoring::policy::parse_duration(
                            &promptflag_authoring::yaml::Node::Str(since.clone()),
                        )
                    })
                    .with_context(|| {
                        format!("--since {since:?} is not a duration (60d, 12h, 90m or seconds)")
                    })?,
                today,
            },
            LowCommand::Evals {
                command: EvalsCommand::Run(run),
            } => {
                if run.replay.is_none() && run.base_url.is_none() {
                    bail!(
                        "evals run needs a model endpoint (--base-url or PROMPTFLAG_EVAL_BASE_URL) or recorded outputs (--replay DIR)"
                    );
                }
                HiCommand::EvalsRun(run)
            }
            LowCommand::Eval {
                flag,
                context,
                ruleset,
                environment,
                now,
            } => {
                let context: serde_json::Value =
                    serde_json::from_str(&context).context("--context must be a JSON object")?;
                if !context.is_object() {
                    bail!(
                        "--context must be a JSON object of attributes, such as '{{\"targetingKey\": \"user-1\"}}'"
                    );
                }
                if ruleset.is_none() && environment.is_none() {
                    bail!("eval needs --ruleset FILE or --env ENV (which builds the repository)");
                }
                HiCommand::Eval {
                    flag,
                    context,
                    ruleset,
                    environment,
                    now_millis: parse_now(now.as_deref())?,
                }
            }
            LowCommand::Serve(serve) => {
                if !serve.listen.starts_with("127.")
                    && !serve.listen.starts_with("localhost")
                    && !serve.listen.starts_with("[::1]")
                {
                    eprintln!(
                        "promptflag serve: listening on {} (not loopback): the collector has no authentication; put it behind one",
                        serve.listen
                    );
                }
                let target = if serve.control {
                    if serve.target.worker.is_none() && !serve.target.kv {
                        bail!(
                            "--control needs where to publish: --worker URL --admin-token T, or --kv"
                        );
                    }
                    Some(target(&serve.target, quiet)?)
                } else {
                    None
                };
                HiCommand::Serve {
                    args: serve,
                    target,
                }
            }
            LowCommand::Rollout { command } => HiCommand::Rollout(command),
            LowCommand::Approve {
                prompt,
                environment,
                key,
                message_only,
                signature,
            } => {
                check_environment_name(&environment)?;
                let signing = match (message_only, signature) {
                    (true, _) => Signing::MessageOnly,
                    (false, Some(path)) => Signing::Signature(path),
                    (false, None) => Signing::Key(signing_key(key)?),
                };
                HiCommand::Approve {
                    prompt,
                    environment,
                    signing,
                }
            }
            LowCommand::Keys { command } => HiCommand::Keys(command),
            LowCommand::Analyze {
                input,
                test,
                alpha,
                tuning_parameter,
                alternative,
            } => HiCommand::Analyze {
                input,
                overrides: serde_json::json!({
                    "test": test, "alpha": alpha, "tuning_parameter": tuning_parameter, "alternative": alternative,
                }),
            },
            LowCommand::Simulate(simulate) => {
                if simulate.runs == 0 {
                    bail!("--runs must be at least 1");
                }
                if simulate.rate == 0 || simulate.users == 0 {
                    bail!("--rate and --users must be at least 1");
                }
                HiCommand::Simulate(simulate)
            }
            LowCommand::Exposures(exposures) => {
                let now_ms = parse_now(None)?;
                let from_ms = parse_instant("--from", &exposures.from, now_ms)?;
                let to_ms = parse_instant("--to", &exposures.to, now_ms)?;
                if from_ms >= to_ms {
                    bail!("--from must be before --to");
                }
                HiCommand::Exposures {
                    args: exposures,
                    from_ms,
                    to_ms,
                }
            }
            LowCommand::Attribute(attribute) => {
                let now_ms = parse_now(None)?;
                let since_ms = parse_instant("--since", &attribute.since, now_ms)?;
                let until_ms = parse_instant("--until", &attribute.until, now_ms)?;
                if since_ms >= until_ms {
                    bail!("--since must be before --until");
                }
                if attribute.window == 0 {
                    bail!("--window must be at least 1 second");
                }
                let metrics = match &attribute.metric {
                    Some(name) => vec![
                        promptflag_authoring::policy::Metric::ALL
                            .into_iter()
                            .find(|metric| metric.as_str() == name)
                            .with_context(|| {
                                let names: Vec<&str> = promptflag_authoring::policy::Metric::ALL
                                    .iter()
                                    .map(|m| m.as_str())
                                    .collect();
                                format!("--metric {name:?} is not one of {}", names.join(", "))
                            })?,
                    ],
                    None => promptflag_rollout::attribution::DEFAULT_METRICS.to_vec(),
                };
                HiCommand::Attribute {
                    args: attribute,
                    metrics,
                    since_ms,
                    until_ms,
                    now_ms,
                }
            }
        };
        let owner_keys = match &low.owner_keys {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the root owner keys {}", path.display()))?,
            ),
            None => None,
        };
        Ok(HiArgs {
            json: low.json,
            repo,
            audit_db,
            db,
            state_db,
            actor,
            owner_keys,
            command,
        })
    }
}
