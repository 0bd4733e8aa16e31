#!/usr/bin/env bash
# The replica server against the official Node.js socket.io v4 server (benches/replica_vs_node.rs).
# Installs Node.js if missing and socket.io@4 into a temporary folder (nothing is committed),
# builds the replica in release, then runs the benchmark. Extra arguments go to it, e.g.
# `--clients 5000`. Servers run pinned to one core and the load generator to the other.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq nodejs npm
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund socket.io@4 >/dev/null)
echo "node $(node --version), socket.io $(node -p "require('$tmp/node_modules/socket.io/package.json').version")"
ulimit -n 65536 2>/dev/null || true
cargo build --release -p stickyscope-replica --bin stickyscope-replica
cargo bench --bench replica_vs_node --no-run
# Fair shares: each server pinned to core 0, the load generator to core 1 (on a machine
# with one core, both share it).
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  echo "servers pinned to core 0, the load generator to core 1"
  taskset -c 1 cargo bench --bench replica_vs_node -- --replica "$PWD/target/release/stickyscope-replica" \
    --node-modules "$tmp/node_modules" --pin 0 "$@"
else
  cargo bench --bench replica_vs_node -- --replica "$PWD/target/release/stickyscope-replica" \
    --node-modules "$tmp/node_modules" "$@"
fi
