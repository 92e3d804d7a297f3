package consulacl

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRules states each process's rights; the real agent enforces them in
// consultest's TestLeastPrivilege.
func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		process   string
		want, not []string
	}{
		{"project", []string{`service "parkmesh-project" {` + "\n" + `  policy = "write"`}, []string{"key", "node", "parkmesh-gateway", "service_prefix"}},
		{"gateway", []string{
			`service "parkmesh-gateway" {` + "\n" + `  policy = "write"`,
			`service "parkmesh-directory" {` + "\n" + `  policy = "read"`,
			`service "parkmesh-project" {` + "\n" + `  policy = "read"`,
			`service "parkmesh-talent" {` + "\n" + `  policy = "read"`,
			`node_prefix "" {` + "\n" + `  policy = "read"`,
			`key_prefix "parkmesh/" {` + "\n" + `  policy = "write"`,
		}, []string{"service_prefix", "acl", "operator", `key_prefix ""`}},
	}
	for _, tt := range tests {
		rules, err := Rules(tt.process)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(rules, w) {
				t.Errorf("%s's rules lack %q:\n%s", tt.process, w, rules)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(rules, n) {
				t.Errorf("%s's rules grant %q:\n%s", tt.process, n, rules)
			}
		}
	}
	if _, err := Rules("consul"); err == nil {
		t.Error("Rules of an unknown process succeeded")
	}
	if got := strings.Join(Processes(), ","); got != "directory,project,talent,gateway" {
		t.Errorf("Processes() = %s", got)
	}
}

func TestTokenFiles(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(secret) {
		t.Errorf("NewSecret() = %q, not a UUID v4", secret)
	}
	if NewSecret() == secret {
		t.Error("NewSecret() repeats itself")
	}
	file := TokenPath(t.TempDir())("gateway")
	if err := WriteToken(file, secret); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, filepath.Dir(file)} {
		fi, err := os.Stat(p)
		want := os.FileMode(0o600)
		if p != file {
			want = 0o700
		}
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if got, err := ReadToken(file); err != nil || got != secret {
		t.Errorf("ReadToken = %q, %v", got, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	if _, err := ReadToken(empty); err == nil {
		t.Error("ReadToken accepted an empty file")
	}
}
