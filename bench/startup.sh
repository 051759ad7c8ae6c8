#!/usr/bin/env bash
# Start-up benchmark: time from exec of `opskernel run` to its "kernel ready"
# log line, and resident memory once idle, with the bundled plugins.
# Prints min / median / max over N runs (default 5).
#   bash bench/startup.sh [BUILD_DIR] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-5}
BIN=$BUILD/kernel/opskernel
[ -x "$BIN" ] || { echo "no $BIN: build first" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

ready_ms=() rss_kib=()
for i in $(seq "$N"); do
  LOG=$WORK/run$i.log
  t0=$(date +%s%N)
  "$BIN" --plugins-dir "$BUILD/plugins" --data-dir "$WORK/data" run 2>"$LOG" &
  pid=$!
  until grep -q "kernel ready" "$LOG" 2>/dev/null; do
    kill -0 $pid 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.001
  done
  t1=$(date +%s%N)
  sleep 1  # idle
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
  kill -TERM $pid
  wait $pid
  ready_ms+=("$(( (t1 - t0) / 1000000 ))")
  rss_kib+=("$rss")
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "min %s  median %s  max %s", a[1], a[int((NR+1)/2)], a[NR]}'; }
plugins=$(ls "$BUILD"/plugins/*.so | wc -l)
echo "opskernel start-up with $plugins bundled plugin(s), $N runs"
echo "  exec -> ready (ms, includes polling the log): $(stats "${ready_ms[@]}")"
echo "  kernel's own start() (ms, from its log):      $(grep -ho 'ready in [0-9]* ms' "$WORK"/run*.log | awk '{print $3}' | sort -n | tr '\n' ' ')"
echo "  idle RSS (MiB):                               $(stats $(for r in "${rss_kib[@]}"; do awk -v r="$r" 'BEGIN{printf "%.1f\n", r/1024}'; done))"
