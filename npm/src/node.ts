/**
 * The Node entry: reads the WebAssembly module next to this file and instantiates it
 * synchronously, so everything is usable as soon as the import returns.
 */

import { readFileSync } from "node:fs";
import { initializeSync } from "./engine.js";

initializeSync(readFileSync(new URL("./wasm/promptflag_wasm_bg.wasm", import.meta.url)));

export * from "./index.js";
