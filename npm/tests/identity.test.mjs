// Cross-runtime identity: for 100 000 random contexts over the vector rulesets, native core (the
// `identity` example of promptflag-core) and the Wasm build in Node give identical variants,
// reasons, error codes and bucketing slots for every flag; and for a sample of them the Worker
// (built, in Miniflare, over HTTP with OFREP bulk evaluation) gives identical variants, reasons
// and error codes (OFREP carries no slot; the variants of split flags follow from the slot).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { loadPackage, loadVectorFiles, ROOT } from "./support.mjs";

const { Evaluator } = await loadPackage();

const CONTEXTS = 100_000;
const WORKER_SAMPLE_EVERY = 40; // 2 500 contexts over HTTP

/** A small, seeded PRNG (mulberry32), so a failure can be replayed. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The attribute names and literals the rulesets use, so random contexts hit their rules. */
function vocabulary(rulesets) {
  const attributes = new Map();
  const units = new Set();
  const note = (name, values) => {
    if (!name) return;
    const known = attributes.get(name) ?? new Set();
    for (const value of values ?? []) known.add(value);
    attributes.set(name, known);
  };
  const conditions = (list) => {
    for (const condition of list ?? []) note(condition.attribute, condition.values);
  };
  for (const ruleset of rulesets) {
    for (const segment of Object.values(ruleset.segments ?? {})) {
      note(segment.match_by ?? "targetingKey", []);
      for (const unit of [...(segment.included ?? []), ...(segment.excluded ?? [])]) units.add(unit);
      conditions(segment.conditions);
    }
    for (const layer of Object.values(ruleset.layers ?? {})) note(layer.bucket_by, []);
    for (const flag of Object.values(ruleset.flags ?? {})) {
      for (const rule of flag.rules ?? []) {
        conditions(rule.when);
        note(rule.serve?.split?.bucket_by, []);
      }
      note(flag.default?.split?.bucket_by, []);
    }
  }
  attributes.delete("targetingKey");
  return { attributes: [...attributes].map(([name, values]) => [name, [...values]]), units: [...units] };
}

const NOISE = ["", "x", "ÉCOLE", "🚀", "v1.2.3", "1.0.0-rc.1", "42", " 7 ", "-3.5", "true", "2025-06-01T00:00:00Z", "beta-tester", "ie", "IE"];

function makeContexts(count, vocab, rulesetCount) {
  const next = random(0x5eed);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const requests = [];
  for (let i = 0; i < count; i++) {
    const context = {};
    const roll = next();
    if (roll < 0.8) context.targetingKey = `user-${Math.floor(next() * 1e9)}`;
    else if (roll < 0.86 && vocab.units.length > 0) context.targetingKey = pick(vocab.units);
    else if (roll < 0.9) context.targetingKey = Math.floor(next() * 1e6);
    else if (roll < 0.93) context.targetingKey = "";
    else if (roll < 0.95) context.targetingKey = ["a"];
    else if (roll < 0.96) context.targetingKey = next() * 100;
    // else: no targeting key
    for (const [name, literals] of vocab.attributes) {
      if (next() < 0.4) continue;
      const kind = next();
      let value;
      if (kind < 0.55 && literals.length > 0) {
        value = pick(literals);
        if (typeof value === "string" && next() < 0.2) value = value.toUpperCase();
        if (typeof value === "string" && next() < 0.15 && value.trim() !== "" && Number.isFinite(Number(value))) value = Number(value);
      } else if (kind < 0.7) value = pick(NOISE);
      else if (kind < 0.8) value = Math.round((next() * 400 - 100) * 100) / 100;
      else if (kind < 0.87) value = Math.floor(next() * 300);
      else if (kind < 0.92) value = next() < 0.5;
      else if (kind < 0.95) value = new Date(Date.UTC(2024, 0, 1) + next() * 3 * 365 * 86_400_000).toISOString();
      else if (kind < 0.97) value = null;
      else value = next() < 0.5 ? [1, 2] : { nested: true };
      context[name] = value;
    }
    const now = next() < 0.5 ? null : Math.floor(Date.UTC(2024, 0, 1) + next() * 3 * 365 * 86_400_000);
    requests.push({ ruleset: i % rulesetCount, now, context });
  }
  return requests;
}

/** Runs the native example over the requests; resolves to its output lines. */
function runNative(rulesetFiles, requests) {
  return new Promise((resolve, reject) => {
    const cargo = process.env.CARGO ?? "cargo";
    const child = spawn(cargo, ["run", "--quiet", "-p", "promptflag-core", "--example", "identity", "--", ...rulesetFiles], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const chunks = [];
    child.stdout.on("data", (chunk) => chunks.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`the native identity example exited with ${code}`));
        return;
      }
      resolve(Buffer.concat(chunks).toString("utf8").split("\n").filter((line) => line !== ""));
    });
    // Write in slices so a large input does not sit in memory twice.
    let index = 0;
    const write = () => {
      while (index < requests.length) {
        const slice = requests.slice(index, index + 2000).map((r) => JSON.stringify(r)).join("\n") + "\n";
        index += 2000;
        if (!child.stdin.write(slice)) {
          child.stdin.once("drain", write);
          return;
        }
      }
      child.stdin.end();
    };
    write();
  });
}

