/**
 * The browser and bundler entry: fetches and compiles the WebAssembly module that sits next to
 * this file (bundlers rewrite the `new URL(…, import.meta.url)` pattern to the emitted asset),
 * with a top-level await, so importers see a ready engine.
 */

import init from "./wasm/promptflag_wasm.js";
import { markInitialized } from "./engine.js";

markInitialized(await init({ module_or_path: new URL("./wasm/promptflag_wasm_bg.wasm", import.meta.url) }));

export * from "./index.js";
