#!/usr/bin/env bash
# Builds both images and deploys the stack on this Docker engine (initialising a one-node
# swarm when needed). Run from anywhere; needs a Docker engine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
docker build -f stack/replica/Dockerfile -t stickyscope-replica:latest .
docker build -t stickyscope-nginx:latest stack/nginx
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  docker swarm init
fi
docker stack deploy -c docker-swarm.yml stickyscope
echo "deployed: gateway http://localhost:8000, Traefik dashboard http://localhost:9090/dashboard/"
echo "then: cargo run --release -- --gateway http://localhost:8000 --traefik-api http://localhost:9090"
