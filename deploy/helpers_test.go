// Package deploy_test checks, without a container engine or a cluster, what
// can be checked of the ways to run a park node: the Dockerfile's binaries
// build with its flags and run as its one-shot jobs expect (jobs_test.go),
// docker-compose.yml loads with the compose-spec loader and is consistent
// (compose_test.go), every kustomize overlay renders with `kubectl
// kustomize` and decodes strictly into k8s.io/api types with the security,
// probes, limits and exposure the park needs (k8s_test.go), and the
// Tiltfile, run in a Starlark interpreter with Tilt's functions recorded,
// names only paths, images and resources that exist (tilt_test.go).
package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// demoParks are the example parks of the issue; each has an overlay.
var demoParks = []string{"xian-hitech", "chengdu-hitech", "siliconvalley-offshore"}

// repoRoot returns the repository root (the directory holding go.mod).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// repoPath joins rel (slash-separated) to the repository root.
func repoPath(tb testing.TB, rel string) string {
	tb.Helper()
	return filepath.Join(repoRoot(tb), filepath.FromSlash(rel))
}

func readFile(tb testing.TB, rel string) string {
	tb.Helper()
	b, err := os.ReadFile(repoPath(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// mustExist fails unless rel exists in the repository; what names it is
// in the message.
func mustExist(tb testing.TB, what, rel string) os.FileInfo {
	tb.Helper()
	fi, err := os.Stat(repoPath(tb, rel))
	if err != nil {
		tb.Errorf("%s: %s does not exist in the repository", what, rel)
		return nil
	}
	return fi
}

// goVersion is the go directive of go.mod.
func goVersion(tb testing.TB) string {
	tb.Helper()
	sc := bufio.NewScanner(strings.NewReader(readFile(tb, "go.mod")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "go" {
			return f[1]
		}
	}
	tb.Fatal("go.mod has no go directive")
	return ""
}

// scriptDefault returns the default of a VAR="${VAR:-default}" line of a
// shell script, which is how deploy/tools pin versions.
func scriptDefault(tb testing.TB, rel, name string) string {
	tb.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `="\$\{` + name + `:-([^}]+)\}"`)
	m := re.FindStringSubmatch(readFile(tb, rel))
	if m == nil {
		tb.Fatalf("%s: no %s=\"${%s:-…}\" line", rel, name, name)
	}
	return m[1]
}

// imageRef splits an image reference into repository and tag and says
// whether it names a registry host (a first path element with a dot, a
// port or "localhost", as the docker reference grammar has it).
func imageRef(ref string) (repo, tag string, registry bool) {
	repo = ref
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	if first, _, ok := strings.Cut(repo, "/"); ok {
		registry = strings.ContainsAny(first, ".:") || first == "localhost"
	}
	return repo, tag, registry
}

// checkOwnImage fails unless ref is one of ParkMesh's images: built from
// deploy/docker/Dockerfile, named parkmesh/<target>, no registry host,
// with a pinned tag.
func checkOwnImage(tb testing.TB, where, ref string) {
	tb.Helper()
	repo, tag, registry := imageRef(ref)
	switch {
	case registry:
		tb.Errorf("%s: image %q names a registry; images are built, and a park sets its own registry in its overlay", where, ref)
	case !strings.HasPrefix(repo, "parkmesh/"):
		tb.Errorf("%s: image %q is not one of the images deploy/docker/Dockerfile builds (parkmesh/…)", where, ref)
	case tag == "" || tag == "latest":
		tb.Errorf("%s: image %q has no pinned tag", where, ref)
	}
}
