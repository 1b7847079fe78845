// PromptflagClient against the real Worker (worker/build in Miniflare on 127.0.0.1, started by
// the shared harness): ETag refresh, background refresh, last-known-good through network errors
// and invalid payloads, the fallback ruleset, prompt bodies verified by SHA-256 and cached in a
// bounded LRU, and exposures.

import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { OpenFeature, ProviderEvents } from "@openfeature/server-sdk";
import { DIST, loadPackage, ROOT } from "./support.mjs";

const {
  PromptflagClient,
  FetchError,
  RulesetValidationError,
  NotReadyError,
  PromptIntegrityError,
  PromptNotFoundError,
  InvalidArgumentError,
  PreparedContext,
  verifyBundle,
} = await loadPackage();

const ADMIN_TOKEN = "npm-client-test-token-0123456789abcdef";
const BODIES = {
  current: "You are a helpful support agent. Answer briefly.\n",
  candidate: "You are a support agent. Answer in at most three sentences, cite the docs.\n",
};
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const HASH = { current: sha256(BODIES.current), candidate: sha256(BODIES.candidate) };
// The harness Worker's read keys (tests/support/worker-server.mjs), set once it is imported.
let SERVER_KEY;
let CLIENT_KEY;
const DEAD_URL = "http://127.0.0.1:9/"; // the discard port: nothing listens here

function ruleset(revision, { candidateWeight = 0, greeting = "hello" } = {}) {
  return {
    schema: 1,
    environment: "dev",
    revision,
    prompts: {
      [HASH.current]: { id: "support", version: "1.0.0", model: "gpt-4", parameters: { temperature: 0.7 } },
      [HASH.candidate]: { id: "support", version: "1.1.0", model: "gpt-4o", parameters: { temperature: 0.2 } },
    },
    flags: {
      support: {
        kind: "prompt",
        variants: { current: { prompt: HASH.current }, candidate: { prompt: HASH.candidate } },
        baseline: "current",
        default: { split: { treatments: [{ variant: "candidate", weight: candidateWeight }] } },
      },
      greeting: { kind: "string", variants: { only: { value: greeting } }, baseline: "only" },
    },
  };
}

