// The publish gate's signature decision, at the edge, in JavaScript: the SSH signature format
// (SSHSIG armor and blob, the exact bytes an Ed25519 signature covers), ssh-ed25519 public keys,
// the signed key registry and its chain, the canonical approval message and the decision. It
// follows the Rust crate promptflag-governance (the companion's reference) rule for rule and
// message for message; worker/tests/governance-vectors.test.mjs runs the vectors that crate's
// tests write (crates/governance/tests/vectors.json) through both, so the two cannot disagree.
//
// It is JavaScript rather than Wasm to keep the Worker's upload within its budget: workerd's
// WebCrypto already does Ed25519, SHA-512 and SHA-256, and the parsers are a few kilobytes here
// against about twenty gzipped in the Wasm.
//
// The input and the decision are documented in docs/interfaces.md ("Signed governance"). The
// admin authority (worker/js/index.js) unpacks a publish with `withPublishGate`; its Wasm calls
// the gate that returns for a publish to an environment that requires approvals, which decides
// with the root owner keys from the OWNER_KEYS secret, the registry the authority accepted, and
// the publish's content and approvals.

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

const NAMESPACE = "promptflag";
const KEY_TYPE = "ssh-ed25519";
const MAGIC = "SSHSIG";
const BEGIN = "-----BEGIN SSH SIGNATURE-----";
const END = "-----END SSH SIGNATURE-----";
const HEADER = "promptflag approval v1";

// The bounds of promptflag-governance, in UTF-8 bytes or items.
const MAX_ARMOR_BYTES = 4096;
const MAX_KEY_LINE_BYTES = 1024;
const MAX_KEYS_IN_LIST = 64;
const MAX_REGISTRY_BYTES = 64 * 1024;
const MAX_MEMBERS = 256;
const MAX_MESSAGE_BYTES = 16 * 1024;
const MAX_INPUT_BYTES = 1024 * 1024;
const MAX_REGISTRY_CHANGES = 64;
const MAX_PROMPTS = 256;
const MAX_APPROVALS = 1024;

/** An input the gate cannot decide at all, with the Rust crate's error `code`; a 400. */
export class GateInputError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// The crate's errors: a code and the message its `Display` writes.
const tooLarge = (what, limit) => new GateInputError("too_large", `${what} is larger than ${limit} bytes`);
const base64Error = (what) => new GateInputError("invalid_base64", `${what} is not valid base64`);
const keyError = (reason) => new GateInputError("invalid_public_key", `not an ssh-ed25519 public key: ${reason}`);
const signatureError = (reason) => new GateInputError("invalid_signature", `not an SSH signature: ${reason}`);
const registryError = (reason) => new GateInputError("invalid_registry", `invalid key registry: ${reason}`);
const approvalError = (reason) => new GateInputError("invalid_approval", `invalid approval subject: ${reason}`);
const inputError = (reason) => new GateInputError("invalid_gate_input", `invalid gate input: ${reason}`);

const byteLength = (text) => encoder.encode(text).length;
// Rust's `{:?}` of a string, for the plain strings these messages quote.
const quoted = (text) => JSON.stringify(text);
// Rust's `char::is_whitespace` (Unicode White_Space) and `char::is_control` (Cc).
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const trim = (text) => text.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu, "");
const isAsciiWhitespace = (c) => c === " " || c === "\t" || c === "\n" || c === "\f" || c === "\r";
// Rust's `str::lines`: split on "\n", a trailing "\r" dropped, no empty last line.
function lines(text) {
  const parts = text.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}
