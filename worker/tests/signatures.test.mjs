// The publish gate's signature decision on workerd: the built Worker's own module
// worker/js/signatures.js (the gate in JavaScript, Ed25519 and SHA-512 through WebCrypto)
// imported by a test entry in Miniflare, over the example repository's signed
// registry and approvals (examples/keys: committed example keys, never used outside tests).
// Extra signatures are made with `ssh-keygen -Y sign`, so the Worker is checked against OpenSSH.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";

import { ROOT, WORKER_DIR, quietRuntime, sha256 } from "./helpers.mjs";

const EXAMPLE = join(ROOT, "examples", "prompts-repo");
const KEYS = join(ROOT, "examples", "keys");
const read = (path) => readFileSync(path, "utf8");

// The admin authority's build, where the gate runs (worker/build/authority/).
const AUTHORITY_DIR = join(WORKER_DIR, "authority");
// The test entry: the authority's built entry (which instantiates its Wasm) and the signatures
// module.
const ENTRY = `
import "./authority.js";
import { decideGate, GateInputError } from "./signatures.js";
export default {
  async fetch(request) {
    try {
      return Response.json(await decideGate(await request.text()));
    } catch (error) {
      const status = error instanceof GateInputError ? 400 : 500;
      return Response.json({ error: { code: error.code ?? "exception", message: String(error.message) } }, { status });
    }
  },
};
`;

// The approval subject of support_reply@2.0.0, as the build emits it (metadata.yaml).
const subject = () => ({
  prompt: "support_reply@2.0.0",
  author: "carol@acme.example",
  body_sha256: sha256(read(join(EXAMPLE, "prompts", "support_reply", "2.0.0.md"))),
  model: "gpt-4o-mini",
  parameters: { temperature: 0.2, max_tokens: 300, top_p: 1.0 },
  output_schema_sha256: null,
});

// The canonical approval message (docs/interfaces.md), written independently of the Rust code
// (numbers as JSON.stringify writes them, which is the documented form): a signature made over
// it verifies at the edge only if both agree byte for byte.
const canonical = (value) =>
  Array.isArray(value)
    ? `[${value.map(canonical).join(",")}]`
    : value && typeof value === "object"
      ? `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`
      : JSON.stringify(value);

function message(s, environment) {
  return [
    "promptflag approval v1",
    `prompt: ${s.prompt}`,
    `environment: ${environment}`,
    `author: ${s.author}`,
    `body-sha256: ${s.body_sha256}`,
    `model: ${s.model}`,
    `parameters: ${canonical(s.parameters)}`,
    `output-schema-sha256: ${s.output_schema_sha256 ?? "none"}`,
    "",
  ].join("\n");
}

