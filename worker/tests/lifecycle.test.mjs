// The ruleset's life at the edge: a kill switch and a rollback published through the admin API
// and served once the cache TTL passes; the TTL itself; the last known good ruleset kept when KV
// holds something corrupt or KV itself fails; the compiled-in fallback; and exposures batched to
// the sink off the response path, where a failing sink never fails a request.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { Miniflare } from "miniflare";

import {
  KV_BINDING,
  TOKEN,
  ROOT,
  apiError,
  eventually,
  fixtureBodies,
  fixtureRuleset,
  json,
  moved,
  withoutAnchors,
  post,
  publish,
  seedKv,
  sha256,
  quietRuntime,
  startWorker,
  workerOptions,
  authorityOptions,
  keyed,
} from "./helpers.mjs";

const KV_ONLY_BODY = "# system\nA body only KV holds.\n";
const KV_ONLY_HASH = sha256(KV_ONLY_BODY);
const V1_HASH = [...fixtureBodies()].find(([, body]) => body.includes("politely"))[0];
// The compiled-in fallback: the example repository's prod bundle, as `cargo xtask build-worker`
// writes it. Its baseline for EU enterprise customers (the holdout rule) is `stable`.
const FALLBACK = JSON.parse(readFileSync(join(ROOT, "worker", "fallback", "bundle.json"), "utf8"));
const FALLBACK_RULESET = JSON.parse(FALLBACK.ruleset);
const FALLBACK_STABLE = FALLBACK_RULESET.prompts[FALLBACK_RULESET.flags.support_prompt.variants.stable.prompt];
const holdout = { targetingKey: "u", plan: "enterprise", region: "eu-west" };

const irishUser = { targetingKey: "user-42", country: "IE" };
const checkout = (url, context = irishUser) => post(url, "/ofrep/v1/evaluate/flags/new_checkout", { context });

async function served(url) {
  const response = await fetch(`${url}/healthz`);
  const body = await json(response, 200);
  return { revision: body.revision, source: body.ruleset_source, header: response.headers.get("x-promptflag-revision") };
}

describe("publishing through the admin API", () => {
  let worker;
  before(async () => {
    worker = await startWorker({ adminToken: TOKEN, cacheTtlMs: 200 });
    assert.equal((await publish(worker.url, fixtureRuleset())).status, 201);
  });
  after(() => worker?.dispose());

  test("a kill switch is served once the TTL passes", async () => {
    await eventually(async () => assert.equal((await served(worker.url)).revision, 1));
    const before = await json(await checkout(worker.url), 200);
    assert.deepEqual([before.value, before.reason], [true, "TARGETING_MATCH"]);

    const killed = fixtureRuleset({ revision: 2 });
    killed.flags.new_checkout.enabled = false;
    const response = await publish(worker.url, killed, { query: "?expected_live=1" });
    assert.deepEqual(moved(await json(response, 201)), { environment: "dev", revision: 2, previous: 1 });

    const after = await eventually(async () => {
      const response = await checkout(worker.url);
      assert.equal(response.headers.get("x-promptflag-revision"), "2");
      return json(response, 200);
    });
    assert.deepEqual([after.value, after.variant, after.reason], [false, "off", "DISABLED"]);
    assert.equal(after.metadata.revision, 2);
  });

  test("a rollback is served once the TTL passes", async () => {
    const rollback = await fetch(`${worker.url}/admin/v1/rulesets/dev/rollback`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: "{}",
    });
    assert.deepEqual(moved(await json(rollback, 200)), { environment: "dev", revision: 1, previous: 2 });
    const after = await eventually(async () => {
      const response = await checkout(worker.url);
      assert.equal(response.headers.get("x-promptflag-revision"), "1");
      return json(response, 200);
    });
    assert.deepEqual([after.value, after.reason], [true, "TARGETING_MATCH"]);
    const status = await json(await fetch(`${worker.url}/admin/v1/rulesets/dev`, { headers: { authorization: `Bearer ${TOKEN}` } }), 200);
    assert.deepEqual(withoutAnchors(status), { environment: "dev", live: 1, latest: 2, kept: [1, 2] });
  });
});