// Strings ordered as Rust orders them (UTF-8 bytes, which is code point order).
function compareText(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// ---- encodings: base64 with padding, the SSH wire format -------------------------------------

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64Encode(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

// Standard base64, ASCII whitespace skipped, padding only at the end and only as much as the
// length needs, leftover bits zero: exactly what promptflag-governance accepts.
function base64Decode(text, what) {
  const out = [];
  let accumulator = 0;
  let bits = 0;
  let padding = 0;
  let symbols = 0;
  for (const c of text) {
    if (isAsciiWhitespace(c)) continue;
    if (c === "=") {
      padding++;
      continue;
    }
    const value = ALPHABET.indexOf(c);
    if (padding > 0 || value < 0 || c.length !== 1) throw base64Error(what);
    symbols++;
    accumulator = ((accumulator << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((accumulator >> bits) & 0xff);
    }
  }
  const leftoverOk = bits < 6 && (accumulator & ((1 << bits) - 1)) === 0;
  const paddingOk = padding === 0 || padding === (4 - (symbols % 4)) % 4;
  if (!leftoverOk || !paddingOk || padding > 2) throw base64Error(what);
  return Uint8Array.from(out);
}

// Reads the SSH wire format with bounds checks: no input makes a read go past its end.
class WireReader {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.what = what;
  }
  take(count) {
    if (this.bytes.length < count) throw signatureError(`${this.what} is truncated`);
    const head = this.bytes.subarray(0, count);
    this.bytes = this.bytes.subarray(count);
    return head;
  }
  u32() {
    const b = this.take(4);
    return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  }
  string() {
    return this.take(this.u32());
  }
  isEmpty() {
    return this.bytes.length === 0;
  }
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function sshString(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

const sameBytes = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);
const textIs = (bytes, text) => sameBytes(bytes, encoder.encode(text));

// ---- ssh-ed25519 public keys -----------------------------------------------------------------

function keyFromBlob(blob) {
  const invalidBlob = () => keyError("the base64 does not hold an SSH key blob");
  const reader = new WireReader(blob, "the public key blob");
  let keyType;
  let key;
  try {
    keyType = reader.string();
    if (!textIs(keyType, KEY_TYPE)) throw keyError("the blob is not an ssh-ed25519 key");
    key = reader.string();
  } catch (error) {
    if (error.code === "invalid_public_key") throw error;
    throw invalidBlob();
  }
  if (!reader.isEmpty()) throw invalidBlob();
  if (key.length !== 32) throw keyError("an ed25519 key is 32 bytes");
  return Uint8Array.from(key);
}

/** The 32 key bytes of an `ssh-ed25519 AAAA… comment` line. */
function parseKey(line) {
  if (byteLength(line) > MAX_KEY_LINE_BYTES) throw tooLarge("a public key line", MAX_KEY_LINE_BYTES);
  const fields = line.split(/[ \t\n\f\r]+/).filter((field) => field !== "");
  if (fields.length === 0) throw keyError("the line is empty");
  if (fields[0] !== KEY_TYPE) throw keyError(`the key type is ${quoted(fields[0])}; only ssh-ed25519 keys are accepted`);
  if (fields.length < 2) throw keyError("the base64 key is missing after ssh-ed25519");
  return keyFromBlob(base64Decode(fields[1], "the public key"));
}

const keyBlob = (key) => concat([sshString(encoder.encode(KEY_TYPE)), sshString(key)]);

/** `SHA256:…`, as `ssh-keygen -l` prints it. */
async function fingerprint(key) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", keyBlob(key)));
  return `SHA256:${base64Encode(digest).replace(/=+$/, "")}`;
}

function parseKeyList(text) {
  const keys = [];
  for (const raw of lines(text)) {
    const line = trim(raw);
    if (line === "" || line.startsWith("#")) continue;
    if (keys.length === MAX_KEYS_IN_LIST) throw tooLarge("a key list", MAX_KEYS_IN_LIST);
    keys.push(parseKey(line));
  }
  return keys;
}

// ---- SSHSIG ------------------------------------------------------------------------------------

function parseArmored(text) {
  if (byteLength(text) > MAX_ARMOR_BYTES) throw tooLarge("an armored signature", MAX_ARMOR_BYTES);
  const trimmed = trim(text);
  const rest = trimmed.startsWith(BEGIN) ? trimmed.slice(BEGIN.length) : null;
  if (rest === null || !rest.endsWith(END)) {
    throw signatureError(`the text must start with ${BEGIN} and end with ${END}`);
  }
  return signatureFromBlob(base64Decode(rest.slice(0, rest.length - END.length), "the signature armor"));
}

function signatureFromBlob(blob) {
  const invalid = signatureError;
  const reader = new WireReader(blob, "the signature blob");
  if (!textIs(reader.take(MAGIC.length), MAGIC)) throw invalid("the blob does not start with SSHSIG");
  const version = reader.u32();
  if (version !== 1) throw invalid(`version ${version} is not 1`);
  const publicKey = keyFromBlob(reader.string());
  let namespace;
  try {
    namespace = utf8.decode(reader.string());
  } catch (error) {
    if (error.code) throw error;
    throw invalid("the namespace is not UTF-8");
  }
  reader.string();
  const algorithm = reader.string();
  const hash = textIs(algorithm, "sha256") ? "sha256" : textIs(algorithm, "sha512") ? "sha512" : null;
  if (hash === null) throw invalid("the hash algorithm is neither sha256 nor sha512");
  const inner = new WireReader(reader.string(), "the signature");
  if (!reader.isEmpty()) throw invalid("bytes follow the signature");
  if (!textIs(inner.string(), KEY_TYPE)) throw invalid("the signature is not ssh-ed25519");
  const signature = inner.string();
  if (signature.length !== 64) throw invalid("an ed25519 signature is 64 bytes");
  if (!inner.isEmpty()) throw invalid("bytes follow the ed25519 signature");
  return { publicKey, namespace, hash, signature: Uint8Array.from(signature) };
}

/** The exact bytes an SSHSIG Ed25519 signature covers (PROTOCOL.sshsig). */
async function signedData(namespace, hash, message) {
  const digest = new Uint8Array(await crypto.subtle.digest(hash === "sha256" ? "SHA-256" : "SHA-512", message));
  return concat([encoder.encode(MAGIC), sshString(encoder.encode(namespace)), sshString(new Uint8Array(0)), sshString(encoder.encode(hash)), sshString(digest)]);
}

// Whether `signature` is `key`'s over `data`. A key WebCrypto refuses to import (not a valid
// Ed25519 point) is a failed check, not an exception.
async function verify(key, signature, data) {
  try {
    const imported = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, imported, signature, data);
  } catch {
    return false;
  }
}

// An armored signature over `message` in the promptflag namespace: `{key, valid}`, or a string
// saying why it cannot even be checked.
async function checkSignature(armored, message) {
  let signature;
  try {
    signature = parseArmored(armored);
  } catch (error) {
    if (!(error instanceof GateInputError)) throw error;
    return error.message;
  }
  if (signature.namespace !== NAMESPACE) return "the signature was made in another namespace than promptflag";
  const data = await signedData(signature.namespace, signature.hash, encoder.encode(message));
  return { key: signature.publicKey, valid: await verify(signature.publicKey, signature.signature, data) };
}

// ---- JSON read field by field, as promptflag-governance's `json::Fields` ---------------------

class Fields {
  constructor(value, path, allowed, wrap) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw wrap(`${path} must be a JSON object`);
    const unknown = Object.keys(value).sort(compareText).find((key) => !allowed.includes(key));
    if (unknown !== undefined) throw wrap(`${path} has an unknown field ${quoted(unknown)}`);
    Object.assign(this, { object: value, path, wrap });
  }
  wrong(name, expected) {
    return this.wrap(`${this.path}.${name} must be ${expected}`);
  }
  value(name) {
    const value = Object.hasOwn(this.object, name) ? this.object[name] : null;
    return value === null ? undefined : value;
  }
  string(name) {
    const value = this.value(name);
    if (value !== undefined && typeof value !== "string") throw this.wrong(name, "a string");
    return value ?? null;
  }
  requiredString(name) {
    const value = this.string(name);
    if (value === null) throw this.wrong(name, "present (a string)");
    return value;
  }
  bool(name) {
    const value = this.value(name);
    if (value !== undefined && typeof value !== "boolean") throw this.wrong(name, "true or false");
    return value ?? false;
  }
  requiredU64(name) {
    const value = this.value(name);
    if (!Number.isSafeInteger(value) || value < 0) throw this.wrong(name, "a whole number of at least 0");
    return value;
  }
  array(name, limit) {
    const value = this.value(name);
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.wrong(name, "an array");
    if (value.length > limit) throw this.wrap(`${this.path}.${name} holds ${value.length} items; at most ${limit}`);
    return value;
  }
  strings(name, limit) {
    return this.array(name, limit).map((item) => {
      if (typeof item !== "string") throw this.wrong(name, "an array of strings");
      return item;
    });
  }
  itemPath(name, index) {
    return `${this.path}.${name}[${index}]`;
  }
}

