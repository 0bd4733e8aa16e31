#!/usr/bin/env bash
# Removes the stack and the API's credential (the swarm itself stays; `docker swarm leave
# --force` ends it).
set -euo pipefail
docker stack rm stickyscope
# The secret is in use until the stack's tasks are gone.
for _ in $(seq 1 30); do
  docker secret rm traefik_api_users >/dev/null 2>&1 && break
  sleep 1
done
