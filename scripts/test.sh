#!/usr/bin/env bash
# Runs stickyscope's checks and tests on a fresh machine: installs what is missing (Debian
# packages, the local chain's nginx, redis-server and Traefik through
# scripts/install-chain.sh, Chromium, the socket.io JS client and playwright-core into a
# temporary folder), starts a private redis-server
# on a free loopback port, then runs cargo fmt, clippy and the tests, the real window under
# Xvfb on the embedded stack and on the local chain, records a clip, and checks that no
# process the suite started outlives it. Nothing is skipped: a test whose dependency is
# missing fails and says why.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; exit 2
  fi
}

# --- Debian packages -------------------------------------------------------------------
missing=()
command -v pkg-config >/dev/null || missing+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
# A balancer other than Traefik, with its own sticky cookie (tests/haproxy.rs).
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || missing+=(haproxy)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
command -v pgrep >/dev/null || missing+=(procps)
# The desktop entry's validator; a self-signed certificate for the test of a TLS port.
command -v openssl >/dev/null || missing+=(openssl)
command -v desktop-file-validate >/dev/null || missing+=(desktop-file-utils)
# A Docker engine and a base image made without a registry, for the swarm stack deployed
# for real (tests/swarm.rs, scripts/swarm-engine.sh, stack/deploy.sh --offline).
[ -x /usr/sbin/dockerd ] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
# A network namespace with a narrow port range (tests/local_ports.rs).
command -v unshare >/dev/null || missing+=(util-linux)
# A real browser for the HAR test (tests/har.rs): Debian's Chromium, driven by Playwright.
command -v chromium >/dev/null || missing+=(chromium)
# The window under a virtual display, its GL, and a PNG checker.
for pkg in xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 imagemagick; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- the local chain's programs: nginx, redis-server, Traefik (pinned) ------------------------
log "the local chain's programs (scripts/install-chain.sh)"
scripts/install-chain.sh

# --- socket.io from npm for the interop tests, outside the repository ----------------------
# The official JS client, and the official servers v4 and 2 (as the aliases socket.io-v4 and
# socket.io-v2): stacks nobody here wrote; playwright-core, to drive Chromium for a HAR.
js_ready() {
  [ -n "${STICKYSCOPE_NODE_MODULES:-}" ] && for p in socket.io-client socket.io-v4 socket.io-v2 playwright-core; do
    [ -d "$STICKYSCOPE_NODE_MODULES/$p" ] || return 1
  done
}
if ! js_ready; then
  js_dir="$(mktemp -d -t stickyscope-js.XXXXXX)"
  log "installing socket.io-client@4, socket.io@4, socket.io@2 and playwright-core@1.65.2 into $js_dir"
  npm install --prefix "$js_dir" --no-audit --no-fund --loglevel=error \
    socket.io-client@4 socket.io-v4@npm:socket.io@4 socket.io-v2@npm:socket.io@2 \
    playwright-core@1.65.2 >/dev/null
  export STICKYSCOPE_NODE_MODULES="$js_dir/node_modules"
fi