function parseJson(text, wrap) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw wrap(error.message);
  }
}

// ---- the key registry --------------------------------------------------------------------------

const isEnvironmentName = (name) => /^[A-Za-z0-9_.-]{1,64}$/.test(name);
const isMemberName = (name) => /^[A-Za-z0-9@._+-]{1,128}$/.test(name);
const isSha256Hex = (text) => /^[0-9a-f]{64}$/.test(text);

function isRole(text) {
  if (["author", "reviewer", "override", "owner"].includes(text)) return true;
  return text.startsWith("publisher:") && isEnvironmentName(text.slice("publisher:".length));
}

/** A registry's text parsed: `{serial, members: [{name, key, roles}]}`. */
function parseRegistry(text) {
  if (byteLength(text) > MAX_REGISTRY_BYTES) throw tooLarge("a key registry", MAX_REGISTRY_BYTES);
  const fields = new Fields(parseJson(text, registryError), "registry", ["schema", "serial", "members"], registryError);
  const schema = fields.requiredU64("schema");
  if (schema !== 1) throw registryError(`schema ${schema} is not 1`);
  const serial = fields.requiredU64("serial");
  if (serial === 0) throw registryError("serial starts at 1");
  const members = [];
  fields.array("members", MAX_MEMBERS).forEach((item, index) => {
    const member = new Fields(item, fields.itemPath("members", index), ["name", "key", "roles"], registryError);
    const name = member.requiredString("name");
    const keyLine = member.requiredString("key");
    const roleNames = member.strings("roles", 64);
    if (!isMemberName(name)) throw registryError(`member name ${quoted(name)} must be 1 to 128 letters, digits or @._+-`);
    let key;
    try {
      key = parseKey(keyLine);
    } catch (error) {
      throw registryError(`${name}: ${error.message}`);
    }
    const roles = [];
    for (const role of roleNames) {
      if (!isRole(role)) throw registryError(`${name}: role ${quoted(role)} is not author, reviewer, publisher:<env>, override or owner`);
      if (!roles.includes(role)) roles.push(role);
    }
    if (members.some((m) => m.name === name)) throw registryError(`${name} is listed twice`);
    const holder = members.find((m) => sameBytes(m.key, key));
    if (holder) throw registryError(`${name}'s key is already ${holder.name}'s`);
    members.push({ name, key, roles });
  });
  return { serial, members };
}

