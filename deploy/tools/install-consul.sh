#!/usr/bin/env bash
# Builds the pinned Consul agent from the Go module proxy into a cache outside
# the repository and prints its path. Does nothing when the cached binary is
# already there and answers `consul version`.
#
# Why build: Debian ships no consul package and `go install` refuses the module
# (its go.mod has replace directives), see docs/decisions.md. The build takes
# about 7.5 minutes on 2 cores, once per machine; it says how far it got every
# 15 s on stderr (go-build-progress.sh). stdout is only the binary's path.
set -euo pipefail
LOG_PREFIX=install-consul
# shellcheck source=deploy/tools/go-build-progress.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-progress.sh"

CONSUL_VERSION="${CONSUL_VERSION:-1.21.0}"
CACHE="${PARKMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parkmesh}"
BIN="$CACHE/bin/consul-$CONSUL_VERSION"

log() { printf 'install-consul: %s\n' "$*" >&2; }

# Capture first: `consul version | grep -q` would die of SIGPIPE under pipefail.
cached_version() { [ -x "$BIN" ] && "$BIN" version 2>/dev/null | head -n1 || true; }
if [ "$(cached_version)" = "Consul v$CONSUL_VERSION" ]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE/bin" "$CACHE/src"
# One build at a time: parallel test packages may all ask at once.
exec 9>"$CACHE/bin/.consul-$CONSUL_VERSION.lock"
flock 9
if [ "$(cached_version)" = "Consul v$CONSUL_VERSION" ]; then
  echo "$BIN"
  exit 0
fi
log "building Consul v$CONSUL_VERSION into $BIN (about 7.5 minutes on 2 cores, once)"
log "step 1/4: downloading the module"
dir=$(go mod download -json "github.com/hashicorp/consul@v$CONSUL_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { log "module download failed"; exit 1; }

work="$CACHE/src/consul-$CONSUL_VERSION.$$"
trap 'rm -rf "$work"' EXIT
log "step 2/4: copying sources to $work"
cp -r "$dir" "$work"
chmod -R u+w "$work"

log "step 3/4: dropping replace directives for sub-modules"
( cd "$work"
  for m in api envoyextensions proto-public sdk troubleshoot; do
    go mod edit -dropreplace="github.com/hashicorp/consul/$m"
  done )

log "step 4/4: go build"
( cd "$work" && CGO_ENABLED=0 go_build_progress "step 4/4" 450 "$BIN.tmp" . -mod=mod -trimpath )
mv "$BIN.tmp" "$BIN"
v=$("$BIN" version) && printf '%s\n' "${v%%$'\n'*}" >&2
echo "$BIN"
