// The admin authority signs what it makes live, on workerd through Miniflare with real KV and
// Durable Object storage: with RULESET_SIGNING_KEY, every publish, kill, control-loop decision
// and rollback writes `signature:<env>:<rev>` over the exact stored bytes, and a rollback
// advances the epoch and signs its target again; the Worker (RULESET_PUBLIC_KEY) serves what the
// authority signed and refuses an older revision's pointer and signature written back into KV.
// Without the secret nothing is signed; a secret that is not a key refuses every write with 503
// and writes nothing.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";

import { SERVER_KEY, TOKEN, apiError, eventually, fixtureRuleset, json, keyed, publish, sha256, startWorker } from "./helpers.mjs";

const ENVIRONMENT = "dev";
const { privateKey } = generateKeyPairSync("ed25519");
const jwk = privateKey.export({ format: "jwk" });
// The secret's format: the 32-byte seed as 64 hex digits; the public key the same way.
const SIGNING_KEY = Buffer.from(jwk.d, "base64url").toString("hex");
const PUBLIC_KEY = Buffer.from(jwk.x, "base64url").toString("hex");
const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });

/** Checks `text` is a signature of `bytes` as revision `revision` for `epoch` by the test's key. */
function assertSigned(text, bytes, { revision, epoch }) {
  const match = /^v1 epoch=(\d+) ed25519=([0-9a-f]{128})$/.exec(text ?? "");
  assert.ok(match, `not a signature: ${text}`);
  assert.equal(Number(match[1]), epoch);
  const message = `promptflag-ruleset-signature-v1\n${ENVIRONMENT}\n${revision}\n${epoch}\n${sha256(bytes)}`;
  assert.ok(verify(null, Buffer.from(message, "utf8"), publicKey, Buffer.from(match[2], "hex")), `the signature of revision ${revision} does not verify`);
}

const auth = { authorization: `Bearer ${TOKEN}` };
const rollback = (url, revision) =>
  fetch(`${url}/admin/v1/rulesets/${ENVIRONMENT}/rollback?reason=signing`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ revision }),
  });
const health = async (url) => json(await fetch(`${url}/healthz`), 200);

describe("the admin authority with RULESET_SIGNING_KEY", () => {
  let worker;

  before(async () => {
    worker = await startSigned({ rulesetSigningKey: SIGNING_KEY, rulesetPublicKey: PUBLIC_KEY });
  });
  after(() => worker?.dispose());

  test("publish, kill and rollback are signed over the stored bytes; the rollback at the next epoch", async () => {
    const published = await json(await publish(worker.url, fixtureRuleset({ revision: 1 })), 201);
    assert.deepEqual([published.revision, published.epoch, published.signed], [1, 0, true]);
    const first = await worker.kv.get(`ruleset:${ENVIRONMENT}:1`);
    assertSigned(await worker.kv.get(`signature:${ENVIRONMENT}:1`), first, { revision: 1, epoch: 0 });
    const firstTag = await serves(worker.url, 1, 0);

    const killed = await json(await publish(worker.url, fixtureRuleset({ revision: 2, source: "kill" }), { query: "?action=kill&reason=signing" }), 201);
    assert.deepEqual([killed.epoch, killed.signed], [0, true]);
    const second = await worker.kv.get(`ruleset:${ENVIRONMENT}:2`);
    assertSigned(await worker.kv.get(`signature:${ENVIRONMENT}:2`), second, { revision: 2, epoch: 0 });
    await serves(worker.url, 2, 0);

    const rolledBack = await json(await rollback(worker.url, 1), 200);
    assert.deepEqual([rolledBack.revision, rolledBack.epoch, rolledBack.signed], [1, 1, true]);
    assertSigned(await worker.kv.get(`signature:${ENVIRONMENT}:1`), first, { revision: 1, epoch: 1 });
    const rolledBackTag = await serves(worker.url, 1, 1);
    // The same bytes signed again are a new answer: a reader holding the epoch-0 copy gets it.
    assert.notEqual(rolledBackTag, firstTag);
    const again = await keyed(`${worker.url}/v1/ruleset`, { headers: { "if-none-match": firstTag } });
    assert.equal(again.status, 200);
    assertSigned(again.headers.get("x-promptflag-signature"), await again.text(), { revision: 1, epoch: 1 });

    // Publishing on after the rollback keeps the new epoch; a control-loop decision is signed too.
    const third = await json(await publish(worker.url, fixtureRuleset({ revision: 3 }), { query: "?action=rollout&reason=control" }), 201);
    assert.deepEqual([third.epoch, third.signed], [1, true]);
    await serves(worker.url, 3, 1);
  });

  test("an older revision's pointer and signature written back into KV are refused; the last good one serves", async () => {
    // Revision 2 with its own epoch-0 signature, as someone with write access to KV could.
    await worker.kv.put(`ruleset:${ENVIRONMENT}`, "2");
    const refused = await eventually(async () => {
      const body = await health(worker.url);
      assert.equal(body.ruleset_source, "last-known-good");
      return body;
    });
    assert.equal(refused.revision, 3);
    assert.match(refused.last_refresh_error, /revision 2 is signed for epoch 0, below the accepted epoch 1/);
    const response = await keyed(`${worker.url}/v1/ruleset`);
    assert.equal(response.status, 200);
    assert.equal(JSON.parse(await response.text()).revision, 3);
    // The authority's next write puts its own pointer back.
    await json(await publish(worker.url, fixtureRuleset({ revision: 4 })), 201);
    await serves(worker.url, 4, 1);
  });
});