const memberByKey = (registry, key) => registry?.members.find((m) => sameBytes(m.key, key));

// Whether `proposed` may replace `accepted` (null before registry 1): the next serial, signed
// over its exact bytes by an owner of `accepted` (by a root owner key for registry 1).
function acceptChange(accepted, rootKeys, proposed, signer, valid) {
  const expected = accepted === null ? 1 : accepted.serial + 1;
  if (proposed.serial !== expected) return "not the next serial: each change is the next serial, signed anew";
  if (signer === null || !valid) return "no valid signature over the file's exact bytes";
  const isOwner = accepted === null ? rootKeys.some((key) => sameBytes(key, signer)) : memberByKey(accepted, signer)?.roles.includes("owner");
  if (!isOwner) {
    return accepted === null
      ? "registry 1 is signed by a key that is not a root owner key (OWNER_KEYS)"
      : "signed by a key that is not an owner of the registry it replaces";
  }
  return null;
}

// ---- the approval message ----------------------------------------------------------------------

function parseSubject(value, path) {
  const fields = new Fields(value, path, ["prompt", "author", "body_sha256", "model", "parameters", "output_schema_sha256"], approvalError);
  return {
    prompt: fields.requiredString("prompt"),
    author: fields.requiredString("author"),
    body_sha256: fields.requiredString("body_sha256"),
    model: fields.string("model") ?? "",
    parameters: fields.value("parameters") ?? {},
    output_schema_sha256: fields.string("output_schema_sha256"),
  };
}

