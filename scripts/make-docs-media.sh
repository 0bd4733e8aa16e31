#!/usr/bin/env bash
# Makes the pictures in docs/ from the real window under Xvfb (needs xvfb-run and xdotool):
# the README's first picture, presentation mode at 1280x720 and 1920x1080, and a clip of the stickiness switch flipped
# (round-robin: no session forms; sticky: both connect). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
app=target/release/stickyscope

# The pointer rests on an empty part of the agent's pane: no tooltip in the pictures.
shot() { # size file stickiness seconds [flags]
  local h="${1#*x}"
  xvfb-run -a -s "-screen 0 ${1}x24" bash -c "
    '$app' ${5:-} --stickiness $3 --size $1 --port 0 --screenshot '$2' --exit-after $4 &
    app=\$!
    xdotool search --sync --name stickyscope >/dev/null
    xdotool mousemove 20 $((h - 200))
    wait \$app"
}
shot 1440x900 docs/screenshot.png off 9
shot 1280x720 docs/presentation-1280x720.png off 7 --presentation
shot 1920x1080 docs/presentation-1920x1080.png on 9 --presentation

# 8 s round-robin, then S: the switch turns stickiness on; 12 s more.
xvfb-run -a -s "-screen 0 1280x720x24" bash -c "
  '$app' --presentation --stickiness off --size 1280x720 --port 0 \
    --record docs/stickiness.gif --exit-after 20 &
  app=\$!
  window=\$(xdotool search --sync --name stickyscope | head -1)
  xdotool mousemove 20 520
  sleep 8
  xdotool windowfocus --sync \"\$window\" key s
  wait \$app"
ls -l docs/screenshot.png docs/presentation-1280x720.png docs/presentation-1920x1080.png docs/stickiness.gif