# --- a private Redis on a free loopback port ------------------------------------------
redis_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
redis_dir="$(mktemp -d -t stickyscope-redis.XXXXXX)"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$redis_dir" --daemonize no >"$redis_dir/redis.log" 2>&1 &
redis_pid=$!
cleanup() { kill "$redis_pid" 2>/dev/null || true; rm -rf "$redis_dir"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then break; fi
  sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { cat "$redis_dir/redis.log"; echo "redis-server did not start" >&2; exit 1; }
export REDIS_URL="redis://127.0.0.1:$redis_port"
log "redis-server $(redis-server --version | awk '{print $3}') on $REDIS_URL"

# What runs now of the kinds of process the suite starts; anything new at the end outlived
# its test.
suite_kinds='nginx|traefik|redis-server|haproxy|stickyscope|stickyscope-replica|dockerd|containerd|containerd-shim'
running_before="$(pgrep -d ' ' -x "$suite_kinds" || true)"

# --- the swarm stack file, validated offline by the docker CLI ---------------------------------
command -v docker >/dev/null || { echo "the docker CLI is needed to validate docker-swarm.yml" >&2; exit 2; }
log "docker stack config -c docker-swarm.yml"
docker stack config -c docker-swarm.yml >/dev/null
docker stack config -c docker-swarm.yml -c stack/swarm-no-ipvs.yml >/dev/null

# --- checks and tests -----------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo test"
cargo test --workspace "$@"

# --- the real window under Xvfb, with a screenshot -----------------------------------------
# The binary the tests built, wherever cargo puts it (CARGO_TARGET_DIR, a config's target-dir).
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
app="$target_dir/debug/stickyscope"
test -x "$app" || { echo "cargo test built no $app" >&2; exit 1; }
log "the window under Xvfb for 10 s (--screenshot)"
shot="$(mktemp -d -t stickyscope-shot.XXXXXX)/window.png"
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" --port 0 --screenshot "$shot" --exit-after 10
check_shot() {
  test -s "$1" || { echo "no screenshot at $1" >&2; exit 1; }
  deviation="$(convert "$1" -colorspace Gray -format '%[fx:standard_deviation]' info:)"
  python3 -c "import sys; d=float(sys.argv[1]); print(f'screenshot {sys.argv[2]}: grey deviation {d:.3f}'); sys.exit(0 if d > 0.02 else 1)" "$deviation" "$1" \
    || { echo "the screenshot $1 is blank" >&2; exit 1; }
}
check_shot "$shot"

log "the window on the local chain (nginx → Traefik → replica processes → Redis) under Xvfb"
chain_shot="$(dirname "$shot")/chain.png"
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" --chain --port 0 --screenshot "$chain_shot" --exit-after 12
check_shot "$chain_shot"

log "the window playing a scenario in presentation mode under Xvfb"
scenario_shot="$(dirname "$shot")/scenario.png"
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" --scenario 6-seed-flaw-adapter --presentation --port 0 \
  --screenshot "$scenario_shot" --exit-after 8
check_shot "$scenario_shot"

log "a clip recorded under Xvfb (--record, presentation mode at 1280x720)"
clip="$(dirname "$shot")/clip.gif"
capture="$(dirname "$shot")/window.jsonl"
said="$(xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" --presentation --stickiness off --size 1280x720 --port 0 \
  --record "$clip" --exit-after 6 --capture "$capture")"
echo "$said"
case "$said" in *"clip saved to $clip"*) ;; *) echo "the clip was not saved" >&2; exit 1 ;; esac
case "$said" in *"capture saved to $capture"*) ;; *) echo "the capture was not saved" >&2; exit 1 ;; esac

log "that window's capture opened again at its first failure (stickyscope open) under Xvfb"
open_shot="$(dirname "$shot")/open.png"
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" open "$capture" --first-failure --screenshot "$open_shot" --exit-after 3
check_shot "$open_shot"
frames="$(identify "$clip" | wc -l)"
canvas="$(identify -format '%Wx%H\n' "$clip" | sed -n 1p)"
echo "clip: $frames frames, $canvas"
[ "$frames" -ge 5 ] || { echo "the clip has $frames frames" >&2; exit 1; }
[ "$canvas" = "960x540" ] || { echo "the clip is $canvas, not scaled to 960x540" >&2; exit 1; }
convert "$clip[0]" "$(dirname "$shot")/clip-first.png"
check_shot "$(dirname "$shot")/clip-first.png"

# --- nothing the suite started outlives it ---------------------------------------------------
log "leftover processes"
leftovers=()
for pid in $(pgrep -x "$suite_kinds" || true); do
  case " $running_before $redis_pid " in *" $pid "*) continue ;; esac
  # Zombies are dead; they wait only for their parent to read their status.
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = "Z" ] && continue
  leftovers+=("$pid")
done
if [ "${#leftovers[@]}" -gt 0 ]; then
  echo "processes the suite started outlived it:" >&2
  ps -o pid,ppid,user,args -p "$(IFS=,; echo "${leftovers[*]}")" >&2
  exit 1
fi
echo "none"
