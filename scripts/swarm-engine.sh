#!/usr/bin/env bash
# A private Docker engine for the swarm test and CI: Debian's dockerd on the default
# socket (/var/run/docker.sock, where docker-swarm.yml mounts it into Traefik), with its
# data and exec roots in DIR, as a one-node swarm advertised on 127.0.0.1. Nothing of it
# outlives `stop`: the swarm is left, dockerd stopped by its pid, and what a stopped (or
# crashed) engine leaves — containers, mounts, bridges, iptables rules — removed, then DIR.
#   scripts/swarm-engine.sh start DIR     exit 3: no engine can start here (says why)
#   scripts/swarm-engine.sh stop DIR
# Needs root and Debian's docker.io (apt-get install docker.io).
set -uo pipefail
action="${1:?start or stop}"
dir="${2:?the engine folder}"
docker=/usr/bin/docker
socket=/var/run/docker.sock
pidfile="$dir/dockerd.pid"

start() {
  [ "$(id -u)" = 0 ] || { echo "no engine: dockerd needs root"; exit 3; }
  [ -x /usr/sbin/dockerd ] && [ -x "$docker" ] ||
    { echo "no engine: no /usr/sbin/dockerd (apt-get install docker.io)"; exit 3; }
  if [ -S "$socket" ] && "$docker" info >/dev/null 2>&1; then
    echo "no engine: another Docker engine already answers at $socket; not touching it"
    exit 3
  fi
  rm -f "$socket"
  mkdir -p "$dir/data" "$dir/exec"
  # The MTU of the route out: overlay traffic (apt-get inside builds) stalls on a larger one.
  local uplink mtu=1500
  uplink=$(ip route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1); exit}')
  [ -n "$uplink" ] && [ -r "/sys/class/net/$uplink/mtu" ] && mtu=$(cat "/sys/class/net/$uplink/mtu")
  /usr/sbin/dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$socket" \
    --pidfile "$pidfile" --mtu "$mtu" >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    if "$docker" info >/dev/null 2>&1; then
      "$docker" swarm init --advertise-addr 127.0.0.1 >/dev/null ||
        { echo "no engine: docker swarm init failed"; exit 3; }
      echo "engine up (dockerd pid $(cat "$pidfile"), MTU $mtu)"
      return 0
    fi
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  echo "no engine: dockerd did not come up; its log ends:"
  tail -5 "$dir/dockerd.log"
  stop >/dev/null
  exit 3
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      "$docker" swarm leave --force >/dev/null 2>&1
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
  fi
  # What a crashed engine leaves: containers (runc), their shims, mounts.
  local runc_root="$dir/exec/runtime-runc/moby"
  if [ -d "$runc_root" ]; then
    for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
      runc --root "$runc_root" kill "$id" KILL 2>/dev/null
      runc --root "$runc_root" delete --force "$id" 2>/dev/null
    done
  fi
  for pid in $(pgrep -f "containerd-shim.*$dir" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  # Its bridges and iptables rules (FORWARD's policy back to ACCEPT, as before it).
  for link in docker0 docker_gwbridge; do ip link delete "$link" 2>/dev/null; done
  for table in filter nat; do
    iptables-save -t "$table" 2>/dev/null | grep -E '^-A ' | grep -E 'DOCKER|docker0|docker_gwbridge' |
      grep -vE '^-A DOCKER' | sed 's/^-A/-D/' | while read -r rule; do
      eval iptables -t "$table" "$rule" 2>/dev/null
    done
    for chain in $(iptables-save -t "$table" 2>/dev/null | awk '/^:DOCKER/ {sub(":", ""); print $1}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null
      iptables -t "$table" -X "$chain" 2>/dev/null
    done
  done
  iptables -P FORWARD ACCEPT 2>/dev/null
  rm -f "$socket"
  rm -rf "$dir"
  echo "engine stopped; $dir removed"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "start or stop" >&2; exit 2 ;;
esac
