#!/usr/bin/env bash
# Draws assets/icon.png (256×256, the window's icon) with ImageMagick: the same picture as
# assets/icon.svg (the scalable one for desktops) — a user, the balancer, three replicas,
# and the sticky path drawn bold to the ringed replica.
set -euo pipefail
cd "$(dirname "$0")/../assets"
convert -size 256x256 xc:none -fill '#1b1f2a' -draw "roundrectangle 8,8 247,247 44,44" \
  -stroke '#5c6370' -strokewidth 6 -draw "line 128,128 196,128" -draw "line 128,128 196,190" \
  -stroke '#3ecf6e' -strokewidth 12 -draw "line 58,128 128,128" -draw "line 128,128 196,66" \
  -stroke none -fill '#3ecf6e' -draw "circle 58,128 82,128" \
  -fill '#e8e8e8' -draw "roundrectangle 104,104 152,152 10,10" \
  -fill '#4aa3ff' -draw "circle 196,66 218,66" \
  -fill '#f0a030' -draw "circle 196,128 218,128" \
  -fill '#2ec4a6' -draw "circle 196,190 218,190" \
  -fill none -stroke '#3ecf6e' -strokewidth 6 -draw "circle 196,66 226,66" \
  -depth 8 PNG32:icon.png
