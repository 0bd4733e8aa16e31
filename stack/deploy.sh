#!/usr/bin/env bash
# Builds the stack's images and deploys docker-swarm.yml on this Docker engine (initialising
# a one-node swarm when needed), then waits until every task runs, the replicas are healthy
# and the gateway answers through Traefik. Run from anywhere; needs a Docker engine, openssl
# and curl.
#
#   stack/deploy.sh [--offline | --online] [--no-ipvs] [--replica-bin PATH] [--timeout S]
#
# Images: online (a registry answers), as on any machine: the replica from
# stack/replica/Dockerfile (a Rust build stage), nginx's from the official nginx image,
# Traefik and Redis pulled. Offline (no registry answers, or --offline), every image is
# built here from a local base (stack/offline/base.sh: debootstrap, then docker import as
# debian:bookworm-slim): nginx and Redis from Debian's packages, Traefik 3.7.15 from the
# official binary scripts/install-chain.sh installs, the replica from a binary built on this
# machine (--replica-bin, or cargo build --release) — each tagged as the stack file names it,
# so docker-swarm.yml runs unchanged.
#
# --no-ipvs adds stack/swarm-no-ipvs.yml, for a kernel without IPVS (no service VIPs, no
# ingress routing mesh): services by DNS round robin, ports published on the node.
#
# Traefik's API and dashboard are served only behind basic auth: the first deploy creates
# the Docker secret traefik_api_users (user stickyscope, a fresh password, stored only as an
# apr1 hash) and prints the password once. stack/teardown.sh removes the secret with the
# stack; the next deploy makes a new password.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
docker=${DOCKER:-docker}
mode=auto no_ipvs=0 replica_bin="${REPLICA_BIN:-}" timeout=180
while [ $# -gt 0 ]; do
  case "$1" in
    --offline) mode=offline ;;
    --online) mode=online ;;
    --no-ipvs) no_ipvs=1 ;;
    --replica-bin) replica_bin="${2:?--replica-bin needs a path}"; shift ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see stack/deploy.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }

if [ "$mode" = auto ]; then
  if out=$(timeout 60 $docker pull -q debian:bookworm-slim 2>&1); then
    mode=online
  else
    mode=offline
    echo "no registry answers (docker pull: ${out##*$'\n'}): building every image here"
  fi
fi

# build TAG CONTEXT [DOCKERFILE]: quietly, unless it fails.
build() {
  local log
  if ! log=$($docker build -t "$1" ${3:+-f "$3"} "$2" 2>&1); then
    echo "$log" | tail -20 >&2
    echo "building $1 failed" >&2
    exit 1
  fi
  echo "built $1"
}

if [ "$mode" = online ]; then
  build stickyscope-replica:latest . stack/replica/Dockerfile
  build stickyscope-nginx:latest stack/nginx
