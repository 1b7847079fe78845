// One smoke test through `wrangler dev --local`, so wrangler.toml itself is exercised: its build
// command, entry point, KV binding and vars. The other suites run the built Worker in Miniflare.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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

test("wrangler dev serves the Worker as wrangler.toml configures it", { timeout: 300_000 }, async () => {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "promptflag-wrangler-"));
  const token = "smoke-test-admin-token-0123456789abcdef";
  const credentials = JSON.stringify([{ name: "smoke", token, environment: "dev", role: "publisher" }]);
  // Node itself runs wrangler (not its shebang), so the Node 22 running this suite runs it.
  const wrangler = spawn(
    process.execPath,
    [WRANGLER, "dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--var", `ADMIN_CREDENTIALS:${credentials}`],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        DO_NOT_TRACK: "1",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        XDG_CONFIG_HOME: join(ROOT, "target", "tools", "xdg"),
        WRANGLER_LOG_PATH: join(ROOT, "target", "tools", "wrangler-logs"),
      },
    },
  );
  let output = "";
  wrangler.stdout.on("data", (chunk) => (output += chunk));
  wrangler.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => wrangler.on("exit", (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  try {
    const health = await eventually(
      async () => {
        assert.equal(wrangler.exitCode, null, `wrangler exited: ${output}`);
        const response = await fetch(`${base}/healthz`);
        assert.equal(response.status, 200);
        return response.json();
      },
      { limitMs: 240_000, everyMs: 500 },
    );
    // [vars] ENVIRONMENT, an empty KV namespace (so the fallback serves) behind the binding.
    assert.equal(health.environment, "dev");
    assert.equal(health.ruleset_source, "fallback");
    // The KV and Durable Object bindings are wired: the admin authority (credentials from --var)
    // reads the empty history.
    const status = await fetch(`${base}/admin/v1/rulesets/dev`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await status.json(), { environment: "dev", live: null, latest: null, kept: [], anchors: {} });
  } finally {
    // TERM to wrangler's own process stops workerd with it.
    wrangler.kill("SIGTERM");
    await exited;
    rmSync(state, { recursive: true, force: true });
  }
  await assert.rejects(fetch(`${base}/healthz`));
});
