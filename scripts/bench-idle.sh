#!/usr/bin/env bash
# Idle cost: the real window on the embedded stack with its two users connected and idle,
# under Xvfb (software GL). Prints the CPU the process used over the measured window.
#
#   scripts/bench-idle.sh [BINARY] [WARMUP_SECS] [MEASURE_SECS]
#
# BINARY defaults to target/release/stickyscope (built if missing). The warm-up lets both
# users connect and the window come to rest; then CPU time (user + system, every thread) is
# read from /proc before and after MEASURE_SECS.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/stickyscope}
warmup=${2:-30}
measure=${3:-60}
if [[ ! -x $bin ]]; then
    cargo build --release --bin stickyscope
fi
command -v xvfb-run >/dev/null || { echo "bench-idle: xvfb-run is missing (apt-get install xvfb xauth)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total=$((warmup + measure + 10))
XDG_DATA_HOME=$tmp XDG_CONFIG_HOME=$tmp \
    xvfb-run -a -s "-screen 0 1600x1000x24" timeout -s INT "$total" "$bin" --port 0 \
    >"$tmp/out.log" 2>&1 &
runner=$!

pid=""
for _ in $(seq 1 100); do
    pid=$(pgrep -n -f "^$bin --port 0" || true)
    [[ -n $pid ]] && break
    sleep 0.1
done
[[ -n $pid ]] || { echo "bench-idle: the window did not start" >&2; cat "$tmp/out.log" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
sleep "$warmup"
before=$(ticks)
sleep "$measure"
after=$(ticks)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
kill -INT "$pid" 2>/dev/null || true
wait "$runner" || true

awk -v b="$before" -v a="$after" -v hz="$hz" -v s="$measure" -v rss="$rss_kb" -v bin="$bin" 'BEGIN {
    cpu = (a - b) / hz
    printf "idle: %s, two idle users, %d s measured after warm-up: %.2f s CPU = %.2f %% of one core; RSS %.1f MB\n", bin, s, cpu, 100 * cpu / s, rss / 1024
}'
