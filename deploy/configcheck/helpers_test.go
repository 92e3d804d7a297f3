package configcheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// rootFromHere is the repository root relative to this package's
// directory, where `go test` runs the tests.
const rootFromHere = "../.."

// The listeners of the ParkMesh processes in every deployment.
const (
	gatewayParkPort       = 8080 // -listen: staff API, portal, health, metrics
	gatewayFederationPort = 8081 // -federation-listen: the one port peers reach
)

// servicePorts are the services' -listen ports, by name (image target,
// workload and binary alike).
var servicePorts = map[string]int{"directory": 7101, "project": 7102, "talent": 7103}

// demoParks are the example parks; each has an overlay.
var demoParks = []string{"xian-hitech", "chengdu-hitech", "siliconvalley-offshore"}

var parkID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$`)

var rootOnce = sync.OnceValues(func() (string, error) {
	dir, err := filepath.Abs(rootFromHere)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "module github.com/parkmesh/parkmesh\n") {
		return "", os.ErrNotExist
	}
	return dir, nil
})

// repoRoot returns the repository root (the product module's directory).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := rootOnce()
	if err != nil {
		tb.Fatalf("%s from %s is not the ParkMesh repository root: %v", rootFromHere, "deploy/configcheck", err)
	}
	return dir
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
func mustExist(tb testing.TB, what, rel string) {
	tb.Helper()
	if _, err := os.Stat(repoPath(tb, rel)); err != nil {
		tb.Errorf("%s: %s does not exist in the repository", what, rel)
	}
}

// goVersion is the go directive of the product's go.mod.
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
// shell script, which is how deploy/tools pins versions.
func scriptDefault(tb testing.TB, rel, name string) string {
	tb.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `="\$\{` + name + `:-([^}]+)\}"`)
	m := re.FindStringSubmatch(readFile(tb, rel))
	if m == nil {
		tb.Fatalf("%s: no %s=\"${%s:-…}\" line", rel, name, name)
	}
	return m[1]
}

// checkOwnImage fails unless ref is one of ParkMesh's images: built from
// deploy/docker/Dockerfile, named parkmesh/<target>, no registry host,
// with a pinned tag.
func checkOwnImage(tb testing.TB, where, ref string) {
	tb.Helper()
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	switch {
	case !strings.HasPrefix(repo, "parkmesh/") || strings.Count(repo, "/") != 1:
		tb.Errorf("%s: image %q is not one of the images deploy/docker/Dockerfile builds (parkmesh/<target>, no registry)", where, ref)
	case tag == "" || tag == "latest":
		tb.Errorf("%s: image %q has no pinned tag", where, ref)
	}
}

// overlays returns the park of every overlay under k8s/overlays.
func overlays(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(repoPath(tb, "k8s/overlays"))
	if err != nil {
		tb.Fatal(err)
	}
	var parks []string
	for _, e := range entries {
		if e.IsDir() {
			parks = append(parks, e.Name())
		}
	}
	if len(parks) == 0 {
		tb.Fatal("no overlays under k8s/overlays")
	}
	return parks
}
