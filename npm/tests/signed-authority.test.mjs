// The npm client verifies what the admin authority signs: the real Worker (worker/build in
// Miniflare, started by the shared harness) with RULESET_SIGNING_KEY on its authority and no
// RULESET_PUBLIC_KEY, so it passes every signature on unchecked and the client given the public
// key is the one that decides. A revision published through the admin API verifies; an older
// revision's pointer written back into KV (its own signature still there) is refused and the last
// good ruleset keeps serving; the authority's rollback, signed again with the next epoch, is
// accepted.

import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { loadPackage, ROOT } from "./support.mjs";

const { PromptflagClient } = await loadPackage();

const ADMIN_TOKEN = "npm-signing-test-token-0123456789abcdef";
const BODY = "You are a helpful support agent. Answer briefly.\n";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const HASH = sha256(BODY);
const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
// The secret and the public key as docs/interfaces.md ("Signed rulesets") has them: 64 hex digits.
const SIGNING_KEY = Buffer.from(jwk.d, "base64url").toString("hex");
const PUBLIC_KEY = Buffer.from(jwk.x, "base64url").toString("hex");

function ruleset(revision, greeting) {
  return {
    schema: 1,
    environment: "dev",
    revision,
    prompts: { [HASH]: { id: "support", version: "1.0.0", model: "gpt-4", parameters: {} } },
    flags: {
      support: { kind: "prompt", variants: { current: { prompt: HASH } }, baseline: "current" },
      greeting: {
        kind: "string",
        variants: { text: { value: greeting } },
        baseline: "text",
      },
    },
  };
}

describe("PromptflagClient with the admin authority's signatures", () => {
  let worker;
  let serverKey;

  async function admin(method, path, body) {
    const response = await fetch(`${worker.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body,
    });
    const text = await response.text();
    assert.ok(response.status < 300, `${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text);
  }

  before(async () => {
    const harness = await import(pathToFileURL(join(ROOT, "tests", "support", "worker-server.mjs")).href);
    serverKey = harness.SERVER_KEY;
    worker = await harness.startWorker({ port: 0, adminToken: ADMIN_TOKEN, environment: "dev", cacheTtlMs: 0, rulesetSigningKey: SIGNING_KEY });
    await admin("PUT", `/admin/v1/prompts/${HASH}`, BODY);
  });

  after(async () => {
    await worker?.dispose();
  });

  test("verifies what the authority signed, refuses a replayed older revision, accepts the rollback", async () => {
    const published = await admin("PUT", "/admin/v1/rulesets/dev", JSON.stringify(ruleset(1, "first")));
    assert.deepEqual([published.epoch, published.signed], [0, true]);
    const client = new PromptflagClient({ baseUrl: worker.url, readKey: serverKey, rulesetPublicKey: PUBLIC_KEY, refreshIntervalMs: 0 });
    const greeting = () => client.evaluate("greeting", { targetingKey: "u1" }).value;
    try {
      await client.ready();
      assert.equal(client.status.revision, 1);
      assert.equal(greeting(), "first");

      await admin("PUT", "/admin/v1/rulesets/dev", JSON.stringify(ruleset(2, "second")));
      assert.deepEqual(await client.refresh(), { updated: true, revision: 2 });

      // Revision 1's pointer written back into KV directly; its epoch-0 signature is still there.
      await worker.kv.put("ruleset:dev", "1");
      await assert.rejects(client.refresh(), (error) => {
        assert.equal(error.problems[0].code, "signature_refused");
        assert.match(error.message, /goes back from revision 2 without a higher epoch/);
        return true;
      });
      assert.equal(client.status.revision, 2, "the last good ruleset keeps serving");
      assert.match(client.status.lastError?.message ?? "", /without a higher epoch/);
      assert.equal(greeting(), "second");

      // The authority's rollback signs revision 1 again for epoch 1.
      const rolledBack = await admin("POST", "/admin/v1/rulesets/dev/rollback?reason=npm", JSON.stringify({ revision: 1 }));
      assert.deepEqual([rolledBack.revision, rolledBack.epoch, rolledBack.signed], [1, 1, true]);
      assert.deepEqual(await client.refresh(), { updated: true, revision: 1 });
      assert.equal(greeting(), "first");
    } finally {
      client.close();
    }
  });
});