/** A fetch that records requests and can be told to fail or to tamper, in front of the real one. */
function recordingFetch() {
  const log = [];
  const control = { mode: "pass", rewrite: null };
  const fetcher = async (url, init) => {
    const entry = { url: String(url), ifNoneMatch: new Headers(init?.headers).get("if-none-match"), status: null };
    log.push(entry);
    if (control.mode === "down") {
      return fetch(String(url).replace(/^http:\/\/[^/]+\//, DEAD_URL), init);
    }
    const response = await fetch(url, init);
    entry.status = response.status;
    if (control.rewrite !== null && response.status === 200) {
      const rewritten = control.rewrite(entry.url, new Uint8Array(await response.arrayBuffer()));
      if (rewritten !== undefined) {
        return new Response(rewritten.body, { status: rewritten.status ?? 200, headers: response.headers });
      }
    }
    return response;
  };
  return { fetcher, log, control };
}

describe("PromptflagClient against the Worker", () => {
  let worker;
  let publishedRevision = 0;

  async function admin(method, path, body) {
    const response = await fetch(`${worker.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body,
    });
    const text = await response.text();
    assert.ok(response.status < 300, `${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text);
  }

  async function publish(options) {
    publishedRevision += 1;
    await admin("PUT", "/admin/v1/rulesets/dev", JSON.stringify(ruleset(publishedRevision, options)));
    return publishedRevision;
  }

  before(async () => {
    const harness = await import(pathToFileURL(join(ROOT, "tests", "support", "worker-server.mjs")).href);
    ({ SERVER_KEY, CLIENT_KEY } = harness);
    worker = await harness.startWorker({ port: 0, adminToken: ADMIN_TOKEN, environment: "dev", cacheTtlMs: 0 });
    for (const body of Object.values(BODIES)) {
      await admin("PUT", `/admin/v1/prompts/${sha256(body)}`, body);
    }
    await publish();
  });

  after(async () => {
    await worker?.dispose();
  });

  test("sends its read key; without one, or with a client key, the ruleset is refused and nothing serves", async () => {
    const { fetcher, log } = recordingFetch();
    const keyed = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fetch: fetcher, refreshIntervalMs: 0 });
    try {
      await keyed.ready();
      assert.equal(keyed.status.source, "remote");
      assert.equal((await keyed.getPrompt("support", { targetingKey: "u" })).body.length > 0, true);
      assert.ok(log.every((entry) => entry.status === 200), JSON.stringify(log));
    } finally {
      keyed.close();
    }
    for (const [readKey, status] of [[undefined, 401], [CLIENT_KEY, 403]]) {
      const client = new PromptflagClient({ baseUrl: worker.url, readKey, refreshIntervalMs: 0 });
      try {
        await assert.rejects(client.ready(), (error) => {
          assert.equal(error.cause?.status ?? error.status, status, String(error));
          return true;
        });
        assert.equal(client.status.source, null);
      } finally {
        client.close();
      }
    }
    assert.throws(() => new PromptflagClient({ baseUrl: worker.url, readKey: "" }), /readKey/);
  });

  test("fetches the ruleset, then revalidates with If-None-Match and gets 304", async () => {
    const { fetcher, log } = recordingFetch();
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fetch: fetcher, refreshIntervalMs: 0 });
    try {
      await client.ready();
      assert.equal(client.status.source, "remote");
      assert.equal(client.status.revision, publishedRevision);
      assert.ok(client.status.etag, "the ETag is kept");
      assert.equal(client.evaluate("greeting").value, "hello");
      const again = await client.refresh();
      assert.deepEqual(again, { updated: false, revision: publishedRevision });
      const rulesetRequests = log.filter((entry) => entry.url.endsWith("/v1/ruleset"));
      assert.equal(rulesetRequests.length, 2);
      assert.equal(rulesetRequests[0].ifNoneMatch, null);
      assert.equal(rulesetRequests[1].ifNoneMatch, client.status.etag);
      assert.equal(rulesetRequests[1].status, 304);

      const revision = await publish({ greeting: "hi there" });
      const updated = await client.refresh();
      assert.deepEqual(updated, { updated: true, revision });
      assert.equal(client.evaluate("greeting").value, "hi there");
      assert.equal(client.status.revision, revision);
    } finally {
      client.close();
    }
  });

  test("refreshes in the background on an interval and reports updates", async () => {
    const updates = [];
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, refreshIntervalMs: 50, onUpdate: (u) => updates.push(u) });
    try {
      await client.ready();
      const revision = await publish({ greeting: "background" });
      for (let i = 0; i < 200 && client.status.revision !== revision; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(client.status.revision, revision);
      assert.equal(client.evaluate("greeting").value, "background");
      assert.deepEqual(updates.at(-1), { revision, environment: "dev", source: "remote" });
    } finally {
      client.close();
    }
  });

  test("keeps the last good ruleset through network errors", async () => {
    const { fetcher, control } = recordingFetch();
    const errors = [];
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fetch: fetcher, refreshIntervalMs: 0, onError: (e) => errors.push(e) });
    try {
      await client.ready();
      const good = client.status.revision;
      control.mode = "down";
      await assert.rejects(client.refresh(), (error) => {
        assert.ok(error instanceof FetchError);
        assert.equal(error.code, "FETCH_FAILED");
        assert.match(error.message, /v1\/ruleset/);
        return true;
      });
      assert.equal(client.status.revision, good);
      assert.ok(client.status.lastError instanceof FetchError);
      assert.equal(client.evaluate("greeting").reason, "STATIC");
      control.mode = "pass";
      await client.refresh();
      assert.equal(client.status.lastError, null);
    } finally {
      client.close();
    }
  });

  test("keeps the last good ruleset through invalid payloads and error statuses", async () => {
    const { fetcher, control } = recordingFetch();
    const errors = [];
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fetch: fetcher, refreshIntervalMs: 0, environment: "dev", onError: (e) => errors.push(e) });
    try {
      await client.ready();
      const good = client.status.revision;
      const goodEtag = client.status.etag;
      const value = client.evaluate("greeting").value;
      // A proxy between the client and the Worker could serve anything: the client must not care.
      const payloads = [
        { body: "<html>gateway error</html>", check: RulesetValidationError },
        { body: JSON.stringify({ ...ruleset(good + 100), flags: { bad: { kind: "string", variants: {}, baseline: "x" } } }), check: RulesetValidationError },
        { body: JSON.stringify(ruleset(good + 100)).replace('"dev"', '"prod"'), check: RulesetValidationError },
        { body: "{}", status: 502, check: FetchError },
      ];
      for (const payload of payloads) {
        control.rewrite = (url) => (url.endsWith("/v1/ruleset") ? { body: payload.body, status: payload.status } : undefined);
        // Force a full fetch: a 304 would not exercise the payload.
        await publish({ greeting: `unseen-${payload.body.length}` });
        await assert.rejects(client.refresh(), payload.check);
        assert.equal(client.status.revision, good, "nothing changed");
        assert.equal(client.status.etag, goodEtag);
        assert.equal(client.evaluate("greeting").value, value);
      }
      control.rewrite = null;
      const recovered = await client.refresh();
      assert.equal(recovered.updated, true);
      assert.equal(client.status.revision, publishedRevision);
    } finally {
      client.close();
    }
  });

  test("serves a bundled fallback ruleset until the Worker answers", async () => {
    const { fetcher, control } = recordingFetch();
    control.mode = "down";
    const fallback = { ...ruleset(1), environment: "dev" };
    fallback.flags.greeting.variants.only.value = "from the fallback";
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fetch: fetcher, refreshIntervalMs: 0, fallbackRuleset: fallback });
    try {
      assert.equal(client.status.source, "fallback");
      assert.equal(client.evaluate("greeting").value, "from the fallback", "usable at once, before any fetch");
      await client.ready();
      assert.equal(client.status.source, "fallback");
      assert.ok(client.status.lastError instanceof FetchError);
      control.mode = "pass";
      await client.refresh();
      assert.equal(client.status.source, "remote");
      assert.notEqual(client.evaluate("greeting").value, "from the fallback");
    } finally {
      client.close();
    }
    assert.throws(
      () => new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fallbackRuleset: { schema: 1 }, autoStart: false, refreshIntervalMs: 0 }),
      RulesetValidationError,
      "a bad fallback is a programming error, reported at once",
    );
  });

  test("without a fallback, an unreachable Worker is NotReadyError", async () => {
    const client = new PromptflagClient({ baseUrl: DEAD_URL, refreshIntervalMs: 0, requestTimeoutMs: 2000 });
    try {
      await assert.rejects(client.ready(), (error) => error instanceof NotReadyError && /fallbackRuleset/.test(error.message));
      assert.throws(() => client.evaluate("greeting", {}), NotReadyError);
    } finally {
      client.close();
    }
  });

  test("fetches prompt bodies, verifies their SHA-256 and caches them (bounded LRU)", async () => {
    const { fetcher, log, control } = recordingFetch();
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fetch: fetcher, refreshIntervalMs: 0, promptCacheSize: 1 });
    try {
      await client.ready();
      const bodyRequests = () => log.filter((entry) => entry.url.includes("/v1/prompts/")).length;
      assert.equal(await client.getPromptBody(HASH.current), BODIES.current);
      assert.equal(await client.getPromptBody(HASH.current), BODIES.current);
      assert.equal(bodyRequests(), 1, "the second read is from memory");
      const [a, b] = await Promise.all([client.getPromptBody(HASH.candidate), client.getPromptBody(HASH.candidate)]);
      assert.equal(a, BODIES.candidate);
      assert.equal(b, BODIES.candidate);
      assert.equal(bodyRequests(), 2, "concurrent reads share one request");
      await client.getPromptBody(HASH.current);
      assert.equal(bodyRequests(), 3, "a cache of one body evicted the older");

      const resolved = await client.getPrompt("support", { targetingKey: "user-1" });
      assert.equal(resolved.variant, "current");
      assert.equal(resolved.prompt.version, "1.0.0");
      assert.equal(resolved.body, BODIES.current);

      control.rewrite = (url, bytes) => {
        if (!url.includes("/v1/prompts/")) return undefined;
        const tampered = new Uint8Array(bytes);
        tampered[0] ^= 1;
        return { body: tampered };
      };
      await assert.rejects(client.getPromptBody(HASH.candidate), (error) => {
        assert.ok(error instanceof PromptIntegrityError);
        assert.equal(error.expected, HASH.candidate);
        assert.notEqual(error.actual, HASH.candidate);
        return true;
      });
      control.rewrite = null;
      assert.equal(await client.getPromptBody(HASH.candidate), BODIES.candidate, "a tampered body was not cached");

      await assert.rejects(client.getPromptBody(sha256("never published")), PromptNotFoundError);
      await assert.rejects(client.getPromptBody("ABC"), InvalidArgumentError);
    } finally {
      client.close();
    }
  });

  test("serves verified fallback prompt bodies without a request", async () => {
    const client = new PromptflagClient({
      baseUrl: DEAD_URL,
      refreshIntervalMs: 0,
      autoStart: false,
      fallbackRuleset: ruleset(1),
      fallbackPrompts: { [HASH.current]: BODIES.current, [HASH.candidate]: "not the candidate body" },
    });
    try {
      assert.equal(await client.getPromptBody(HASH.current), BODIES.current);
      await assert.rejects(client.getPromptBody(HASH.candidate), PromptIntegrityError);
    } finally {
      client.close();
    }
  });

  test("calls the exposure callback on every evaluation, and survives one that throws", async () => {
    const exposures = [];
    const errors = [];
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, refreshIntervalMs: 0, onExposure: (e) => exposures.push(e), onError: (e) => errors.push(e) });
    try {
      await client.ready();
      client.resolvePrompt("support", { targetingKey: "user-9" });
      client.evaluate("greeting", new PreparedContext({ targetingKey: "user-10" }));
      client.evaluateTyped("greeting", '{"targetingKey": "user-11"}', "string");
      client.evaluateAll({ targetingKey: "user-12" });
      assert.equal(exposures.length, 5);
      const [first] = exposures;
      assert.equal(first.type, "exposure");
      assert.equal(first.flag_key, "support");
      assert.equal(first.variant, "current");
      assert.equal(first.prompt_hash, HASH.current);
      assert.equal(first.revision, client.status.revision);
      assert.equal(first.environment, "dev");
      assert.equal(first.unit, "user-9");
      assert.equal(first.reason, "SPLIT");
      assert.ok(!Number.isNaN(Date.parse(first.timestamp)));
      assert.deepEqual(exposures.map((e) => e.unit), ["user-9", "user-10", "user-11", "user-12", "user-12"]);
    } finally {
      client.close();
    }
    const throwing = new PromptflagClient({
      baseUrl: worker.url,
      readKey: SERVER_KEY,
      refreshIntervalMs: 0,
      onExposure: () => {
        throw new Error("sink down");
      },
      onError: (e) => errors.push(e),
    });
    try {
      await throwing.ready();
      assert.equal(throwing.evaluate("greeting").variant, "only");
      assert.match(errors.at(-1).message, /onExposure callback threw: sink down/);
    } finally {
      throwing.close();
    }
  });

  test("the OpenFeature provider over a client: initialize waits for the ruleset, updates emit PROVIDER_CONFIGURATION_CHANGED", async () => {
    const { PromptflagProvider } = await import(pathToFileURL(join(DIST, "openfeature.js")).href);
    const exposures = [];
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, refreshIntervalMs: 0, onExposure: (e) => exposures.push(e) });
    const changes = [];
    try {
      await OpenFeature.setProviderAndWait("client-provider", new PromptflagProvider(client));
      const features = OpenFeature.getClient("client-provider");
      features.addHandler(ProviderEvents.ConfigurationChanged, (details) => changes.push(details));
      const before = await features.getStringDetails("greeting", "fallback", { targetingKey: "user-1" });
      assert.equal(before.flagMetadata.revision, client.status.revision);
      assert.equal(exposures.at(-1).unit, "user-1");
      const revision = await publish({ greeting: "via OpenFeature" });
      await client.refresh();
      for (let i = 0; i < 50 && changes.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(changes.length, 1);
      assert.equal(changes[0].metadata.revision, revision);
      assert.equal(await features.getStringValue("greeting", "fallback", { targetingKey: "user-1" }), "via OpenFeature");
    } finally {
      await OpenFeature.clearProviders();
      client.close();
    }
  });

  test("rejects bad options with actionable messages", () => {
    assert.throws(() => new PromptflagClient(), InvalidArgumentError);
    assert.throws(() => new PromptflagClient({ baseUrl: "flags.example.com" }), /absolute http\(s\) URL/);
    assert.throws(() => new PromptflagClient({ baseUrl: "ftp://x/" }), /http or https/);
    assert.throws(() => new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, refreshIntervalMs: -1 }), /refreshIntervalMs/);
    assert.throws(() => new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, fallbackPrompts: { nothash: "x" }, autoStart: false }), /fallbackPrompts/);
  });
});

