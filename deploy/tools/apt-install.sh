#!/usr/bin/env bash
# apt-install.sh WHO PACKAGE... installs Debian packages for one of the
# project's install scripts (WHO names it in the messages): as root, or
# through `sudo -n`; a fresh machine with no package lists yet gets them
# fetched and the install tried again. Output goes to stderr, so callers
# keep stdout for the path they print.
set -euo pipefail
who=$1
shift
log() { printf '%s: %s\n' "$who" "$*" >&2; }

command -v apt-get >/dev/null || { log "no apt-get: install $* with the system's package manager"; exit 1; }
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "installing $* needs root: sudo apt-get install $*"; exit 1; }
  sudo=(sudo -n)
fi
apt() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o=Dpkg::Use-Pty=0 "$@" >&2; }
apt install -y --no-install-recommends "$@" || { apt update && apt install -y --no-install-recommends "$@"; }