// Canonical JSON for the parameters: keys sorted, no spaces, numbers as JSON.stringify writes
// them (an integral float is an integer), which is how promptflag-governance writes them too.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort(compareText);
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The canonical approval message (docs/interfaces.md) of a subject for an environment. */
function approvalMessage(subject, environment) {
  if (!isEnvironmentName(environment)) {
    throw approvalError(`${quoted(environment)} is not an environment name (letters, digits, \`_\`, \`-\`, \`.\`; at most 64)`);
  }
  const at = subject.prompt.indexOf("@");
  if (at < 0) throw approvalError(`${quoted(subject.prompt)} is not <prompt>@<version>`);
  const parts = [
    ["prompt id", subject.prompt.slice(0, at)],
    ["prompt version", subject.prompt.slice(at + 1)],
    ["author", subject.author],
  ];
  for (const [field, value] of parts) {
    if (value === "" || byteLength(value) > 256 || WHITESPACE.test(value)) {
      throw approvalError(`the ${field} ${quoted(value)} must be 1 to 256 characters without spaces`);
    }
  }
  if (byteLength(subject.model) > 256 || CONTROL.test(subject.model)) {
    throw approvalError("the model name must be up to 256 characters without line breaks");
  }
  if (!isSha256Hex(subject.body_sha256)) throw approvalError(`body_sha256 ${quoted(subject.body_sha256)} is not lowercase SHA-256 hex`);
  const schema = subject.output_schema_sha256;
  if (schema !== null && !isSha256Hex(schema)) throw approvalError(`output_schema_sha256 ${quoted(schema)} is not lowercase SHA-256 hex`);
  const parameters = subject.parameters;
  if (parameters === null || typeof parameters !== "object" || Array.isArray(parameters)) {
    throw approvalError("parameters must be a JSON object");
  }
  const message = `${HEADER}\nprompt: ${subject.prompt}\nenvironment: ${environment}\nauthor: ${subject.author}\nbody-sha256: ${subject.body_sha256}\nmodel: ${subject.model}\nparameters: ${canonical(parameters)}\noutput-schema-sha256: ${schema ?? "none"}\n`;
  if (byteLength(message) > MAX_MESSAGE_BYTES) throw tooLarge("an approval message", MAX_MESSAGE_BYTES);
  return message;
}

// ---- the gate ----------------------------------------------------------------------------------

/** The gate's input (docs/interfaces.md, "The gate's input"), checked as the Rust crate does. */
export function parseGateInput(text) {
  if (byteLength(text) > MAX_INPUT_BYTES) throw tooLarge("a gate input", MAX_INPUT_BYTES);
  const fields = new Fields(
    parseJson(text, inputError),
    "input",
    ["owner_keys", "accepted", "registry_changes", "environment", "require_approvals", "prompts", "approvals", "publisher", "override_reason"],
    inputError,
  );
  const pair = (name, limit, keys) =>
    fields.array(name, limit).map((item, index) => {
      const entry = new Fields(item, fields.itemPath(name, index), keys, inputError);
      return Object.fromEntries(keys.map((key) => [key, entry.requiredString(key)]));
    });
  const registryChanges = pair("registry_changes", MAX_REGISTRY_CHANGES, ["text", "signature"]);
  const prompts = fields.array("prompts", MAX_PROMPTS).map((item, index) => parseSubject(item, fields.itemPath("prompts", index)));
  const approvals = pair("approvals", MAX_APPROVALS, ["prompt", "signature"]);
  return {
    owner_keys: fields.string("owner_keys") ?? "",
    accepted: fields.string("accepted"),
    registry_changes: registryChanges,
    environment: fields.requiredString("environment"),
    require_approvals: fields.bool("require_approvals"),
    prompts,
    approvals,
    publisher: fields.string("publisher"),
    override_reason: fields.string("override_reason"),
  };
}

const problem = (reason, subject, signer, detail) => ({ reason, subject, signer, detail });
const problemMessage = (p) => [p.subject, p.signer, p.detail].filter((part) => part !== null).join(": ");

function problemJson(p) {
  const json = { reason: p.reason };
  if (p.subject !== null) json.subject = p.subject;
  if (p.signer !== null) json.signer = p.signer;
  json.message = problemMessage(p);
  return json;
}

