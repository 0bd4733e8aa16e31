#!/usr/bin/env bash
# Removes the stack and the API's credential, and waits until none of its services,
# containers, networks or secrets is left (the swarm itself stays; `docker swarm leave
# --force` ends it).
#   stack/teardown.sh [--timeout S]
set -euo pipefail
docker=${DOCKER:-docker}
timeout=60
[ "${1:-}" = --timeout ] && timeout="${2:?--timeout needs seconds}"
deadline=$(($(date +%s) + timeout))
$docker stack rm stickyscope >/dev/null 2>&1 || true
label=label=com.docker.stack.namespace=stickyscope
left() {
  {
    $docker service ls -q --filter "$label"
    $docker ps -aq --filter "$label"
    $docker network ls -q --filter "$label"
    $docker secret ls -q --filter name=traefik_api_users
  } 2>/dev/null | grep -c . || true
}
# `stack rm` removes the services and then, once, the network and the secret; while the
# tasks are still stopping both are in use and their removal fails ("network ... is in use
# by task"), so both are asked again until nothing of the stack is left.
until [ "$(left)" = 0 ]; do
  $docker secret rm traefik_api_users >/dev/null 2>&1 || true
  for network in $($docker network ls -q --filter "$label" 2>/dev/null); do
    # Once the swarm has forgotten the network, the engine's own copy of it stays listed
    # ("not found" to `network rm`) until its last container has left: that needs no asking.
    why=$($docker network rm "$network" 2>&1 >/dev/null) || network_refused=$why
  done
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "the stack is not gone after $timeout s; left:" >&2
    [ -n "${network_refused:-}" ] && echo "the engine's last word on the network: $network_refused" >&2
    $docker service ls >&2; $docker ps -a >&2; $docker network ls >&2; $docker secret ls >&2
    exit 1
  fi
  sleep 0.5
done
echo "removed: no service, container, network or secret of the stack is left"
