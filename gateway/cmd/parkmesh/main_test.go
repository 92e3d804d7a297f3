package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

type result struct {
	code           int
	stdout, stderr string
}

// parkmesh runs the CLI as the real command does, with the environment
// cleared of PARKMESH_ variables unless the test sets them.
func parkmesh(tb testing.TB, args ...string) result {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv("PARKMESH_DATA_DIR", "")
	t.Setenv("PARKMESH_PARK", "")
}

func mustSucceed(tb testing.TB, r result) string {
	tb.Helper()
	if r.code != 0 {
		tb.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// secretsOf returns encodings of every private key in dataDir, for checking
// that nothing printed them.
func secretsOf(tb testing.TB, dataDir string) []string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(parkkey.Dir(dataDir), "*.key"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		out = append(out, strings.Join(lines[1:len(lines)-1], ""))
	}
	ks, err := parkkey.Load(dataDir)
	if err != nil {
		tb.Fatal(err)
	}
	seed := ks.Current().Signer().(ed25519.PrivateKey).Seed()
	return append(out, hex.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed))
}

func assertNoSecrets(tb testing.TB, dataDir string, rs ...result) {
	tb.Helper()
	for _, s := range secretsOf(tb, dataDir) {
		for _, r := range rs {
			if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
				tb.Fatal("the CLI printed private key material")
			}
		}
	}
}

func verify(tb testing.TB, dataDir, token string, now time.Time) (*parktoken.Claims, error) {
	tb.Helper()
	ks, err := parkkey.Load(dataDir, parkkey.WithClock(func() time.Time { return now }))
	if err != nil {
		tb.Fatal(err)
	}
	v := parktoken.NewVerifier(parktoken.StaticKeys(ks), parktoken.WithClock(func() time.Time { return now }))
	return v.Verify(token)
}

func TestInitTokenRotateList(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()

	initRes := parkmesh(t, "init", "--park", "xian-hitech", "--data-dir", dir)
	kid := mustSucceed(t, initRes)
	ks, err := parkkey.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if kid != ks.Current().ID || kid != parkkey.Thumbprint(ks.Current().PublicKey) {
		t.Errorf("init printed %q, key set's kid is %s", kid, ks.Current().ID)
	}
	if ks.Park() != "xian-hitech" {
		t.Errorf("park = %q", ks.Park())
	}

	// init refuses to overwrite.
	again := parkmesh(t, "init", "--park", "xian-hitech", "--data-dir", dir)
	if again.code != 1 || !strings.Contains(again.stderr, "already") || again.stdout != "" {
		t.Errorf("second init: exit %d, stdout %q, stderr %q", again.code, again.stdout, again.stderr)
	}
	if after, _ := parkkey.Load(dir); after.Current().ID != kid {
		t.Error("second init replaced the key")
	}

	// token create prints exactly the token on stdout.
	start := time.Now()
	tokRes := parkmesh(t, "token", "create", "--role", "editor", "--ttl", "720h", "--sub", "li.wei", "--data-dir", dir)
	tok := mustSucceed(t, tokRes)
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("stdout is not one token: %q", tokRes.stdout)
	}
	c, err := verify(t, dir, tok, time.Now())
	if err != nil {
		t.Fatalf("printed token does not verify: %v (%s)", err, parktoken.Reason(err))
	}
	if c.Subject != "li.wei" || c.Role != parktoken.Editor || c.Park != "xian-hitech" || c.KeyID != kid {
		t.Errorf("claims = %+v", *c)
	}
	if exp := c.ExpiresAt.Sub(start.Truncate(time.Second)); exp < 720*time.Hour || exp > 720*time.Hour+time.Minute {
		t.Errorf("token lives %s, want 720h", exp)
	}
	// It is recorded where the gateway lists and revokes tokens, and its
	// id is on stderr for whoever must revoke it.
	db, err := state.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := db.LocalTokenByID(t.Context(), c.ID)
	db.Close()
	if err != nil || rec.Subject != "li.wei" || rec.Role != "editor" || !rec.ExpiresAt.Equal(c.ExpiresAt) || rec.KeyID != kid {
		t.Errorf("recorded token = %+v, %v", rec, err)
	}
	if !strings.Contains(tokRes.stderr, c.ID) || strings.Contains(tokRes.stderr, tok) {
		t.Errorf("stderr %q should name the id and not hold the token", tokRes.stderr)
	}

	// keys rotate prints a new kid; the token signed by the old key still
	// verifies, and, because it lives 720h, the old key stays published
	// far beyond the default grace period.
	rotRes := parkmesh(t, "keys", "rotate", "--data-dir", dir)
	newKid := mustSucceed(t, rotRes)
	if newKid == kid || len(newKid) != 43 {
		t.Fatalf("rotate printed %q (old %s)", newKid, kid)
	}
	if _, err := verify(t, dir, tok, time.Now()); err != nil {
		t.Errorf("token refused after rotation: %v (%s)", err, parktoken.Reason(err))
	}
	later := time.Now().Add(parkkey.DefaultGrace + time.Hour)
	if _, err := verify(t, dir, tok, later); err != nil {
		t.Errorf("720h token refused an hour after the grace period: %v (%s)", err, parktoken.Reason(err))
	}
	if _, err := verify(t, dir, tok, start.Add(721*time.Hour)); parktoken.Reason(err) != parktoken.ReasonKid {
		t.Errorf("after the token's life, reason = %q, want kid (key pruned)", parktoken.Reason(err))
	}

	// A token made after rotation is signed by the new key.
	tok2 := mustSucceed(t, parkmesh(t, "token", "create", "--role", "viewer", "--sub", "ci-bot", "--data-dir", dir))
	if c, err := verify(t, dir, tok2, time.Now()); err != nil || c.KeyID != newKid || c.Role != parktoken.Viewer {
		t.Errorf("token after rotation: %+v, %v", c, err)
	}

	listRes := parkmesh(t, "keys", "list", "--data-dir", dir)
	list := mustSucceed(t, listRes)
	lines := strings.Split(list, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], newKid) || !strings.Contains(lines[1], "current") ||
		!strings.HasPrefix(lines[2], kid) || !strings.Contains(lines[2], "retired") {
		t.Errorf("keys list:\n%s", list)
	}

	assertNoSecrets(t, dir, initRes, again, tokRes, rotRes, listRes)
}

