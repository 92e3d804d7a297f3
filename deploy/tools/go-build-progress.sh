# Sourced by install-consul.sh and install-jaeger.sh (not run on its own):
# `go build` of a large module with progress a person can read on stderr,
# so a first run's many minutes of compiling are not mistaken for a hang.
# stdout stays free for the install scripts' one line, the binary's path.
#
#   go_build_progress LABEL EXPECTED_SECONDS OUT PKG [BUILD FLAGS...]
#
# First `go list -deps` names the packages the build must compile (the stale
# ones: a later build with a warm cache has few), then `go build -v` prints
# each one it compiles, counted every PARKMESH_PROGRESS_EVERY seconds
# (default 15): "built 412 of 1630 packages, elapsed 3m10s of about 7m30s
# (cold cache)"; the expected time is the measured cold-cache build.
# LOG_PREFIX names the script in each line.

fmt_dur() {
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

progress_log() { printf '%s: %s\n' "${LOG_PREFIX:-go-build}" "$*" >&2; }

go_build_progress() {
  local label=$1 expected=$2 out=$3 pkg=$4
  shift 4
  local every=${PARKMESH_PROGRESS_EVERY:-15} t0=$SECONDS total listing
  progress_log "$label: listing the packages to compile (the first time this also downloads modules)"
  listing=$(mktemp)
  if go list -deps "$@" -f '{{if .Stale}}{{.ImportPath}}{{end}}' "$pkg" >"$listing"; then
    total=$(grep -c . "$listing" || true)
  else
    total="?"
  fi
  rm -f "$listing"
  progress_log "$label: compiling $total packages (listed in $(fmt_dur $((SECONDS - t0)))); from a cold build cache this takes about $(fmt_dur "$expected") on 2 cores"
  local vlog pid rc=0 next=$((SECONDS + every))
  vlog=$(mktemp)
  go build -v "$@" -o "$out" "$pkg" 2>"$vlog" &
  pid=$!
  # Stop the build with the script (Ctrl-C, or a launcher giving up on it).
  trap 'kill "$pid" 2>/dev/null' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      progress_log "$label: built $(built_count "$vlog") of $total packages, elapsed $(fmt_dur $((SECONDS - t0))) of about $(fmt_dur "$expected") (cold cache)"
      next=$((SECONDS + every))
    fi
  done
  wait "$pid" || rc=$?
  trap - INT TERM
  if ((rc != 0)); then
    progress_log "$label: go build failed (exit $rc):"
    grep -E '^#|: ' "$vlog" | tail -n 40 >&2 || tail -n 40 "$vlog" >&2
    rm -f "$vlog"
    return "$rc"
  fi
  progress_log "$label: compiled $(built_count "$vlog") packages in $(fmt_dur $((SECONDS - t0)))"
  rm -f "$vlog"
}

# built_count counts the package names `go build -v` printed so far (not
# its "go: downloading" lines or errors).
built_count() { grep -cvE '^(go: |#)|: ' "$1" || true; }
