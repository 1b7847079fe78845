// Shared helpers of the npm package's suites (not a test file itself).

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = process.env.PROMPTFLAG_ROOT ?? resolve(here, "..", "..");
export const NPM_DIR = join(ROOT, "npm");
export const DIST = join(NPM_DIR, "dist");
export const VECTORS = join(ROOT, "tests", "vectors");
/** Node 22 (what `cargo xtask test` runs the suites with). */
export const NODE = process.env.PROMPTFLAG_NODE ?? process.execPath;

/** The built package's Node entry (npm/dist/node.js), as `import "promptflag"` gives it in Node. */
export async function loadPackage() {
  const entry = join(DIST, "node.js");
  if (!existsSync(entry)) {
    throw new Error(`${entry} is missing: build the package first (cargo xtask build-npm)`);
  }
  return import(pathToFileURL(entry).href);
}

/** The vector files named by tests/vectors/index.json, parsed, with their file names. */
export function loadVectorFiles() {
  const index = JSON.parse(readFileSync(join(VECTORS, "index.json"), "utf8"));
  return index.map((file) => ({ file, ...JSON.parse(readFileSync(join(VECTORS, file), "utf8")) }));
}

/** Sorted JSON text, so two JSON values compare regardless of key order. */
export function canonical(value) {
  return JSON.stringify(value, (_, inner) =>
    inner && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}
