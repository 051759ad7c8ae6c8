#!/usr/bin/env bash
# Rate-limit overrides benchmark: the admin API under wrk with the limits on
# (admin-http asking opskernel.rate-limits/1 on every request) and 0, then
# 1,000 active overrides, alternated over 3 rounds in one kernel: /healthz
# (with the token check) and the jobs inventory (a page of 50 of 1,000
# scheduled jobs with 100,000 runs). Prints each run's requests/s and p99,
# then min / median / max of the 3 rounds per endpoint and count, and the
# kernel's RSS and the machine's load. The limits are on at 1,000,000 a
# minute per user and per address (the most admin-http takes): a full bucket
# outlasts a run unless it serves over 1,000,000 + SECONDS x 16,667
# requests, so before each run the script waits, reading the server's
# RateLimit header as a client would, until both buckets hold at least
# 1,000,000 again (a run drains them by what it served over the refill).
# Every answer is then served and the cost measured is the lookups; a run
# with any non-2xx answer or socket error fails the script (exit 1) instead
# of reporting a figure made partly of refusals. The 1,000 overrides are written to the store by a second writer
# (as another kernel would) and the kernel reloads them when its poller sees
# the change counter move: 990 address overrides over /32, /24, /16 and IPv6
# /64 and /128 blocks that do not match the client, and 10 on the platform
# node raising the user limit past the configured one (each request then also
# takes the node path of the token's scope). 0 overrides: every row ended.
# Usage: bash bench/rate_limit_overrides.sh [BUILD_DIR] [CONNECTIONS] [SECONDS]
set -euo pipefail
BUILD=${1:-build}
CONN=${2:-50}
SECS=${3:-8}
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null; }
DIR=$(mktemp -d /tmp/opk-rlo-bench-XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
PORT=$((20000 + RANDOM % 20000))
"$BUILD/bench/opk_seed_store" "$DIR/opskernel.db" 1000 100000 >/dev/null
cat >"$DIR/bench.conf" <<CONF
[plugin.admin-http]
rate_per_user = 1000000
rate_per_address = 1000000
threads = $((CONN + 14))
connections_per_address = $((CONN + 14))

[plugin.rate-limit-overrides]
poll_interval = 200ms
CONF
"$BUILD/kernel/opskernel" run -c "$DIR/bench.conf" --plugins-dir "$BUILD/plugins" --data-dir "$DIR" \
  --listen "127.0.0.1:$PORT" --log-level warn >"$DIR/out.txt" 2>"$DIR/err.txt" &
PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
TOKEN=$(grep "^opk_" "$DIR/out.txt")
API="http://127.0.0.1:$PORT/api/v1/rate-limit-overrides"
curl -sf -H "Authorization: Bearer $TOKEN" "$API" >/dev/null || { echo "the plugin does not answer"; exit 1; }

# Writes the overrides as another kernel sharing the store would: the rows
# and the change counter in one transaction.
set_overrides() {
  python3 - "$DIR/opskernel.db" "$1" <<'PY'
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1000)
c = sqlite3.connect(db, timeout=30)
with c:
    c.execute("UPDATE p_rate_limit_overrides_rows SET removed_ms = ?, removed_by = 'bench', removed_reason = 'bench' "
              "WHERE removed_ms IS NULL", (now,))
    rows = []
    for i in range(n):
        if i < 10:
            kind, target = "tenant", "platform"
        else:
            k = i % 5
            target = [f"10.{i // 250}.{i % 250}.7/32", f"10.{i // 250}.{i % 250}.0/24", f"172.{16 + i % 16}.0.0/16",
                      f"2001:db8:{i:x}::/64", f"2001:db8::{i:x}/128"][k]
            kind = "address"
        rows.append((f"rlo_b{now}_{i:04d}", kind, target, 2000000 if kind == "tenant" else 5000, "bench", "bench", now,
                     now + 6 * 3600 * 1000))
    c.executemany("INSERT INTO p_rate_limit_overrides_rows (id, kind, target, per_minute, reason, created_by, "
                  "created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    c.execute("UPDATE p_rate_limit_overrides_changes SET counter = counter + 1 WHERE id = 1")
PY
  # Seen by the kernel within its poll interval; check through the API.
  local active=
  for _ in $(seq 100); do
    active=$(curl -sf -H "Authorization: Bearer $TOKEN" "$API?state=active" | python3 -c \
      'import json,sys; print(len(json.load(sys.stdin)["overrides"]))')
    [ "$active" = "$1" ] && break
    sleep 0.1
  done
  [ "$active" = "$1" ] || { echo "   the kernel lists $active active overrides, not $1"; exit 1; }
  sleep 0.5  # past a poll, so the snapshot holds them
  # The policy the server applies now, as a client sees it.
  curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/healthz" |
    tr -d '\r' | grep -i '^ratelimit-policy' | sed 's/^/   /'
}

# Waits until every rate-limit bucket of the bench's requests (the address's
# and the user's) holds at least LIMIT requests, as the server's RateLimit
# header says ("name";r=<left>;t=<seconds until full>), so no run starts on
# a bucket an earlier one drained. Prints what was waited.
LIMIT=1000000
wait_full() {
  local waited=0 low
  for _ in $(seq 120); do
    low=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/healthz" |
      tr -d '\r' | grep -i '^ratelimit:' | grep -o 'r=[0-9]*' | cut -d= -f2 | sort -n | head -1)
    [ -n "$low" ] || { echo "   no RateLimit header on /healthz: are the limits on?"; exit 1; }
    if [ "$low" -ge $((LIMIT - 100)) ]; then
      echo "   buckets full again after ${waited} s (lowest holds $low)"
      return
    fi
    # The refill is LIMIT a minute, so the deficit takes deficit * 60 / LIMIT s.
    local pause
    pause=$(python3 -c "print(max(0.2, min(5.0, ($LIMIT - $low) * 60 / $LIMIT + 0.1)))")
    sleep "$pause"
    waited=$(python3 -c "print(round($waited + $pause, 1))")
  done
  echo "   the rate-limit buckets did not fill again within the wait"
  exit 1
}

