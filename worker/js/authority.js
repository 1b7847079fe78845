// The admin authority's entry: the module workerd loads for the Worker `promptflag-authority`
// (`cargo xtask build-worker` copies it to worker/build/authority/authority.js, beside its own
// wasm-bindgen glue `glue.js` and its own Wasm `authority_bg.wasm`, built from the same crate with
// only the `authority` feature's export, `handle_admin`).
//
// It exports the Durable Object class `PromptflagAuthority`: one object per namespace, the only
// writer of KV, keeping the revision state and the audit log in its transactional storage
// (worker/src/admin.rs describes the layout). The serving Worker (worker/js/index.js) binds the
// class by `script_name` as `PROMPTFLAG_AUTHORITY` and forwards every `/admin/*` request to it
// untouched. A publish to an environment that requires approvals also passes the signature gate
// of worker/js/signatures.js, which the Wasm calls back through the function handed to it, and
// with RULESET_SIGNING_KEY set the ruleset signer of worker/js/signer.js signs every revision
// the authority makes live.
//
// The authority is a Worker of its own so that each script's upload holds only its own code: the
// serving Worker's Wasm links none of the admin API, and this one none of the evaluation routes.
//
// Its default `fetch` refuses direct traffic: the admin API has one door, the serving Worker's
// `/admin/*`, which reads a request's body before forwarding it and keeps one URL for the
// companion. The configuration deploys this Worker with no route and no workers.dev address, so
// only the binding reaches it; the refusal holds should a route be added by mistake. The object
// itself still authenticates every request, whoever forwards it.

import { DurableObject } from "cloudflare:workers";
import wasmModule from "./authority_bg.wasm";
import * as wasm from "./glue.js";
import { PublishError, withPublishGate } from "./signatures.js";
import { rulesetSigner } from "./signer.js";

wasm.initSync({ module: wasmModule });

const decoder = new TextDecoder();

export default {
  fetch() {
    const message = "the admin authority takes no direct requests: call /admin/* on the serving Worker, which forwards them";
    return Response.json({ error: { code: "not_found", message } }, { status: 404 });
  },
};

/**
 * The admin authority: the single writer behind `/admin/*`. It keeps the revision state and
 * the audit log in its transactional storage (worker/src/admin.rs describes the layout).
 */
export class PromptflagAuthority extends DurableObject {
  async fetch(incoming) {
    let request;
    let gate;
    try {
      ({ request, gate } = await withPublishGate(incoming, this.env, this.ctx.storage));
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      return Response.json({ error: { code: error.code, message: error.message } }, { status: error.status });
    }
    let packed;
    try {
      packed = await wasm.handle_admin(request, this.env, this.ctx.storage, Date.now(), gate, rulesetSigner(this.env));
    } catch (error) {
      // A trap (`unreachable`: the Wasm is built with immediate-abort panics) leaves the instance
      // mid-operation: this request fails and the next one gets a fresh instance of the module.
      if (error instanceof WebAssembly.RuntimeError) {
        console.error("promptflag-authority: the Wasm trapped; the next request gets a fresh instance", error);
        wasm.__wbg_reset_state();
      }
      throw error;
    }
    return unpack(packed);
  }
}

/**
 * The `Response` of a packed answer (worker/src/wire.rs gives the layout). The admin API sends
 * no exposures and its answers are not on the hot path, so every header set is read from its
 * text and the set's number is not kept.
 */
function unpack(packed) {
  const status = packed[0] | (packed[1] << 8);
  const hasBody = packed[2] === 1;
  const headerBytes = lengthAt(packed, 4);
  const tagBytes = lengthAt(packed, 8);
  const exposureBytes = lengthAt(packed, 12);
  const headersEnd = 16 + headerBytes;
  const fields = decoder.decode(packed.subarray(16, headersEnd)).split("\n");
  const headers = new Headers();
  for (let i = 0; i + 1 < fields.length; i += 2) headers.append(fields[i], fields[i + 1]);
  if (tagBytes > 0) headers.set("ETag", decoder.decode(packed.subarray(headersEnd, headersEnd + tagBytes)));
  const bodyStart = headersEnd + tagBytes + exposureBytes;
  return new Response(hasBody ? packed.subarray(bodyStart) : null, { status, headers });
}

/** The little-endian `u32` at `at`. */
function lengthAt(packed, at) {
  return packed[at] | (packed[at + 1] << 8) | (packed[at + 2] << 16) | (packed[at + 3] << 24);
}
