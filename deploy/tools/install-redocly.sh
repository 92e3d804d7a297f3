#!/usr/bin/env bash
# Installs the pinned Redocly CLI (the OpenAPI linter `make openapi-lint`
# runs) with npm into a cache outside the repository and prints the path of
# its `redocly` binary. Does nothing when the cached install already answers
# `redocly --version` with the pinned version.
#
# Why npm: Redocly CLI is a Node.js program published only on the npm
# registry; Node.js and npm come with every machine of this project's kind.
set -euo pipefail

REDOCLY_VERSION="${REDOCLY_VERSION:-2.77.0}"
CACHE="${PARKMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parkmesh}"
PREFIX="$CACHE/npm/redocly-$REDOCLY_VERSION"
BIN="$PREFIX/node_modules/.bin/redocly"

log() { printf 'install-redocly: %s\n' "$*" >&2; }

cached_version() { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | tail -n1 || true; }
if [ "$(cached_version)" = "$REDOCLY_VERSION" ]; then
  echo "$BIN"
  exit 0
fi

command -v npm >/dev/null || { log "npm not found: install Node.js 20 or newer with npm"; exit 1; }
mkdir -p "$CACHE/npm"
# One install at a time: make targets and test runs may ask at once.
exec 9>"$CACHE/npm/.redocly-$REDOCLY_VERSION.lock"
flock 9
if [ "$(cached_version)" = "$REDOCLY_VERSION" ]; then
  echo "$BIN"
  exit 0
fi
log "installing @redocly/cli@$REDOCLY_VERSION into $PREFIX (once)"
# Install into a fresh directory and move it into place, so an interrupted
# install never leaves a half-filled prefix that looks cached.
work="$PREFIX.tmp.$$"
trap 'rm -rf "$work"' EXIT
rm -rf "$work"
mkdir -p "$work"
printf '{"name":"parkmesh-redocly","private":true}\n' >"$work/package.json"
npm install --prefix "$work" --no-audit --no-fund --loglevel=error --save-exact \
  "@redocly/cli@$REDOCLY_VERSION" >&2
rm -rf "$PREFIX"
mv "$work" "$PREFIX"
trap - EXIT
v=$(cached_version)
[ "$v" = "$REDOCLY_VERSION" ] || { log "installed redocly reports version '$v', want $REDOCLY_VERSION"; exit 1; }
echo "$BIN"
