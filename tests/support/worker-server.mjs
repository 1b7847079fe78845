// Runs the built Worker (worker/build/) in Miniflare on 127.0.0.1: the shared harness of
// docs/interfaces.md ("Running the built Worker from tests"). It runs both scripts, as deployed:
// the serving Worker (worker/build/index.js), which answers on the port, and the admin authority
// (worker/build/authority/authority.js, the Worker `promptflag-authority`), whose Durable Object
// the serving Worker binds by script name and forwards /admin/* to. Both read the one KV
// namespace; the admin secrets go to the authority only.
//
//   $PROMPTFLAG_NODE tests/support/worker-server.mjs --port 0 --persist <dir> \
//       [--admin-credentials <json> | --admin-token <token>] [--environment-policy <json>] [--owner-keys <text>] \
//       --environment dev --cache-ttl-ms 50 [--exposure-sink <url>] [--exposure-sink-token <token>] \
//       [--read-keys <json>] [--cors-origins <list>] \
//       [--ruleset-public-key <hex>] [--ruleset-signing-key <hex>]
//
// `--admin-token T` is shorthand for credentials holding T with the override role in each of
// dev, staging, prod and the served environment (`test-<env>`); `--admin-credentials` gives the
// ADMIN_CREDENTIALS list. `--read-keys` is the Worker's READ_KEYS secret (a JSON array of
// {"name", "key", "kind"}); without it the Worker gets the test keys below, SERVER_KEY and
// CLIENT_KEY, which every suite that reads the Worker sends as `Authorization: Bearer <key>`.
//
// `--ruleset-public-key` is the Worker's RULESET_PUBLIC_KEY and `--ruleset-signing-key` the
// admin authority's RULESET_SIGNING_KEY (docs/interfaces.md, "Signed rulesets").
//
// Prints one line of JSON, {"url": "http://127.0.0.1:PORT"}, once it serves, and exits on
// SIGTERM, SIGINT or when its standard input closes. Each line of JSON it reads on standard input
// is a direct KV operation, answered with one line of JSON on standard output: {"kv_put": [key,
// value]} answers {"ok": true}; {"kv_get": key} answers {"value": text or null}. Tests use it to
// act as someone with write access to the namespace (a replayed revision), bypassing the
// authority.
//
// Node suites import `startWorker` from here instead of spawning it.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = process.env.PROMPTFLAG_ROOT ?? resolve(here, "..", "..");
export const WORKER_DIR = process.env.PROMPTFLAG_WORKER_DIR ?? join(ROOT, "worker", "build");
// The KV namespace binding the Worker reads (worker/src/app.rs, wrangler.toml).
export const KV_BINDING = "PROMPTFLAG_KV";
// The admin authority's Durable Object binding and class, and the Worker that defines the class
// (worker/js/authority.js, wrangler.toml, wrangler.authority.toml).
export const AUTHORITY_BINDING = "PROMPTFLAG_AUTHORITY";
export const AUTHORITY_CLASS = "PromptflagAuthority";
export const AUTHORITY_SCRIPT = "promptflag-authority";
// The secrets only the authority reads: the serving Worker, which faces every caller, holds none.
const AUTHORITY_SECRETS = ["ADMIN_CREDENTIALS", "ENVIRONMENT_POLICY", "OWNER_KEYS", "RULESET_SIGNING_KEY"];

// ADMIN_CREDENTIALS for a test that holds one token: the token with the override role in each
// usual environment, one credential each (`test-dev`, `test-staging`, `test-prod`).
export function credentialsFor(token, environments = ["dev", "staging", "prod"]) {
  return environments.map((environment) => ({ name: `test-${environment}`, token, environment, role: "override" }));
}
export const COMPATIBILITY_DATE = "2026-07-01";
// The read keys the harness configures unless told otherwise (docs/interfaces.md, "Read
// keys"): one server key (the ruleset and prompt bodies, and evaluations) and one client key
// (evaluations only). Test values, 32 bytes or more as the Worker requires.
export const SERVER_KEY = "test-server-key-0123456789abcdef0123456789";
export const CLIENT_KEY = "test-client-key-0123456789abcdef0123456789";
export const DEFAULT_READ_KEYS = [
  { name: "test-server", key: SERVER_KEY, kind: "server" },
  { name: "test-client", key: CLIENT_KEY, kind: "client" },
];

