#!/usr/bin/env bash
# Builds the pinned Jaeger v2 (cmd/jaeger) from the Go module proxy into the
# same cache as Consul and prints its path. Does nothing when the cached binary
# is already there and answers `jaeger version`.
#
# Why build: Debian ships no jaeger package and `go install` refuses the module
# (its go.mod has replace directives), see shared NOTES-ENV and
# docs/decisions.md. The build takes about 15 minutes and 2 GB of memory on 2
# cores, once per machine; it says how far it got every 15 s on stderr
# (go-build-progress.sh). stdout is only the binary's path.
set -euo pipefail
LOG_PREFIX=install-jaeger
# shellcheck source=deploy/tools/go-build-progress.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-progress.sh"

# Jaeger tags each release twice: the Go module version (v1.x, which names the
# cached binary) and the version of the v2 binary it builds (v2.x, which
# `jaeger version` reports). v1.76.0 is v2.13.0.
JAEGER_VERSION="${JAEGER_VERSION:-1.76.0}"
JAEGER_V2_VERSION="${JAEGER_V2_VERSION:-2.13.0}"
CACHE="${PARKMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parkmesh}"
BIN="$CACHE/bin/jaeger-$JAEGER_VERSION"

log() { printf 'install-jaeger: %s\n' "$*" >&2; }

# A cached binary counts only if it runs: a half-written or foreign file is
# rebuilt. Capture first: `jaeger version | grep -q` would die of SIGPIPE
# under pipefail.
cached_ok() {
  [ -x "$BIN" ] || return 1
  local out
  out=$("$BIN" version 2>/dev/null) || return 1
  case "$out" in *"\"gitVersion\":\"v$JAEGER_V2_VERSION\""*) return 0 ;; esac
  return 1
}
if cached_ok; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE/bin" "$CACHE/src"
# One build at a time: parallel test packages may all ask at once.
exec 9>"$CACHE/bin/.jaeger-$JAEGER_VERSION.lock"
flock 9
if cached_ok; then
  echo "$BIN"
  exit 0
fi
log "building Jaeger v$JAEGER_V2_VERSION (module v$JAEGER_VERSION) into $BIN (about 15 minutes and 2 GB of memory on 2 cores, once)"
log "step 1/3: downloading the module"
dir=$(go mod download -json "github.com/jaegertracing/jaeger@v$JAEGER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { log "module download failed"; exit 1; }

work="$CACHE/src/jaeger-$JAEGER_VERSION.$$"
trap 'rm -rf "$work" "$BIN.tmp"' EXIT
log "step 2/3: copying sources to $work"
cp -r "$dir" "$work"
chmod -R u+w "$work"

# The version flag fills in `jaeger version`, which is how this script knows a
# cached binary is the pinned one (upstream's Makefile sets it the same way).
ldflags="-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_V2_VERSION"
log "step 3/3: go build ./cmd/jaeger"
( cd "$work" && CGO_ENABLED=0 go_build_progress "step 3/3" 900 "$BIN.tmp" ./cmd/jaeger -mod=mod -trimpath -ldflags "$ldflags" )
"$BIN.tmp" version >/dev/null 2>&1 || { log "built binary does not run"; exit 1; }
mv "$BIN.tmp" "$BIN"
cached_ok || { log "built binary does not report v$JAEGER_V2_VERSION: $("$BIN" version 2>&1 | head -n3)"; exit 1; }
log "built $("$BIN" version 2>/dev/null)"
echo "$BIN"
