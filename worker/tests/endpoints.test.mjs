// Every endpoint of the Worker and every error status, over HTTP on 127.0.0.1 (Miniflare running
// the built Worker): the read API, OFREP's shapes, the admin API and its auth, bad input of every
// kind (all JSON 4xx, never a 5xx), and the revision headers every response carries.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  TOKEN,
  apiError,
  declareLength,
  fixtureBodies,
  fixtureRuleset,
  json,
  post,
  publish,
  credentialsFor,
  moved,
  seedKv,
  sha256,
  startWorker,
  withoutAnchors,
  keyed,
  bearer,
  CLIENT_KEY,
  SERVER_KEY,
} from "./helpers.mjs";

const INTERNAL = "user-internal-1";
const [[V1_HASH, V1_BODY]] = [...fixtureBodies()].filter(([, body]) => body.includes("politely"));
const [[CONCISE_HASH, CONCISE_BODY]] = [...fixtureBodies()].filter(([, body]) => body.includes("three sentences"));

let worker;
let url;

before(async () => {
  // A long TTL: these tests read one revision unless they publish on purpose.
  // The admin suite writes these environments besides dev.
  worker = await startWorker({ adminCredentials: credentialsFor(TOKEN, ["dev", "staging", "qa", "qa2", "rb", "keep"]), cacheTtlMs: 60_000, corsOrigins: "https://app.example" });
  url = worker.url;
  await seedKv(worker.kv);
});

after(() => worker?.dispose());

function assertRevisionHeaders(response, revision = "1", source = "kv") {
  assert.equal(response.headers.get("x-promptflag-revision"), revision);
  assert.equal(response.headers.get("x-promptflag-ruleset-source"), source);
}