// The Miniflare options of the built serving Worker, for suites that compose their own set-up
// (with `authorityOptions` beside it in `workers`, the serving Worker first).
export function workerOptions(options = {}) {
  const { workerDir = WORKER_DIR, kvBinding = true } = options;
  const bindings = Object.fromEntries(Object.entries(workerBindings(options)).filter(([name]) => !AUTHORITY_SECRETS.includes(name)));
  return {
    ...scriptOptions(workerDir, "index.js"),
    name: "promptflag",
    kvNamespaces: kvBinding ? { [KV_BINDING]: "promptflag" } : {},
    durableObjects: { [AUTHORITY_BINDING]: { className: AUTHORITY_CLASS, scriptName: AUTHORITY_SCRIPT } },
    bindings,
  };
}

// The Miniflare options of the built admin authority (the Worker `promptflag-authority`), with
// every binding the serving Worker gets and the admin secrets besides.
export function authorityOptions(options = {}) {
  const { workerDir = WORKER_DIR, kvBinding = true } = options;
  return {
    ...scriptOptions(join(workerDir, "authority"), "authority.js"),
    name: AUTHORITY_SCRIPT,
    kvNamespaces: kvBinding ? { [KV_BINDING]: "promptflag" } : {},
    bindings: workerBindings(options),
  };
}

function scriptOptions(dir, entry) {
  const scriptPath = join(dir, entry);
  if (!existsSync(scriptPath)) {
    throw new Error(`${scriptPath} is missing: build the Worker first (cargo xtask build-worker)`);
  }
  return {
    modules: true,
    scriptPath,
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
  };
}

// The vars and secrets of both scripts, from the harness's options.
function workerBindings({
  adminToken,
  adminCredentials,
  environmentPolicy,
  ownerKeys,
  environment = "dev",
  cacheTtlMs = 50,
  exposureSink,
  exposureSinkToken,
  readKeys = DEFAULT_READ_KEYS,
  corsOrigins,
  rulesetPublicKey,
  rulesetSigningKey,
} = {}) {
  const bindings = { ENVIRONMENT: environment, CACHE_TTL_MS: String(cacheTtlMs) };
  const granted = [...new Set(["dev", "staging", "prod", environment])];
  const credentials = adminCredentials ?? (adminToken ? credentialsFor(adminToken, granted) : undefined);
  if (credentials !== undefined) {
    bindings.ADMIN_CREDENTIALS = typeof credentials === "string" ? credentials : JSON.stringify(credentials);
  }
  if (environmentPolicy !== undefined) {
    bindings.ENVIRONMENT_POLICY = typeof environmentPolicy === "string" ? environmentPolicy : JSON.stringify(environmentPolicy);
  }
  // The signature gate's root owner keys (a secret in production).
  if (ownerKeys !== undefined) bindings.OWNER_KEYS = ownerKeys;
  if (exposureSink) bindings.EXPOSURE_SINK_URL = exposureSink;
  if (exposureSinkToken) bindings.EXPOSURE_SINK_TOKEN = exposureSinkToken;
  // `readKeys: null` starts a Worker without read keys (its gated routes answer 503); a string
  // is passed as it is, so a test can configure a malformed value.
  if (readKeys !== null) bindings.READ_KEYS = typeof readKeys === "string" ? readKeys : JSON.stringify(readKeys);
  if (corsOrigins !== undefined) bindings.CORS_ORIGINS = corsOrigins;
  // The Ed25519 public key (64 hex digits) the Worker verifies ruleset signatures with.
  if (rulesetPublicKey !== undefined) bindings.RULESET_PUBLIC_KEY = rulesetPublicKey;
  // The admin authority's Ed25519 seed (64 hex digits; a secret in production): it signs every
  // revision it makes live.
  if (rulesetSigningKey !== undefined) bindings.RULESET_SIGNING_KEY = rulesetSigningKey;
  return bindings;
}

