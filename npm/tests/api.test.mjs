// The public API of the package beyond the vectors: typed errors with actionable messages, the
// prepared-context fast path reading values exactly as plain objects do, caching, freeing, and
// the OpenFeature provider under the real @openfeature/server-sdk.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OpenFeature } from "@openfeature/server-sdk";
import { loadPackage } from "./support.mjs";
import { DIST } from "./support.mjs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const promptflag = await loadPackage();
const {
  Evaluator,
  PreparedContext,
  PromptflagError,
  RulesetValidationError,
  InvalidArgumentError,
  DisposedError,
  bucketSlot,
} = promptflag;
const { PromptflagProvider } = await import(pathToFileURL(join(DIST, "openfeature.js")).href);

const CURRENT = "e0b39fe4a9bfad6d4eca5bbaa96317afc1528e3e5d2e74abf294a139ebb83b19";
const CANDIDATE = "7e3d707ccf73fe76e83989f0340b8a927961ac523cd5eef14fa9a5e61bbc72c6";

export const RULESET = {
  schema: 1,
  environment: "dev",
  revision: 7,
  source: "0123456789abcdef0123456789abcdef01234567",
  prompts: {
    [CURRENT]: { id: "support", version: "1.0.0", model: "gpt-4", parameters: { temperature: 0.7 } },
    [CANDIDATE]: { id: "support", version: "2.0.0", model: "gpt-4o", parameters: { temperature: 0.2 } },
  },
  segments: { internal: { included: ["alice"] } },
  flags: {
    "support-prompt": {
      kind: "prompt",
      variants: { current: { prompt: CURRENT }, candidate: { prompt: CANDIDATE } },
      baseline: "current",
      rules: [{ id: "staff", when: [{ op: "in_segment", values: ["internal"] }], serve: { variant: "candidate" } }],
      default: { split: { treatments: [{ variant: "candidate", weight: 10000 }] } },
    },
    tiers: {
      kind: "string",
      variants: { gold: { value: "gold" }, plain: { value: "plain" } },
      baseline: "plain",
      rules: [
        {
          when: [
            { attribute: "plan", op: "in", values: ["pro", "enterprise"] },
            { attribute: "seats", op: "num_gte", values: [10] },
            { attribute: "appVersion", op: "semver_gt", values: ["2.0.0"] },
            { attribute: "beta", op: "in", values: ["true"] },
            { attribute: "signup", op: "date_before", values: ["2026-01-01T00:00:00Z"] },
          ],
          serve: { variant: "gold" },
        },
      ],
    },
    "dark-mode": { kind: "boolean", variants: { on: { value: true }, off: { value: false } }, baseline: "off", default: { variant: "on" } },
    launch: {
      kind: "boolean",
      variants: { on: { value: true }, off: { value: false } },
      baseline: "off",
      rules: [{ when: [{ attribute: "currentTime", op: "date_after", values: ["2025-06-01T00:00:00Z"] }], serve: { variant: "on" } }],
    },
    limits: { kind: "object", variants: { small: { value: { max: 10 } } }, baseline: "small" },
  },
};

const evaluator = Evaluator.fromRuleset(RULESET);

