#!/usr/bin/env bash
# Builds both images and deploys the stack on this Docker engine (initialising a one-node
# swarm when needed). Run from anywhere; needs a Docker engine and openssl.
#
# Traefik's API and dashboard are served only behind basic auth: the first deploy creates
# the Docker secret traefik_api_users (user stickyscope, a fresh password, stored only as an
# apr1 hash) and prints the password once. stack/teardown.sh removes the secret with the
# stack; the next deploy makes a new password.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
docker build -f stack/replica/Dockerfile -t stickyscope-replica:latest .
docker build -t stickyscope-nginx:latest stack/nginx
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  docker swarm init
fi
password=""
if ! docker secret inspect traefik_api_users >/dev/null 2>&1; then
  password="$(openssl rand -hex 12)"
  printf 'stickyscope:%s\n' "$(openssl passwd -apr1 "$password")" \
    | docker secret create traefik_api_users - >/dev/null
fi
docker stack deploy -c docker-swarm.yml stickyscope
echo "deployed: gateway http://localhost:8000"
if [ -n "$password" ]; then
  echo "Traefik API and dashboard: http://stickyscope:$password@localhost:9090/dashboard/"
  echo "  (the password is shown only now; stack/teardown.sh and a new deploy make another)"
  echo "then: cargo run --release -- --gateway http://localhost:8000 --traefik-api http://stickyscope:$password@localhost:9090"
else
  echo "Traefik API and dashboard: http://localhost:9090/dashboard/ (user stickyscope, the password printed by the first deploy)"
  echo "then: cargo run --release -- --gateway http://localhost:8000 --traefik-api http://stickyscope:PASSWORD@localhost:9090"
fi
