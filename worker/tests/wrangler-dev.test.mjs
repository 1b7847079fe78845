// One smoke test through `wrangler dev --local`, so wrangler.toml and wrangler.authority.toml
// themselves are exercised: their build command, entry points, KV bindings, vars, the authority's
// migration and the serving Worker's binding of it by script name. As `cargo xtask dev` does, the
// two Workers run as two processes over one local state, found through a dev registry of their
// own. The other suites run the built Workers in Miniflare.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ROOT, eventually } from "./helpers.mjs";

const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// `wrangler dev` with `args`, in the repository, its output collected.
function startWrangler(args, registry) {
  // Node itself runs wrangler (not its shebang), so the Node 22 running this suite runs it.
  const child = spawn(process.execPath, [WRANGLER, "dev", "--local", "--ip", "127.0.0.1", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      DO_NOT_TRACK: "1",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      XDG_CONFIG_HOME: join(ROOT, "target", "tools", "xdg"),
      WRANGLER_LOG_PATH: join(ROOT, "target", "tools", "wrangler-logs"),
      // Only this test's authority answers this test's serving Worker.
      WRANGLER_REGISTRY_PATH: registry,
    },
  });
  const started = { child, output: "" };
  child.stdout.on("data", (chunk) => (started.output += chunk));
  child.stderr.on("data", (chunk) => (started.output += chunk));
  started.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return started;
}

test("wrangler dev serves the Worker and its admin authority as their configurations say", { timeout: 300_000 }, async () => {
  const port = await freePort();
  const authorityPort = await freePort();
  const state = mkdtempSync(join(tmpdir(), "promptflag-wrangler-"));
  const token = "smoke-test-admin-token-0123456789abcdef";
  const credentials = JSON.stringify([{ name: "smoke", token, environment: "dev", role: "publisher" }]);
  const registry = join(state, "registry");
  const persist = join(state, "state");
  const base = `http://127.0.0.1:${port}`;
  const running = [];
  try {
    // The authority first: it holds the admin credentials, and its default fetch refuses direct
    // requests with a 404, which says it is up.
    const authority = startWrangler(["-c", "wrangler.authority.toml", "--port", String(authorityPort), "--persist-to", persist, "--var", `ADMIN_CREDENTIALS:${credentials}`], registry);
    running.push(authority);
    const refused = await eventually(
      async () => {
        assert.equal(authority.child.exitCode, null, `wrangler exited: ${authority.output}`);
        const response = await fetch(`http://127.0.0.1:${authorityPort}/admin/v1/rulesets/dev`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 404);
        return response.json();
      },
      { limitMs: 240_000, everyMs: 500 },
    );
    assert.equal(refused.error.code, "not_found");
    const readKey = "smoke-test-read-key-0123456789abcdef";
    const readKeys = JSON.stringify([{ name: "smoke", key: readKey, kind: "server" }]);
    const serving = startWrangler(["--port", String(port), "--persist-to", persist, "--var", `READ_KEYS:${readKeys}`], registry);
    running.push(serving);
    const health = await eventually(
      async () => {
        assert.equal(serving.child.exitCode, null, `wrangler exited: ${serving.output}`);
        const response = await fetch(`${base}/healthz`);
        assert.equal(response.status, 200);
        return response.json();
      },
      { limitMs: 240_000, everyMs: 500 },
    );
    // [vars] ENVIRONMENT, an empty KV namespace (so the fallback serves) behind the binding.
    assert.equal(health.environment, "dev");
    assert.equal(health.ruleset_source, "fallback");
    // The Durable Object binding reaches the authority's class in the other Worker, which holds
    // the credentials (from its own --var) and reads the empty history.
    const status = await eventually(
      async () => {
        const response = await fetch(`${base}/admin/v1/rulesets/dev`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 200);
        return response.json();
      },
      { limitMs: 30_000, everyMs: 500 },
    );
    assert.deepEqual(status, { environment: "dev", live: null, latest: null, kept: [], anchors: {} });
    // The authority writes the KV namespace the serving Worker reads.
    const body = "# system\nThe smoke test's prompt.\n";
    const hash = createHash("sha256").update(body).digest("hex");
    const stored = await fetch(`${base}/admin/v1/prompts/${hash}`, { method: "PUT", headers: { authorization: `Bearer ${token}` }, body });
    assert.equal(stored.status, 201);
    await stored.arrayBuffer();
    const served = await fetch(`${base}/v1/prompts/${hash}`, { headers: { authorization: `Bearer ${readKey}` } });
    assert.equal(served.status, 200);
    assert.equal(await served.text(), body);
  } finally {
    // TERM to wrangler's own process stops workerd with it.
    for (const { child } of running) child.kill("SIGTERM");
    await Promise.all(running.map(({ exited }) => exited));
    rmSync(state, { recursive: true, force: true });
  }
  await assert.rejects(fetch(`${base}/healthz`));
});