describe("Evaluator.fromRuleset", () => {
  test("accepts text, bytes and objects, and reports the ruleset's identity", () => {
    const text = JSON.stringify(RULESET);
    for (const input of [text, new TextEncoder().encode(text), RULESET]) {
      const loaded = Evaluator.fromRuleset(input);
      assert.equal(loaded.revision, 7);
      assert.equal(loaded.environment, "dev");
      assert.equal(loaded.schema, 1);
      assert.equal(loaded.source, RULESET.source);
      assert.deepEqual(loaded.flags().map((f) => f.key), ["dark-mode", "launch", "limits", "support-prompt", "tiers"]);
      assert.deepEqual(loaded.flags()[3], { key: "support-prompt", kind: "prompt", variants: ["candidate", "current"] });
      assert.deepEqual(loaded.prompts().map((p) => p.hash), [CANDIDATE, CURRENT].sort());
    }
  });

  test("rejects an invalid ruleset with every problem and its path", () => {
    const broken = structuredClone(RULESET);
    broken.flags.tiers.baseline = "platinum";
    broken.flags.tiers.rules[0].when[2].values = ["two"];
    assert.throws(
      () => Evaluator.fromRuleset(broken),
      (error) => {
        assert.ok(error instanceof RulesetValidationError);
        assert.ok(error instanceof PromptflagError);
        assert.ok(error instanceof Error);
        assert.equal(error.code, "INVALID_RULESET");
        assert.deepEqual(error.problems.map((p) => [p.path, p.code]).sort(), [
          ["flags.tiers.baseline", "unknown_variant"],
          ["flags.tiers.rules[0].when[2].values[0]", "bad_semver"],
        ]);
        assert.match(error.message, /flags\.tiers\.baseline/);
        assert.match(error.message, /flags\.tiers\.rules\[0\]\.when\[2\]\.values\[0\]/);
        assert.match(error.message, /Fix the ruleset/);
        return true;
      },
    );
  });

  test("rejects text that is not JSON with a problem at $", () => {
    assert.throws(() => Evaluator.fromRuleset("{ nope"), (error) => {
      assert.ok(error instanceof RulesetValidationError);
      assert.deepEqual(error.problems.map((p) => [p.path, p.code]), [["$", "syntax"]]);
      assert.match(error.message, /line 1/);
      return true;
    });
  });

  test("rejects inputs of the wrong type with InvalidArgumentError", () => {
    for (const input of [undefined, null, 42, [1], true]) {
      assert.throws(() => Evaluator.fromRuleset(input), InvalidArgumentError);
    }
    assert.throws(() => Evaluator.fromRuleset(new Uint8Array([0xff, 0xfe])), /not UTF-8/);
  });
});

