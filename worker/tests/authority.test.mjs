// The admin authority (the Durable Object behind /admin/*) on workerd through Miniflare, with
// real KV and Durable Object storage: the compare-and-set on revisions, credentials scoped to one
// environment and one role, the promotion gate from server-side policy, and the audit chain with
// its anchors in KV. Every refusal is checked to leave KV, the state and the audit log unchanged.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { apiError, fixtureBodies, fixtureRuleset, json, publish, sha256 as sha, startWorker } from "./helpers.mjs";

const TOKEN_DEV = "dev-publisher-token-0123456789abcdef";
const TOKEN_STAGING = "staging-publisher-token-0123456789abcdef";
const TOKEN_PROD = "prod-publisher-token-0123456789abcdef";
const TOKEN_PROD_OVERRIDE = "prod-override-token-0123456789abcdef";
const CREDENTIALS = [
  { name: "ci-dev", token: TOKEN_DEV, environment: "dev", role: "publisher" },
  { name: "ci-staging", token: TOKEN_STAGING, environment: "staging", role: "publisher" },
  { name: "ci-prod", token: TOKEN_PROD, environment: "prod", role: "publisher" },
  { name: "oncall-prod", token: TOKEN_PROD_OVERRIDE, environment: "prod", role: "override" },
];
const POLICY = { prod: { promote_from: "staging" } };

const auth = (token) => ({ authorization: `Bearer ${token}` });

async function status(url, environment, token) {
  return json(await fetch(`${url}/admin/v1/rulesets/${environment}`, { headers: auth(token) }), 200);
}

async function audit(url, token, after = 0) {
  return json(await fetch(`${url}/admin/v1/audit?after=${after}`, { headers: auth(token) }), 200);
}

/**
 * Everything a refused write must leave as it was: the state, KV's rulesets and history, and the
 * audit log. (Prompt bodies are content-addressed and any credential may store one, so the
 * bodies a refused publish uploaded first may stay.)
 */
async function snapshot(worker, environment, token) {
  const keys = (await worker.kv.list()).keys.map((key) => key.name).filter((name) => !name.startsWith("prompt:")).sort();
  const pointer = await worker.kv.get(`ruleset:${environment}`);
  return { state: await status(worker.url, environment, token), keys, pointer, audit: await audit(worker.url, token) };
}