describe("the cache TTL", () => {
  test("within the TTL an isolate keeps serving the revision it compiled", async () => {
    const worker = await startWorker({ adminToken: TOKEN, cacheTtlMs: 600_000 });
    try {
      await seedKv(worker.kv);
      assert.equal((await served(worker.url)).revision, 1);
      assert.equal((await publish(worker.url, fixtureRuleset({ revision: 2 }))).status, 201);
      assert.equal(await worker.kv.get("ruleset:dev"), "2");
      const response = await checkout(worker.url);
      assert.equal(response.headers.get("x-promptflag-revision"), "1");
      assert.equal((await served(worker.url)).source, "kv");
    } finally {
      await worker.dispose();
    }
  });
});

describe("last known good", () => {
  let worker;
  before(async () => {
    worker = await startWorker({ adminToken: TOKEN, cacheTtlMs: 50 });
    await seedKv(worker.kv);
    await eventually(async () => assert.deepEqual(await served(worker.url), { revision: 1, source: "kv", header: "1" }));
  });
  after(() => worker?.dispose());

  const breakages = [
    ["a ruleset that is not JSON", async (kv) => { await kv.put("ruleset:dev:2", "{not json"); await kv.put("ruleset:dev", "2"); }],
    ["a ruleset that does not validate", async (kv) => {
      const invalid = fixtureRuleset({ revision: 3 });
      invalid.flags.greeting.baseline = "nowhere";
      await kv.put("ruleset:dev:3", JSON.stringify(invalid));
      await kv.put("ruleset:dev", "3");
    }],
    ["a pointer to a revision that is not stored", async (kv) => { await kv.put("ruleset:dev", "9"); }],
    ["a pointer that is not a number", async (kv) => { await kv.put("ruleset:dev", "latest"); }],
    ["a revision stored under another revision's key", async (kv) => {
      await kv.put("ruleset:dev:4", JSON.stringify(fixtureRuleset({ revision: 5 })));
      await kv.put("ruleset:dev", "4");
    }],
    ["a ruleset for another environment", async (kv) => {
      await kv.put("ruleset:dev:6", JSON.stringify(fixtureRuleset({ revision: 6, environment: "prod" })));
      await kv.put("ruleset:dev", "6");
    }],
    ["a deleted pointer", async (kv) => { await kv.delete("ruleset:dev"); }],
  ];
  for (const [name, breakIt] of breakages) {
    test(`${name} keeps the last known good ruleset serving`, async () => {
      await breakIt(worker.kv);
      await eventually(async () => assert.equal((await served(worker.url)).source, "last-known-good"));
      const response = await checkout(worker.url);
      assert.equal(response.headers.get("x-promptflag-revision"), "1");
      assert.equal(response.headers.get("x-promptflag-ruleset-source"), "last-known-good");
      assert.equal((await json(response, 200)).value, true);
      // Repair it: the pointer back at revision 1.
      await worker.kv.put("ruleset:dev", "1");
      await eventually(async () => assert.equal((await served(worker.url)).source, "kv"));
    });
  }

  test("a good revision after a bad one is picked up", async () => {
    await worker.kv.put("ruleset:dev:7", "[]");
    await worker.kv.put("ruleset:dev", "7");
    await eventually(async () => assert.equal((await served(worker.url)).source, "last-known-good"));
    const good = fixtureRuleset({ revision: 8 });
    good.flags.greeting.variants.plain.value = "Hello again";
    await worker.kv.put("ruleset:dev:8", JSON.stringify(good));
    await worker.kv.put("ruleset:dev", "8");
    await eventually(async () => assert.deepEqual(await served(worker.url), { revision: 8, source: "kv", header: "8" }));
    const greeting = await json(await post(worker.url, "/ofrep/v1/evaluate/flags/greeting", { context: {} }), 200);
    assert.equal(greeting.value, "Hello again");
  });
});

