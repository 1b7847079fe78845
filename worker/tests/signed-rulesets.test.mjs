// Signed rulesets on the real Worker (workerd through Miniflare, its own Web Crypto): with
// RULESET_PUBLIC_KEY set, a revision serves only when `signature:<env>:<rev>` verifies over the
// environment, revision, epoch and bytes, and when it does not go back without a higher epoch.
// A replayed old revision, a tampered ruleset, a signature for another environment and an
// unsigned revision are refused, the last good ruleset keeps serving and /healthz says why; a
// rollback signed with the advanced epoch is accepted.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign } from "node:crypto";

import { SERVER_KEY, bearer, eventually, fixtureBodies, fixtureRuleset, json, startWorker } from "./helpers.mjs";

const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const PUBLIC_KEY_HEX = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url").toString("hex");
const ENVIRONMENT = "dev";

/** The signature text of crates/contracts/src/signing.rs for these exact bytes. */
function signatureText(bytes, { environment = ENVIRONMENT, revision, epoch }) {
  const digest = createHash("sha256").update(bytes, "utf8").digest("hex");
  const message = `promptflag-ruleset-signature-v1\n${environment}\n${revision}\n${epoch}\n${digest}`;
  return `v1 epoch=${epoch} ed25519=${sign(null, Buffer.from(message, "utf8"), privateKey).toString("hex")}`;
}

let worker;

/** Stores revision `revision` (signed for `epoch` unless `signature` says otherwise) and points at it. */
async function put(revision, { epoch = 0, signature, bytes } = {}) {
  const text = bytes ?? JSON.stringify(fixtureRuleset({ revision }));
  await worker.kv.put(`ruleset:${ENVIRONMENT}:${revision}`, text);
  if (signature !== null) {
    await worker.kv.put(`signature:${ENVIRONMENT}:${revision}`, signature ?? signatureText(text, { revision, epoch }));
  }
  await worker.kv.put(`ruleset:${ENVIRONMENT}`, String(revision));
  return text;
}

const health = async () => json(await fetch(`${worker.url}/healthz`), 200);

/** Waits until a check has run since the pointer moved, then returns /healthz. */
function settled(check) {
  return eventually(async () => {
    const body = await health();
    check(body);
    return body;
  });
}

before(async () => {
  worker = await startWorker({ cacheTtlMs: 50, rulesetPublicKey: PUBLIC_KEY_HEX });
  for (const [hash, body] of fixtureBodies()) await worker.kv.put(`prompt:${hash}`, body);
});

after(() => worker?.dispose());

describe("signed rulesets", () => {
  test("a signed revision serves, with its signature on /v1/ruleset", async () => {
    const text = await put(1);
    await settled((body) => assert.deepEqual([body.revision, body.ruleset_source, body.ruleset_signed], [1, "kv", true]));
    const response = await fetch(`${worker.url}/v1/ruleset`, { headers: bearer(SERVER_KEY) });
    assert.equal(await response.text(), text);
    assert.equal(response.headers.get("x-promptflag-signature"), signatureText(text, { revision: 1, epoch: 0 }));
    await put(2);
    await settled((body) => assert.deepEqual([body.revision, body.ruleset_source], [2, "kv"]));
  });

  test("a replayed older revision is refused; the rollback signed with the next epoch is accepted", async () => {
    // Revision 1's own signature (epoch 0) again: a replay.
    await worker.kv.put(`ruleset:${ENVIRONMENT}`, "1");
    const refused = await settled((body) => assert.equal(body.ruleset_source, "last-known-good"));
    assert.equal(refused.revision, 2);
    assert.match(refused.last_refresh_error, /goes back from revision 2 without a higher epoch/);
    // The deliberate rollback: revision 1 signed again for epoch 1.
    const text = JSON.stringify(fixtureRuleset({ revision: 1 }));
    await worker.kv.put(`signature:${ENVIRONMENT}:1`, signatureText(text, { revision: 1, epoch: 1 }));
    const rolledBack = await settled((body) => assert.deepEqual([body.revision, body.ruleset_source], [1, "kv"]));
    assert.equal(rolledBack.last_refresh_error, null);
    // Revision 2, signed for epoch 0, is now the replay.
    await worker.kv.put(`ruleset:${ENVIRONMENT}`, "2");
    const replay = await settled((body) => assert.equal(body.ruleset_source, "last-known-good"));
    assert.equal(replay.revision, 1);
    assert.match(replay.last_refresh_error, /below the accepted epoch 1/);
    // Publishing on keeps the new epoch.
    await put(3, { epoch: 1 });
    await settled((body) => assert.deepEqual([body.revision, body.ruleset_source], [3, "kv"]));
  });

  test("a tampered ruleset, another environment's signature and an unsigned revision are refused", async () => {
    const signed = JSON.stringify(fixtureRuleset({ revision: 4 }));
    const tampered = signed.replace("Hi there", "Hi there, changed after signing");
    assert.notEqual(tampered, signed);
    const cases = [
      ["tampered", { bytes: tampered, signature: signatureText(signed, { revision: 4, epoch: 1 }) }, /does not verify/],
      ["another environment", { signature: signatureText(signed, { environment: "prod", revision: 4, epoch: 1 }) }, /does not verify/],
      ["unsigned", { signature: null }, /is not signed/],
      ["garbled", { signature: "v1 epoch=1 ed25519=00" }, /is not a signature/],
    ];
    for (const [name, options, reason] of cases) {
      if (options.signature === null) await worker.kv.delete(`signature:${ENVIRONMENT}:4`);
      await put(4, options);
      const body = await settled((body) => assert.match(body.last_refresh_error ?? "", reason, name));
      assert.deepEqual([body.revision, body.ruleset_source], [3, "last-known-good"], name);
    }
  });
});
