#!/usr/bin/env bash
# Makes the image every offline build starts FROM — debian:bookworm-slim — without a
# registry: a minimal Debian bookworm made by debootstrap from Debian's mirror, imported
# into the engine. The root filesystem is kept in CACHE_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/stickyscope/bookworm) so that the next engine imports it in
# seconds. Needs root and debootstrap (apt-get install debootstrap).
#   usage: stack/offline/base.sh [CACHE_DIR]
set -euo pipefail
docker=${DOCKER:-docker}
if $docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  exit 0
fi
rootfs="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/stickyscope/bookworm}"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ ! -x "$rootfs/bin/bash" ]; then
  command -v debootstrap >/dev/null || {
    echo "no debootstrap to make the base image with: apt-get install debootstrap" >&2
    exit 1
  }
  echo "debootstrap: a minimal Debian bookworm in $rootfs (about a minute)…"
  rm -rf "$rootfs.part"
  mkdir -p "$(dirname "$rootfs")"
  debootstrap --variant=minbase bookworm "$rootfs.part" "$mirror" >"$rootfs.log" 2>&1 || {
    echo "debootstrap failed; its log ends:" >&2
    tail -5 "$rootfs.log" >&2
    exit 1
  }
  part="$rootfs.part"
  # As the official image: the same suites, services never started by apt in a build, and
  # no package files left in the layers.
  rm -f "$part/etc/apt/sources.list"
  cat >"$part/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  printf '#!/bin/sh\nexit 101\n' >"$part/usr/sbin/policy-rc.d"
  chmod 755 "$part/usr/sbin/policy-rc.d"
  cat >"$part/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CLEAN
  rm -rf "$part"/var/cache/apt/archives/*.deb "$part"/var/cache/apt/*.bin \
    "$part"/var/lib/apt/lists/* "$part"/var/log/*.log "$part"/tmp/*
  : >"$part/etc/hostname"
  : >"$part/etc/resolv.conf"
  mv "$part" "$rootfs"
fi
tar --numeric-owner -C "$rootfs" -c . |
  $docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
echo "debian:bookworm-slim imported from $rootfs"
