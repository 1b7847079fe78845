// OFREP conformance: the real `@openfeature/ofrep-provider` under `@openfeature/server-sdk`
// evaluating boolean, string, number and object flags against the Worker on 127.0.0.1, including
// every error the provider maps (flag not found, targeting key missing, invalid context, type
// mismatch) and the defaults it then serves.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, OpenFeature, StandardResolutionReasons } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";

import { CLIENT_KEY, TOKEN, bearer, fixtureRuleset, publish, servingRevision, startWorker } from "./helpers.mjs";

let worker;
let client;

before(async () => {
  worker = await startWorker({ adminToken: TOKEN, cacheTtlMs: 50 });
  assert.equal((await publish(worker.url, fixtureRuleset())).status, 201);
  await servingRevision(worker.url, 1);
  await OpenFeature.setProviderAndWait("promptflag", new OFREPProvider({ baseUrl: worker.url, headers: bearer(CLIENT_KEY) }));
  client = OpenFeature.getClient("promptflag");
});

after(async () => {
  await OpenFeature.close();
  await worker?.dispose();
});

describe("values", () => {
  test("a boolean flag: targeting match, default and kill switch", async () => {
    const on = await client.getBooleanDetails("new_checkout", false, { targetingKey: "u1", country: "IE" });
    assert.equal(on.value, true);
    assert.equal(on.variant, "on");
    assert.equal(on.reason, StandardResolutionReasons.TARGETING_MATCH);
    assert.equal(on.errorCode, undefined);
    assert.deepEqual(on.flagMetadata, { environment: "dev", revision: 1, ruleId: "ireland-and-uk" });

    const off = await client.getBooleanDetails("new_checkout", true, { targetingKey: "u1", country: "FR" });
    assert.deepEqual([off.value, off.variant, off.reason], [false, "off", StandardResolutionReasons.DEFAULT]);

    const retired = await client.getBooleanDetails("retired_feature", true, { targetingKey: "u1" });
    assert.deepEqual([retired.value, retired.reason], [false, StandardResolutionReasons.DISABLED]);
    assert.equal(await client.getBooleanValue("new_checkout", false, { targetingKey: "u1", country: "GB" }), true);
  });

  test("a string flag", async () => {
    const warm = await client.getStringDetails("greeting", "fallback", { targetingKey: "u2", plan: "pro" });
    assert.deepEqual([warm.value, warm.variant, warm.reason], ["Hi there", "warm", "TARGETING_MATCH"]);
    assert.equal(await client.getStringValue("greeting", "fallback", { targetingKey: "u2" }), "Hello");
  });

  test("a number flag", async () => {
    assert.equal(await client.getNumberValue("max_tokens", 1, { targetingKey: "u3", plan: "pro" }), 1024);
    assert.equal(await client.getNumberValue("max_tokens", 1, { targetingKey: "u3" }), 512);
  });

  test("an object flag and a prompt flag (whose value is the prompt reference)", async () => {
    const style = await client.getObjectDetails("answer_style", {}, { targetingKey: "u4", plan: "pro" });
    assert.deepEqual(style.value, { max_sentences: 3, tone: "crisp" });
    assert.equal(style.variant, "crisp");

    const prompt = await client.getObjectDetails("support_prompt", {}, { targetingKey: "user-internal-1" });
    assert.equal(prompt.variant, "concise");
    assert.equal(prompt.value.version, "1.1.0");
    assert.match(prompt.value.hash, /^[0-9a-f]{64}$/);
    assert.equal(prompt.flagMetadata.promptHash, prompt.value.hash);
    assert.equal(prompt.flagMetadata.promptId, "support");
  });

  test("a split buckets by the targeting key, the same way on every call", async () => {
    const variants = new Set();
    for (let i = 0; i < 30; i++) {
      const details = await client.getObjectDetails("support_prompt", {}, { targetingKey: `user-${i}` });
      assert.equal(details.reason, StandardResolutionReasons.SPLIT);
      const again = await client.getObjectDetails("support_prompt", {}, { targetingKey: `user-${i}` });
      assert.equal(again.variant, details.variant);
      variants.add(details.variant);
    }
    assert.deepEqual([...variants].sort(), ["concise", "v1"]);
  });
});