describe("read API", () => {
  test("GET /healthz names the environment, revision and source", async () => {
    const response = await fetch(`${url}/healthz`);
    assertRevisionHeaders(response);
    const body = await json(response, 200);
    assert.equal(body.status, "ok");
    assert.equal(body.environment, "dev");
    assert.equal(body.revision, 1);
    assert.equal(body.ruleset_source, "kv");
    assert.equal(body.flags, Object.keys(fixtureRuleset().flags).length);
  });

  test("GET /v1/ruleset serves the stored JSON with an ETag and answers If-None-Match with 304", async () => {
    const response = await keyed(`${url}/v1/ruleset`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), JSON.stringify(fixtureRuleset()));
    const etag = response.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]+"$/);
    assertRevisionHeaders(response);

    const again = await keyed(`${url}/v1/ruleset`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), "");
    assert.equal(again.headers.get("etag"), etag);
    const weak = await keyed(`${url}/v1/ruleset`, { headers: { "if-none-match": `"x", W/${etag}` } });
    assert.equal(weak.status, 304);
    const other = await keyed(`${url}/v1/ruleset`, { headers: { "if-none-match": '"stale"' } });
    assert.equal(other.status, 200);
  });

  test("GET /v1/prompts/{sha256} serves the body, immutable, with an ETag", async () => {
    const response = await keyed(`${url}/v1/prompts/${V1_HASH}`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), V1_BODY);
    assert.equal(response.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(response.headers.get("etag"), `"${V1_HASH}"`);
    assert.match(response.headers.get("content-type"), /^text\/markdown; charset=utf-8/);
    const again = await keyed(`${url}/v1/prompts/${V1_HASH}`, { headers: { "if-none-match": `"${V1_HASH}"` } });
    assert.equal(again.status, 304);
  });

  test("GET /v1/prompts with an unknown or malformed hash is a JSON 404 or 400", async () => {
    await apiError(await keyed(`${url}/v1/prompts/${"0".repeat(64)}`), 404, "prompt_not_found");
    await apiError(await keyed(`${url}/v1/prompts/${V1_HASH.toUpperCase()}`), 400, "bad_hash");
    await apiError(await keyed(`${url}/v1/prompts/abc`), 400, "bad_hash");
    await apiError(await keyed(`${url}/v1/prompts/..%2F..%2Fetc`), 400, "bad_hash");
  });

  test("POST /v1/resolve/{flag} returns the variant, the prompt's metadata and its body inline", async () => {
    const response = await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: INTERNAL } });
    assertRevisionHeaders(response);
    const body = await json(response, 200);
    assert.deepEqual(body, {
      flag: "support_prompt",
      variant: "concise",
      reason: "TARGETING_MATCH",
      environment: "dev",
      revision: 1,
      prompt: {
        id: "support",
        version: "1.1.0",
        // The fixture keys its prompts by body hash (rulesets before content ids), so the
        // version's content id is its body's hash.
        content_id: CONCISE_HASH,
        hash: CONCISE_HASH,
        model: "gpt-4o-mini",
        parameters: { temperature: 0.1, max_tokens: 200 },
        body: CONCISE_BODY,
      },
    });
  });

  test("POST /v1/resolve splits users between the baseline and the treatment, each with its body", async () => {
    const seen = new Map();
    for (let i = 0; i < 40; i++) {
      const body = await json(await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: `user-${i}` } }), 200);
      assert.equal(body.reason, "SPLIT");
      assert.equal(body.prompt.body, body.variant === "v1" ? V1_BODY : CONCISE_BODY);
      assert.equal(sha256(body.prompt.body), body.prompt.hash);
      seen.set(body.variant, (seen.get(body.variant) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ["concise", "v1"]);
    // The same user always gets the same variant.
    const a = await json(await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: "user-7" } }), 200);
    const b = await json(await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: "user-7" } }), 200);
    assert.equal(a.variant, b.variant);
  });

  test("POST /v1/resolve errors are JSON 4xx", async () => {
    await apiError(await post(url, "/v1/resolve/nope", { context: { targetingKey: "u" } }), 404, "flag_not_found");
    await apiError(await post(url, "/v1/resolve/greeting", { context: { targetingKey: "u" } }), 400, "not_a_prompt_flag");
    await apiError(await post(url, "/v1/resolve/support_prompt", { context: {} }), 400, "targeting_key_missing");
    await apiError(await post(url, "/v1/resolve/support_prompt", "{not json"), 400, "bad_json");
    await apiError(await post(url, "/v1/resolve/support_prompt", "[1, 2]"), 400, "bad_request");
    await apiError(await post(url, "/v1/resolve/support_prompt", { context: "u" }), 400, "invalid_context");
    await apiError(await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: ["u"] } }), 400, "invalid_context");
    const wrongMethod = await keyed(`${url}/v1/resolve/support_prompt`);
    await apiError(wrongMethod, 405, "method_not_allowed");
    assert.equal(wrongMethod.headers.get("allow"), "POST");
  });

  test("a method the Worker does not know is a 405, not a GET", async () => {
    for (const path of ["/healthz", "/v1/ruleset", "/ofrep/v1/configuration"]) {
      assert.equal((await keyed(`${url}${path}`)).status, 200, path);
      const unknown = await keyed(`${url}${path}`, { method: "PROPFIND" });
      await apiError(unknown, 405, "method_not_allowed");
      assert.equal(unknown.headers.get("allow"), "GET", path);
    }
  });

  test("an unknown route is a JSON 404, with or without a key", async () => {
    await apiError(await fetch(`${url}/nope`), 404, "not_found");
    await apiError(await fetch(`${url}/`), 404, "not_found");
    await apiError(await fetch(`${url}/healthz/extra`), 404, "not_found");
    await apiError(await keyed(`${url}/nope`), 404, "not_found");
  });

  test("pages from an allowed origin get CORS headers on the evaluation routes, others none", async () => {
    const allowed = { origin: "https://app.example" };
    const preflight = await fetch(`${url}/ofrep/v1/evaluate/flags`, { method: "OPTIONS", headers: allowed });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get("access-control-allow-methods"), /POST/);
    assert.match(preflight.headers.get("access-control-allow-headers"), /Authorization/);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
    const browser = await post(url, "/ofrep/v1/evaluate/flags/greeting", { context: {} }, { ...allowed, ...bearer(CLIENT_KEY) });
    assert.equal(browser.status, 200);
    assert.equal(browser.headers.get("access-control-allow-origin"), "https://app.example");
    assert.match(browser.headers.get("vary"), /Origin/);
    assert.match(browser.headers.get("access-control-expose-headers"), /ETag/);
    await browser.arrayBuffer();
    // A refused request still carries the header, so the page can read why.
    const unkeyed = await fetch(`${url}/v1/resolve/support_prompt`, { method: "POST", headers: allowed, body: "{}" });
    assert.equal(unkeyed.status, 401);
    assert.equal(unkeyed.headers.get("access-control-allow-origin"), "https://app.example");
    await unkeyed.arrayBuffer();

    // Another origin: its preflight is refused and its responses carry no CORS headers.
    const other = { origin: "https://evil.example" };
    await apiError(await fetch(`${url}/ofrep/v1/evaluate/flags`, { method: "OPTIONS", headers: other }), 403, "origin_not_allowed");
    const refused = await post(url, "/ofrep/v1/evaluate/flags/greeting", { context: {} }, other);
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
    await refused.arrayBuffer();
    // The ruleset and prompt bodies are for servers: no page may read them, whatever its origin.
    await apiError(await fetch(`${url}/v1/ruleset`, { method: "OPTIONS", headers: allowed }), 403, "origin_not_allowed");
    const ruleset = await keyed(`${url}/v1/ruleset`, { headers: allowed });
    assert.equal(ruleset.headers.get("access-control-allow-origin"), null);
    await ruleset.arrayBuffer();
    // Server-side callers send no Origin and get no CORS headers; the admin API never does.
    const server = await post(url, "/ofrep/v1/evaluate/flags/greeting", { context: {} });
    assert.equal(server.headers.get("access-control-allow-origin"), null);
    await server.arrayBuffer();
    const admin = await fetch(`${url}/admin/v1/rulesets/dev`, { headers: { ...allowed, authorization: `Bearer ${TOKEN}` } });
    assert.equal(admin.headers.get("access-control-allow-origin"), null);
    await admin.arrayBuffer();
  });

});

