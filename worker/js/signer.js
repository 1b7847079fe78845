// The admin authority's ruleset signer: Ed25519 with the Worker secret RULESET_SIGNING_KEY,
// through the runtime's Web Crypto, so the Wasm carries no signing code.
//
// The secret is the private key's 32-byte seed as 64 hex digits (`promptflag keys
// ruleset-signing` makes a pair; docs/interfaces.md, "Signed rulesets", gives the openssl
// conversion). The authority hands `rulesetSigner(env)` to its Wasm (`handle_admin`), which
// builds the signed message of crates/contracts/src/signing.rs for every revision it makes live
// and calls the signer with it. A secret that is not such a key makes every call reject with a
// message naming the secret, which the Wasm answers as `503 signing_key_invalid` before it
// writes anything: a misconfigured authority refuses to publish rather than publish unsigned.

// The DER of a PKCS#8 Ed25519 private key up to its 32-byte seed (RFC 8410): Web Crypto imports
// a raw seed only in this form.
const PKCS8_ED25519_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);
const SEED_HEX = /^[0-9a-fA-F]{64}$/;

// The imported key of the secret last seen: importing once per object keeps a publish to one
// signing call. Keyed by the secret's text, so a rotated secret is imported afresh.
let imported = { text: undefined, key: undefined };

/** The seed of a RULESET_SIGNING_KEY text, or an Error that says what the secret must be. */
function seedOf(text) {
  const trimmed = text.trim();
  if (!SEED_HEX.test(trimmed)) {
    return new Error("RULESET_SIGNING_KEY is not an Ed25519 private key: it must be the 32-byte seed as 64 hex digits (promptflag keys ruleset-signing makes one); nothing is written until it is fixed");
  }
  const seed = new Uint8Array(32);
  for (let i = 0; i < 32; i++) seed[i] = Number.parseInt(trimmed.slice(2 * i, 2 * i + 2), 16);
  return seed;
}

async function importSigningKey(text) {
  const seed = seedOf(text);
  if (seed instanceof Error) throw seed;
  const der = new Uint8Array(PKCS8_ED25519_PREFIX.length + seed.length);
  der.set(PKCS8_ED25519_PREFIX);
  der.set(seed, PKCS8_ED25519_PREFIX.length);
  try {
    return await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  } catch (error) {
    throw new Error(`RULESET_SIGNING_KEY could not be imported as an Ed25519 key (${error?.message ?? error}); nothing is written until it is fixed`);
  }
}

/**
 * The signer for `env`: `(message: Uint8Array) => Promise<Uint8Array>` (the 64-byte Ed25519
 * signature), or `undefined` when RULESET_SIGNING_KEY is not set, and then nothing is signed.
 */
export function rulesetSigner(env) {
  const text = env.RULESET_SIGNING_KEY;
  if (typeof text !== "string" || text.trim() === "") return undefined;
  return async (message) => {
    if (imported.text !== text) imported = { text, key: importSigningKey(text) };
    const key = await imported.key;
    return new Uint8Array(await crypto.subtle.sign("Ed25519", key, message));
  };
}
