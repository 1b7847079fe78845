// The shared harness (tests/support/worker-server.mjs, docs/interfaces.md) as other crates' tests
// use it: spawned with flags, it prints one line of JSON with its URL once it serves, stays up
// with a persisted KV, and exits on SIGTERM, SIGINT or when its standard input closes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { ROOT, TOKEN, fixtureRuleset, json, publish, servingRevision } from "./helpers.mjs";

const HARNESS = join(ROOT, "tests", "support", "worker-server.mjs");

function spawnHarness(args) {
  const child = spawn(process.execPath, [HARNESS, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const firstLine = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => resolve(JSON.parse(line)));
    child.once("exit", (code) => reject(new Error(`harness exited (${code}) before serving: ${stderr}`)));
  });
  return { child, exited, firstLine };
}

/** The harness exited (0, or 128 + the signal when Miniflare's own exit hook ran first) and
 * nothing serves its URL any more (workerd went with it). */
async function stopped(harness, url) {
  const { code, signal } = await harness.exited;
  assert.ok(code === 0 || code === 130 || code === 143, `exit code ${code}, signal ${signal}`);
  await assert.rejects(fetch(`${url}/healthz`));
}

const standardArgs = (persist) => [
  "--port", "0", "--persist", persist, "--admin-token", TOKEN, "--environment", "dev", "--cache-ttl-ms", "50",
];

test("the harness serves, persists KV across restarts, and exits on SIGTERM", async () => {
  const persist = mkdtempSync(join(tmpdir(), "promptflag-harness-"));
  try {
    const first = spawnHarness(standardArgs(persist));
    const { url } = await first.firstLine;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await publish(url, fixtureRuleset())).status, 201);
    await servingRevision(url, 1);
    first.child.kill("SIGTERM");
    await stopped(first, url);

    // The same --persist directory: the published revision is still there.
    const second = spawnHarness(standardArgs(persist));
    const { url: again } = await second.firstLine;
    const health = await json(await fetch(`${again}/healthz`), 200);
    assert.deepEqual([health.revision, health.ruleset_source], [1, "kv"]);
    second.child.kill("SIGINT");
    await stopped(second, again);
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
});

test("the harness exits when its standard input closes", async () => {
  const persist = mkdtempSync(join(tmpdir(), "promptflag-harness-"));
  try {
    const harness = spawnHarness(standardArgs(persist));
    const { url } = await harness.firstLine;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    harness.child.stdin.end();
    await stopped(harness, url);
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
});

test("the harness refuses bad flags", async () => {
  const harness = spawnHarness(["--port", "nope"]);
  const { code } = await harness.exited;
  assert.notEqual(code, 0);
  await assert.rejects(harness.firstLine);
});