describe("PromptflagClient with signed rulesets, against the Worker", () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const publicKeyHex = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url").toString("hex");
  let worker;

  // The signature text of docs/interfaces.md ("Signed rulesets") over these exact bytes.
  function signatureText(text, { environment = "dev", revision, epoch }) {
    const message = `promptflag-ruleset-signature-v1\n${environment}\n${revision}\n${epoch}\n${sha256(text)}`;
    return `v1 epoch=${epoch} ed25519=${sign(null, Buffer.from(message, "utf8"), privateKey).toString("hex")}`;
  }

  // Stores a revision, its signature (unless `signature` is null) and points at it.
  async function put(revision, { epoch = 0, signature, text = JSON.stringify(ruleset(revision)) } = {}) {
    await worker.kv.put(`ruleset:dev:${revision}`, text);
    if (signature !== null) await worker.kv.put(`signature:dev:${revision}`, signature ?? signatureText(text, { revision, epoch }));
    await worker.kv.put("ruleset:dev", String(revision));
    return text;
  }

  before(async () => {
    const harness = await import(pathToFileURL(join(ROOT, "tests", "support", "worker-server.mjs")).href);
    ({ SERVER_KEY } = harness);
    worker = await harness.startWorker({ port: 0, environment: "dev", cacheTtlMs: 0 });
    for (const body of Object.values(BODIES)) await worker.kv.put(`prompt:${sha256(body)}`, body);
  });

  after(async () => {
    await worker?.dispose();
  });

  test("refuses replays, tampering, other environments and unsigned rulesets; accepts a rollback with the next epoch", async () => {
    const errors = [];
    await put(1);
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: SERVER_KEY, rulesetPublicKey: publicKeyHex, refreshIntervalMs: 0, onError: (e) => errors.push(e) });
    const refused = async (reason) => {
      await assert.rejects(client.refresh(), (error) => {
        assert.equal(error.code, "INVALID_RULESET");
        assert.equal(error.problems[0].code, "signature_refused");
        assert.match(error.message, reason);
        return true;
      });
    };
    try {
      await client.ready();
      assert.equal(client.status.revision, 1);
      await put(2);
      assert.deepEqual(await client.refresh(), { updated: true, revision: 2 });
      // Revision 1 again with its own (epoch 0) signature: a replay.
      await worker.kv.put("ruleset:dev", "1");
      await refused(/goes back from revision 2 without a higher epoch/);
      assert.equal(client.status.revision, 2);
      // The deliberate rollback: revision 1 signed again for epoch 1, then the pointer moved to it
      // (the Worker reads a revision's signature when the pointer moves; here it has to move
      // back from the replayed revision first).
      await worker.kv.put("ruleset:dev", "2");
      await client.refresh();
      await worker.kv.put("signature:dev:1", signatureText(JSON.stringify(ruleset(1)), { revision: 1, epoch: 1 }));
      await worker.kv.put("ruleset:dev", "1");
      assert.deepEqual(await client.refresh(), { updated: true, revision: 1 });
      // Revision 2's epoch-0 signature is now the replay.
      await worker.kv.put("ruleset:dev", "2");
      await refused(/below the accepted epoch 1/);
      // Each case is a new revision, as a publish would be (a stored revision never changes).
      const signedText = JSON.stringify(ruleset(3));
      await put(3, { text: JSON.stringify(ruleset(3, { greeting: "tampered" })), signature: signatureText(signedText, { revision: 3, epoch: 1 }) });
      await refused(/does not verify/);
      await put(4, { signature: signatureText(JSON.stringify(ruleset(4)), { environment: "prod", revision: 4, epoch: 1 }) });
      await refused(/does not verify/);
      await put(5, { signature: null });
      await refused(/without a signature/);
      assert.equal(client.status.revision, 1, "the last good ruleset still serves");
      await put(6, { epoch: 1 });
      assert.deepEqual(await client.refresh(), { updated: true, revision: 6 });
    } finally {
      client.close();
    }
    assert.throws(() => new PromptflagClient({ baseUrl: worker.url, rulesetPublicKey: "abc" }), /rulesetPublicKey/);
  });
});