describe("OFREP", () => {
  const evaluate = (key, context) => post(url, `/ofrep/v1/evaluate/flags/${key}`, { context });

  test("single evaluation: boolean, string, number and object flags in OFREP's success shape", async () => {
    const boolean = await json(await evaluate("new_checkout", { targetingKey: "u", country: "IE" }), 200);
    assert.deepEqual(boolean, {
      key: "new_checkout",
      value: true,
      reason: "TARGETING_MATCH",
      variant: "on",
      metadata: { environment: "dev", revision: 1, ruleId: "ireland-and-uk" },
    });
    const string = await json(await evaluate("greeting", { targetingKey: "u", plan: "pro" }), 200);
    assert.equal(string.value, "Hi there");
    const number = await json(await evaluate("max_tokens", { targetingKey: "u" }), 200);
    assert.deepEqual([number.value, number.reason], [512, "DEFAULT"]);
    const object = await json(await evaluate("answer_style", { targetingKey: "u" }), 200);
    assert.deepEqual(object.value, { max_sentences: 5, tone: "friendly" });
    const disabled = await json(await evaluate("retired_feature", { targetingKey: "u" }), 200);
    assert.deepEqual([disabled.value, disabled.reason, disabled.variant], [false, "DISABLED", "off"]);
    const prompt = await json(await evaluate("summarizer_prompt", {}), 200);
    assert.equal(prompt.reason, "STATIC");
    assert.equal(prompt.metadata.promptId, "summarizer");
    assert.equal(prompt.value.version, "2.0.0");
  });

  test("single evaluation errors: 404 FLAG_NOT_FOUND and 400 with OFREP's error codes", async () => {
    const notFound = await json(await evaluate("nope", { targetingKey: "u" }), 404);
    assert.deepEqual(Object.keys(notFound).sort(), ["errorCode", "errorDetails", "key"]);
    assert.equal(notFound.errorCode, "FLAG_NOT_FOUND");
    assert.equal(notFound.key, "nope");

    const missingKey = await json(await evaluate("canary_banner", { country: "IE" }), 400);
    assert.deepEqual([missingKey.key, missingKey.errorCode], ["canary_banner", "TARGETING_KEY_MISSING"]);
    const badContext = await json(await post(url, "/ofrep/v1/evaluate/flags/greeting", { context: [1] }), 400);
    assert.equal(badContext.errorCode, "INVALID_CONTEXT");
    const badAttribute = await json(await evaluate("greeting", { targetingKey: "u", plan: { pro: true } }), 400);
    assert.equal(badAttribute.errorCode, "INVALID_CONTEXT");
    const badJson = await json(await post(url, "/ofrep/v1/evaluate/flags/greeting", "{"), 400);
    assert.deepEqual([badJson.key, badJson.errorCode], ["greeting", "PARSE_ERROR"]);
    assert.equal(typeof badJson.errorDetails, "string");
    // As core decides it everywhere: an unknown flag is FLAG_NOT_FOUND even with a bad body.
    const unknownAndBad = await json(await post(url, "/ofrep/v1/evaluate/flags/nope", "{"), 404);
    assert.equal(unknownAndBad.errorCode, "FLAG_NOT_FOUND");
  });

  test("an empty body or a missing context evaluates with an empty context", async () => {
    const empty = await keyed(`${url}/ofrep/v1/evaluate/flags/greeting`, { method: "POST" });
    assert.equal((await json(empty, 200)).value, "Hello");
    const noContext = await post(url, "/ofrep/v1/evaluate/flags/greeting", {});
    assert.equal((await json(noContext, 200)).value, "Hello");
  });

  test("bulk evaluation lists every flag, with per-flag failures inside a 200", async () => {
    const response = await post(url, "/ofrep/v1/evaluate/flags", { context: { country: "GB" } });
    assertRevisionHeaders(response);
    const body = await json(response, 200);
    const byKey = Object.fromEntries(body.flags.map((flag) => [flag.key, flag]));
    assert.deepEqual(Object.keys(byKey).sort(), Object.keys(fixtureRuleset().flags).sort());
    assert.equal(byKey.new_checkout.value, true);
    assert.deepEqual(
      [byKey.canary_banner.errorCode, typeof byKey.canary_banner.errorDetails, "value" in byKey.canary_banner],
      ["TARGETING_KEY_MISSING", "string", false],
    );
  });

  test("the bulk ETag covers the ruleset and the context: 304 only for the same context", async () => {
    const context = { targetingKey: "user-5", plan: "pro" };
    const first = await post(url, "/ofrep/v1/evaluate/flags", { context });
    const etag = first.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    await first.arrayBuffer();

    const same = await post(url, "/ofrep/v1/evaluate/flags", { context }, { "if-none-match": etag });
    assert.equal(same.status, 304);
    assert.equal(await same.text(), "");
    assert.equal(same.headers.get("etag"), etag);
    assertRevisionHeaders(same);

    // Key order does not matter; any other context (even one that evaluates alike) does.
    const reordered = await post(url, "/ofrep/v1/evaluate/flags", { context: { plan: "pro", targetingKey: "user-5" } }, { "if-none-match": etag });
    assert.equal(reordered.status, 304);
    for (const other of [{ targetingKey: "user-6", plan: "pro" }, { ...context, unrelated: 1 }]) {
      const response = await post(url, "/ofrep/v1/evaluate/flags", { context: other }, { "if-none-match": etag });
      assert.equal(response.status, 200);
      assert.notEqual(response.headers.get("etag"), etag);
      await response.arrayBuffer();
    }
  });

  test("bulk request errors are 400 with OFREP's bulkEvaluationFailure shape", async () => {
    const badJson = await json(await post(url, "/ofrep/v1/evaluate/flags", "nope"), 400);
    assert.deepEqual(Object.keys(badJson).sort(), ["errorCode", "errorDetails"]);
    assert.equal(badJson.errorCode, "PARSE_ERROR");
    const badContext = await json(await post(url, "/ofrep/v1/evaluate/flags", { context: "x" }), 400);
    assert.equal(badContext.errorCode, "INVALID_CONTEXT");
  });

  test("GET on the evaluation endpoints is a 405; the configuration extension answers", async () => {
    await apiError(await keyed(`${url}/ofrep/v1/evaluate/flags`), 405, "method_not_allowed");
    await apiError(await keyed(`${url}/ofrep/v1/evaluate/flags/greeting`), 405, "method_not_allowed");
    const configuration = await json(await keyed(`${url}/ofrep/v1/configuration`), 200);
    assert.equal(configuration.name, "promptflag");
    assert.equal(configuration.capabilities.cacheInvalidation.polling.enabled, true);
  });
});