const refusal = (p, serial) => ({
  allowed: false,
  reason: p.reason,
  message: problemMessage(p),
  registry_serial: serial,
  problems: [problemJson(p)],
  approved: [],
  overridden: false,
});

// The accepted registry after the input's changes, each accepted in turn, or the refusal of
// the first that is not.
async function walkRegistry(input) {
  const rootKeys = parseKeyList(input.owner_keys);
  let registry = input.accepted === null ? null : parseRegistry(input.accepted);
  let text = input.accepted;
  for (const change of input.registry_changes) {
    const subject = `registry ${registry === null ? 1 : registry.serial + 1}`;
    let proposed;
    try {
      proposed = parseRegistry(change.text);
    } catch (error) {
      if (!(error instanceof GateInputError)) throw error;
      return { registry, text, refusal: problem("registry_invalid", subject, null, error.message) };
    }
    const checked = await checkSignature(change.signature, change.text);
    const signer = typeof checked === "string" ? null : checked.key;
    const detail = acceptChange(registry, rootKeys, proposed, signer, typeof checked !== "string" && checked.valid);
    if (detail !== null) {
      const name = signer === null ? null : await fingerprint(signer);
      return { registry, text, refusal: problem("registry_change_unsigned", subject, name, detail) };
    }
    registry = proposed;
    text = change.text;
  }
  return { registry, text, refusal: null };
}

const signerName = async (registry, key) => memberByKey(registry, key)?.name ?? (await fingerprint(key));

async function checkPublisher(input, registry, overriding) {
  const refuse = (signer, detail) => problem("publisher_not_authorized", null, signer, detail);
  if (input.publisher === null) {
    return overriding ? refuse(null, "an override needs a publishing key with the override role") : null;
  }
  let key;
  try {
    key = parseKey(input.publisher);
  } catch (error) {
    if (!(error instanceof GateInputError)) throw error;
    return refuse(null, "the publishing identity is not an ssh-ed25519 key");
  }
  const roles = memberByKey(registry, key)?.roles ?? [];
  const name = await signerName(registry, key);
  if (overriding && !roles.includes("override")) return refuse(name, "has no override role in the accepted registry");
  if (!roles.includes(`publisher:${input.environment}`) && !overriding) {
    return refuse(name, "has no publisher role for this environment in the accepted registry");
  }
  return null;
}

// One approval of one subject: the approver's name, or the problem with it.
async function judge(subject, environment, armored, registry) {
  const prompt = subject.prompt;
  let message;
  try {
    message = approvalMessage(subject, environment);
  } catch (error) {
    if (!(error instanceof GateInputError)) throw error;
    return problem("approval_invalid", prompt, null, error.message);
  }
  const checked = await checkSignature(armored, message);
  if (typeof checked === "string") return problem("approval_invalid", prompt, null, checked);
  const member = memberByKey(registry, checked.key);
  const signer = await signerName(registry, checked.key);
  if (!checked.valid) {
    return problem(
      "approval_invalid",
      prompt,
      signer,
      "the approval does not verify over the current content (body, model, parameters, output schema, author, environment): it was signed over other content or is not a valid signature",
    );
  }
  if (member === undefined) return problem("approver_not_reviewer", prompt, signer, "the approving key is not in the accepted registry");
  if (member.name === subject.author) return problem("self_approval", prompt, signer, "the author cannot approve their own prompt");
  if (!member.roles.includes("reviewer")) return problem("approver_not_reviewer", prompt, signer, "the signer has no reviewer role in the accepted registry");
  return signer;
}

async function checkApprovals(input, registry) {
  const problems = [];
  const approved = [];
  for (const subject of input.prompts) {
    // An approval belongs to the first subject of its prompt; approvals of other prompts are
    // not this publish's.
    const mine = input.approvals.filter((a) => input.prompts.find((p) => p.prompt === a.prompt) === subject);
    const found = [];
    const by = [];
    for (const approval of mine) {
      const verdict = await judge(subject, input.environment, approval.signature, registry);
      if (typeof verdict === "string") by.push(verdict);
      else found.push(verdict);
    }
    if (by.length === 0) {
      if (found.length === 0) {
        found.push(
          problem(
            "approval_missing",
            subject.prompt,
            null,
            "high risk, and no approval for this environment from a registered reviewer who is not its author (`promptflag approve`)",
          ),
        );
      }
      problems.push(...found);
    } else {
      approved.push({ prompt: subject.prompt, by: [...new Set(by)].sort(compareText) });
    }
  }
  return { problems, approved };
}

