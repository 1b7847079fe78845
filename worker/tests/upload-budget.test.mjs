// The upload budget: each of the two Workers, as `wrangler deploy` would upload it from its own
// configuration (wrangler.toml, the serving Worker; wrangler.authority.toml, the admin authority),
// is within 150 KB gzipped. wrangler's `--dry-run` bundles and measures exactly what a deploy
// sends, without sending it. docs/benchmarks.md ("The upload: two Workers") keeps the figures.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ROOT } from "./helpers.mjs";

const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
// 150 KB, in the KiB wrangler reports.
const BUDGET_KIB = 150_000 / 1024;

/** wrangler's "Total Upload: … KiB / gzip: … KiB" for a configuration, in KiB. */
function upload(configArgs) {
  const outdir = mkdtempSync(join(tmpdir(), "promptflag-upload-"));
  try {
    // Node itself runs wrangler (not its shebang), so the Node 22 running this suite runs it.
    const output = execFileSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outdir, ...configArgs], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        DO_NOT_TRACK: "1",
        XDG_CONFIG_HOME: join(ROOT, "target", "tools", "xdg"),
        WRANGLER_LOG_PATH: join(ROOT, "target", "tools", "wrangler-logs"),
      },
    });
    const match = output.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
    assert.ok(match, `no upload size in wrangler's output:\n${output}`);
    return { raw: Number(match[1]), gzip: Number(match[2]) };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

for (const [name, configArgs] of [
  ["the serving Worker (wrangler.toml)", []],
  ["the admin authority (wrangler.authority.toml)", ["-c", "wrangler.authority.toml"]],
]) {
  test(`${name} uploads within 150 KB gzipped`, { timeout: 300_000 }, () => {
    const { raw, gzip } = upload(configArgs);
    assert.ok(raw > gzip && gzip > 0, `${raw} KiB raw, ${gzip} KiB gzipped`);
    assert.ok(gzip <= BUDGET_KIB, `${gzip} KiB gzipped is over the ${BUDGET_KIB.toFixed(2)} KiB budget`);
  });
}