func TestEnvFallback(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PARKMESH_DATA_DIR", dir)
	t.Setenv("PARKMESH_PARK", "chengdu-tspp")
	kid := mustSucceed(t, parkmesh(t, "init"))
	ks, err := parkkey.Load(dir)
	if err != nil || ks.Park() != "chengdu-tspp" || ks.Current().ID != kid {
		t.Fatalf("init from env: %v, %v", ks, err)
	}
	tok := mustSucceed(t, parkmesh(t, "token", "create", "--role", "admin", "--sub", "ops"))
	if c, err := verify(t, dir, tok, time.Now()); err != nil || c.Park != "chengdu-tspp" {
		t.Errorf("token from env: %+v, %v", c, err)
	}

	// A flag beats the environment.
	other := t.TempDir()
	mustSucceed(t, parkmesh(t, "init", "--data-dir", other, "--park", "lanzhou-sv"))
	if ks, _ := parkkey.Load(other); ks.Park() != "lanzhou-sv" {
		t.Errorf("flags did not override the environment")
	}

	// PARKMESH_PARK naming another park than the keys is an error.
	t.Setenv("PARKMESH_PARK", "lanzhou-sv")
	r := parkmesh(t, "token", "create", "--role", "admin", "--sub", "ops")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "--park") {
		t.Errorf("park mismatch: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	mustSucceed(t, parkmesh(t, "init", "--park", "xian-hitech", "--data-dir", dir))
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"no command", nil, 2, "Usage"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"keys without subcommand", []string{"keys"}, 2, "unknown command"},
		{"init without park", []string{"init", "--data-dir", t.TempDir()}, 2, "--park is required (or set PARKMESH_PARK)"},
		{"init without data dir", []string{"init", "--park", "xian-hitech"}, 2, "--data-dir is required (or set PARKMESH_DATA_DIR)"},
		{"init bad park", []string{"init", "--park", "Xi'an", "--data-dir", t.TempDir()}, 1, "park"},
		{"stray argument", []string{"init", "--park", "xian-hitech", "--data-dir", t.TempDir(), "extra"}, 2, `unexpected argument "extra"`},
		{"unknown flag", []string{"keys", "list", "--data-dir", dir, "--verbose"}, 2, "verbose"},
		{"token without sub", []string{"token", "create", "--role", "viewer", "--data-dir", dir}, 2, "--sub is required"},
		{"token without role", []string{"token", "create", "--sub", "x", "--data-dir", dir}, 2, "--role is required"},
		{"token bad role", []string{"token", "create", "--sub", "x", "--role", "root", "--data-dir", dir}, 2, "--role"},
		{"token bad ttl", []string{"token", "create", "--sub", "x", "--role", "viewer", "--ttl", "soon", "--data-dir", dir}, 2, "-ttl"},
		{"token negative ttl", []string{"token", "create", "--sub", "x", "--role", "viewer", "--ttl", "-1h", "--data-dir", dir}, 2, "--ttl"},
		{"token ttl too long", []string{"token", "create", "--sub", "x", "--role", "viewer", "--ttl", "10000h", "--data-dir", dir}, 2, "--ttl"},
		{"token without keys", []string{"token", "create", "--sub", "x", "--role", "viewer", "--data-dir", t.TempDir()}, 1, "parkmesh init"},
		{"rotate without keys", []string{"keys", "rotate", "--data-dir", t.TempDir()}, 1, "parkmesh init"},
		{"rotate negative grace", []string{"keys", "rotate", "--grace", "-1m", "--data-dir", dir}, 2, "--grace"},
		{"list without data dir", []string{"keys", "list"}, 2, "--data-dir is required"},
		{"revoke without id", []string{"token", "revoke", "--data-dir", dir}, 2, "--id is required"},
		{"establish without token", []string{"peering", "establish", "--data-dir", dir}, 2, "--token-file or --token is required"},
		{"establish with an empty token file", []string{"peering", "establish", "--token-file", os.DevNull, "--data-dir", dir}, 1, "holds no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parkmesh(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", r.code, tt.code, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on failure", r.stdout)
			}
		})
	}

	for _, args := range [][]string{{"help"}, {"-h"}, {"init", "-h"}, {"token", "create", "--help"}} {
		if r := parkmesh(t, args...); r.code != 0 {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
}
