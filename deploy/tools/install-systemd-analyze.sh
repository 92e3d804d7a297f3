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

log "installing Debian's systemd package for systemd-analyze (once)"
"$(dirname "$0")/apt-install.sh" install-systemd-analyze systemd
p=$(command -v systemd-analyze) || { log "systemd installed, but systemd-analyze is not on PATH"; exit 1; }
echo "$p"