let scratch;
function sshSign(keyName, text) {
  const key = join(scratch, keyName);
  copyFileSync(join(KEYS, keyName), key);
  chmodSync(key, 0o600);
  const file = join(scratch, `message-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  try {
    execFileSync("ssh-keygen", ["-Y", "sign", "-n", "promptflag", "-f", key, file], { stdio: "pipe" });
  } catch (error) {
    if (error.code === "ENOENT") throw new Error("ssh-keygen is not installed; this suite needs it (apt-get install openssh-client)");
    throw error;
  }
  return read(`${file}.sig`);
}

const registry1 = () => ({
  text: read(join(EXAMPLE, "governance", "registry", "1.json")),
  signature: read(join(EXAMPLE, "governance", "registry", "1.json.sig")),
});
const danaProd = () => read(join(EXAMPLE, "approvals", "support_reply", "2.0.0", "prod", "dana@acme.example.sig"));

const input = (overrides = {}) => ({
  owner_keys: read(join(KEYS, "owner_keys")),
  registry_changes: [registry1()],
  environment: "prod",
  require_approvals: true,
  prompts: [subject()],
  approvals: [{ prompt: "support_reply@2.0.0", signature: danaProd() }],
  ...overrides,
});

describe("the signature gate on workerd", () => {
  let mf;
  const decide = async (body) => {
    const response = await mf.dispatchFetch("http://gate.test/", { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
    return { status: response.status, body: await response.json() };
  };
  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "promptflag-signatures-"));
    mf = new Miniflare({
      modules: [
        { type: "ESModule", path: join(AUTHORITY_DIR, "signatures-test-entry.mjs"), contents: ENTRY },
        { type: "ESModule", path: join(AUTHORITY_DIR, "authority.js") },
        { type: "ESModule", path: join(AUTHORITY_DIR, "glue.js") },
        { type: "ESModule", path: join(AUTHORITY_DIR, "signatures.js") },
        { type: "ESModule", path: join(AUTHORITY_DIR, "signer.js") },
        { type: "CompiledWasm", path: join(AUTHORITY_DIR, "authority_bg.wasm") },
      ],
      modulesRoot: AUTHORITY_DIR,
      compatibilityDate: "2026-07-01",
      ...quietRuntime(),
    });
    await mf.ready;
  });
  after(async () => {
    await mf?.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("a registered reviewer's signed approval allows, under the root-signed registry", async () => {
    const { status, body } = await decide(input());
    assert.equal(status, 200);
    assert.equal(body.allowed, true, body.message);
    assert.equal(body.registry_serial, 1);
    assert.deepEqual(body.approved, [{ prompt: "support_reply@2.0.0", by: ["dana@acme.example"] }]);
  });

  test("the message written here and the Rust one agree: an ssh-keygen signature over it verifies", async () => {
    const signature = sshSign("dana", message(subject(), "staging"));
    const { body } = await decide(input({ environment: "staging", approvals: [{ prompt: "support_reply@2.0.0", signature }] }));
    assert.equal(body.allowed, true, body.message);
  });

  test("a retyped approval (the hash edited to match new content, the signature kept) is approval_invalid", async () => {
    const edited = { ...subject(), body_sha256: sha256("an edited body") };
    const { body } = await decide(input({ prompts: [edited] }));
    assert.equal(body.allowed, false);
    assert.equal(body.reason, "approval_invalid");
  });

  test("an author approving their own prompt is self_approval", async () => {
    const signature = sshSign("carol", message(subject(), "prod"));
    const { body } = await decide(input({ approvals: [{ prompt: "support_reply@2.0.0", signature }] }));
    assert.equal(body.reason, "self_approval");
  });

  test("no approval is approval_missing", async () => {
    const { body } = await decide(input({ approvals: [] }));
    assert.equal(body.reason, "approval_missing");
  });

  test("a registry change signed by a non-owner is refused; signed by an owner it is accepted", async () => {
    // Registry 2 gives carol the override role.
    const second = JSON.parse(registry1().text);
    second.serial = 2;
    second.members.find((m) => m.name === "carol@acme.example").roles.push("override");
    const text = `${JSON.stringify(second, null, 2)}\n`;
    const bySomeone = { text, signature: sshSign("dana", text) };
    const { body } = await decide(input({ registry_changes: [registry1(), bySomeone] }));
    assert.equal(body.reason, "registry_change_unsigned");
    assert.equal(body.registry_serial, 1);
    const byOwner = { text, signature: sshSign("olivia", text) };
    const accepted = await decide(input({ registry_changes: [registry1(), byOwner] }));
    assert.equal(accepted.body.allowed, true, accepted.body.message);
    assert.equal(accepted.body.registry_serial, 2);
  });

  test("registry 1 must be signed by a root owner key from outside the repository", async () => {
    const { body } = await decide(input({ owner_keys: read(join(KEYS, "dana.pub")) }));
    assert.equal(body.reason, "registry_change_unsigned");
  });

  test("an input that cannot be decided is a 400 with a code, not a trap", async () => {
    for (const bad of ["not json", "{}", JSON.stringify({ environment: "prod", approvals: 5 })]) {
      const { status, body } = await decide(bad);
      assert.equal(status, 400, bad);
      assert.equal(body.error.code, "invalid_gate_input");
    }
  });
});