// The Worker's console and workerd's own output go to stderr, so standard output carries only
// the harness's one line of JSON.
export function quietRuntime() {
  return {
    handleRuntimeStdio(stdout, stderr) {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
    handleStructuredLogs({ level, message }) {
      process.stderr.write(`[worker ${level}] ${message}\n`);
    },
  };
}

// Starts the Worker (the serving Worker on 127.0.0.1 and the admin authority behind it). Returns
// {mf, url, kv, dispose}; `kv` is the Worker's namespace (null when started without one).
export async function startWorker({ port = 0, persist, ...options } = {}) {
  const mf = new Miniflare({
    workers: [workerOptions(options), authorityOptions(options)],
    host: "127.0.0.1",
    port,
    kvPersist: persist ? resolve(persist) : false,
    // The authority's storage persists beside KV, so a restarted Worker keeps its audit log.
    durableObjectsPersist: persist ? resolve(persist) : false,
    cf: false,
    ...quietRuntime(),
  });
  const ready = await mf.ready;
  const kv = options.kvBinding === false ? null : await mf.getKVNamespace(KV_BINDING);
  return { mf, url: ready.origin, kv, dispose: () => mf.dispose() };
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      persist: { type: "string" },
      "admin-token": { type: "string" },
      "admin-credentials": { type: "string" },
      "environment-policy": { type: "string" },
      "owner-keys": { type: "string" },
      environment: { type: "string", default: "dev" },
      "cache-ttl-ms": { type: "string", default: "50" },
      "exposure-sink": { type: "string" },
      "exposure-sink-token": { type: "string" },
      "read-keys": { type: "string" },
      "cors-origins": { type: "string" },
      "ruleset-public-key": { type: "string" },
      "ruleset-signing-key": { type: "string" },
    },
  });
  const port = Number.parseInt(values.port, 10);
  const cacheTtlMs = Number.parseInt(values["cache-ttl-ms"], 10);
  if (!Number.isInteger(port) || port < 0 || !Number.isInteger(cacheTtlMs) || cacheTtlMs < 0) {
    throw new Error("--port and --cache-ttl-ms take non-negative integers");
  }
  const worker = await startWorker({
    port,
    persist: values.persist,
    adminToken: values["admin-token"],
    adminCredentials: values["admin-credentials"],
    environmentPolicy: values["environment-policy"],
    ownerKeys: values["owner-keys"],
    environment: values.environment,
    cacheTtlMs,
    exposureSink: values["exposure-sink"],
    exposureSinkToken: values["exposure-sink-token"],
    readKeys: values["read-keys"] ?? DEFAULT_READ_KEYS,
    corsOrigins: values["cors-origins"],
    rulesetPublicKey: values["ruleset-public-key"],
    rulesetSigningKey: values["ruleset-signing-key"],
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await worker.dispose();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  // Direct KV operations, one line of JSON each, answered in order.
  let pending = "";
  let queue = Promise.resolve();
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() !== "") queue = queue.then(() => kvCommand(worker.kv, line));
    }
  });
  process.stdout.write(`${JSON.stringify({ url: worker.url })}\n`);
}

/** Runs one direct KV operation of standard input and writes its answer line. */
async function kvCommand(kv, line) {
  let answer;
  try {
    const command = JSON.parse(line);
    if (kv === null) throw new Error("the Worker runs without a KV namespace");
    if (Array.isArray(command.kv_put) && command.kv_put.length === 2) {
      await kv.put(String(command.kv_put[0]), String(command.kv_put[1]));
      answer = { ok: true };
    } else if (typeof command.kv_get === "string") {
      answer = { value: await kv.get(command.kv_get) };
    } else {
      throw new Error('expected {"kv_put": [key, value]} or {"kv_get": key}');
    }
  } catch (error) {
    answer = { error: String(error?.message ?? error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error) => {
    process.stderr.write(`worker-server: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
}