describe("evaluate", () => {
  test("serves values, variants and reasons", () => {
    assert.deepEqual(evaluator.evaluate("dark-mode"), { flagKey: "dark-mode", value: true, variant: "on", reason: "STATIC" });
    assert.deepEqual(evaluator.evaluate("limits", {}), { flagKey: "limits", value: { max: 10 }, variant: "small", reason: "STATIC" });
    const missing = evaluator.evaluate("nope", { targetingKey: "u" });
    assert.equal(missing.value, null);
    assert.equal(missing.errorCode, "FLAG_NOT_FOUND");
    const anonymous = evaluator.evaluate("support-prompt", {});
    assert.equal(anonymous.variant, "current");
    assert.equal(anonymous.errorCode, "TARGETING_KEY_MISSING");
    assert.equal(typeof anonymous.errorMessage, "string");
  });

  test("returns one frozen object per outcome", () => {
    const a = evaluator.evaluate("limits", { targetingKey: "a" });
    const b = evaluator.evaluate("limits", { targetingKey: "b" });
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a));
    assert.ok(Object.isFrozen(a.value));
    assert.throws(() => {
      a.value.max = 11;
    }, TypeError);
  });

  test("a plain object's unread attributes neither change the answer nor excuse a context JSON cannot carry", () => {
    // "dark-mode" reads no attribute, "tiers" five, "launch" the clock through currentTime, and
    // "support-prompt" the targeting key (its split) and the segment's unit (the same key).
    const matching = { plan: "pro", seats: 12, appVersion: "2.1.0", beta: "true", signup: "2025-03-01T00:00:00Z" };
    const extras = { country: "IE", nested: { a: [1, 2] }, list: [1], flag: true, when: new Date(0) };
    for (const context of [{}, { targetingKey: "u1", ...matching }, { targetingKey: 42, ...extras }, { targetingKey: "u2", ...matching, ...extras }]) {
      for (const flag of ["dark-mode", "tiers", "launch", "support-prompt", "limits", "missing"]) {
        const json = evaluator.evaluate(flag, JSON.stringify(context), { now: Date.UTC(2025, 0, 1) });
        assert.deepEqual(evaluator.evaluate(flag, context, { now: Date.UTC(2025, 0, 1) }), json, `${flag} ${JSON.stringify(context)}`);
      }
    }
    assert.equal(evaluator.evaluate("launch", {}, { now: Date.UTC(2025, 0, 1) }).variant, "off");
    assert.equal(evaluator.evaluate("launch", {}, { now: Date.UTC(2026, 0, 1) }).variant, "on");
    // The same frozen object every time for a flag that reads nothing, with or without a context.
    assert.equal(evaluator.evaluate("dark-mode", { targetingKey: "a" }), evaluator.evaluate("dark-mode"));
    // A value JSON cannot carry is refused for every flag, read or not, as before.
    for (const flag of ["dark-mode", "tiers", "support-prompt"]) {
      assert.throws(() => evaluator.evaluate(flag, { targetingKey: "u", unread: 10n }), /cannot be encoded as JSON/);
      assert.throws(() => evaluator.evaluate(flag, { targetingKey: "u" }, { now: "yesterday" }), /now must be/);
    }
  });

  test("throws typed errors for arguments of the wrong type", () => {
    assert.throws(() => evaluator.evaluate(42, {}), (e) => e instanceof InvalidArgumentError && /flagKey must be a string/.test(e.message));
    assert.throws(() => evaluator.evaluate("tiers", [1, 2]), /context must be an object/);
    assert.throws(() => evaluator.evaluate("tiers", 7), InvalidArgumentError);
    assert.throws(() => evaluator.evaluate("tiers", { id: 10n }), /cannot be encoded as JSON/);
    const circular = { targetingKey: "u" };
    circular.self = circular;
    // A nested object is an attribute no operator reads, whatever it holds (even itself).
    assert.equal(evaluator.evaluate("tiers", circular).variant, "plain");
    assert.throws(() => evaluator.evaluate("tiers", {}, { now: "yesterday" }), /now must be/);
    assert.throws(() => evaluator.evaluateTyped("tiers", {}, "text"), /type must be/);
  });

  test("a JSON-text context that is not an object is an evaluation error, as on every runtime", () => {
    assert.equal(evaluator.evaluate("tiers", "[1]").errorCode, "INVALID_CONTEXT");
    assert.equal(evaluator.evaluate("tiers", "{").errorCode, "PARSE_ERROR");
    assert.equal(evaluator.evaluateAll("{")["tiers"].errorCode, "PARSE_ERROR");
  });

  test("typed evaluation and prompt resolution", () => {
    assert.equal(evaluator.evaluateTyped("dark-mode", {}, "boolean").value, true);
    const mismatch = evaluator.evaluateTyped("dark-mode", {}, "string");
    assert.equal(mismatch.errorCode, "TYPE_MISMATCH");
    assert.equal(mismatch.variant, "off");
    const staff = evaluator.resolvePrompt("support-prompt", { targetingKey: "alice" });
    assert.equal(staff.variant, "candidate");
    assert.equal(staff.reason, "TARGETING_MATCH");
    assert.deepEqual(staff.prompt, { id: "support", version: "2.0.0", content_id: CANDIDATE, hash: CANDIDATE, model: "gpt-4o", parameters: { temperature: 0.2 } });
    const notPrompt = evaluator.resolvePrompt("tiers", {});
    assert.equal(notPrompt.errorCode, "TYPE_MISMATCH");
    assert.equal(notPrompt.prompt, null);
    assert.match(notPrompt.errorMessage, /not a prompt flag/);
    // The two TYPE_MISMATCH messages stay apart even though both are cached.
    assert.match(evaluator.evaluateTyped("tiers", {}, "number").errorMessage, /type asked for/);
    assert.match(evaluator.resolvePrompt("tiers", {}).errorMessage, /not a prompt flag/);
  });

  test("evaluateAll covers every flag in key order", () => {
    const all = evaluator.evaluateAll({ targetingKey: "alice" });
    assert.deepEqual(Object.keys(all), ["dark-mode", "launch", "limits", "support-prompt", "tiers"]);
    assert.equal(all["support-prompt"].prompt.hash, CANDIDATE);
  });

  test("explain gives the bucket, matching bucketSlot", () => {
    const details = evaluator.explain("support-prompt", { targetingKey: "user-77" });
    assert.equal(details.reason, "SPLIT");
    assert.equal(details.bucket.slot, bucketSlot("support-prompt", "user-77"));
    assert.equal(details.variant, details.bucket.slot < 10000 ? "candidate" : "current");
  });

  test("the clock: default now, an explicit Date, or none", () => {
    assert.equal(evaluator.evaluate("launch", {}).value, true, "the default clock is now (after the launch date)");
    assert.equal(evaluator.evaluate("launch", {}, { now: new Date("2025-01-01T00:00:00Z") }).value, false);
    assert.equal(evaluator.evaluate("launch", {}, { now: Date.parse("2025-07-01T00:00:00Z") }).value, true);
    assert.equal(evaluator.evaluate("launch", {}, { now: null }).value, false);
    assert.equal(evaluator.evaluate("launch", { currentTime: "2025-01-01T00:00:00Z" }).value, false, "an explicit attribute wins");
    const prepared = new PreparedContext({}, { now: new Date("2025-01-01T00:00:00Z") });
    assert.equal(evaluator.evaluate("launch", prepared).value, false);
    prepared.setNow();
    assert.equal(evaluator.evaluate("launch", prepared).value, true);
  });

  test("consecutive plain objects never leak attributes or values into each other", () => {
    const base = { targetingKey: "u", plan: "pro", seats: 12, appVersion: "2.1.0", beta: "true", signup: "2025-01-01T00:00:00Z" };
    const sequence = [
      base,
      { ...base, plan: "free" },
      { ...base },
      { targetingKey: "u", seats: 12, appVersion: "2.1.0", beta: "true", signup: "2025-01-01T00:00:00Z" },
      { ...base, seats: "12" },
      { ...base, seats: 12.5 },
      { ...base, beta: true },
      { ...base, extra: [1] },
      { ...base, plan: ["pro"] },
      base,
    ];
    for (const [index, context] of sequence.entries()) {
      assert.deepEqual(evaluator.explain("tiers", JSON.stringify(context)), evaluator.explain("tiers", context), `step ${index}`);
      assert.deepEqual(evaluator.evaluate("tiers", context), evaluator.evaluate("tiers", JSON.stringify(context)), `step ${index}`);
    }
  });

  test("a freed evaluator throws DisposedError", () => {
    const doomed = Evaluator.fromRuleset(RULESET);
    doomed.free();
    assert.throws(() => doomed.evaluate("tiers", {}), (e) => e instanceof DisposedError && e.code === "DISPOSED");
    doomed.free();
  });
});