describe("the admin authority", () => {
  let worker;

  before(async () => {
    worker = await startWorker({ adminCredentials: CREDENTIALS, environmentPolicy: POLICY, cacheTtlMs: 50 });
  });

  after(async () => {
    await worker?.dispose();
  });

  test("twenty concurrent publishes of one revision: one 201, nineteen 409, the winner's bytes stored", async () => {
    const first = await publish(worker.url, fixtureRuleset({ revision: 1, source: "seed" }), { token: TOKEN_DEV });
    await json(first, 201);
    const writers = Array.from({ length: 20 }, (_, index) => fixtureRuleset({ revision: 2, source: `writer-${index}` }));
    const answers = await Promise.all(
      writers.map((ruleset) =>
        fetch(`${worker.url}/admin/v1/rulesets/dev`, {
          method: "PUT",
          headers: { ...auth(TOKEN_DEV), "content-type": "application/json" },
          body: JSON.stringify(ruleset),
        }),
      ),
    );
    const statuses = answers.map((response) => response.status);
    assert.equal(statuses.filter((code) => code === 201).length, 1, `statuses: ${statuses}`);
    assert.equal(statuses.filter((code) => code === 409).length, 19, `statuses: ${statuses}`);
    const winner = writers[statuses.indexOf(201)];
    for (const [index, response] of answers.entries()) {
      const body = await response.json();
      if (statuses[index] === 409) {
        assert.equal(body.error.code, "stale_revision");
        assert.equal(body.latest, 2, "a loser learns the current revision");
      }
    }
    assert.equal(await worker.kv.get("ruleset:dev:2"), JSON.stringify(winner));
    assert.equal(await worker.kv.get("ruleset:dev"), "2");
    const state = await status(worker.url, "dev", TOKEN_DEV);
    assert.deepEqual([state.live, state.latest], [2, 2]);
    // One audit entry per commit: the seed and the winner, not twenty-one.
    const log = await audit(worker.url, TOKEN_DEV);
    const dev = log.entries.filter((entry) => entry.environment === "dev");
    assert.deepEqual(dev.map((entry) => [entry.action, entry.revision, entry.actor]), [["publish", 1, "ci-dev"], ["publish", 2, "ci-dev"]]);
  });

  test("a credential scoped to dev cannot write prod, and nothing changes", async () => {
    const before = await snapshot(worker, "prod", TOKEN_PROD);
    const refused = await publish(worker.url, fixtureRuleset({ environment: "prod", revision: 1 }), { token: TOKEN_DEV });
    const body = await apiError(refused, 403, "forbidden");
    assert.equal(body.credential, "ci-dev");
    assert.match(body.error.message, /scoped to dev, not prod/);
    const rollback = await fetch(`${worker.url}/admin/v1/rulesets/prod/rollback`, { method: "POST", headers: auth(TOKEN_DEV) });
    await apiError(rollback, 403, "forbidden");
    assert.deepEqual(await snapshot(worker, "prod", TOKEN_PROD), before);
  });

  test("prod needs its prompt bodies accepted in staging first, whatever the upload says", async () => {
    // A body no staging ruleset has named: the upload cannot vouch for itself.
    const fresh = "An unreviewed prompt body.\n";
    const bodies = new Map([...fixtureBodies(), [sha(fresh), fresh]]);
    const ruleset = fixtureRuleset({ environment: "prod", revision: 1 });
    ruleset.prompts[sha(fresh)] = { id: "fresh", version: "1.0.0" };
    const before = await snapshot(worker, "prod", TOKEN_PROD);
    const refused = await publish(worker.url, ruleset, { token: TOKEN_PROD, bodies });
    const body = await apiError(refused, 403, "promotion_required");
    assert.equal(body.missing.length, bodies.size);
    // Asking for an override needs the override role, and an override needs a reason.
    await apiError(await publish(worker.url, ruleset, { token: TOKEN_PROD, bodies, query: "?override=true&reason=urgent" }), 403, "forbidden");
    await apiError(await publish(worker.url, ruleset, { token: TOKEN_PROD_OVERRIDE, bodies, query: "?override=true" }), 400, "reason_required");
    assert.deepEqual(await snapshot(worker, "prod", TOKEN_PROD), before);

    // Staging accepts the fixture's bodies; prod may then serve them, and only them.
    await json(await publish(worker.url, fixtureRuleset({ environment: "staging", revision: 1 }), { token: TOKEN_STAGING }), 201);
    await apiError(await publish(worker.url, ruleset, { token: TOKEN_PROD, bodies }), 403, "promotion_required");
    await json(await publish(worker.url, fixtureRuleset({ environment: "prod", revision: 1 }), { token: TOKEN_PROD }), 201);

    // The override role with a reason passes the gate, recorded as its own entry.
    const reason = "hotfix for incident 7";
    const forced = await publish(worker.url, { ...ruleset, revision: 2 }, {
      token: TOKEN_PROD_OVERRIDE,
      bodies,
      query: `?override=true&reason=${encodeURIComponent(reason)}`,
    });
    await json(forced, 201);
    const entries = (await audit(worker.url, TOKEN_PROD)).entries.filter((entry) => entry.environment === "prod");
    assert.deepEqual(entries.map((entry) => [entry.action, entry.revision, entry.actor]), [
      ["publish", 1, "ci-prod"],
      ["override", 2, "oncall-prod"],
      ["publish", 2, "oncall-prod"],
    ]);
    assert.equal(entries[1].reason, reason);
    assert.match(entries[1].summary.overridden[0], /accepted in staging/);
  });

  test("the audit log is one hash chain, anchored by the kept revisions in KV", async () => {
    await json(await fetch(`${worker.url}/admin/v1/rulesets/dev/rollback?reason=bad%20copy`, { method: "POST", headers: auth(TOKEN_DEV) }), 200);
    const log = await audit(worker.url, TOKEN_DEV);
    const head = await json(await fetch(`${worker.url}/admin/v1/audit/head`, { headers: auth(TOKEN_DEV) }), 200);
    assert.deepEqual(log.head, head);
    let previous = "0".repeat(64);
    for (const [index, entry] of log.entries.entries()) {
      assert.equal(entry.seq, index + 1);
      assert.equal(entry.prev_hash, previous);
      assert.match(entry.hash, /^[0-9a-f]{64}$/);
      previous = entry.hash;
    }
    assert.equal(head.hash, previous);
    const last = log.entries.at(-1);
    assert.deepEqual([last.action, last.environment, last.revision, last.previous_revision, last.reason], ["rollback", "dev", 1, 2, "bad copy"]);
    // Each kept revision carries the entry it was published under, in KV's metadata.
    const state = await status(worker.url, "dev", TOKEN_DEV);
    for (const revision of state.kept) {
      const anchor = state.anchors[revision];
      const entry = log.entries.find((candidate) => candidate.seq === anchor.audit_seq);
      assert.equal(entry.hash, anchor.audit_hash);
      assert.deepEqual([entry.environment, entry.revision], ["dev", revision]);
    }
    // Pages: after and limit.
    const page = await json(await fetch(`${worker.url}/admin/v1/audit?after=1&limit=2`, { headers: auth(TOKEN_DEV) }), 200);
    assert.deepEqual(page.entries.map((entry) => entry.seq), [2, 3]);
    await apiError(await fetch(`${worker.url}/admin/v1/audit?after=x`, { headers: auth(TOKEN_DEV) }), 400, "bad_request");
  });
});

describe("admin credentials", () => {
  test("a token under 32 bytes turns the admin API off with a reason naming its credential", async () => {
    const worker = await startWorker({
      adminCredentials: [
        { name: "good", token: TOKEN_DEV, environment: "dev", role: "publisher" },
        { name: "laptop", token: "short-token", environment: "dev", role: "publisher" },
      ],
    });
    try {
      const refused = await fetch(`${worker.url}/admin/v1/rulesets/dev`, { headers: auth(TOKEN_DEV) });
      const body = await apiError(refused, 503, "credentials_invalid");
      assert.equal(body.credential, "laptop");
      assert.match(body.error.message, /at least 32 bytes/);
      // The serving path is unaffected.
      assert.equal((await fetch(`${worker.url}/healthz`)).status, 200);
    } finally {
      await worker.dispose();
    }
  });
});
