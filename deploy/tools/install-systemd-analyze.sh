#!/usr/bin/env bash
# Makes sure systemd-analyze (Debian's systemd package), with which `make
# configcheck` verifies the units in deploy/systemd, is installed, and
# prints its path. Does nothing when it is already on PATH.
#
# Why a system package: systemd-analyze is part of systemd and is not
# published anywhere else; installing the package does not make systemd
# the machine's init.
set -euo pipefail

log() { printf 'install-systemd-analyze: %s\n' "$*" >&2; }

if p=$(command -v systemd-analyze); then
  echo "$p"
  exit 0
fi

command -v apt-get >/dev/null || { log "systemd-analyze not found and no apt-get: install systemd (systemd-analyze) with the system's package manager"; exit 1; }
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "systemd-analyze not found; installing it needs root: sudo apt-get install systemd"; exit 1; }
  sudo=(sudo -n)
fi
apt() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o=Dpkg::Use-Pty=0 "$@" >&2; }
log "installing Debian's systemd package for systemd-analyze (once)"
# A fresh machine may have no package lists yet: fetch them and try again.
apt install -y --no-install-recommends systemd || { apt update && apt install -y --no-install-recommends systemd; }
p=$(command -v systemd-analyze) || { log "systemd installed, but systemd-analyze is not on PATH"; exit 1; }
echo "$p"
