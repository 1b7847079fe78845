// The Worker's entry: the module workerd loads (`cargo xtask build-worker` copies it to
// worker/build/index.js, beside wasm-bindgen's glue `glue.js` and the Wasm `index_bg.wasm`).
//
// A request costs one synchronous call into the Wasm on the hot path: the entry reads the body
// and the few headers that matter, hands them over with the method, the URL and the clock
// (`serve`), and gets back the status, headers, body and the exposures to send, packed in one
// buffer that it reads in place in the Wasm's memory (worker/src/wire.rs describes the format).
// When the answer needs KV (the ruleset's TTL has passed, a prompt body not yet read, the admin
// API), `serve` returns 0 and the request takes the asynchronous path, `handle`, which reads KV
// and answers in the same format.
// Exposures are POSTed after the response, through `ctx.waitUntil`.
//
// The admin API (`/admin/*`) is forwarded, untouched, to the admin authority: the Durable Object
// class `PromptflagAuthority` of the Worker `promptflag-authority` (worker/js/authority.js, its own
// script and Wasm, bound here by `script_name` as `PROMPTFLAG_AUTHORITY`), one object per
// namespace and the only writer of KV. This Wasm links none of the admin API, which keeps the
// upload within its budget. Other handlers go here as further exports beside the default one.

import wasmModule from "./index_bg.wasm";
import * as wasm from "./glue.js";

// The Wasm's memory, where `serve` leaves its answer, and a view on all of it, made anew when the
// memory grows (its buffer is then another). `attach` takes them from the instance: the first one
// here, a fresh one after a trap (`recover`).
let memory;
let heap;
attach();

function attach() {
  memory = wasm.initSync({ module: wasmModule }).memory;
  heap = new Uint8Array(memory.buffer);
}

const BODY_LIMIT = wasm.evaluation_body_limit();
// The largest declared body read before it is answered (admin bodies, and evaluation bodies
// over their limit): enough for every usual admin write and for a modestly oversized request.
const READ_FIRST_LIMIT = 256 * 1024;
const NO_BODY = new Uint8Array(0);
const decoder = new TextDecoder();
// The one admin authority of the namespace: a single object serialises every write, so the
// revision check, the promotion gate and the audit chain hold across environments.
const AUTHORITY_NAME = "namespace";

export default {
  async fetch(incoming, env, ctx) {
    const now = Date.now();
    let request = incoming;
    const url = request.url;
    const headers = request.headers;
    const length = headers.get("content-length");
    // The admin API always reads KV, and a body of unknown or excessive length is read (or
    // refused) by the asynchronous path under its own limits: those go there untouched.
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const admin = url.startsWith("/admin", pathStart);
    if (length !== null && Number(length) <= READ_FIRST_LIMIT && (admin || !(Number(length) <= BODY_LIMIT)) && request.body !== null) {
      // An answer can come before the body is needed (a refused credential, the admin API
      // off, a body over its limit): the runtime then resets the connection while the body is
      // still arriving, and a client that reuses it sees a network failure instead of the
      // answer. So such a body of modest declared length is read first; the routes still
      // apply their own limits, and a larger one is answered at once.
      request = new Request(request, { body: await request.arrayBuffer() });
    }
    if (admin && env.PROMPTFLAG_AUTHORITY) {
      const authority = env.PROMPTFLAG_AUTHORITY;
      return authority.get(authority.idFromName(AUTHORITY_NAME)).fetch(request);
    }
    if (admin || (length === null ? request.body !== null : !(Number(length) <= BODY_LIMIT))) {
      return respond(await settle(wasm.handle(request, env, undefined, now)), ctx, env);
    }
    let body = NO_BODY;
    let flags = "";
    if (length !== null) {
      try {
        body = new Uint8Array(await request.arrayBuffer());
      } catch {
        flags += "u";
      }
    }
    const ifNoneMatch = headers.get("if-none-match");
    // The read key (`Authorization`) and `Origin` travel as two lines, empty when absent
    // (worker/src/wire.rs gives the head's layout).
    const authorization = headers.get("authorization") ?? "";
    const origin = headers.get("origin") ?? "";
    const head = `${request.method}\n${url}\n${flags}\n${authorization}\n${origin}${ifNoneMatch === null ? "" : `\n${ifNoneMatch}`}`;
    let at;
    try {
      // After a trap, `recover` asks for a fresh instance before the next request.
      at = wasm.serve(head, body, now);
    } catch (error) {
      throw recover(error);
    }
    if (at !== 0) {
      // The answer is read where the Wasm left it, its length first: the `Response` copies its
      // body when it is constructed, and `respond` builds it before anything calls into the
      // Wasm again.
      if (heap.buffer !== memory.buffer) heap = new Uint8Array(memory.buffer);
      return respond(heap.subarray(at + 4, at + 4 + lengthAt(heap, at)), ctx, env);
    }
    return respond(await settle(wasm.handle(request, env, flags.includes("u") ? undefined : body, now)), ctx, env);
  },
};

