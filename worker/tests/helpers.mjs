// Shared set-up for the Worker's Node suites: the built Worker in Miniflare (through the shared
// harness, tests/support/worker-server.mjs), the fixture ruleset and bodies, and small HTTP
// helpers. Not a suite itself (no `.test.` in the name).

import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";

export { startWorker, workerOptions, authorityOptions, quietRuntime, credentialsFor, KV_BINDING, ROOT, WORKER_DIR, SERVER_KEY, CLIENT_KEY, DEFAULT_READ_KEYS } from "../../tests/support/worker-server.mjs";
import { SERVER_KEY } from "../../tests/support/worker-server.mjs";

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
export const TOKEN = "worker-test-admin-token-0123456789abcdef";

export const sha256 = (text) => createHash("sha256").update(text, "utf8").digest("hex");

/** The fixture prompt bodies, by SHA-256. */
export function fixtureBodies() {
  const bodies = new Map();
  for (const name of readdirSync(join(FIXTURES, "prompts")).filter((n) => n.endsWith(".md"))) {
    const body = readFileSync(join(FIXTURES, "prompts", name), "utf8");
    bodies.set(sha256(body), body);
  }
  return bodies;
}

/** The fixture ruleset (a fresh copy), with fields overridden. */
export function fixtureRuleset(overrides = {}) {
  return { ...JSON.parse(readFileSync(join(FIXTURES, "ruleset.json"), "utf8")), ...overrides };
}

/** Writes bodies, a ruleset revision, the history and the pointer straight into KV. */
export async function seedKv(kv, { ruleset = fixtureRuleset(), environment = ruleset.environment } = {}) {
  for (const [hash, body] of fixtureBodies()) await kv.put(`prompt:${hash}`, body);
  await kv.put(`ruleset:${environment}:${ruleset.revision}`, JSON.stringify(ruleset));
  await kv.put(`meta:${environment}`, JSON.stringify({ latest: ruleset.revision, kept: [ruleset.revision] }));
  await kv.put(`ruleset:${environment}`, String(ruleset.revision));
}

/** Publishes through the admin API: every body, then the ruleset. Returns the publish response. */
export async function publish(url, ruleset, { token = TOKEN, bodies = fixtureBodies(), query = "" } = {}) {
  for (const [hash, body] of bodies) {
    const response = await fetch(`${url}/admin/v1/prompts/${hash}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
      body,
    });
    assert.ok([200, 201].includes(response.status), `PUT prompt ${hash}: ${response.status}`);
  }
  return fetch(`${url}/admin/v1/rulesets/${ruleset.environment}${query}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(ruleset),
  });
}

/**
 * A publish's or rollback's answer without its `audit` head and its signing `epoch` and `signed`
 * (checked to be an audit head, an epoch and a flag; worker/tests/authority-signing.test.mjs
 * checks their values).
 */
export function moved(body) {
  const { audit, epoch, signed, ...rest } = body;
  assert.ok(Number.isInteger(audit?.seq) && /^[0-9a-f]{64}$/.test(audit?.hash ?? ""), JSON.stringify(body));
  assert.ok(Number.isSafeInteger(epoch) && epoch >= 0 && typeof signed === "boolean", JSON.stringify(body));
  return rest;
}

/** An environment's status without the audit anchors of its kept revisions. */
export function withoutAnchors(status) {
  const { anchors, ...rest } = status;
  assert.equal(typeof anchors, "object", JSON.stringify(status));
  return rest;
}

/** The `Authorization` header that carries a read key. */
export const bearer = (key) => ({ authorization: `Bearer ${key}` });

/**
 * `fetch` with the harness's server read key (which reads every route), unless the caller's
 * headers set `authorization` themselves.
 */
export function keyed(input, init = {}) {
  return fetch(input, { ...init, headers: { ...bearer(SERVER_KEY), ...init.headers } });
}

/** POST with a JSON (or raw string) body, with the server read key unless `headers` set one. */
export function post(url, path, body, headers = {}) {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...bearer(SERVER_KEY), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/**
 * Sends only the headers of a request that declares a `Content-Length` of `length` (and a few
 * bytes), and resolves with the answer: `{status, headers, body}`. A server that refuses the
 * declared size answers before the body arrives; a real client would still be uploading.
 */
export function declareLength(url, path, { method = "PUT", length, headers = {} }) {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}${path}`, {
      method,
      headers: { ...headers, "content-length": String(length) },
    });
    request.on("response", (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") });
        request.destroy();
      });
    });
    request.on("error", (error) => {
      if (!request.destroyed) reject(error);
    });
    request.write("{");
  });
}

/** The response's JSON, asserting the status and that the body is JSON. */
export async function json(response, status) {
  const text = await response.text();
  assert.equal(response.status, status, `status ${response.status}, body ${text}`);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return JSON.parse(text);
}

/** A promptflag error body: `{"error": {"code", "message"}}` with the code given. */
export async function apiError(response, status, code) {
  const body = await json(response, status);
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
  return body;
}

/** Waits until `check` holds (it may throw while it does not), polling; fails after `limitMs`. */
export async function eventually(check, { limitMs = 10_000, everyMs = 25 } = {}) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}

/** Waits until the Worker serves `revision` from KV (after a publish, once the TTL passes). */
export function servingRevision(url, revision) {
  return eventually(async () => {
    const response = await fetch(`${url}/healthz`);
    const body = await response.json();
    assert.deepEqual([body.revision, body.ruleset_source], [revision, "kv"]);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
