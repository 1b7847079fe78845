// The published artefact, as a user gets it: `npm pack` of npm/, installed offline into a scratch
// project (the package has no dependencies), then imported from Node as ESM and as CommonJS,
// type-checked with TypeScript, bundled by wrangler for workerd and run in Miniflare, and loaded
// by a page in headless Chromium served on 127.0.0.1.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { DIST, NODE, NPM_DIR, ROOT } from "./support.mjs";

const CHROMIUM = "/usr/bin/chromium";

// A ruleset every runtime below evaluates the same way.
const RULESET = {
  schema: 1,
  environment: "dev",
  revision: 3,
  flags: {
    greeting: {
      kind: "string",
      variants: { plain: { value: "Hello" }, warm: { value: "Hi there" } },
      baseline: "plain",
      rules: [{ when: [{ attribute: "country", op: "in", values: ["IE", "GB"] }], serve: { variant: "warm" } }],
    },
    rollout: {
      kind: "boolean",
      variants: { off: { value: false }, on: { value: true } },
      baseline: "off",
      default: { split: { treatments: [{ variant: "on", weight: 50000 }] } },
    },
  },
};

/** The program each runtime runs: the same checks, the same JSON out. */
const PROBE = `
  const evaluator = Evaluator.fromRuleset(${JSON.stringify(JSON.stringify(RULESET))});
  const context = new PreparedContext({ country: "IE" });
  const rollout = [];
  for (let i = 0; i < 20; i++) rollout.push(evaluator.evaluate("rollout", context.setTargetingKey("user-" + i)).variant);
  let rejected = null;
  try { Evaluator.fromRuleset({ schema: 1, environment: "dev", revision: 1, flags: { f: { kind: "string", variants: {}, baseline: "x" } } }); }
  catch (error) { rejected = { name: error.name, code: error.code, paths: error.problems.map((p) => p.path), isError: error instanceof PromptflagError }; }
  const probe = {
    greeting: evaluator.evaluate("greeting", { targetingKey: "u", country: "GB" }),
    rollout,
    slot: bucketSlot("rollout", "user-1"),
    revision: evaluator.revision,
    rejected,
    client: typeof PromptflagClient,
  };
`;

