#!/usr/bin/env bash
# Records a clip of the window under Xvfb (release build, presentation mode, 1280x720,
# stickiness off) and prints what it came to and where the CPU went, per thread: the
# encoder's own thread, the window's, Mesa's software rasteriser. Usage:
#   scripts/bench-clip.sh [SECONDS]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
cargo build --release --quiet
out="$(mktemp -d -t stickyscope-clip.XXXXXX)"
xvfb-run -a -s "-screen 0 1920x1080x24" bash -c "
  target/release/stickyscope --presentation --stickiness off --size 1280x720 --port 0 \
    --record '$out/clip.gif' --exit-after $secs > '$out/said.txt' 2>/dev/null &
  pid=\$!
  sleep $((secs - 1))
  ticks=\$(getconf CLK_TCK)
  for t in /proc/\$pid/task/*; do
    echo \"\$(cat \$t/comm) \$(awk -v hz=\$ticks '{printf \"%.2f\", (\$14+\$15)/hz}' \$t/stat)\"
  done | sort -k2 -n -r | head -5 > '$out/threads.txt'
  wait \$pid"
cat "$out/said.txt"
echo "CPU seconds by thread after $((secs - 1)) s:"
sed 's/^/  /' "$out/threads.txt"
rm -rf "$out"
