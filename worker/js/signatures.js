// The publish gate's signature checks, at the edge: the Wasm (promptflag-governance, through
// worker/src/governance.rs) lists the Ed25519 checks a gate input needs — each a public key,
// the exact bytes signed (SSHSIG's signed data) and the signature — and decides once they are
// made; this module makes them with workerd's WebCrypto (`crypto.subtle.verify("Ed25519", …)`),
// so no signature library is linked into the Wasm.
//
// The input and the decision are documented in docs/interfaces.md ("Signed governance"). A
// Durable Object (or any handler beside the entry's `fetch`) calls `decideGate` with the root
// owner keys from the OWNER_KEYS secret, the registry it has accepted, and the publish.
//
// This module expects the Wasm to be instantiated already (the entry, index.js, does it when it
// is imported).

import * as wasm from "./glue.js";

function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// One check: whether `signature` is `public_key`'s over `signed_data`. A key WebCrypto refuses
// to import (not a valid Ed25519 point) is a failed check, not an exception.
async function verifyCheck(check) {
  try {
    const key = await crypto.subtle.importKey("raw", bytesOf(check.public_key), { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, bytesOf(check.signature), bytesOf(check.signed_data));
  } catch {
    return false;
  }
}

/** Makes every check of a list (as `governance_checks` returns it); resolves to booleans. */
export function verifyChecks(checks) {
  return Promise.all(checks.map(verifyCheck));
}

class GateInputError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
  }
}

function parsed(text) {
  const value = JSON.parse(text);
  if (value && !Array.isArray(value) && value.error) throw new GateInputError(value.error);
  return value;
}

/**
 * The gate's decision for an input (an object or its JSON text): `{allowed, reason?, message,
 * registry_serial, registry?, problems, approved, overridden}`. Throws a `GateInputError` (with
 * the error's `code`) for an input that cannot be decided at all; the caller answers it with a
 * 400.
 */
export async function decideGate(input) {
  const text = typeof input === "string" ? input : JSON.stringify(input);
  const checks = parsed(wasm.governance_checks(text));
  const results = await verifyChecks(checks);
  return parsed(wasm.governance_decide(text, JSON.stringify(results)));
}

export { GateInputError };