/** What every runtime must print, computed here from the built package. */
async function expectedProbe() {
  const module = await import(pathToFileURL(join(DIST, "node.js")).href);
  const names = ["Evaluator", "PreparedContext", "PromptflagClient", "PromptflagError", "bucketSlot"];
  const probe = new Function(...names, `${PROBE}; return probe;`)(...names.map((name) => module[name]));
  return JSON.parse(JSON.stringify(probe));
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

describe("the packed package", () => {
  let scratch;
  let project;
  let tarball;
  let expected;

  before(async () => {
    assert.ok(existsSync(join(DIST, "node.js")), "npm/dist is missing: run cargo xtask build-npm");
    scratch = mkdtempSync(join(tmpdir(), "promptflag-pack-"));
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: NPM_DIR }));
    tarball = join(scratch, packed[0].filename);
    project = join(scratch, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", version: "1.0.0", private: true }));
    // --offline: the package must install from the tarball alone.
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: project });
    expected = await expectedProbe();
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("the tarball holds the built entries, types and Wasm, and nothing else", () => {
    const listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const file of [
      "package/package.json",
      "package/README.md",
      "package/dist/node.js",
      "package/dist/node.cjs",
      "package/dist/workerd.js",
      "package/dist/browser.js",
      "package/dist/index.d.ts",
      "package/dist/index.d.cts",
      "package/dist/openfeature.js",
      "package/dist/openfeature.cjs",
      "package/dist/openfeature.d.ts",
      "package/dist/wasm/promptflag_wasm_bg.wasm",
    ]) {
      assert.ok(listing.includes(file), `${file} is packed`);
    }
    assert.ok(!listing.some((file) => file.includes("/src/") || file.includes("/tests/") || file.includes("/pkg/")), listing.join("\n"));
    const manifest = JSON.parse(readFileSync(join(project, "node_modules", "promptflag", "package.json"), "utf8"));
    assert.equal(manifest.dependencies, undefined, "no runtime dependencies");
    assert.equal(readdirSync(join(project, "node_modules")).filter((n) => !n.startsWith(".")).join(), "promptflag");
  });

  test("Node ESM: import from 'promptflag' and 'promptflag/openfeature'", () => {
    writeFileSync(
      join(project, "probe.mjs"),
      `import { Evaluator, PreparedContext, PromptflagClient, PromptflagError, bucketSlot } from "promptflag";
       import { PromptflagProvider } from "promptflag/openfeature";
       ${PROBE}
       probe.provider = new PromptflagProvider(evaluator).metadata.name;
       console.log(JSON.stringify({ probe, resolved: import.meta.resolve("promptflag") }));`,
    );
    const out = JSON.parse(run(NODE, ["probe.mjs"], { cwd: project }));
    assert.match(out.resolved, /node_modules\/promptflag\/dist\/node\.js$/);
    assert.equal(out.probe.provider, "promptflag");
    delete out.probe.provider;
    assert.deepEqual(out.probe, expected);
  });

  test("Node CommonJS: require('promptflag'), a real CommonJS build", () => {
    writeFileSync(
      join(project, "probe.cjs"),
      `const { Evaluator, PreparedContext, PromptflagClient, PromptflagError, bucketSlot } = require("promptflag");
       const { PromptflagProvider } = require("promptflag/openfeature");
       ${PROBE}
       probe.provider = new PromptflagProvider(evaluator).metadata.name;
       console.log(JSON.stringify({ probe, resolved: require.resolve("promptflag") }));`,
    );
    // No require(esm): the CommonJS entry must stand on its own.
    const out = JSON.parse(run(NODE, ["--no-experimental-require-module", "probe.cjs"], { cwd: project }));
    assert.match(out.resolved, /node_modules\/promptflag\/dist\/node\.cjs$/);
    assert.equal(out.probe.provider, "promptflag");
    delete out.probe.provider;
    assert.deepEqual(out.probe, expected);
  });

  test("TypeScript: the shipped types check for ESM and CommonJS consumers", () => {
    writeFileSync(
      join(project, "check.mts"),
      `import { Evaluator, PreparedContext, PromptflagClient, RulesetValidationError, type Evaluation, type PromptResolution } from "promptflag";
       const evaluator: Evaluator = Evaluator.fromRuleset("{}");
       const result: Evaluation<string> = evaluator.evaluate<string>("greeting", { targetingKey: "u" });
       const text: string | null = result.value;
       const prompt: PromptResolution = evaluator.resolvePrompt("p", new PreparedContext({ targetingKey: "u" }));
       const id: string | undefined = prompt.prompt?.id;
       const client = new PromptflagClient({ baseUrl: "https://flags.example.com", refreshIntervalMs: 0 });
       const problems: readonly { path: string }[] = new RulesetValidationError("m", []).problems;
       export { text, id, client, problems };`,
    );
    writeFileSync(
      join(project, "check.cts"),
      `import promptflag = require("promptflag");
       const evaluator = promptflag.Evaluator.fromRuleset("{}");
       const reason: promptflag.Reason = evaluator.evaluate("f").reason;
       export = reason;`,
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          lib: ["es2022", "dom", "esnext.disposable"],
          strict: true,
          noEmit: true,
          types: [],
          skipLibCheck: false,
        },
        files: ["check.mts", "check.cts"],
      }),
    );
    run(NODE, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: project });
  });

  test("workerd: wrangler bundles the 'workerd' entry, Miniflare runs it", { timeout: 180_000 }, async () => {
    const app = join(project, "worker-app");
    mkdirSync(app, { recursive: true });
    writeFileSync(
      join(app, "index.js"),
      `import { Evaluator, PreparedContext, PromptflagClient, PromptflagError, bucketSlot } from "promptflag";
       export default {
         async fetch() {
           ${PROBE}
           return Response.json(probe);
         },
       };`,
    );
    writeFileSync(join(app, "wrangler.toml"), `name = "probe"\nmain = "index.js"\ncompatibility_date = "2026-07-01"\n`);
    // Resolve "promptflag" from the scratch project's node_modules, as a user's project would.
    const out = join(app, "out");
    run(NODE, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", "--dry-run", "--outdir", out], {
      cwd: app,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        DO_NOT_TRACK: "1",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        XDG_CONFIG_HOME: join(scratch, "xdg"),
        WRANGLER_LOG_PATH: join(scratch, "wrangler-logs"),
      },
    });
    const bundle = readFileSync(join(out, "index.js"), "utf8");
    assert.ok(!bundle.includes("readFileSync"), "the workerd entry, not the Node one, was bundled");
    assert.ok(readdirSync(out).some((name) => name.endsWith(".wasm")), "the Wasm module ships beside the bundle");
    const mf = new Miniflare({
      modules: true,
      scriptPath: join(out, "index.js"),
      modulesRoot: out,
      modulesRules: [
        { type: "ESModule", include: ["**/*.js"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
      compatibilityDate: "2026-07-01",
      cf: false,
    });
    try {
      const response = await mf.dispatchFetch("http://localhost/");
      const text = await response.text();
      assert.equal(response.status, 200, text);
      assert.deepEqual(JSON.parse(text), expected);
    } finally {
      await mf.dispose();
    }
  });

  test("browser: a page on 127.0.0.1 in headless Chromium imports the 'browser' entry", { timeout: 120_000 }, async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: cargo xtask build-npm installs Debian's chromium (apt-get install chromium)`);
    const manifest = JSON.parse(readFileSync(join(project, "node_modules", "promptflag", "package.json"), "utf8"));
    const browserEntry = manifest.exports["."].browser;
    assert.equal(typeof browserEntry, "string");
    const entryUrl = `/node_modules/promptflag/${browserEntry.replace(/^\.\//, "")}`;
    writeFileSync(
      join(project, "index.html"),
      `<!doctype html><meta charset="utf-8"><title>promptflag</title><link rel="icon" href="data:,">
       <script type="importmap">${JSON.stringify({ imports: { promptflag: entryUrl } })}</script>
       <script type="module">
         import { Evaluator, PreparedContext, PromptflagClient, PromptflagError, bucketSlot } from "promptflag";
         try {
           ${PROBE}
           window.__probe = probe;
         } catch (error) {
           window.__probe = { failed: String(error && error.stack || error) };
         }
       </script>`,
    );
    const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
    const served = [];
    const server = createServer((request, response) => {
      const path = normalize(join(project, decodeURIComponent(new URL(request.url, "http://x").pathname)));
      if (!path.startsWith(project + sep) || !existsSync(path) || !statSync(path).isFile()) {
        response.writeHead(404).end();
        return;
      }
      served.push(path.slice(project.length));
      response.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
      response.end(readFileSync(path));
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address();
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
    });
    try {
      const page = await browser.newPage();
      const problems = [];
      page.on("pageerror", (error) => problems.push(String(error)));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(message.text());
      });
      await page.goto(`http://127.0.0.1:${port}/index.html`);
      await page.waitForFunction(() => window.__probe !== undefined, undefined, { timeout: 30_000 });
      const probe = await page.evaluate(() => window.__probe);
      assert.equal(probe.failed, undefined, probe.failed);
      assert.deepEqual(problems, []);
      assert.deepEqual(probe, expected);
      assert.ok(served.some((path) => path.endsWith(".wasm")), "the page fetched the Wasm module");
    } finally {
      await browser.close();
      server.close();
    }
  });

  test("size: the Wasm gzipped plus one entry's JavaScript", () => {
    const dist = join(project, "node_modules", "promptflag", "dist");
    const wasm = readFileSync(join(dist, "wasm", "promptflag_wasm_bg.wasm"));
    const js = ["node.js", "index.js", "engine.js", "client.js", "errors.js", "lru.js", "wasm/promptflag_wasm.js"].map((f) => readFileSync(join(dist, f)));
    const gzipped = gzipSync(wasm, { level: 9 }).length;
    const jsGzipped = gzipSync(Buffer.concat(js), { level: 9 }).length;
    console.log(`# package size: wasm ${wasm.length} B (${gzipped} B gzipped), JS ${js.reduce((n, b) => n + b.length, 0)} B (${jsGzipped} B gzipped)`);
    // A budget, so growth is a decision: the engine, serde_json and dlmalloc fit well within it.
    assert.ok(gzipped < 200_000, `wasm gzipped ${gzipped} B`);
  });
});