describe("oversized bodies", () => {
  const big = JSON.stringify({ context: { targetingKey: "u", pad: "x".repeat(70 * 1024) } });

  test("a Content-Length over the limit is refused with 413, in each endpoint's error shape", async () => {
    await apiError(await post(url, "/v1/resolve/support_prompt", big), 413, "too_large");
    const single = await json(await post(url, "/ofrep/v1/evaluate/flags/greeting", big), 413);
    assert.deepEqual([single.key, single.errorCode], ["greeting", "GENERAL"]);
    const bulk = await json(await post(url, "/ofrep/v1/evaluate/flags", big), 413);
    assert.equal(bulk.errorCode, "GENERAL");
  });

  test("a streamed body without Content-Length is cut off at the limit", async () => {
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await keyed(`${url}/v1/resolve/support_prompt`, {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { "content-type": "application/json" },
    });
    await apiError(response, 413, "too_large");
  });
});

describe("never a 5xx on bad input", () => {
  const requests = [
    ["POST", "/ofrep/v1/evaluate/flags/greeting", "\u0000\u0001\u0002"],
    ["POST", "/ofrep/v1/evaluate/flags/greeting", Buffer.from([0xff, 0xfe, 0x7b, 0x22])],
    ["POST", "/ofrep/v1/evaluate/flags", "[".repeat(5000) + "]".repeat(5000)],
    ["POST", "/ofrep/v1/evaluate/flags", '{"context": {"targetingKey": 1e400}}'],
    ["POST", "/ofrep/v1/evaluate/flags/canary_banner", JSON.stringify({ context: { targetingKey: 12345678901234567890123 } })],
    ["POST", "/ofrep/v1/evaluate/flags/greeting", '{"context": {"targetingKey": "u"}} trailing'],
    ["POST", "/ofrep/v1/evaluate/flags/%00%ff", "{}"],
    ["POST", `/ofrep/v1/evaluate/flags/${"k".repeat(5000)}`, "{}"],
    ["POST", "/v1/resolve/support_prompt", JSON.stringify({ context: { targetingKey: "\ud800" } })],
    ["POST", "/v1/resolve/", "{}"],
    ["PUT", "/v1/resolve/support_prompt", "{}"],
    ["DELETE", "/v1/ruleset", null],
    ["PATCH", "/healthz", "{}"],
    ["GET", "/v1/prompts/", null],
    ["GET", "/ofrep/v1/evaluate", null],
    ["GET", "/admin", null],
    ["POST", "/admin/v1/rulesets/dev/rollback", "{"],
  ];
  for (const [method, path, body] of requests) {
    test(`${method} ${path.slice(0, 60)} answers JSON below 500`, async () => {
      const response = await keyed(`${url}${path}`, { method, body });
      assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}`);
      const parsed = JSON.parse(await response.text());
      assert.ok(parsed.error?.code || parsed.errorCode, JSON.stringify(parsed));
      // The serving Worker's answers name the revision that answered; the admin authority's
      // serve no ruleset and name none.
      assert.equal(response.headers.has("x-promptflag-revision"), !path.startsWith("/admin"));
    });
  }
});

describe("admin API", () => {
  const admin = (path, init = {}) =>
    fetch(`${url}/admin/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });

  test("no token, a wrong token or a wrong scheme is 401 with WWW-Authenticate", async () => {
    const cases = [
      {},
      { authorization: "Bearer wrong" },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Basic ${TOKEN}` },
      { authorization: TOKEN },
    ];
    for (const headers of cases) {
      const response = await fetch(`${url}/admin/v1/rulesets/dev`, { headers });
      await apiError(response, 401, "unauthorized");
      assert.match(response.headers.get("www-authenticate"), /^Bearer/);
      // The admin authority serves no ruleset, so its answers name no revision.
      assert.equal(response.headers.get("x-promptflag-revision"), null);
    }
    // Unauthenticated callers learn nothing about routes either.
    await apiError(await fetch(`${url}/admin/v1/nope`), 401, "unauthorized");
  });

  test("PUT /admin/v1/prompts/{sha256}: 201 created, 200 when stored, then served", async () => {
    const body = `# system\nA body uploaded by a test at ${Date.now()}.\n`;
    const hash = sha256(body);
    const created = await json(await admin(`/prompts/${hash}`, { method: "PUT", body }), 201);
    assert.deepEqual(created, { hash, created: true });
    const again = await json(await admin(`/prompts/${hash}`, { method: "PUT", body }), 200);
    assert.deepEqual(again, { hash, created: false });
    assert.equal(await (await keyed(`${url}/v1/prompts/${hash}`)).text(), body);
  });

  test("PUT /admin/v1/prompts errors: 422 hash_mismatch, 400 bad_hash, 413 too_large, 422 invalid_body", async () => {
    const mismatch = await apiError(await admin(`/prompts/${"a".repeat(64)}`, { method: "PUT", body: "x" }), 422, "hash_mismatch");
    assert.equal(mismatch.computed, sha256("x"));
    await apiError(await admin("/prompts/not-a-hash", { method: "PUT", body: "x" }), 400, "bad_hash");
    const huge = await declareLength(url, `/admin/v1/prompts/${"c".repeat(64)}`, {
      length: 1024 * 1024 + 1,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(huge.status, 413);
    assert.equal(JSON.parse(huge.body).error.code, "too_large");
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
    const { createHash } = await import("node:crypto");
    const latin1Hash = createHash("sha256").update(latin1).digest("hex");
    await apiError(await admin(`/prompts/${latin1Hash}`, { method: "PUT", body: latin1 }), 422, "invalid_body");
    await apiError(await admin(`/prompts/${V1_HASH}`, { method: "GET" }), 405, "method_not_allowed");
  });

  test("GET /admin/v1/rulesets/{env} reports live, latest and kept", async () => {
    const status = await json(await admin("/rulesets/dev"), 200);
    assert.deepEqual(status, { environment: "dev", live: 1, latest: 1, kept: [1], anchors: {} });
    const empty = await json(await admin("/rulesets/staging"), 200);
    assert.deepEqual(empty, { environment: "staging", live: null, latest: null, kept: [], anchors: {} });
    await apiError(await admin("/rulesets/bad:env"), 400, "bad_request");
  });

  test("PUT /admin/v1/rulesets/{env}: validation, stale revisions, conflicts and missing bodies", async () => {
    const put = (ruleset, query = "", environment = "qa") =>
      admin(`/rulesets/${environment}${query}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: typeof ruleset === "string" ? ruleset : JSON.stringify(ruleset),
      });
    const qa = (revision, extra = {}) => fixtureRuleset({ environment: "qa", revision, ...extra });

    const first = await json(await put(qa(3)), 201);
    assert.deepEqual(moved(first), { environment: "qa", revision: 3, previous: null });
    const second = await json(await put(qa(4), "?expected_live=3"), 201);
    assert.deepEqual(moved(second), { environment: "qa", revision: 4, previous: 3 });

    const stale = await apiError(await put(qa(4)), 409, "stale_revision");
    assert.equal(stale.latest, 4);
    await apiError(await put(qa(2)), 409, "stale_revision");
    const conflict = await apiError(await put(qa(5), "?expected_live=3"), 409, "conflict");
    assert.equal(conflict.live, 4);
    await apiError(await put(qa(5), "?expected_live=none"), 409, "conflict");
    await apiError(await put(qa(5), "?expected_live=x"), 400, "bad_request");

    const broken = qa(5);
    broken.flags.greeting.baseline = "missing";
    broken.flags.new_checkout.rules[0].when[0].op = "regex";
    const invalid = await apiError(await put(broken), 422, "invalid_ruleset");
    const paths = invalid.problems.map((problem) => problem.path);
    assert.ok(paths.includes("flags.greeting.baseline"), JSON.stringify(invalid.problems));
    assert.ok(paths.some((path) => path.startsWith("flags.new_checkout.rules[0].when[0]")), JSON.stringify(invalid.problems));
    for (const problem of invalid.problems) {
      assert.deepEqual(Object.keys(problem).sort(), ["code", "message", "path"]);
    }
    const syntax = await apiError(await put("{\"schema\": 1,"), 422, "invalid_ruleset");
    assert.equal(syntax.problems[0].path, "$");
    const elsewhere = await apiError(await put(qa(5), "", "qa2"), 422, "invalid_ruleset");
    assert.equal(elsewhere.problems[0].code, "environment_mismatch");

    const unknownBody = qa(5);
    const missingHash = "b".repeat(64);
    unknownBody.prompts[missingHash] = { id: "ghost", version: "0.1.0", model: "gpt-4o" };
    unknownBody.flags.summarizer_prompt.variants.v2.prompt = missingHash;
    const missing = await apiError(await put(unknownBody), 422, "missing_prompt");
    assert.deepEqual(missing.hashes, [missingHash]);

    const tooLarge = await declareLength(url, "/admin/v1/rulesets/qa", {
      length: 16 * 1024 * 1024 + 1,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(tooLarge.status, 413);
    assert.equal(JSON.parse(tooLarge.body).error.code, "too_large");
    await apiError(await admin("/rulesets/qa", { method: "POST", body: "{}" }), 405, "method_not_allowed");

    const status = await json(await admin("/rulesets/qa"), 200);
    assert.deepEqual(withoutAnchors(status), { environment: "qa", live: 4, latest: 4, kept: [3, 4] });
  });

  test("publishing keeps the last ten revisions", async () => {
    for (let revision = 1; revision <= 12; revision++) {
      const response = await publish(url, fixtureRuleset({ environment: "keep", revision }));
      assert.equal(response.status, 201, await response.text());
    }
    const status = await json(await admin("/rulesets/keep"), 200);
    assert.deepEqual(status.kept, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(await worker.kv.get("ruleset:keep:2"), null);
    assert.ok(await worker.kv.get("ruleset:keep:3"));
  });

  test("POST /admin/v1/rulesets/{env}/rollback: the previous kept revision, a named one, or 404", async () => {
    for (const revision of [1, 2, 3]) {
      const response = await publish(url, fixtureRuleset({ environment: "rb", revision }));
      assert.equal(response.status, 201);
    }
    const rollback = (body) => admin("/rulesets/rb/rollback", { method: "POST", body });
    assert.deepEqual(moved(await json(await rollback("{}"), 200)), { environment: "rb", revision: 2, previous: 3 });
    assert.deepEqual(moved(await json(await rollback(""), 200)), { environment: "rb", revision: 1, previous: 2 });
    await apiError(await rollback("{}"), 404, "revision_not_kept");
    assert.deepEqual(moved(await json(await rollback('{"revision": 3}'), 200)), { environment: "rb", revision: 3, previous: 1 });
    const notKept = await apiError(await rollback('{"revision": 9}'), 404, "revision_not_kept");
    assert.deepEqual(notKept.kept, [1, 2, 3]);
    await apiError(await rollback('{"revision": "2"}'), 400, "bad_request");
    await apiError(await rollback('{"to": 2}'), 400, "bad_request");
    await apiError(await rollback("{"), 400, "bad_request");
    await apiError(await admin("/rulesets/rb/rollback"), 405, "method_not_allowed");
    // A publish after a rollback still has to exceed the latest revision ever published.
    await apiError(await publish(url, fixtureRuleset({ environment: "rb", revision: 3 })), 409, "stale_revision");
  });

  test("an unknown admin route, once authorized, is a 404", async () => {
    await apiError(await admin("/nope"), 404, "not_found");
    await apiError(await admin("/rulesets"), 404, "not_found");
  });
});

describe("admin API without ADMIN_CREDENTIALS", () => {
  let bare;
  before(async () => {
    bare = await startWorker({ cacheTtlMs: 60_000 });
  });
  after(() => bare?.dispose());

  test("every admin route is 404 admin_disabled, with or without a token", async () => {
    for (const [method, path] of [
      ["GET", "/admin/v1/rulesets/dev"],
      ["PUT", "/admin/v1/rulesets/dev"],
      ["POST", "/admin/v1/rulesets/dev/rollback"],
      ["PUT", `/admin/v1/prompts/${V1_HASH}`],
      ["GET", "/admin/anything"],
    ]) {
      for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }, { authorization: "Bearer " }]) {
        const body = method === "GET" ? undefined : "{}";
        await apiError(await fetch(`${bare.url}${path}`, { method, headers, body }), 404, "admin_disabled");
      }
    }
  });
});
