package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/admin"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// signInWith checks a password against the accounts in dataDir as the
// gateway does.
func signInWith(t *testing.T, dataDir, user, pw string) error {
	t.Helper()
	db, err := state.Open(t.Context(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = accounts.New(db).Authenticate(t.Context(), user, pw, "127.0.0.1")
	return err
}

func writePassword(t *testing.T, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestInitAdminAndUserCommands(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	initRes := parkmesh(t, "init", "--park", "xian-hitech", "--data-dir", dir)
	mustSucceed(t, initRes)
	// The first admin's one-time password is in a 0600 file, never printed.
	pwPath := filepath.Join(dir, admin.InitialPasswordFile)
	fi, err := os.Stat(pwPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("initial password file: %v, %v", fi, err)
	}
	b, _ := os.ReadFile(pwPath)
	pw := strings.TrimSpace(string(b))
	if len(pw) < accounts.MinPasswordLen || strings.Contains(initRes.stdout+initRes.stderr, pw) || !strings.Contains(initRes.stderr, pwPath) {
		t.Errorf("init output %q / %q: must name the file and never show the password", initRes.stdout, initRes.stderr)
	}
	if err := signInWith(t, dir, "admin", pw); err != nil {
		t.Errorf("the admin's initial password does not sign in: %v", err)
	}

	// user add: the password from a file; mistakes name the flag or field.
	good := writePassword(t, "correct horse battery")
	mustSucceed(t, parkmesh(t, "user", "add", "--data-dir", dir, "--username", "li.wei", "--display-name", "李伟", "--role", "editor", "--password-file", good))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--username", "wang", "--role", "boss", "--password-file", good}, "role"},
		{[]string{"--username", "wang", "--role", "viewer", "--password-file", writePassword(t, "short")}, "password"},
		{[]string{"--username", "Wang Fang", "--role", "viewer", "--password-file", good}, "username"},
		{[]string{"--username", "li.wei", "--role", "viewer", "--password-file", good}, "exists"},
		{[]string{"--username", "wang", "--role", "viewer", "--password-file", filepath.Join(dir, "missing")}, "--password-file"},
	} {
		r := parkmesh(t, append([]string{"user", "add", "--data-dir", dir}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("user add %v: exit %d, stderr %q; want an error naming %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := parkmesh(t, "user", "add", "--data-dir", dir, "--username", "wang", "--role", "viewer", "--password", "x"); r.code != 2 {
		t.Errorf("a --password flag exists (exit %d): passwords never come from flags", r.code)
	}
	list := mustSucceed(t, parkmesh(t, "user", "list", "--data-dir", dir))
	if !strings.Contains(list, "admin") || !strings.Contains(list, "li.wei") || !strings.Contains(list, "李伟") || strings.Contains(list, "argon2") {
		t.Errorf("user list:\n%s", list)
	}
	if err := signInWith(t, dir, "li.wei", "correct horse battery"); err != nil {
		t.Errorf("li.wei: %v", err)
	}

	// disable: refused (403) even with the right password; enable again.
	mustSucceed(t, parkmesh(t, "user", "disable", "--data-dir", dir, "--username", "li.wei"))
	if err := signInWith(t, dir, "li.wei", "correct horse battery"); !apierror.Is(err, apierror.Forbidden) {
		t.Errorf("disabled sign-in: %v, want forbidden", err)
	}
	if list := mustSucceed(t, parkmesh(t, "user", "list", "--data-dir", dir)); !strings.Contains(list, "disabled") {
		t.Errorf("list does not show the disabled account:\n%s", list)
	}
	mustSucceed(t, parkmesh(t, "user", "disable", "--data-dir", dir, "--username", "li.wei", "--enable"))
	if r := parkmesh(t, "user", "disable", "--data-dir", dir, "--username", "nobody"); r.code != 1 || !strings.Contains(r.stderr, "nobody") {
		t.Errorf("disable unknown: %d %q", r.code, r.stderr)
	}

	// reset-password: the old one stops working.
	mustSucceed(t, parkmesh(t, "user", "reset-password", "--data-dir", dir, "--username", "li.wei", "--password-file", writePassword(t, "a brand new passphrase")))
	if err := signInWith(t, dir, "li.wei", "correct horse battery"); !apierror.Is(err, apierror.Unauthenticated) {
		t.Errorf("old password after reset: %v", err)
	}
	if err := signInWith(t, dir, "li.wei", "a brand new passphrase"); err != nil {
		t.Errorf("new password: %v", err)
	}
}