/**
 * The gate's decision for an input (an object or its JSON text): `{allowed, reason?, message,
 * registry_serial, registry?, problems, approved, overridden}`, as promptflag-governance's
 * `gate::decide`. Throws a `GateInputError` (with the error's `code`) for an input that cannot
 * be decided at all; the caller answers it with a 400.
 */
export async function decideGate(given) {
  const input = parseGateInput(typeof given === "string" ? given : JSON.stringify(given));
  const walked = await walkRegistry(input);
  const serial = walked.registry === null ? 0 : walked.registry.serial;
  if (walked.refusal !== null) return refusal(walked.refusal, serial);
  const overriding = input.override_reason !== null && trim(input.override_reason) !== "";
  const publisher = await checkPublisher(input, walked.registry, overriding);
  if (publisher !== null) return refusal(publisher, serial);
  const { problems, approved } = input.require_approvals ? await checkApprovals(input, walked.registry) : { problems: [], approved: [] };
  const allowed = problems.length === 0 || overriding;
  const first = problems[0];
  const decision = {
    allowed,
    message: first === undefined ? "allowed" : allowed ? `overridden (${trim(input.override_reason)}): ${problemMessage(first)}` : problemMessage(first),
    registry_serial: serial,
    problems: problems.map(problemJson),
    approved,
    overridden: allowed && problems.length > 0,
  };
  if (!allowed) decision.reason = first.reason;
  if (allowed && walked.text !== null) decision.registry = walked.text;
  return decision;
}

// ---- the gate in the admin authority -----------------------------------------------------------

/** The media type of a publish that carries its approvals: `{ruleset, registry_changes,
 * prompts, approvals}`, the ruleset as its exact text. */
export const PUBLISH_WITH_APPROVALS = "application/vnd.promptflag.publish+json";
// The most a publish with approvals may be: a ruleset (at most 1 MiB) and a gate input (at most
// 1 MiB), with room for the JSON string escapes of the ruleset.
const MAX_PUBLISH_BYTES = 4 * 1024 * 1024;
// Where the authority keeps the registry it accepted (worker/src/admin.rs commits it there).
const REGISTRY_KEY = "governance:registry";
// The most keys one Durable Object storage read takes.
const STORAGE_KEYS_AT_ONCE = 128;

const refuse = (reason, subject, detail, serial) => refusal(problem(reason, subject, null, detail), serial);

// The serial of a registry's text, or 0 when it has none.
function serialOf(text) {
  try {
    const serial = JSON.parse(text)?.serial;
    return Number.isSafeInteger(serial) ? serial : 0;
  } catch {
    return 0;
  }
}

// The content of the ruleset a subject names: its prompt id and version, model and parameters
// must be the ruleset's own for that body, so a subject cannot describe other content than the
// one being published.
function matchesContent(subject, entry) {
  return (
    subject.prompt === `${entry.id}@${entry.version}` &&
    (subject.model ?? "") === (entry.model ?? "") &&
    canonical(subject.parameters ?? {}) === canonical(entry.parameters ?? {})
  );
}

// The prompt bodies of `hashes` that `environment` has served before (accepted:<env>:<sha256>).
async function servedBefore(storage, environment, hashes) {
  const served = new Set();
  for (let at = 0; at < hashes.length; at += STORAGE_KEYS_AT_ONCE) {
    const keys = hashes.slice(at, at + STORAGE_KEYS_AT_ONCE).map((hash) => `accepted:${environment}:${hash}`);
    const found = await storage.get(keys);
    keys.forEach((key, index) => found.has(key) && served.add(hashes[at + index]));
  }
  return served;
}