# One wrk run: "requests/s p99_ms non2xx socket_errors", or "failed".
measure() {
  local out
  out=$(wrk -t2 -c"$CONN" -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$1") ||
    { echo failed; return; }
  echo "$out" | awk '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      /Requests\/sec/ { rps = $2 }
      $1 == "99%" { p99 = ms($2) }
      /Non-2xx/ { bad = $NF }
      /Socket errors/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
      END { if (rps == "") print "failed"; else printf "%.0f %.2f %d %d\n", rps, p99, bad + 0, errs + 0 }'
}

declare -A RESULTS
for round in 1 2 3; do
  for n in 0 1000; do
    echo "== round $round, $n active overrides (load $(cut -d' ' -f1-3 /proc/loadavg))"
    set_overrides "$n"
    for ep in healthz inventory; do
      path=/healthz
      [ "$ep" = inventory ] && path="/api/v1/jobs?limit=50"
      wait_full
      read -r rps p99 bad errs < <(measure "$path")
      if [ "$rps" = failed ]; then
        echo "   $ep: wrk failed"
        exit 1
      fi
      echo "   $ep: $rps requests/s, p99 $p99 ms, non-2xx $bad, socket errors $errs (load $(cut -d' ' -f1-3 /proc/loadavg))"
      if [ "$bad" != 0 ] || [ "$errs" != 0 ]; then
        echo "   FAILED: $bad non-2xx answers and $errs socket errors in the run; its figures would not be the served requests'"
        exit 1
      fi
      RESULTS["$ep/$n"]+="$rps $p99 "
    done
  done
done

echo "== min / median / max of 3 rounds (wrk -t2 -c$CONN -d${SECS}s)"
for ep in healthz inventory; do
  for n in 0 1000; do
    echo "${RESULTS[$ep/$n]}" | python3 -c '
import sys
v = [float(x) for x in sys.stdin.read().split()]
rps, p99 = sorted(v[0::2]), sorted(v[1::2])
print(f"   {sys.argv[1]:<9} {sys.argv[2]:>4} overrides: requests/s {rps[0]:,.0f} / {rps[1]:,.0f} / {rps[2]:,.0f}, "
      f"p99 {p99[0]:.2f} / {p99[1]:.2f} / {p99[2]:.2f} ms")' "$ep" "$n"
  done
done
echo "RSS of the kernel after the runs: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$PID/status)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