describe("errors and defaults", () => {
  test("an unknown flag serves the caller's default with FLAG_NOT_FOUND", async () => {
    const details = await client.getBooleanDetails("no_such_flag", true, { targetingKey: "u" });
    assert.equal(details.value, true);
    assert.equal(details.errorCode, ErrorCode.FLAG_NOT_FOUND);
    assert.equal(details.reason, StandardResolutionReasons.ERROR);
    assert.equal(typeof details.errorMessage, "string");
  });

  test("a split without a targeting key serves the default with TARGETING_KEY_MISSING", async () => {
    const details = await client.getBooleanDetails("canary_banner", false, { country: "IE" });
    assert.deepEqual([details.value, details.errorCode], [false, ErrorCode.TARGETING_KEY_MISSING]);
    const withKey = await client.getBooleanDetails("canary_banner", false, { targetingKey: "u" });
    assert.deepEqual([withKey.value, withKey.reason], [true, StandardResolutionReasons.SPLIT]);
  });

  test("an attribute a rule cannot read serves the default with INVALID_CONTEXT", async () => {
    const details = await client.getStringDetails("greeting", "default", { targetingKey: "u", plan: ["pro"] });
    assert.deepEqual([details.value, details.errorCode], ["default", ErrorCode.INVALID_CONTEXT]);
  });

  test("asking for another type serves the default with TYPE_MISMATCH", async () => {
    const asString = await client.getStringDetails("new_checkout", "default", { targetingKey: "u" });
    assert.deepEqual([asString.value, asString.errorCode], ["default", ErrorCode.TYPE_MISMATCH]);
    const asNumber = await client.getNumberDetails("greeting", 7, { targetingKey: "u" });
    assert.deepEqual([asNumber.value, asNumber.errorCode], [7, ErrorCode.TYPE_MISMATCH]);
  });

  test("a provider without a read key is refused and serves defaults", async () => {
    await OpenFeature.setProvider("unkeyed", new OFREPProvider({ baseUrl: worker.url }));
    const unkeyed = OpenFeature.getClient("unkeyed");
    const details = await unkeyed.getBooleanDetails("new_checkout", false, { targetingKey: "u1", country: "IE" });
    assert.equal(details.value, false);
    assert.equal(details.reason, StandardResolutionReasons.ERROR);
    assert.ok(details.errorCode, JSON.stringify(details));
  });

  test("a server that is not there serves defaults with GENERAL", async () => {
    await OpenFeature.setProviderAndWait("gone", new OFREPProvider({ baseUrl: "http://127.0.0.1:9" }));
    const gone = OpenFeature.getClient("gone");
    const details = await gone.getBooleanDetails("new_checkout", true, { targetingKey: "u" });
    assert.deepEqual([details.value, details.errorCode], [true, ErrorCode.GENERAL]);
  });
});

describe("bulk evaluation as OFREP's core API defines it", () => {
  test("the provider's API client reads the bulk response and honours ETag / 304", async () => {
    const { OFREPApi } = await import("@openfeature/ofrep-core");
    const api = new OFREPApi(worker.url);
    const key = Object.entries(bearer(CLIENT_KEY));
    const first = await api.postBulkEvaluateFlags({ context: { targetingKey: "u9", plan: "pro" } }, { headers: key });
    assert.equal(first.httpStatus, 200);
    const byKey = Object.fromEntries(first.value.flags.map((flag) => [flag.key, flag]));
    assert.equal(byKey.greeting.value, "Hi there");
    const etag = first.httpResponse.headers.get("etag");
    assert.ok(etag);

    const again = await api.postBulkEvaluateFlags(
      { context: { targetingKey: "u9", plan: "pro" } },
      { headers: [...key, ["If-None-Match", etag]] },
    );
    assert.equal(again.httpStatus, 304);
    const changed = await api.postBulkEvaluateFlags(
      { context: { targetingKey: "u9", plan: "free" } },
      { headers: [...key, ["If-None-Match", etag]] },
    );
    assert.equal(changed.httpStatus, 200);
    assert.equal(changed.value.flags.find((flag) => flag.key === "greeting").value, "Hello");

    const failure = await api.postBulkEvaluateFlags({ context: "not an object" }, { headers: key });
    assert.equal(failure.httpStatus, 400);
    assert.equal(failure.value.errorCode, "INVALID_CONTEXT");
  });
});
