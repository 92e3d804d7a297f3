#!/usr/bin/env bash
# Installs the pinned staticcheck (honnef.co/go/tools) into a cache outside
# the repository and prints its path. Does nothing when the cached binary is
# already there and reports the pinned version.
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
CACHE="${PARKMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parkmesh}"
BIN="$CACHE/bin/staticcheck"

log() { printf 'install-staticcheck: %s\n' "$*" >&2; }

# `staticcheck -version` prints e.g. "staticcheck 2026.2.2 (0.8.2)".
cached_version() { [ -x "$BIN" ] && "$BIN" -version 2>/dev/null | head -n1 || true; }
pinned() { [[ "$(cached_version)" == *"(${STATICCHECK_VERSION#v})"* ]]; }
if pinned; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE/bin"
# One install at a time: make may ask from several targets at once.
exec 9>"$CACHE/bin/.staticcheck.lock"
flock 9
if pinned; then
  echo "$BIN"
  exit 0
fi
log "installing staticcheck $STATICCHECK_VERSION into $BIN"
GOBIN="$CACHE/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
pinned || { log "$BIN does not report $STATICCHECK_VERSION: $(cached_version)"; exit 1; }
echo "$BIN"
