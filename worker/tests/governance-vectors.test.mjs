// The gate's shared vectors on workerd: every input of crates/governance/tests/vectors.json
// (written by that crate's `vectors` test, with real Ed25519 signatures) goes through the
// Worker's own worker/js/signatures.js in Miniflare, and its answer must be the Rust crate's,
// field for field: the decision, or the error code of an input that cannot be decided. The
// crate's test fails when the file is not what the crate answers, so the JavaScript gate at the
// edge and the Rust gate of the companion cannot drift apart unnoticed.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";

import { ROOT, WORKER_DIR, quietRuntime } from "./helpers.mjs";

const VECTORS = JSON.parse(readFileSync(join(ROOT, "crates", "governance", "tests", "vectors.json"), "utf8"));

// The test entry: the request body is a gate input's text; the answer is the decision, or
// `{error: code}` for an input that cannot be decided (as the vectors write it).
const ENTRY = `
import { decideGate, GateInputError } from "./signatures.js";
export default {
  async fetch(request) {
    try {
      return Response.json(await decideGate(await request.text()));
    } catch (error) {
      if (!(error instanceof GateInputError)) throw error;
      return Response.json({ error: error.code });
    }
  },
};
`;

describe("the gate's shared vectors, decided by the Worker's JavaScript on workerd", () => {
  let mf;
  before(async () => {
    mf = new Miniflare({
      modules: [
        { type: "ESModule", path: join(WORKER_DIR, "vectors-test-entry.mjs"), contents: ENTRY },
        { type: "ESModule", path: join(WORKER_DIR, "signatures.js") },
      ],
      modulesRoot: WORKER_DIR,
      compatibilityDate: "2026-07-01",
      ...quietRuntime(),
    });
    await mf.ready;
  });
  after(async () => {
    await mf?.dispose();
  });

  test("there are vectors for allowing, refusing and undecidable inputs", () => {
    assert.ok(VECTORS.some((v) => v.answer.allowed === true));
    assert.ok(VECTORS.some((v) => v.answer.allowed === false));
    assert.ok(VECTORS.some((v) => typeof v.answer.error === "string"));
  });

  for (const vector of VECTORS) {
    test(vector.name, async () => {
      const response = await mf.dispatchFetch("http://gate.test/", { method: "POST", body: vector.input });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), vector.answer);
    });
  }
});
