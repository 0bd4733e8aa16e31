#!/usr/bin/env bash
# Removes the stack (the swarm itself stays; `docker swarm leave --force` ends it).
set -euo pipefail
docker stack rm stickyscope
