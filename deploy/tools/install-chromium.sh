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

log "installing Debian's chromium and fonts-wqy-zenhei (once, about 2-3 minutes)"
"$(dirname "$0")/apt-install.sh" install-chromium chromium fonts-wqy-zenhei
[ -x "$bin" ] || { log "chromium installed, but $bin is missing"; exit 1; }
log "$("$bin" --version 2>/dev/null || echo chromium)"
echo "$bin"
