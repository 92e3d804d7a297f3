package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parkNames are the display names and country the test parks run with.
var parkNames = map[string][3]string{
	"xian-hitech":    {"西安高新区", "Xi'an Hi-tech Zone", "CN"},
	"chengdu-hitech": {"成都高新区", "Chengdu Hi-tech Zone", "CN"},
}

// nameFlags are the gateway flags of park id's identity.
func nameFlags(id string) []string {
	n, ok := parkNames[id]
	if !ok {
		return nil
	}
	return []string{"-park-name-zh", n[0], "-park-name-en", n[1], "-park-country", n[2]}
}

// addUser adds an account to the park whose data directory is dir with
// the real CLI, the password from a file.
func addUser(t *testing.T, dir, username, role, password string) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli(t, nil, "user", "add", "--data-dir", dir, "--username", username, "--role", role, "--password-file", pw)
}

// portalSession is a signed-in browser: its cookie and CSRF token.
type portalSession struct{ cookie, csrf string }

// signIn signs in at the park side base and returns the session.
func signIn(t *testing.T, base, username, password string) portalSession {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	res, err := http.Post(base+"/api/v1/session", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	json.NewDecoder(res.Body).Decode(&out)
	var s portalSession
	for _, c := range res.Cookies() {
		if c.Name == "parkmesh_session" {
			s.cookie = c.Name + "=" + c.Value
		}
	}
	if res.StatusCode != 200 || s.cookie == "" || out.CSRF == "" {
		t.Fatalf("sign-in of %s: %d, cookie %v", username, res.StatusCode, s.cookie != "")
	}
	s.csrf = out.CSRF
	return s
}

// h are the headers of a request in the session, with its CSRF token when
// csrf is set.
func (s portalSession) h(csrf bool, more ...string) []string {
	out := append([]string{"Cookie", s.cookie}, more...)
	if csrf {
		out = append(out, "X-CSRF-Token", s.csrf)
	}
	return out
}
