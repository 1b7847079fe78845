// The shared test vectors (tests/vectors/, walked by the native, wasm32 and npm runners too)
// evaluated through the Worker: each file's ruleset is published to KV and every case asked over
// OFREP (single flag or bulk), prompt resolutions over `/v1/resolve`, and every invalid ruleset
// of `15-invalid.json` PUT through the admin API, whose 422 must list the same problems.
//
// Not run through the Worker, and why: cases with `now` (the Worker evaluates with its own clock),
// `expectedType` (OFREP carries no type; the provider checks it), and `ruleIndex` (the metadata
// names the rule by its id). The bucketing outcome (`slot`, `lane`, `layerSlot`, `inExperiment`)
// is checked against the OFREP metadata, so the Worker's bucketing is held to the same values as
// every other runtime's.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { ROOT, TOKEN, credentialsFor, post, startWorker } from "./helpers.mjs";

const VECTORS = join(ROOT, "tests", "vectors");
const index = existsSync(join(VECTORS, "index.json"))
  ? JSON.parse(readFileSync(join(VECTORS, "index.json"), "utf8"))
  : [];
const files = index.map((file) => ({ ...JSON.parse(readFileSync(join(VECTORS, file), "utf8")), file }));

const ENVIRONMENT = "vectors";
// The environment each invalid ruleset is published to (the one it names, else "test"): the
// test's credential must be scoped to each, or the admin API refuses before validating.
const environmentOf = (item) => {
  const named = item.ruleset?.environment;
  return typeof named === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(named) ? named : "test";
};
const PUBLISHED_TO = [...new Set(files.flatMap((file) => (file.rulesets ?? []).map(environmentOf)))];
let worker;
let revision = 0;

before(async () => {
  // TTL 0: every request re-reads the pointer, so a publish is served at once.
  worker = await startWorker({
    adminCredentials: credentialsFor(TOKEN, [ENVIRONMENT, ...PUBLISHED_TO]),
    cacheTtlMs: 0,
    environment: ENVIRONMENT,
  });
});
after(() => worker?.dispose());

/** Publishes a vector ruleset straight into KV (its environment and revision rewritten). */
async function serve(ruleset) {
  revision += 1;
  const published = { ...ruleset, environment: ENVIRONMENT, revision };
  await worker.kv.put(`ruleset:${ENVIRONMENT}:${revision}`, JSON.stringify(published));
  await worker.kv.put(`ruleset:${ENVIRONMENT}`, String(revision));
  const health = await (await fetch(`${worker.url}/healthz`)).json();
  assert.deepEqual([health.revision, health.ruleset_source], [revision, "kv"], "the vector ruleset must load");
}

/** True when the case's flag compares `currentTime` and the context does not carry it: the
 * answer then depends on the evaluator's clock, which the Worker always supplies. */
function readsTheClock(ruleset, testCase) {
  if (testCase.all || !ruleset?.flags?.[testCase.flag]) return false;
  const conditions = (ruleset.flags[testCase.flag].rules ?? []).flatMap((rule) => rule.when ?? []);
  return conditions.some((c) => c.attribute === "currentTime") && !(testCase.context && "currentTime" in testCase.context);
}

function requestBody(testCase) {
  return "contextRaw" in testCase ? `{"context": ${testCase.contextRaw}}` : JSON.stringify({ context: testCase.context ?? {} });
}

/** Compares one OFREP result (a success item or a failure) with a vector's expectation. */
function assertOfrep(result, expected, label) {
  if (expected.reason === "ERROR") {
    assert.equal(result.errorCode, expected.errorCode, `${label}: ${JSON.stringify(result)}`);
    assert.equal("value" in result, false, label);
    return;
  }
  assert.equal(result.errorCode, undefined, `${label}: ${JSON.stringify(result)}`);
  if ("value" in expected) assert.deepEqual(result.value, expected.value, label);
  assert.equal(result.variant, expected.variant, label);
  assert.equal(result.reason, expected.reason, label);
  if (expected.ruleId) assert.equal(result.metadata.ruleId, expected.ruleId, label);
  if (expected.prompt) assert.equal(result.metadata.promptHash, expected.prompt.hash, label);
  // Absent from the metadata and `null` in a vector mean the same: no such value.
  for (const name of ["slot", "lane", "layerSlot", "inExperiment"]) {
    if (name in expected) assert.equal(result.metadata[name] ?? null, expected[name], `${label}: ${name}`);
  }
}