// A KV binding that fails on demand: a wrapped binding in front of a real namespace, switched by
// a flag that lives in this process.
const FAULTY_KV = `
export default function (env) {
  const check = async () => {
    if ((await (await env.FAULTS.fetch("http://faults/")).text()) === "fail") {
      throw new Error("simulated KV outage");
    }
  };
  return {
    async get(key, type) { await check(); return env.INNER.get(key, type); },
    async getWithMetadata(key, type) { await check(); return env.INNER.getWithMetadata(key, type); },
    async put(key, value, options) { await check(); return env.INNER.put(key, value, options); },
    async delete(key) { await check(); return env.INNER.delete(key); },
    async list(options) { await check(); return env.INNER.list(options); },
  };
}`;

async function startFaultyWorker(faults, options = {}) {
  const main = workerOptions({ adminToken: TOKEN, cacheTtlMs: 50, ...options });
  const authority = authorityOptions({ adminToken: TOKEN, cacheTtlMs: 50, ...options });
  // Both scripts read KV through the faulty binding: the serving Worker and the admin authority.
  const faulty = { kvNamespaces: {}, wrappedBindings: { [KV_BINDING]: { scriptName: "faulty-kv" } } };
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    cf: false,
    ...quietRuntime(),
    workers: [
      { ...main, ...faulty },
      { ...authority, ...faulty },
      {
        name: "faulty-kv",
        modules: [{ type: "ESModule", path: "faulty-kv.mjs", contents: FAULTY_KV }],
        kvNamespaces: { INNER: "promptflag" },
        serviceBindings: { FAULTS: () => new Response(faults.failing ? "fail" : "ok") },
      },
    ],
  });
  const url = (await mf.ready).origin;
  return { mf, url, inner: () => mf.getKVNamespace("INNER", "faulty-kv"), dispose: () => mf.dispose() };
}

describe("KV read failures", () => {
  const faults = { failing: false };
  let worker;
  before(async () => {
    worker = await startFaultyWorker(faults);
    assert.equal((await publish(worker.url, fixtureRuleset())).status, 201);
    await eventually(async () => assert.deepEqual(await served(worker.url), { revision: 1, source: "kv", header: "1" }));
    // Read one body while KV works, so the isolate holds it; store another behind its back.
    assert.equal((await keyed(`${worker.url}/v1/prompts/${V1_HASH}`)).status, 200);
    await (await worker.inner()).put(`prompt:${KV_ONLY_HASH}`, KV_ONLY_BODY);
  });
  after(() => worker?.dispose());

  test("when KV throws, the last known good ruleset keeps serving and nothing is a 5xx but KV-only reads", async () => {
    faults.failing = true;
    try {
      await eventually(async () => assert.equal((await served(worker.url)).source, "last-known-good"));
      const flag = await checkout(worker.url);
      assert.equal(flag.headers.get("x-promptflag-revision"), "1");
      assert.equal((await json(flag, 200)).value, true);
      const bulk = await post(worker.url, "/ofrep/v1/evaluate/flags", { context: irishUser });
      assert.equal(bulk.status, 200);
      await bulk.arrayBuffer();
      // A body read before the outage is still served from the isolate's memory.
      assert.equal((await keyed(`${worker.url}/v1/prompts/${V1_HASH}`)).status, 200);
      // One that only KV has: a JSON 503, not a crash; once KV is back, it is served.
      await apiError(await keyed(`${worker.url}/v1/prompts/${KV_ONLY_HASH}`), 503, "store_unavailable");
      await apiError(
        await fetch(`${worker.url}/admin/v1/rulesets/dev`, { headers: { authorization: `Bearer ${TOKEN}` } }),
        503,
        "store_unavailable",
      );
    } finally {
      faults.failing = false;
    }
    await eventually(async () => assert.equal((await served(worker.url)).source, "kv"));
    assert.equal(await (await keyed(`${worker.url}/v1/prompts/${KV_ONLY_HASH}`)).text(), KV_ONLY_BODY);
  });

  test("when KV fails from the start, the fallback serves", async () => {
    const cold = { failing: true };
    const coldWorker = await startFaultyWorker(cold);
    try {
      const state = await served(coldWorker.url);
      assert.deepEqual([state.revision, state.source], [0, "fallback"]);
      // The fallback's prompt bodies are compiled in, so a resolve works without KV, with the
      // last built baseline's model.
      const resolved = await json(await post(coldWorker.url, "/v1/resolve/support_prompt", { context: holdout }), 200);
      assert.equal(resolved.revision, 0);
      assert.equal(resolved.variant, "stable");
      assert.equal(resolved.prompt.hash, FALLBACK_STABLE.body);
      assert.equal(resolved.prompt.model, FALLBACK_STABLE.model);
      assert.equal(resolved.prompt.body, FALLBACK.prompts[FALLBACK_STABLE.body]);
    } finally {
      await coldWorker.dispose();
    }
  });
});