describe("PreparedContext (the fast path)", () => {
  test("reads every value exactly as a plain object does", () => {
    const values = [
      "pro", "PRO", "", "10", 10, 10.5, -0, 9.5, 2 ** 53, 2 ** 63, -(2 ** 63), 1e21, Number.NaN, Number.POSITIVE_INFINITY,
      true, false, null, undefined, [1], { a: 1 }, new Date("2025-05-01T00:00:00Z"), new Date("invalid"), "2.1.0", "v3.0.0",
    ];
    const prepared = new PreparedContext({ targetingKey: "u" });
    for (const name of ["plan", "seats", "appVersion", "beta", "signup"]) {
      for (const value of values) {
        const base = { targetingKey: "u", plan: "pro", seats: 12, appVersion: "2.1.0", beta: "true", signup: "2025-01-01T00:00:00Z" };
        const plain = { ...base, [name]: value };
        for (const [key, inner] of Object.entries(base)) prepared.set(key, inner);
        prepared.set(name, value);
        const expected = evaluator.explain("tiers", plain);
        const actual = evaluator.explain("tiers", prepared);
        assert.deepEqual(actual, expected, `${name} = ${String(value)}`);
        assert.deepEqual(evaluator.evaluate("tiers", prepared), evaluator.evaluate("tiers", plain));
        // A plain object crosses in a binary encoding; JSON text crosses as JSON: the same reading.
        assert.deepEqual(evaluator.evaluate("tiers", plain), evaluator.evaluate("tiers", JSON.stringify(plain)));
      }
    }
  });

  test("a fresh targeting key per call, as in a hot loop", () => {
    const context = new PreparedContext({ plan: "pro" });
    for (let i = 0; i < 2000; i++) {
      const unit = `user-${i}`;
      context.setTargetingKey(unit);
      const evaluation = evaluator.evaluate("support-prompt", context);
      assert.equal(evaluation.variant, bucketSlot("support-prompt", unit) < 10000 ? "candidate" : "current");
      assert.equal(context.targetingKey, unit);
    }
  });

  test("a targeting key set for the next evaluation reaches every other use too", () => {
    const context = new PreparedContext({});
    context.setTargetingKey("user-1");
    assert.equal(evaluator.explain("support-prompt", context).bucket.slot, bucketSlot("support-prompt", "user-1"));
    context.setTargetingKey("user-2");
    assert.equal(evaluator.evaluateAll(context)["support-prompt"].variant, evaluator.evaluate("support-prompt", { targetingKey: "user-2" }).variant);
    context.setTargetingKey("user-3");
    assert.equal(evaluator.resolvePrompt("support-prompt", context).variant, evaluator.evaluate("support-prompt", { targetingKey: "user-3" }).variant);
    context.setTargetingKey("alice");
    context.set("targetingKey", "user-4");
    assert.equal(evaluator.explain("support-prompt", context).bucket.slot, bucketSlot("support-prompt", "user-4"));
    context.setTargetingKey("alice");
    context.delete("targetingKey");
    assert.equal(evaluator.evaluate("support-prompt", context).errorCode, "TARGETING_KEY_MISSING");
    context.setTargetingKey("alice");
    assert.equal(evaluator.evaluate("support-prompt", context).reason, "TARGETING_MATCH");
    assert.equal(evaluator.evaluate("support-prompt", context).reason, "TARGETING_MATCH", "and again, with nothing pending");
  });

  test("delete, toJSON and the clock", () => {
    const context = new PreparedContext({ targetingKey: "alice", plan: "pro" }, { now: null });
    assert.deepEqual(context.toJSON(), { targetingKey: "alice", plan: "pro" });
    assert.equal(evaluator.evaluate("support-prompt", context).reason, "TARGETING_MATCH");
    context.delete("targetingKey");
    assert.equal(evaluator.evaluate("support-prompt", context).errorCode, "TARGETING_KEY_MISSING");
    assert.equal(context.get("plan"), "pro");
    context.setNow(new Date("2025-01-01T00:00:00Z")).setNow(null).setNow();
    assert.throws(() => context.setNow("noon"), InvalidArgumentError);
  });

  test("rejects bad input with typed errors, and cannot be used once freed", () => {
    assert.throws(() => new PreparedContext([1]), InvalidArgumentError);
    assert.throws(() => new PreparedContext("{\"targetingKey\": \"u\"}"), /takes an object of attributes/);
    const context = new PreparedContext({});
    assert.throws(() => context.set(1, "x"), /attribute name must be a string/);
    assert.throws(() => context.set("id", 10n), /bigint/);
    assert.throws(() => context.setTargetingKey(5), /targetingKey must be a string/);
    context.free();
    assert.throws(() => context.set("a", "b"), DisposedError);
    assert.throws(() => evaluator.evaluate("tiers", context), DisposedError);
  });
});