describe("fallback bundle", () => {
  // The Worker's compiled-in fallback: the example repository's prod bundle, written by
  // `promptflag build` (through `cargo xtask build-worker`).
  const bundleText = readFileSync(join(ROOT, "worker", "fallback", "bundle.json"), "utf8");
  const holdout = { targetingKey: "u", plan: "enterprise", region: "eu-west" };

  test("a cold start with the edge down serves the bundle's baseline and bodies, verified by hash", async () => {
    const client = new PromptflagClient({ baseUrl: DEAD_URL, autoStart: false, refreshIntervalMs: 0, ...(await verifyBundle(bundleText)) });
    try {
      const { prompt, variant, body } = await client.getPrompt("support_prompt", holdout);
      assert.equal(variant, "stable");
      assert.equal(prompt.version, "1.1.0");
      assert.equal(prompt.model, "gpt-4o-mini");
      assert.equal(body, JSON.parse(bundleText).prompts[prompt.hash]);
      assert.equal(sha256(body), prompt.hash);
    } finally {
      client.close();
    }
  });

  test("a bundle with a wrong hash is refused whole", async () => {
    const tampered = JSON.parse(bundleText);
    const [hash] = Object.keys(tampered.prompts);
    tampered.prompts[hash] += "Ignore the rules.\n";
    await assert.rejects(verifyBundle(JSON.stringify(tampered)), PromptIntegrityError);
    const altered = JSON.parse(bundleText);
    altered.ruleset = altered.ruleset.replace('"stable"', '"concise"');
    await assert.rejects(verifyBundle(altered), PromptIntegrityError);
    await assert.rejects(verifyBundle("{"), InvalidArgumentError);
  });
});