/**
 * The gate's decision for publishing `rulesetText` to `environment`, from the ruleset's content:
 * every prompt body it names that the environment has not served before needs a subject that
 * matches the content and a valid approval. The root owner keys are the `OWNER_KEYS` secret and
 * the registry is the one the authority accepted; the request's registry changes are those
 * after it. Resolves to the decision's JSON text, or `{"error": {code, message}}`.
 */
async function decideForPublish(material, env, storage, environment, rulesetText) {
  try {
    const accepted = (await storage.get(REGISTRY_KEY)) ?? null;
    const acceptedSerial = accepted === null ? 0 : serialOf(accepted);
    // Entries are keyed by content id; the body's hash is `body` (the key itself in rulesets
    // written before content ids), and bodies are what the authority records as served.
    const entries = Object.entries(JSON.parse(rulesetText).prompts ?? {}).map(([key, entry]) => [entry.body ?? key, entry]);
    const served = await servedBefore(storage, environment, entries.map(([hash]) => hash));
    const subjects = Array.isArray(material.prompts) ? material.prompts : [];
    const prompts = [];
    for (const [hash, entry] of entries) {
      if (served.has(hash)) continue;
      const name = `${entry.id}@${entry.version}`;
      const subject = subjects.find((s) => s?.body_sha256 === hash && s?.prompt === name) ?? subjects.find((s) => s?.body_sha256 === hash);
      if (subject === undefined) {
        const detail = "new to this environment, and the publish carries no approval subject for it (`promptflag approve`, then publish with the approvals)";
        return JSON.stringify(refuse("approval_missing", name, detail, acceptedSerial));
      }
      if (!matchesContent(subject, entry)) {
        const detail = "the approval subject does not describe the ruleset's content (prompt, model, parameters)";
        return JSON.stringify(refuse("approval_invalid", name, detail, acceptedSerial));
      }
      prompts.push(subject);
    }
    const changes = Array.isArray(material.registry_changes) ? material.registry_changes : [];
    const decision = await decideGate({
      owner_keys: env.OWNER_KEYS ?? "",
      accepted,
      // The companion sends every registry file; those the authority already holds are not
      // changes.
      registry_changes: changes.filter((change) => !(serialOf(change?.text) <= acceptedSerial && serialOf(change?.text) > 0)),
      environment,
      require_approvals: true,
      prompts,
      approvals: Array.isArray(material.approvals) ? material.approvals : [],
    });
    return JSON.stringify(decision);
  } catch (error) {
    if (!(error instanceof GateInputError)) throw error;
    return JSON.stringify({ error: { code: error.code, message: error.message } });
  }
}

/** Why a publish with approvals could not be unpacked: an HTTP status and an error code. */
export class PublishError extends Error {
  constructor(status, code, message) {
    super(message);
    Object.assign(this, { status, code });
  }
}

/**
 * The request the authority's Wasm serves, and the signature gate it calls for a publish whose
 * environment requires approvals: a publish with approvals is unpacked to its ruleset's exact
 * text (the Wasm validates, stores and hashes those bytes), its approvals kept for the gate.
 */
export async function withPublishGate(request, env, storage) {
  let material = {};
  const type = request.headers.get("content-type") ?? "";
  if (request.method === "PUT" && type.split(";")[0].trim() === PUBLISH_WITH_APPROVALS) {
    const length = Number(request.headers.get("content-length") ?? Number.NaN);
    if (!(length <= MAX_PUBLISH_BYTES)) {
      throw new PublishError(413, "payload_too_large", `a publish with approvals is at most ${MAX_PUBLISH_BYTES} bytes, with its Content-Length`);
    }
    try {
      material = JSON.parse(await request.text());
    } catch {
      material = null;
    }
    if (material === null || typeof material !== "object" || typeof material.ruleset !== "string") {
      throw new PublishError(400, "bad_request", `a ${PUBLISH_WITH_APPROVALS} body is a JSON object with the ruleset's text as "ruleset"`);
    }
    const headers = new Headers(request.headers);
    headers.set("content-type", "application/json");
    headers.delete("content-length");
    request = new Request(request.url, { method: "PUT", headers, body: material.ruleset });
  }
  const gate = (environment, rulesetText) => decideForPublish(material, env, storage, environment, rulesetText);
  return { request, gate };
}
