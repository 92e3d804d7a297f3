package app_test

import (
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestArchitectureDocMatchesPackages keeps docs/architecture.md true: every
// gateway package has its paragraph, every paragraph names a package that
// exists, and no package imports a gateway package its paragraph does not
// allow ("May import …").
func TestArchitectureDocMatchesPackages(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	// One paragraph per package: "**gateway/x** — … May import a, b and c."
	para := regexp.MustCompile(`(?s)\*\*gateway/([a-z]+)\*\* — (.*?)\n\n`)
	allowed := map[string][]string{}
	for _, m := range para.FindAllStringSubmatch(string(doc), -1) {
		text := strings.Join(strings.Fields(m[2]), " ")
		_, list, ok := strings.Cut(text, "May import ")
		if !ok {
			t.Errorf("docs/architecture.md: gateway/%s's paragraph does not say what it may import", m[1])
		}
		list, _, _ = strings.Cut(list, ".")
		var may []string
		switch {
		case strings.HasPrefix(list, "every gateway package"):
			may = []string{"*"}
		case strings.HasPrefix(list, "nothing of the gateway"):
		default:
			for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
				if f != "and" {
					may = append(may, f)
				}
			}
		}
		allowed[m[1]] = may
	}

	entries, err := os.ReadDir(filepath.Join(root, "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "cmd" || e.Name() == "testdata" {
			continue
		}
		name := e.Name()
		pkg, err := build.ImportDir(filepath.Join(root, "gateway", name), 0)
		if err != nil {
			continue // not a Go package
		}
		seen[name] = true
		may, ok := allowed[name]
		if !ok {
			t.Errorf("gateway/%s has no paragraph in docs/architecture.md", name)
			continue
		}
		if slices.Contains(may, "*") {
			continue
		}
		for _, imp := range pkg.Imports {
			dep, ok := strings.CutPrefix(imp, "github.com/parkmesh/parkmesh/gateway/")
			if !ok {
				continue
			}
			if !slices.Contains(may, dep) {
				t.Errorf("gateway/%s imports gateway/%s, which docs/architecture.md does not allow (may import: %v)", name, dep, may)
			}
		}
	}
	for name := range allowed {
		if !seen[name] {
			t.Errorf("docs/architecture.md describes gateway/%s, which does not exist", name)
		}
	}
}