/** The same row the native example prints, from the Wasm build. */
function wasmRow(evaluator, request) {
  const options = { now: request.now };
  const all = evaluator.evaluateAll(request.context, options);
  return evaluator.flags().map(({ key }) => {
    const fast = all[key];
    const details = evaluator.explain(key, request.context, options);
    assert.equal(fast.variant, details.variant, `${key}: the packed path and the JSON path agree`);
    assert.equal(fast.reason, details.reason);
    return [key, details.variant, details.reason, details.errorCode ?? null, details.bucket?.slot ?? null];
  });
}

describe("cross-runtime identity", () => {
  const files = loadVectorFiles().filter((file) => file.ruleset !== undefined);
  const rulesets = files.map((file) => file.ruleset);
  const evaluators = rulesets.map((ruleset) => Evaluator.fromRuleset(JSON.stringify(ruleset)));
  const requests = makeContexts(CONTEXTS, vocabulary(rulesets), rulesets.length);
  let scratch;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), "promptflag-identity-"));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test(`native core and Wasm in Node: ${CONTEXTS} random contexts over ${rulesets.length} vector rulesets`, { timeout: 600_000 }, async () => {
    const rulesetFiles = rulesets.map((ruleset, index) => {
      const path = join(scratch, `ruleset-${index}.json`);
      writeFileSync(path, JSON.stringify(ruleset));
      return path;
    });
    const native = await runNative(rulesetFiles, requests);
    assert.equal(native.length, requests.length, "one native line per context");
    let flagsCompared = 0;
    let splits = 0;
    const reasons = new Map();
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i];
      const row = wasmRow(evaluators[request.ruleset], request);
      const line = JSON.stringify(row);
      if (line !== native[i]) {
        assert.fail(`context #${i} differs\n  request: ${JSON.stringify(request)}\n  native:  ${native[i]}\n  wasm:    ${line}`);
      }
      for (const entry of row) {
        flagsCompared++;
        if (entry[4] !== null) splits++;
        reasons.set(entry[2], (reasons.get(entry[2]) ?? 0) + 1);
      }
    }
    // The contexts must exercise the engine, not just its error paths.
    for (const reason of ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"]) {
      assert.ok((reasons.get(reason) ?? 0) > 100, `reason ${reason} seen ${reasons.get(reason) ?? 0} times`);
    }
    assert.ok(splits > 10_000, `slots compared: ${splits}`);
    assert.ok(flagsCompared > CONTEXTS);
  });

  test("the Worker (Miniflare, OFREP bulk over HTTP) agrees with Wasm on a sample", { timeout: 600_000 }, async () => {
    const { startWorker, SERVER_KEY } = await import(pathToFileURL(join(ROOT, "tests", "support", "worker-server.mjs")).href);
    const worker = await startWorker({ port: 0, environment: "dev", cacheTtlMs: 0, adminToken: "identity-test-admin-token-0123456789abcdef" });
    const authorization = `Bearer ${SERVER_KEY}`;
    try {
      let compared = 0;
      for (let index = 0; index < rulesets.length; index++) {
        const revision = index + 1;
        const ruleset = { ...rulesets[index], environment: "dev", revision };
        const evaluator = Evaluator.fromRuleset(JSON.stringify(ruleset));
        await worker.kv.put(`ruleset:dev:${revision}`, JSON.stringify(ruleset));
        await worker.kv.put("ruleset:dev", String(revision));
        // The Worker caches the compiled ruleset briefly; wait until this revision answers.
        for (let attempt = 0; ; attempt++) {
          const response = await fetch(`${worker.url}/v1/ruleset`, { headers: { authorization } });
          await response.arrayBuffer();
          if (response.headers.get("x-promptflag-revision") === String(revision)) break;
          assert.ok(attempt < 200, `the Worker never served revision ${revision}`);
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        for (let i = index; i < requests.length; i += rulesets.length * WORKER_SAMPLE_EVERY) {
          const context = requests[i].context;
          const response = await fetch(`${worker.url}/ofrep/v1/evaluate/flags`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization },
            body: JSON.stringify({ context }),
          });
          const body = await response.json();
          assert.equal(response.status, 200, `bulk evaluation answered ${response.status}: ${JSON.stringify(body)}`);
          const all = evaluator.evaluateAll(context);
          const served = new Map(body.flags.map((item) => [item.key, item]));
          assert.deepEqual([...served.keys()].sort(), Object.keys(all).sort());
          for (const [key, local] of Object.entries(all)) {
            const remote = served.get(key);
            const label = `ruleset ${files[index].file}, flag ${key}, context ${JSON.stringify(context)}`;
            if (local.errorCode !== undefined) {
              assert.equal(remote.errorCode, local.errorCode, label);
            } else {
              assert.equal(remote.errorCode, undefined, `${label}: ${remote.errorDetails}`);
              assert.equal(remote.variant, local.variant, label);
              assert.equal(remote.reason, local.reason, label);
            }
            compared++;
          }
        }
      }
      assert.ok(compared > 2_000, `flag evaluations compared with the Worker: ${compared}`);
    } finally {
      await worker.dispose();
    }
  });
});
