// The JavaScript baseline of the Worker benchmark: a plain Worker that evaluates the same flags
// with @growthbook/growthbook (its server-side `GrowthBookClient`), reading its payload from KV
// and keeping it per isolate for CACHE_TTL_MS, as the Rust Worker keeps its compiled ruleset.
// With CACHE_TTL_MS=0 (the bench's `growthbook-kv`) it reads, parses and loads its payload from
// KV on every request; prompt bodies stay cached per isolate either way, as the Rust Worker's are.
// It answers the two benchmarked routes in the same shapes:
//   POST /v1/resolve/{flag}         {context} -> variant, reason, prompt metadata + body
//   POST /ofrep/v1/evaluate/flags   {context} -> {flags: [{key, value, reason, variant}]}
// esbuild bundles it (benches/worker/run.mjs); it is not part of the product.

import { GrowthBookClient } from "@growthbook/growthbook";

let cached = null;
const bodies = new Map();

async function client(env, now) {
  if (cached && now < cached.expires) return cached;
  const text = await env.KV.get("growthbook:payload", "text");
  const payload = JSON.parse(text);
  const gb = new GrowthBookClient({});
  gb.initSync({ payload });
  cached = { gb, keys: Object.keys(payload.features), revision: payload.revision, expires: now + Number(env.CACHE_TTL_MS ?? 5000) };
  return cached;
}

async function body(env, hash) {
  let text = bodies.get(hash);
  if (text === undefined) {
    text = await env.KV.get(`prompt:${hash}`, "text");
    if (text !== null) bodies.set(hash, text);
  }
  return text;
}

function json(value, status = 200) {
  return new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
}

function attributesOf(context) {
  return { ...context, id: context.targetingKey };
}

function variantOf(result) {
  return result.experimentResult?.key ?? result.ruleId ?? "default";
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== "POST") return json({ error: { code: "method_not_allowed" } }, 405);
    let input;
    try {
      input = await request.json();
    } catch {
      return json({ error: { code: "bad_json" } }, 400);
    }
    const context = input?.context ?? {};
    const { gb, keys, revision } = await client(env, Date.now());
    const user = { attributes: attributesOf(context) };

    if (url.pathname.startsWith("/v1/resolve/")) {
      const flag = url.pathname.slice("/v1/resolve/".length);
      const result = gb.evalFeature(flag, user);
      if (result.source === "unknownFeature") return json({ error: { code: "flag_not_found" } }, 404);
      const prompt = result.value;
      const text = await body(env, prompt.hash);
      return json({ flag, variant: variantOf(result), reason: result.source, revision, prompt: { ...prompt, body: text } });
    }
    if (url.pathname === "/ofrep/v1/evaluate/flags") {
      const flags = keys.map((key) => {
        const result = gb.evalFeature(key, user);
        return { key, value: result.value, reason: result.source, variant: variantOf(result) };
      });
      return json({ flags });
    }
    return json({ error: { code: "not_found" } }, 404);
  },
};