const RESOLVE_CODES = {
  FLAG_NOT_FOUND: [404, "flag_not_found"],
  TYPE_MISMATCH: [400, "not_a_prompt_flag"],
  TARGETING_KEY_MISSING: [400, "targeting_key_missing"],
  INVALID_CONTEXT: [400, "invalid_context"],
  PARSE_ERROR: [400, "bad_json"],
};

for (const file of files.filter((file) => Array.isArray(file.cases))) {
  describe(`vectors ${file.file}: ${file.name}`, () => {
    before(() => serve(file.ruleset));
    const runnable = file.cases.filter(
      (c) => !("now" in c) && !("expectedType" in c) && !readsTheClock(file.ruleset, c),
    );
    for (const [position, testCase] of runnable.entries()) {
      const label = `${file.file} #${position}: ${testCase.description}`;
      if (testCase.all) {
        test(label, async () => {
          const response = await post(worker.url, "/ofrep/v1/evaluate/flags", requestBody(testCase));
          assert.equal(response.status, 200, label);
          const byKey = Object.fromEntries((await response.json()).flags.map((flag) => [flag.key, flag]));
          for (const [key, expected] of Object.entries(testCase.expected)) {
            assert.ok(byKey[key], `${label}: ${key} is missing from the bulk response`);
            assertOfrep(byKey[key], expected, `${label} (${key})`);
          }
        });
      } else if (testCase.resolvePrompt && testCase.expected.reason === "ERROR") {
        test(`${label} (/v1/resolve)`, async () => {
          const response = await post(worker.url, `/v1/resolve/${encodeURIComponent(testCase.flag)}`, requestBody(testCase));
          const [status, code] = RESOLVE_CODES[testCase.expected.errorCode];
          const body = await response.json();
          assert.deepEqual([response.status, body.error?.code], [status, code], `${label}: ${JSON.stringify(body)}`);
        });
      } else {
        test(label, async () => {
          const response = await post(worker.url, `/ofrep/v1/evaluate/flags/${encodeURIComponent(testCase.flag)}`, requestBody(testCase));
          const body = await response.json();
          const status = testCase.expected.reason !== "ERROR" ? 200 : testCase.expected.errorCode === "FLAG_NOT_FOUND" ? 404 : 400;
          assert.equal(response.status, status, `${label}: ${JSON.stringify(body)}`);
          assertOfrep(body, testCase.expected, label);
        });
      }
    }
  });
}

for (const file of files.filter((file) => Array.isArray(file.rulesets))) {
  describe(`vectors ${file.file}: rulesets through the admin API`, () => {
    for (const [position, item] of file.rulesets.entries()) {
      test(`${file.file} #${position}: ${item.description}`, async () => {
        // Published to the environment the ruleset names (the raw texts are all "test"), so the
        // only problems are the vector's own.
        const environment = environmentOf(item);
        const body = "rulesetText" in item ? item.rulesetText : JSON.stringify(item.ruleset);
        const response = await fetch(`${worker.url}/admin/v1/rulesets/${environment}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body,
        });
        const answer = await response.json();
        const expected = item.problems ?? [];
        if (expected.length === 0) {
          // Valid: anything but invalid_ruleset (its prompt bodies are not stored, so it may be
          // a 422 missing_prompt, or a 409 once an earlier case published the same revision).
          assert.notEqual(answer.error?.code, "invalid_ruleset", JSON.stringify(answer));
          assert.ok(response.status < 500);
          return;
        }
        assert.equal(response.status, 422, JSON.stringify(answer));
        assert.equal(answer.error.code, "invalid_ruleset");
        const got = new Set(answer.problems.map((p) => `${p.path} ${p.code}`));
        for (const problem of expected) {
          assert.ok(got.has(`${problem.path} ${problem.code}`), `missing ${problem.path} ${problem.code} in ${[...got].join(", ")}`);
        }
      });
    }
  });
}
