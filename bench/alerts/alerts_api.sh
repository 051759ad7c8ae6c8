#!/usr/bin/env bash
# Alerts over the admin API: wrk against GET /api/v1/alerts with 100,000
# open alerts stored (filled by build/bench/opk_alerts_bench seed): a
# filtered page (severity=critical&status=open, limit=50), the default page
# (every alert not closed, newest first, limit=50), and the filtered listing's
# second page through its cursor; then the filtered page with another time
# range each request (never answered from the kernel's cache). Prints requests/s, latency percentiles,
# socket errors and non-2xx answers (wrk prints those lines only when there
# are any) for each of ROUNDS runs, and the kernel's RSS.
# Usage: bash bench/alerts/alerts_api.sh [BUILD_DIR] [CONNECTIONS] [SECONDS] [ROUNDS] [ALERTS]
# SEEDED_DB=FILE starts from a copy of a store seeded before (seeding 100,000
# alerts takes minutes), e.g. to compare two builds on the same data.
set -euo pipefail
BUILD=${1:-build}
CONN=${2:-50}
SECS=${3:-10}
ROUNDS=${4:-3}
ALERTS=${5:-100000}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
DIR=$(mktemp -d /tmp/opk-alerts-api-bench-XXXXXX)
PID=
trap '[ -n "$PID" ] && { kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; }; rm -rf "$DIR"' EXIT
PORT=$((20000 + RANDOM % 20000))
if [ -n "${SEEDED_DB:-}" ]; then cp "$SEEDED_DB" "$DIR/opskernel.db"; else "$BUILD/bench/opk_alerts_bench" seed "$DIR/opskernel.db" "$ALERTS"; fi
cat >"$DIR/bench.conf" <<CONF
[plugin.admin-http]
rate_per_user = 0
rate_per_address = 0
threads = $((CONN + 14))
connections_per_address = $((CONN + 14))
CONF
# The first start on the seeded store creates the administrator and prints
# its token.
"$BUILD/kernel/opskernel" run -c "$DIR/bench.conf" --plugins-dir "$BUILD/plugins" --data-dir "$DIR" \
  --listen "127.0.0.1:$PORT" --log-level warn >"$DIR/out.txt" 2>"$DIR/err.txt" &
PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
TOKEN=$(grep "^opk_" "$DIR/out.txt")
AUTH="Authorization: Bearer $TOKEN"
BASE="http://127.0.0.1:$PORT/api/v1/alerts"
FILTER="severity=critical&status=open&limit=50"
CURSOR=$(curl -sf -H "$AUTH" "$BASE?$FILTER" |
  python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.load(sys.stdin)["next_cursor"], safe=""))')
COUNT=$(curl -sf -H "$AUTH" "$BASE/counts" | python3 -c 'import json, sys; c = json.load(sys.stdin); print(c["by_status"].get("open", 0), "open,", c["open_critical"], "critical")')
echo "stored: $COUNT"
# Each request of the "uncached" round asks for another time range (to_ms
# some time after every stored alert), so no answer is served twice: the
# kernel's answer cache (kernel/host/answer_cache.h) never holds it and each
# page is read from the store and written anew.
cat >"$DIR/uncached.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "&to_ms=" .. (4102444800000 - n * 1000 - math.random(0, 999)))
end
LUA
run() {
  local name=$1 path=$2 script=${3:-}
  for r in $(seq "$ROUNDS"); do
    echo "== $name (round $r): GET $path, $CONN connections, ${SECS}s (wrk -t2)"
    wrk -t2 -c"$CONN" -d"${SECS}s" --latency ${script:+-s "$script"} -H "$AUTH" "http://127.0.0.1:$PORT$path" |
      grep -E "Requests/sec|50%|90%|99%|Socket errors|Non-2xx|requests in"
  done
}
run "filtered page" "/api/v1/alerts?$FILTER"
run "default page" "/api/v1/alerts?limit=50"
run "filtered, second page by cursor" "/api/v1/alerts?$FILTER&cursor=$CURSOR"
run "filtered page, uncached (another to_ms each request)" "/api/v1/alerts?$FILTER" "$DIR/uncached.lua"
echo "RSS of the kernel after the runs: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$PID/status)"