/** The `Response` (and the exposures to send) from a packed answer. */
function respond(packed, ctx, env) {
  const status = packed[0] | (packed[1] << 8);
  const hasBody = packed[2] === 1;
  const headerSet = packed[3];
  const headerBytes = lengthAt(packed, 4);
  const tagBytes = lengthAt(packed, 8);
  const exposureBytes = lengthAt(packed, 12);
  let at = 16;
  let headers = headerSets[headerSet];
  if (headers === undefined) {
    headers = headersFrom(decoder.decode(packed.subarray(at, at + headerBytes)));
    if (headerSet !== 0) headerSets[headerSet] = headers;
  }
  at += headerBytes;
  const tag = tagBytes > 0 ? decoder.decode(packed.subarray(at, at + tagBytes)) : null;
  at += tagBytes;
  if (exposureBytes > 0) {
    const text = decoder.decode(packed.subarray(at, at + exposureBytes));
    const newline = text.indexOf("\n");
    ctx.waitUntil(sendExposures(text.slice(0, newline), text.slice(newline + 1), env.EXPOSURE_SINK_TOKEN));
    at += exposureBytes;
  }
  const response = new Response(hasBody ? packed.subarray(at) : null, { status, headers });
  // The entity tag changes with the context on the OFREP bulk route, so it is not part of the
  // header sets kept below: it is set on the response's own copy.
  if (tag !== null) response.headers.set("ETag", tag);
  return response;
}

/** The little-endian `u32` at `at` (the lengths are far below 2³¹). */
function lengthAt(packed, at) {
  return packed[at] | (packed[at + 1] << 8) | (packed[at + 2] << 16) | (packed[at + 3] << 24);
}

// Most responses repeat one of a few header sets (the content type, the revision and the
// ruleset's source, the allowed origin if any), and the runtime copies a `Headers` object it is given far
// faster than it builds one from JavaScript pairs. The Wasm numbers each set (worker/src/wire.rs),
// so each is built once, kept under its number, and its text read only that once; number 0 is a
// set the Wasm did not number, built each time. Index 0 stays empty.
const headerSets = [];

function headersFrom(text) {
  const fields = text.split("\n");
  const headers = new Headers();
  for (let i = 0; i + 1 < fields.length; i += 2) headers.append(fields[i], fields[i + 1]);
  return headers;
}

/**
 * POSTs one batch of exposures to the sink, with the secret `EXPOSURE_SINK_TOKEN` as a bearer
 * token when it is set (a collector with writer tokens refuses writes without one); a failure is
 * logged and the batch dropped.
 */
async function sendExposures(sink, batch, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const response = await fetch(sink, { method: "POST", headers, body: batch });
    // The sink's answer is not read; cancelling it lets the runtime release the connection.
    await response.body?.cancel();
    if (response.status < 200 || response.status >= 300) {
      console.warn(`promptflag: the exposure sink answered ${response.status}; ${batch.length} bytes of exposures dropped`);
    }
  } catch (error) {
    console.warn(`promptflag: the exposure sink ${JSON.stringify(sink)} failed (${error?.message ?? error}); ${batch.length} bytes of exposures dropped`);
  }
}

async function settle(promise) {
  try {
    return await promise;
  } catch (error) {
    throw recover(error);
  }
}

// A trap (`unreachable`: the Worker is built with immediate-abort panics, so a bug that panics
// ends here) leaves the instance's memory mid-operation. The request fails (the runtime answers
// 500) and wasm-bindgen's reset gives the next request a fresh instance of the same module.
function recover(error) {
  if (error instanceof WebAssembly.RuntimeError) {
    console.error("promptflag: the Wasm trapped; the next request gets a fresh instance", error);
    wasm.__wbg_reset_state();
    attach();
    // The fresh instance numbers its header sets anew.
    headerSets.length = 0;
  }
  return error;
}
