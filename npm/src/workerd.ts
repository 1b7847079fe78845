/**
 * The Cloudflare Workers (workerd) entry: the runtime compiles `.wasm` imports into a
 * `WebAssembly.Module` at deploy time (wrangler's and Miniflare's `CompiledWasm` rule), and
 * `initSync` instantiates it without any network or top-level await.
 */

import wasmModule from "./wasm/promptflag_wasm_bg.wasm";
import { initializeSync } from "./engine.js";

initializeSync(wasmModule);

export * from "./index.js";
