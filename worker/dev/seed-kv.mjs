// Writes a `wrangler kv bulk put` file that seeds local KV with the fixture ruleset
// (worker/tests/fixtures/ruleset.json) and its prompt bodies (worker/tests/fixtures/prompts/*.md),
// in the layout of docs/interfaces.md: bodies, the revision, the history, then the pointer.
//
//   node worker/dev/seed-kv.mjs <out.json> [environment]
//
// `cargo xtask dev` runs it; `promptflag publish` will replace it.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), "..", "tests", "fixtures");
const [out, environment = "dev"] = process.argv.slice(2);
if (!out) {
  process.stderr.write("usage: seed-kv.mjs <out.json> [environment]\n");
  process.exit(2);
}

const bodies = new Map();
for (const name of readdirSync(join(fixtures, "prompts")).filter((n) => n.endsWith(".md"))) {
  const body = readFileSync(join(fixtures, "prompts", name), "utf8");
  bodies.set(createHash("sha256").update(body, "utf8").digest("hex"), body);
}
const ruleset = JSON.parse(readFileSync(join(fixtures, "ruleset.json"), "utf8"));
ruleset.environment = environment;
for (const hash of Object.keys(ruleset.prompts ?? {})) {
  if (!bodies.has(hash)) throw new Error(`the fixture ruleset names ${hash}, which no fixture body hashes to`);
}
const revision = ruleset.revision;
const entries = [
  ...[...bodies].map(([hash, body]) => ({ key: `prompt:${hash}`, value: body })),
  { key: `ruleset:${environment}:${revision}`, value: JSON.stringify(ruleset) },
  { key: `meta:${environment}`, value: JSON.stringify({ latest: revision, kept: [revision] }) },
  { key: `ruleset:${environment}`, value: String(revision) },
];
mkdirSync(dirname(resolve(out)), { recursive: true });
writeFileSync(out, JSON.stringify(entries, null, 2));
process.stdout.write(`seed file ${out}: ${entries.length} keys (revision ${revision} of ${environment})\n`);