describe("OpenFeature provider (@openfeature/server-sdk)", () => {
  test("resolves every type through the SDK, with errors as OpenFeature reports them", async () => {
    await OpenFeature.setProviderAndWait("promptflag-test", new PromptflagProvider(evaluator));
    const client = OpenFeature.getClient("promptflag-test");
    assert.equal(await client.getBooleanValue("dark-mode", false), true);
    const tier = await client.getStringDetails("tiers", "none", {
      targetingKey: "u", plan: "enterprise", seats: 50, appVersion: "3.0.0", beta: "true", signup: new Date("2025-02-01T00:00:00Z"),
    });
    assert.equal(tier.value, "gold");
    assert.equal(tier.variant, "gold");
    assert.equal(tier.reason, "TARGETING_MATCH");
    assert.equal(tier.flagMetadata.revision, 7);
    const prompt = await client.getObjectDetails("support-prompt", {}, { targetingKey: "alice" });
    assert.equal(prompt.value.hash, CANDIDATE);
    assert.equal(prompt.flagMetadata.promptHash, CANDIDATE);
    assert.equal(prompt.flagMetadata.promptVersion, "2.0.0");
    const mismatch = await client.getNumberDetails("tiers", 3, {});
    assert.equal(mismatch.value, 3);
    assert.equal(mismatch.errorCode, "TYPE_MISMATCH");
    const missing = await client.getBooleanDetails("no-such-flag", true, {});
    assert.equal(missing.value, true);
    assert.equal(missing.errorCode, "FLAG_NOT_FOUND");
    assert.equal(await client.getNumberValue("limits", 0), 0, "an object flag read as a number");
    await OpenFeature.clearProviders();
  });

  test("rejects a source that cannot evaluate", () => {
    assert.throws(() => new PromptflagProvider({}), /needs an Evaluator or a PromptflagClient/);
  });
});
