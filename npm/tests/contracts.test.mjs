// The npm package's TypeScript types for the shapes the contracts crate owns
// (crates/contracts: promptflag_contracts::events) are checked against it: the Rust tests write
// the schemas and sample events to fixtures/contracts.json, and this suite has `tsc` check that
// the TypeScript types name exactly the schema's fields, require the ones encoders always write,
// admit `null` exactly where encoders write it, and accept every sample. A field renamed, added,
// dropped or retyped on either side fails here. It type-checks npm/src against the built Wasm
// bindings (npm/pkg), so it needs `cargo xtask build-npm` first, as `cargo xtask test` does.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NODE, NPM_DIR, ROOT } from "./support.mjs";

const FIXTURE = JSON.parse(readFileSync(join(NPM_DIR, "tests", "fixtures", "contracts.json"), "utf8"));

/** The TypeScript types checked, by schema: [module under npm/src, exported type]. */
const CHECKED = {
  exposure: ["client.js", "ExposureEvent"],
  llm_call: ["calls.js", "LlmCallEvent"],
};

function union(names) {
  return names.length === 0 ? "never" : names.map((name) => JSON.stringify(name)).join(" | ");
}

/** A TypeScript program that compiles only if `type` matches the schema. */
function program(schema, module, type) {
  const { fields, samples } = FIXTURE[schema];
  const all = fields.map((field) => field.name);
  const written = fields.filter((field) => field.presence !== "omittable").map((field) => field.name);
  const lines = [
    `import type { ${type} as T } from ${JSON.stringify(join(NPM_DIR, "src", module))};`,
    "type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false;",
    "type RequiredKeys<O> = { [K in keyof O]-?: {} extends Pick<O, K> ? never : K }[keyof O];",
    "function check<_ extends true>(): void {}",
    `// Every key of the type is a field of the schema.`,
    `check<Equal<Exclude<keyof T, ${union(all)}>, never>>();`,
    `// Every field encoders always write is a required key.`,
    `check<Equal<Exclude<${union(written)}, RequiredKeys<T>>, never>>();`,
  ];
  for (const field of fields) {
    const key = JSON.stringify(field.name);
    if (field.presence === "always") {
      lines.push(`check<Equal<Extract<T[${key}], null>, never>>(); // ${field.name} is never null`);
    } else if (field.presence === "nullable") {
      lines.push(`check<Equal<Extract<T[${key}], null>, null>>(); // ${field.name} may be null`);
    }
    if (field.type === "literal") {
      lines.push(`check<Equal<T[${key}], ${JSON.stringify(field.literal)}>>();`);
    }
  }
  samples.forEach((sample, index) => {
    lines.push(`export const sample${index} = ${JSON.stringify(sample)} satisfies T;`);
  });
  return lines.join("\n") + "\n";
}

function typecheck(source) {
  const dir = mkdtempSync(join(tmpdir(), "promptflag-contracts-"));
  try {
    writeFileSync(join(dir, "check.ts"), source);
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(NPM_DIR, "tsconfig.json"),
        compilerOptions: { noEmit: true, declaration: false, rootDir: "/" },
        include: [join(dir, "check.ts")],
      }),
    );
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    try {
      execFileSync(NODE, [tsc, "-p", join(dir, "tsconfig.json")], { encoding: "utf8", stdio: "pipe" });
      return "";
    } catch (error) {
      return `${error.stdout ?? ""}${error.stderr ?? ""}` || String(error);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [schema, [module, type]] of Object.entries(CHECKED)) {
  test(`${type} in npm/src/${module} matches the ${schema} schema of the contracts crate`, () => {
    const errors = typecheck(program(schema, module, type));
    assert.equal(errors, "", `${type} drifted from the ${schema} schema:\n${errors}`);
  });
}

test("the check fails when a type drifts from the schema", () => {
  // The same program against a copy of the schema with one field renamed must not compile, so
  // the test above cannot pass vacuously.
  const renamed = structuredClone(FIXTURE.exposure);
  renamed.fields = renamed.fields.map((field) =>
    field.name === "timestamp" ? { ...field, name: "timestamp_millis" } : field,
  );
  renamed.samples = renamed.samples.map(({ timestamp, ...rest }) => ({ ...rest, timestamp_millis: 0 }));
  FIXTURE.renamed = renamed;
  const errors = typecheck(program("renamed", "client.js", "ExposureEvent"));
  delete FIXTURE.renamed;
  assert.notEqual(errors, "", "a renamed field went unnoticed");
  // The errors are the generated program's, not a setup problem elsewhere.
  assert.match(errors, /check\.ts\(\d+,\d+\): error TS/);
  assert.doesNotMatch(errors, /npm\/src\/[^(]*\(\d+,\d+\): error TS/);
});
