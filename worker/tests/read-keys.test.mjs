// Read keys on the real Worker (workerd through Miniflare): which routes need which kind of key,
// what a caller without one gets (401 JSON, in OFREP's shape on the OFREP routes), a client key
// refused on the ruleset and bodies, rotation (two keys of a kind valid at once), and a Worker
// whose READ_KEYS is missing or invalid answering 503 with what to fix.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  CLIENT_KEY,
  SERVER_KEY,
  apiError,
  bearer,
  fixtureBodies,
  json,
  post,
  seedKv,
  startWorker,
} from "./helpers.mjs";

const [HASH] = [...fixtureBodies().keys()];
// A second server key, as during a rotation: the old and the new one are both valid.
const ROTATED_SERVER_KEY = "rotated-server-key-fedcba9876543210fedcba9876543210";

let worker;
let url;

before(async () => {
  worker = await startWorker({
    cacheTtlMs: 60_000,
    readKeys: [
      { name: "backend-old", key: SERVER_KEY, kind: "server" },
      { name: "backend-new", key: ROTATED_SERVER_KEY, kind: "server" },
      { name: "web", key: CLIENT_KEY, kind: "client" },
    ],
  });
  url = worker.url;
  await seedKv(worker.kv);
});

after(() => worker?.dispose());

describe("read keys", () => {
  test("without a key every read route is a 401 JSON; /healthz stays open", async () => {
    for (const path of ["/v1/ruleset", `/v1/prompts/${HASH}`]) {
      const response = await fetch(`${url}${path}`);
      await apiError(response, 401, "unauthorized");
      assert.equal(response.headers.get("www-authenticate"), "Bearer");
    }
    await apiError(await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: "u" } }, { authorization: "" }), 401, "unauthorized");
    for (const path of ["/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/greeting"]) {
      const body = await json(await post(url, path, { context: {} }, { authorization: "" }), 401);
      assert.equal(body.errorCode, "GENERAL");
      assert.match(body.errorDetails, /read key/);
    }
    const configuration = await json(await fetch(`${url}/ofrep/v1/configuration`), 401);
    assert.equal(configuration.errorCode, "GENERAL");
    assert.equal((await json(await fetch(`${url}/healthz`), 200)).status, "ok");
  });

  test("a wrong key, a key without the Bearer scheme or a prefix of a key is refused", async () => {
    for (const authorization of [`Bearer ${SERVER_KEY}x`, SERVER_KEY, `Bearer ${SERVER_KEY.slice(0, -1)}`, "Bearer", `Basic ${SERVER_KEY}`]) {
      await apiError(await fetch(`${url}/v1/ruleset`, { headers: { authorization } }), 401, "unauthorized");
    }
  });

  test("a client key reads the evaluation routes but never the ruleset or a prompt body", async () => {
    await apiError(await fetch(`${url}/v1/ruleset`, { headers: bearer(CLIENT_KEY) }), 403, "server_key_required");
    await apiError(await fetch(`${url}/v1/prompts/${HASH}`, { headers: bearer(CLIENT_KEY) }), 403, "server_key_required");
    const resolved = await json(await post(url, "/v1/resolve/support_prompt", { context: { targetingKey: "u" } }, bearer(CLIENT_KEY)), 200);
    assert.equal(typeof resolved.prompt.body, "string");
    const bulk = await json(await post(url, "/ofrep/v1/evaluate/flags", { context: { targetingKey: "u" } }, bearer(CLIENT_KEY)), 200);
    assert.ok(bulk.flags.length > 0);
    // What a client key gets names variants, never a segment's unit list.
    assert.doesNotMatch(JSON.stringify(bulk), /"units"|"segments"/);
  });

  test("both server keys of a rotation read the ruleset", async () => {
    for (const key of [SERVER_KEY, ROTATED_SERVER_KEY]) {
      const ruleset = await json(await fetch(`${url}/v1/ruleset`, { headers: bearer(key) }), 200);
      assert.equal(ruleset.revision, 1);
      const body = await fetch(`${url}/v1/prompts/${HASH}`, { headers: bearer(key) });
      assert.equal(body.status, 200);
      assert.equal(await body.text(), fixtureBodies().get(HASH));
    }
  });
});

describe("a Worker without valid read keys", () => {
  const cases = [
    ["no READ_KEYS", null, /no read keys/],
    ["a key under 32 bytes", [{ name: "too-short", key: "0123456789", kind: "server" }], /"too-short" is 10 bytes/],
    ["not JSON", "server:abc", /READ_KEYS is not a JSON array/],
  ];
  for (const [name, readKeys, message] of cases) {
    test(`${name}: the read routes answer 503 saying what to fix`, async () => {
      const bare = await startWorker({ cacheTtlMs: 60_000, readKeys });
      try {
        await seedKv(bare.kv);
        const body = await apiError(await fetch(`${bare.url}/v1/ruleset`, { headers: bearer(SERVER_KEY) }), 503, "read_keys_invalid");
        assert.match(body.error.message, message);
        const ofrep = await json(await post(bare.url, "/ofrep/v1/evaluate/flags", { context: {} }), 503);
        assert.match(ofrep.errorDetails, message);
        assert.equal((await fetch(`${bare.url}/healthz`)).status, 200);
      } finally {
        await bare.dispose();
      }
    });
  }
});
