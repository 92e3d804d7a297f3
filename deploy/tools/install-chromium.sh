#!/usr/bin/env bash
# Makes sure Debian's chromium (and fonts-wqy-zenhei, without which Chinese
# text renders as boxes) is installed for the portal's browser tests, and
# prints the browser's path on stdout; progress goes to stderr. Does nothing
# when /usr/bin/chromium is already there.
#
# Why a system package: the browser tests drive a real Chromium with
# chromedp, and the machine reaches no download site but Debian's mirror;
# Debian's chromium runs headless as is. apt keeps it installed, so it is
# "cached" as Consul is in ~/.cache/parkmesh.
set -euo pipefail

log() { printf 'install-chromium: %s\n' "$*" >&2; }

bin=/usr/bin/chromium
have_font() { dpkg-query -W -f='${Status}' fonts-wqy-zenhei 2>/dev/null | grep -q 'install ok installed'; }

if [ -x "$bin" ] && have_font; then
  echo "$bin"
  exit 0
fi

command -v apt-get >/dev/null || { log "$bin not found and no apt-get: install chromium and fonts-wqy-zenhei with the system's package manager"; exit 1; }
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "chromium not found; installing it needs root: sudo apt-get install chromium fonts-wqy-zenhei"; exit 1; }
  sudo=(sudo -n)
fi
apt() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o=Dpkg::Use-Pty=0 "$@" >&2; }
log "installing Debian's chromium and fonts-wqy-zenhei (once, about 2-3 minutes)"
# A fresh machine may have no package lists yet: fetch them and try again.
apt install -y --no-install-recommends chromium fonts-wqy-zenhei || { apt update && apt install -y --no-install-recommends chromium fonts-wqy-zenhei; }
[ -x "$bin" ] || { log "chromium installed, but $bin is missing"; exit 1; }
log "$("$bin" --version 2>/dev/null || echo chromium)"
echo "$bin"
