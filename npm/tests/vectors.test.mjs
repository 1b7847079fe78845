// The shared test vectors (tests/vectors, format in its README) through the built Wasm in Node.
// Every case runs through each way the package accepts a context: a plain object, a
// PreparedContext (the packed fast path), and JSON text; and through `explain` for the details.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { canonical, loadPackage, loadVectorFiles, VECTORS } from "./support.mjs";

const promptflag = await loadPackage();
const { Evaluator, PreparedContext, RulesetValidationError, bucketHash, bucketSlot } = promptflag;

const files = loadVectorFiles();

test("index.json names every vector file and nothing else", () => {
  const named = new Set(files.map((f) => f.file));
  const onDisk = readFileSync(join(VECTORS, "index.json"), "utf8");
  assert.ok(named.size >= 15, `expected the full vector set, found ${named.size} files in ${onDisk}`);
});

/** Checks one outcome against `expected` as the vectors README says. */
function checkOne(actual, expected, label) {
  assert.equal(actual.variant, expected.variant, `${label}: variant`);
  assert.equal(actual.reason, expected.reason, `${label}: reason`);
  assert.equal(actual.errorCode, expected.errorCode, `${label}: errorCode`);
  if ("value" in expected) {
    assert.equal(canonical(actual.value), canonical(expected.value), `${label}: value`);
  }
  if ("prompt" in expected) {
    if (expected.prompt === null) {
      assert.ok(actual.prompt === undefined || actual.prompt === null, `${label}: no prompt`);
    } else {
      assert.equal(canonical(actual.prompt), canonical(expected.prompt), `${label}: prompt`);
    }
  }
}

/** The detail fields, checked on `explain` output. */
function checkDetails(details, expected, label) {
  checkOne(details, expected, label);
  const absentOr = (field, actual) => {
    if (!(field in expected)) return;
    if (expected[field] === null) {
      assert.ok(actual === undefined || actual === null, `${label}: ${field} must be absent, got ${actual}`);
    } else {
      assert.equal(actual, expected[field], `${label}: ${field}`);
    }
  };
  absentOr("ruleIndex", details.ruleIndex);
  absentOr("ruleId", details.ruleId);
  absentOr("slot", details.bucket?.slot);
  absentOr("lane", details.bucket?.lane);
  absentOr("layerSlot", details.bucket?.layerSlot);
  absentOr("inExperiment", details.bucket?.inExperiment);
}

/** The context inputs a case can be given as. */
function contextInputs(testCase, options) {
  if (typeof testCase.contextRaw === "string") {
    return [["JSON text", testCase.contextRaw]];
  }
  const attributes = testCase.context ?? {};
  return [
    ["object", attributes],
    ["PreparedContext", new PreparedContext(attributes, options)],
    ["JSON text", JSON.stringify(attributes)],
  ];
}

for (const vectorFile of files) {
  describe(vectorFile.file, () => {
    if (Array.isArray(vectorFile.rulesets)) {
      for (const entry of vectorFile.rulesets) {
        test(entry.description, () => {
          const text = entry.rulesetText ?? JSON.stringify(entry.ruleset);
          if (entry.problems.length === 0) {
            const evaluator = Evaluator.fromRuleset(text);
            assert.ok(evaluator.flags().length >= 0);
            return;
          }
          assert.throws(
            () => Evaluator.fromRuleset(text),
            (error) => {
              assert.ok(error instanceof RulesetValidationError, `a RulesetValidationError, got ${error}`);
              assert.equal(error.code, "INVALID_RULESET");
              const actual = error.problems.map((p) => `${p.path} ${p.code}`).sort();
              const wanted = entry.problems.map((p) => `${p.path} ${p.code}`).sort();
              assert.deepEqual(actual, wanted);
              for (const problem of entry.problems) {
                assert.ok(error.message.includes(problem.path), `the message names ${problem.path}`);
              }
              return true;
            },
          );
        });
      }
      return;
    }
    const evaluator = Evaluator.fromRuleset(JSON.stringify(vectorFile.ruleset));
    for (const testCase of vectorFile.cases) {
      test(testCase.description, () => {
        const options = { now: testCase.now === undefined ? null : new Date(testCase.now) };
        if (testCase.now !== undefined) {
          assert.ok(!Number.isNaN(options.now.getTime()), `now ${testCase.now} parses`);
        }
        for (const [how, context] of contextInputs(testCase, options)) {
          const label = `${testCase.description} (${how})`;
          if (testCase.all) {
            const all = evaluator.evaluateAll(context, options);
            assert.deepEqual(Object.keys(all).sort(), Object.keys(testCase.expected).sort(), `${label}: flag keys`);
            for (const [key, expected] of Object.entries(testCase.expected)) {
              checkOne(all[key], expected, `${label} ${key}`);
              assert.equal(all[key].flagKey, key);
            }
          } else if (testCase.resolvePrompt) {
            const resolution = evaluator.resolvePrompt(testCase.flag, context, options);
            checkOne(resolution, testCase.expected, label);
            assert.equal(resolution.flagKey, testCase.flag);
            if (resolution.prompt !== null) {
              assert.equal(canonical(resolution.prompt), canonical(resolution.value), `${label}: prompt is the value`);
            }
          } else if (testCase.expectedType) {
            checkOne(evaluator.evaluateTyped(testCase.flag, context, testCase.expectedType, options), testCase.expected, label);
          } else {
            const evaluation = evaluator.evaluate(testCase.flag, context, options);
            checkOne(evaluation, testCase.expected, label);
            assert.equal(evaluation.flagKey, testCase.flag);
            // The cached fast path must give the same answer the second time.
            checkOne(evaluator.evaluate(testCase.flag, context, options), testCase.expected, `${label}, again`);
            checkDetails(evaluator.explain(testCase.flag, context, options), testCase.expected, `${label}, explain`);
          }
        }
      });
    }
  });
}

describe("buckets.json", () => {
  const golden = JSON.parse(readFileSync(join(VECTORS, "buckets.json"), "utf8"));
  test(`${golden.length} golden (seed, unit) -> h, slot pairs`, () => {
    assert.ok(golden.length > 0);
    for (const { seed, unit, h, slot } of golden) {
      assert.equal(bucketHash(seed, unit), BigInt(h), `h of ${JSON.stringify([seed, unit])}`);
      assert.equal(bucketSlot(seed, unit), slot, `slot of ${JSON.stringify([seed, unit])}`);
      assert.equal(Number((BigInt(h) * 100000n) >> 64n), slot);
    }
  });
});
