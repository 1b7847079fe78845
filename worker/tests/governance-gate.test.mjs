// The signature gate in the admin authority, on workerd through Miniflare with real KV and
// Durable Object storage: an environment whose server-side policy requires approvals publishes
// a ruleset only when every prompt body new to it carries a subject matching the ruleset's
// content and a valid approval from a registered reviewer who is not its author, under a key
// registry rooted in the OWNER_KEYS secret. Signatures are made with `ssh-keygen -Y sign` over
// the committed example keys (examples/keys, never used outside tests).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ROOT, fixtureBodies, fixtureRuleset, json, startWorker } from "./helpers.mjs";

const KEYS = join(ROOT, "examples", "keys");
const REGISTRY = join(ROOT, "examples", "prompts-repo", "governance", "registry");
const read = (path) => readFileSync(path, "utf8");

const TOKEN_PROD = "prod-publisher-token-0123456789abcdef";
const TOKEN_STAGING = "staging-publisher-token-0123456789abcdef";
const TOKEN_STAGING_OVERRIDE = "staging-override-token-0123456789abcdef";
const CREDENTIALS = [
  { name: "ci-prod", token: TOKEN_PROD, environment: "prod", role: "publisher" },
  { name: "ci-staging", token: TOKEN_STAGING, environment: "staging", role: "publisher" },
  { name: "oncall-staging", token: TOKEN_STAGING_OVERRIDE, environment: "staging", role: "override" },
];
const POLICY = { prod: { require_approvals: true }, staging: { require_approvals: true } };
const PUBLISH_WITH_APPROVALS = "application/vnd.promptflag.publish+json";
const AUTHOR = "carol@acme.example";

const auth = (token) => ({ authorization: `Bearer ${token}` });

// The approval subject of each prompt of a ruleset, from its content.
const subjects = (ruleset) =>
  Object.entries(ruleset.prompts).map(([hash, entry]) => ({
    prompt: `${entry.id}@${entry.version}`,
    author: AUTHOR,
    body_sha256: hash,
    model: entry.model,
    parameters: entry.parameters,
    output_schema_sha256: null,
  }));

// The canonical approval message (docs/interfaces.md), written here independently of the gate.
const canonical = (value) =>
  Array.isArray(value)
    ? `[${value.map(canonical).join(",")}]`
    : value && typeof value === "object"
      ? `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`
      : JSON.stringify(value);
const approvalMessage = (s, environment) =>
  `promptflag approval v1\nprompt: ${s.prompt}\nenvironment: ${environment}\nauthor: ${s.author}\nbody-sha256: ${s.body_sha256}\nmodel: ${s.model}\nparameters: ${canonical(s.parameters)}\noutput-schema-sha256: ${s.output_schema_sha256 ?? "none"}\n`;

let scratch;
let counter = 0;
function sshSign(keyName, text) {
  const key = join(scratch, keyName);
  copyFileSync(join(KEYS, keyName), key);
  chmodSync(key, 0o600);
  const file = join(scratch, `message-${counter++}`);
  writeFileSync(file, text);
  execFileSync("ssh-keygen", ["-Y", "sign", "-n", "promptflag", "-f", key, file], { stdio: "pipe" });
  return read(`${file}.sig`);
}

const registry1 = () => ({ text: read(join(REGISTRY, "1.json")), signature: read(join(REGISTRY, "1.json.sig")) });
const approvals = (list, keyName, environment, edit = (s) => s) =>
  list.map((s) => ({ prompt: s.prompt, signature: sshSign(keyName, approvalMessage(edit({ ...s }), environment)) }));

