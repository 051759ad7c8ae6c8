#!/usr/bin/env bash
# Admin API benchmark: wrk against the jobs inventory with 1,000 scheduled
# jobs and 100,000 runs stored, and against /healthz as the ceiling. Prints
# requests/s and latency percentiles for each, and checks that every
# connection was answered (Poco serves one connection per thread).
# Usage: bash bench/admin_api.sh [BUILD_DIR] [CONNECTIONS] [SECONDS]
set -euo pipefail
BUILD=${1:-build}
CONN=${2:-50}
SECS=${3:-10}
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null; }
DIR=$(mktemp -d /tmp/opk-api-bench-XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
PORT=$((20000 + RANDOM % 20000))
"$BUILD/bench/opk_seed_store" "$DIR/opskernel.db" 1000 100000
"$BUILD/kernel/opskernel" run --plugins-dir "$BUILD/plugins" --data-dir "$DIR" --listen "127.0.0.1:$PORT" \
  --log-level warn >"$DIR/out.txt" 2>"$DIR/err.txt" &
PID=$!
for _ in $(seq 100); do grep -q "^opk_" "$DIR/out.txt" 2>/dev/null && break; sleep 0.05; done
TOKEN=$(grep "^opk_" "$DIR/out.txt")
# Rate limits off for the benchmark: one token makes every request.
kill $PID; wait $PID 2>/dev/null || true
cat >"$DIR/bench.conf" <<CONF
[plugin.admin-http]
rate_per_user = 0
rate_per_address = 0
threads = $((CONN + 14))
connections_per_address = $((CONN + 14))
CONF
"$BUILD/kernel/opskernel" run -c "$DIR/bench.conf" --plugins-dir "$BUILD/plugins" --data-dir "$DIR" \
  --listen "127.0.0.1:$PORT" --log-level warn >>"$DIR/out.txt" 2>>"$DIR/err.txt" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
run() {
  local name=$1 path=$2
  echo "== $name: GET $path, $CONN connections, ${SECS}s (wrk -t2)"
  wrk -t2 -c"$CONN" -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path" |
    grep -E "Requests/sec|50%|90%|99%|Socket errors|Non-2xx|requests in"
}
run "inventory (page of 50 of 1,000 jobs, latest run of each out of 100,000)" "/api/v1/jobs?limit=50"
run "healthz (ceiling)" "/healthz"
echo "RSS of the kernel after the runs: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$PID/status)"