describe("the admin authority without a usable RULESET_SIGNING_KEY", () => {
  test("without the secret nothing is signed", async () => {
    const worker = await startSigned({});
    try {
      const published = await json(await publish(worker.url, fixtureRuleset({ revision: 1 })), 201);
      assert.deepEqual([published.epoch, published.signed], [0, false]);
      assert.equal(await worker.kv.get(`signature:${ENVIRONMENT}:1`), null);
      // A rollback still counts the epoch, so one set later starts above every earlier rollback.
      await json(await publish(worker.url, fixtureRuleset({ revision: 2 })), 201);
      const rolledBack = await json(await rollback(worker.url, 1), 200);
      assert.deepEqual([rolledBack.epoch, rolledBack.signed], [1, false]);
    } finally {
      await worker.dispose();
    }
  });

  for (const [what, secret] of [
    ["not hex", "not-a-key"],
    ["too short", "ab".repeat(31)],
  ]) {
    test(`a secret that is not a key (${what}) refuses every write with 503 and writes nothing`, async () => {
      const worker = await startSigned({ rulesetSigningKey: secret });
      try {
        const refused = await apiError(await publish(worker.url, fixtureRuleset({ revision: 1 })), 503, "signing_key_invalid");
        assert.match(refused.error.message, /RULESET_SIGNING_KEY/);
        const keys = (await worker.kv.list()).keys.map((key) => key.name).filter((name) => !name.startsWith("prompt:"));
        assert.deepEqual(keys, []);
        const status = await json(await fetch(`${worker.url}/admin/v1/rulesets/${ENVIRONMENT}`, { headers: auth }), 200);
        assert.deepEqual([status.live, status.latest], [null, null]);
      } finally {
        await worker.dispose();
      }
    });
  }
});

function startSigned(options) {
  return startWorker({ adminToken: TOKEN, cacheTtlMs: 50, ...options });
}

/**
 * Waits until the Worker serves `revision` from KV, with the authority's signature for `epoch`;
 * returns the answer's entity tag.
 */
async function serves(url, revision, epoch) {
  await eventually(async () => {
    const body = await health(url);
    assert.deepEqual([body.revision, body.ruleset_source], [revision, "kv"]);
  });
  const response = await fetch(`${url}/v1/ruleset`, { headers: { authorization: `Bearer ${SERVER_KEY}` } });
  assert.equal(response.status, 200);
  const bytes = await response.text();
  assertSigned(response.headers.get("x-promptflag-signature"), bytes, { revision, epoch });
  return response.headers.get("etag");
}