describe("fallback", () => {
  test("an empty namespace serves the compiled-in fallback ruleset", async () => {
    const worker = await startWorker({ cacheTtlMs: 50 });
    try {
      const health = await served(worker.url);
      assert.deepEqual(health, { revision: 0, source: "fallback", header: "0" });
      const ruleset = await keyed(`${worker.url}/v1/ruleset`);
      assert.equal(ruleset.headers.get("x-promptflag-ruleset-source"), "fallback");
      assert.equal(await ruleset.text(), FALLBACK.ruleset, "the bundle's ruleset, byte for byte");
      const flag = await json(await post(worker.url, "/ofrep/v1/evaluate/flags/support_prompt", { context: holdout }), 200);
      assert.equal(flag.variant, "stable");
      const body = await keyed(`${worker.url}/v1/prompts/${FALLBACK_STABLE.body}`);
      assert.equal(await body.text(), FALLBACK.prompts[FALLBACK_STABLE.body]);
      // Once KV holds a valid ruleset, it replaces the fallback.
      await seedKv(worker.kv);
      await eventually(async () => assert.deepEqual(await served(worker.url), { revision: 1, source: "kv", header: "1" }));
    } finally {
      await worker.dispose();
    }
  });

  test("without a KV binding the fallback serves and the admin API reports the store unavailable", async () => {
    const worker = await startWorker({ adminToken: TOKEN, kvBinding: false });
    try {
      assert.equal((await served(worker.url)).source, "fallback");
      await apiError(
        await fetch(`${worker.url}/admin/v1/rulesets/dev`, { headers: { authorization: `Bearer ${TOKEN}` } }),
        503,
        "store_unavailable",
      );
    } finally {
      await worker.dispose();
    }
  });
});