else
  stack/offline/base.sh
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  have() { $docker image inspect "$1" >/dev/null 2>&1; }
  have nginx:1.27-alpine || build nginx:1.27-alpine stack/offline/nginx
  have redis:7-alpine || build redis:7-alpine stack/offline/redis
  if ! have traefik:v3.7.15; then
    # Where scripts/install-chain.sh and stickyscope itself look, in the same order.
    traefik=""
    looked=()
    for candidate in "${STICKYSCOPE_TRAEFIK:-}" \
      "${XDG_DATA_HOME:-$HOME/.local/share}/stickyscope/bin/traefik" \
      "$HOME/.local/share/stickyscope/bin/traefik" "$(command -v traefik || true)"; do
      [ -n "$candidate" ] || continue
      looked+=("$candidate")
      [ -x "$candidate" ] || continue
      # Read the whole answer before matching: `traefik version | grep -q` under pipefail
      # fails now and then, when grep has left and Traefik's next write meets a closed pipe.
      said=$("$candidate" version 2>/dev/null || true)
      if grep -q 'Version: *3\.7\.15$' <<<"$said"; then
        traefik=$candidate
        break
      fi
    done
    [ -n "$traefik" ] || {
      echo "no Traefik 3.7.15 binary to build traefik:v3.7.15 from (looked at: ${looked[*]}):" \
        "run scripts/install-chain.sh, or name one with STICKYSCOPE_TRAEFIK" >&2
      exit 1
    }
    mkdir -p "$context/traefik"
    cp stack/offline/traefik/Dockerfile "$traefik" "$context/traefik/"
    build traefik:v3.7.15 "$context/traefik"
  fi
  if [ -z "$replica_bin" ]; then
    echo "cargo build --release -p stickyscope-replica…"
    cargo build --release --locked -q -p stickyscope-replica
    target_dir=$(cargo metadata --format-version 1 --no-deps |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    replica_bin="$target_dir/release/stickyscope-replica"
  fi
  [ -x "$replica_bin" ] || { echo "no replica binary at $replica_bin" >&2; exit 1; }
  mkdir -p "$context/replica"
  cp stack/offline/replica/Dockerfile "$context/replica/"
  cp "$replica_bin" "$context/replica/stickyscope-replica"
  build stickyscope-replica:latest "$context/replica"
  build stickyscope-nginx:latest stack/nginx
fi
echo "images ready: $(elapsed)"

if [ "$($docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  $docker swarm init ${SWARM_ADVERTISE_ADDR:+--advertise-addr "$SWARM_ADVERTISE_ADDR"} >/dev/null
fi
password=""
if ! $docker secret inspect traefik_api_users >/dev/null 2>&1; then
  password="$(openssl rand -hex 12)"
  printf 'stickyscope:%s\n' "$(openssl passwd -apr1 "$password")" |
    $docker secret create traefik_api_users - >/dev/null
fi
files=(-c docker-swarm.yml)
[ "$no_ipvs" = 1 ] && files+=(-c stack/swarm-no-ipvs.yml)
resolve=always
[ "$mode" = offline ] && resolve=never
$docker stack deploy --resolve-image "$resolve" "${files[@]}" stickyscope >/dev/null

# Up: every service's tasks running, the replicas healthy, the gateway answering.
deadline=$(($(date +%s) + timeout))
until
  converged=1
  while read -r replicas; do
    [ "${replicas%%/*}" = "${replicas##*/}" ] || converged=0
  done < <($docker service ls --filter label=com.docker.stack.namespace=stickyscope \
    --format '{{.Replicas}}')
  want=$($docker service inspect stickyscope_replica --format '{{.Spec.Mode.Replicated.Replicas}}')
  healthy=$($docker ps -q --filter label=com.docker.swarm.service.name=stickyscope_replica \
    --filter health=healthy | wc -l)
  answer=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    'http://127.0.0.1:8000/socket.io/?EIO=4&transport=polling' || true)
  [ "$converged" = 1 ] && [ "$healthy" = "$want" ] && [ "$answer" = 200 ]
do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "the stack did not come up within $timeout s (replicas healthy: $healthy of $want; the gateway answered ${answer:-nothing}):" >&2
    $docker service ls >&2
    exit 1
  fi
  sleep 1
done
echo "deployed in $(elapsed): every task running, $healthy replicas healthy, gateway http://localhost:8000"
if [ -n "$password" ]; then
  echo "Traefik API and dashboard: http://stickyscope:$password@localhost:9090/dashboard/"
  echo "  (the password is shown only now; stack/teardown.sh and a new deploy make another)"
  echo "then: cargo run --release -- --gateway http://localhost:8000 --traefik-api http://stickyscope:$password@localhost:9090"
else
  echo "Traefik API and dashboard: http://localhost:9090/dashboard/ (user stickyscope, the password printed by the first deploy)"
  echo "then: cargo run --release -- --gateway http://localhost:8000 --traefik-api http://stickyscope:PASSWORD@localhost:9090"
fi