describe("the signature gate in the admin authority", () => {
  let worker;

  async function storeBodies(token) {
    for (const [hash, body] of fixtureBodies()) {
      const response = await fetch(`${worker.url}/admin/v1/prompts/${hash}`, { method: "PUT", headers: auth(token), body });
      assert.ok([200, 201].includes(response.status));
    }
  }

  function publishWith(ruleset, material, token = TOKEN_PROD, query = "") {
    return fetch(`${worker.url}/admin/v1/rulesets/${ruleset.environment}${query}`, {
      method: "PUT",
      headers: { ...auth(token), "content-type": PUBLISH_WITH_APPROVALS },
      body: JSON.stringify({ ruleset: JSON.stringify(ruleset), ...material }),
    });
  }

  async function auditLog(token) {
    return (await json(await fetch(`${worker.url}/admin/v1/audit`, { headers: auth(token) }), 200)).entries;
  }

  // A refusal: 403 with the decision's reason, and nothing changed (no live revision, no
  // revision stored, no audit entry for the environment).
  async function assertRefused(response, reason, environment = "prod", token = TOKEN_PROD) {
    const body = await json(response, 403);
    assert.equal(body.error.code, reason, JSON.stringify(body));
    assert.equal(body.decision.allowed, false);
    assert.equal(body.decision.reason, reason);
    assert.equal(await worker.kv.get(`ruleset:${environment}`), null);
    assert.equal(await worker.kv.get(`ruleset:${environment}:1`), null);
    assert.deepEqual((await auditLog(token)).filter((entry) => entry.environment === environment), []);
  }

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "promptflag-gate-"));
    worker = await startWorker({ adminCredentials: CREDENTIALS, environmentPolicy: POLICY, ownerKeys: read(join(KEYS, "owner_keys")) });
    await storeBodies(TOKEN_PROD);
  });

  after(async () => {
    await worker?.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const prod = () => fixtureRuleset({ environment: "prod", revision: 1 });

  test("a publish without approvals is approval_missing", async () => {
    const response = await fetch(`${worker.url}/admin/v1/rulesets/prod`, {
      method: "PUT",
      headers: { ...auth(TOKEN_PROD), "content-type": "application/json" },
      body: JSON.stringify(prod()),
    });
    await assertRefused(response, "approval_missing");
  });

  test("a retyped approval (signed over other content) is approval_invalid", async () => {
    const list = subjects(prod());
    const retyped = approvals(list, "dana", "prod", (s) => ({ ...s, body_sha256: "0".repeat(64) }));
    await assertRefused(await publishWith(prod(), { registry_changes: [registry1()], prompts: list, approvals: retyped }), "approval_invalid");
  });

  test("a subject that does not describe the ruleset's content is approval_invalid", async () => {
    const list = subjects(prod());
    list[0].parameters = { ...list[0].parameters, temperature: 1.5 };
    const signed = approvals(list, "dana", "prod");
    await assertRefused(await publishWith(prod(), { registry_changes: [registry1()], prompts: list, approvals: signed }), "approval_invalid");
  });

  test("an author approving their own prompts is self_approval", async () => {
    const list = subjects(prod());
    await assertRefused(
      await publishWith(prod(), { registry_changes: [registry1()], prompts: list, approvals: approvals(list, "carol", "prod") }),
      "self_approval",
    );
  });

  test("a registry change signed by a non-owner is registry_change_unsigned", async () => {
    const list = subjects(prod());
    const second = JSON.parse(registry1().text);
    second.serial = 2;
    second.members[1].roles = ["reviewer"];
    const text = `${JSON.stringify(second, null, 2)}\n`;
    const change = { text, signature: sshSign("dana", text) };
    await assertRefused(
      await publishWith(prod(), { registry_changes: [registry1(), change], prompts: list, approvals: approvals(list, "dana", "prod") }),
      "registry_change_unsigned",
    );
  });

  test("a registered reviewer's approval publishes, and bodies the environment serves need none again", async () => {
    const list = subjects(prod());
    const response = await publishWith(prod(), { registry_changes: [registry1()], prompts: list, approvals: approvals(list, "dana", "prod") });
    const body = await json(response, 201);
    assert.equal(body.revision, 1);
    assert.equal(await worker.kv.get("ruleset:prod"), "1");
    assert.equal(await worker.kv.get("ruleset:prod:1"), JSON.stringify(prod()));
    assert.deepEqual((await auditLog(TOKEN_PROD)).map((entry) => entry.action), ["publish"]);
    // The bodies now serve in prod: the next revision of the same content needs no approval,
    // and the registry the authority accepted is not sent again.
    const next = await fetch(`${worker.url}/admin/v1/rulesets/prod`, {
      method: "PUT",
      headers: { ...auth(TOKEN_PROD), "content-type": "application/json" },
      body: JSON.stringify(fixtureRuleset({ environment: "prod", revision: 2 })),
    });
    await json(next, 201);
  });

  test("an override credential passes a refusal with a reason, as its own audit entry", async () => {
    const staging = fixtureRuleset({ environment: "staging", revision: 1 });
    const list = subjects(staging);
    const material = { registry_changes: [registry1()], prompts: list, approvals: approvals(list, "carol", "staging") };
    await assertRefused(await publishWith(staging, material, TOKEN_STAGING), "self_approval", "staging", TOKEN_STAGING);
    // Overriding without a reason is refused too.
    await assertRefused(await publishWith(staging, material, TOKEN_STAGING_OVERRIDE, "?override=true"), "self_approval", "staging", TOKEN_STAGING);
    const response = await publishWith(staging, material, TOKEN_STAGING_OVERRIDE, "?override=true&reason=incident%2042");
    await json(response, 201);
    const entries = (await auditLog(TOKEN_STAGING)).filter((entry) => entry.environment === "staging");
    assert.deepEqual(entries.map((entry) => [entry.action, entry.actor]), [["override", "oncall-staging"], ["publish", "oncall-staging"]]);
    assert.equal(entries[0].reason, "incident 42");
    assert.match(entries[0].summary.overridden[0], /author cannot approve their own prompt/);
  });
});