/** An HTTP sink on 127.0.0.1 that records every POST, answering with `mode()`'s behaviour. */
async function startSink(mode = () => "ok") {
  const batches = [];
  const held = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      batches.push({ contentType: request.headers["content-type"], events: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      const behaviour = mode();
      if (behaviour === "hold") held.push(response);
      else response.writeHead(behaviour === "fail" ? 500 : 204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/exposures`;
  return {
    url,
    batches,
    held,
    events: () => batches.flatMap((batch) => batch.events),
    close: () => {
      for (const response of held) response.writeHead(204).end();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("exposures", () => {
  test("each evaluation served is one exposure in the documented format, batched per request", async () => {
    const sink = await startSink();
    const worker = await startWorker({ cacheTtlMs: 60_000, exposureSink: sink.url });
    try {
      await seedKv(worker.kv);
      assert.equal((await checkout(worker.url)).status, 200);
      const [event] = await eventually(async () => {
        assert.equal(sink.batches.length, 1);
        return sink.batches[0].events;
      });
      assert.equal(sink.batches[0].contentType, "application/json");
      assert.match(event.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual({ ...event, timestamp: undefined }, {
        type: "exposure",
        timestamp: undefined,
        environment: "dev",
        flag_key: "new_checkout",
        variant: "on",
        prompt_id: null,
        prompt_version: null,
        prompt_hash: null,
        revision: 1,
        unit: "user-42",
        reason: "TARGETING_MATCH",
      });

      const resolved = await json(await post(worker.url, "/v1/resolve/support_prompt", { context: { targetingKey: "user-internal-1" } }), 200);
      await eventually(() => assert.equal(sink.batches.length, 2));
      assert.deepEqual(
        sink.batches[1].events.map((e) => [e.flag_key, e.variant, e.prompt_id, e.prompt_version, e.prompt_hash, e.reason]),
        [["support_prompt", "concise", resolved.prompt.id, resolved.prompt.version, resolved.prompt.hash, "TARGETING_MATCH"]],
      );

      // A bulk evaluation is one batch with one exposure per flag served (not the failures).
      const bulk = await json(await post(worker.url, "/ofrep/v1/evaluate/flags", { context: { country: "IE" } }), 200);
      await eventually(() => assert.equal(sink.batches.length, 3));
      const served = bulk.flags.filter((flag) => !flag.errorCode).map((flag) => flag.key).sort();
      assert.deepEqual(sink.batches[2].events.map((e) => e.flag_key).sort(), served);
      assert.ok(sink.batches[2].events.every((e) => e.unit === null));

      // Errors expose nothing: after an unknown flag and a missing targeting key, the next batch
      // is the next success's.
      assert.equal((await post(worker.url, "/ofrep/v1/evaluate/flags/nope", { context: irishUser })).status, 404);
      assert.equal((await post(worker.url, "/ofrep/v1/evaluate/flags/canary_banner", { context: {} })).status, 400);
      assert.equal((await post(worker.url, "/ofrep/v1/evaluate/flags/greeting", { context: { targetingKey: "g" } })).status, 200);
      await eventually(() => assert.equal(sink.batches.length, 4));
      assert.deepEqual(sink.batches[3].events.map((e) => e.flag_key), ["greeting"]);
    } finally {
      await worker.dispose();
      await sink.close();
    }
  });

  test("a sink that fails, or cannot be reached, never fails a request", async () => {
    const failing = await startSink(() => "fail");
    const worker = await startWorker({ cacheTtlMs: 60_000, exposureSink: failing.url });
    try {
      await seedKv(worker.kv);
      for (let i = 0; i < 3; i++) assert.equal((await checkout(worker.url)).status, 200);
      await eventually(() => assert.equal(failing.batches.length, 3));
      assert.equal((await checkout(worker.url)).status, 200);
    } finally {
      await worker.dispose();
      await failing.close();
    }

    const closed = await startSink();
    const deadUrl = closed.url;
    await closed.close();
    const unreachable = await startWorker({ cacheTtlMs: 60_000, exposureSink: deadUrl });
    try {
      await seedKv(unreachable.kv);
      for (let i = 0; i < 3; i++) assert.equal((await checkout(unreachable.url)).status, 200);
      const bad = await startWorker({ cacheTtlMs: 60_000, exposureSink: "not a url" });
      try {
        await seedKv(bad.kv);
        assert.equal((await checkout(bad.url)).status, 200);
      } finally {
        await bad.dispose();
      }
    } finally {
      await unreachable.dispose();
    }
  });

  test("exposures leave after the response: a sink that has not answered does not hold it", async () => {
    const sink = await startSink(() => "hold");
    const worker = await startWorker({ cacheTtlMs: 60_000, exposureSink: sink.url });
    try {
      await seedKv(worker.kv);
      const first = await checkout(worker.url);
      assert.equal(first.status, 200);
      await eventually(() => assert.equal(sink.held.length, 1));
      // The sink still holds the first batch unanswered; more requests are answered regardless.
      const second = await checkout(worker.url);
      assert.equal((await json(second, 200)).value, true);
      assert.equal(sink.held.filter((response) => !response.writableEnded).length >= 1, true);
    } finally {
      await worker.dispose();
      await sink.close();
    }
  });
});
