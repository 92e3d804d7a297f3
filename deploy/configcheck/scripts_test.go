package configcheck

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The compose file's one-shot jobs run shell scripts (deploy/docker/scripts)
// with the parkmesh CLI in the admin image. Without a container engine,
// run the same scripts with the same variables and the real CLI, built
// from the repository; the gateways the peering job talks to are stand-ins
// that serve the park-side peering API the CLI calls.

// adminCLIPackage is the admin CLI's main package (DESIGN, Layout).
const adminCLIPackage = "./gateway/cmd/parkmesh"

var cliOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "parkmesh-configcheck-")
	if err != nil {
		return "", err
	}
	root, err := rootOnce()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "parkmesh"), adminCLIPackage)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", adminCLIPackage, err, out)
	}
	return dir, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := cliOnce(); err == nil && strings.Contains(dir, "parkmesh-configcheck-") {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// job runs a script of deploy/docker/scripts with only env and the admin
// image's programs (the CLI, then the system's) on PATH.
func job(t *testing.T, env map[string]string, script string) (stdout, stderr string, err error) {
	t.Helper()
	bin, err := cliOnce()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", repoPath(t, "deploy/docker/scripts/"+script))
	cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func TestParkInitJob(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PARKMESH_PARK": "xian-hitech", "PARKMESH_DATA_DIR": dir}
	out, errOut, err := job(t, env, "park-init")
	if err != nil {
		t.Fatalf("park-init: %v\n%s%s", err, out, errOut)
	}
	keyset := filepath.Join(dir, "keys", "keyset.json")
	first, err := os.ReadFile(keyset)
	if err != nil {
		t.Fatalf("no key set after park-init: %v", err)
	}
	if !strings.Contains(out, "created the signing key") || !strings.Contains(string(first), "xian-hitech") {
		t.Errorf("park-init printed %q and wrote a key set of another park:\n%s", out, first)
	}
	// Every `docker compose up` runs it again: it must keep the key.
	out, errOut, err = job(t, env, "park-init")
	if err != nil || !strings.Contains(out, "already has its key set") {
		t.Fatalf("second park-init: %v\n%s%s", err, out, errOut)
	}
	if again, _ := os.ReadFile(keyset); !bytes.Equal(again, first) {
		t.Error("the second park-init changed the key set")
	}
	if _, _, err := job(t, map[string]string{"PARKMESH_DATA_DIR": t.TempDir()}, "park-init"); err == nil {
		t.Error("park-init without PARKMESH_PARK succeeded")
	}
}

// club is the stand-in gateways of a set of parks: the park-side peering
// API (generate a token, establish with one, list peers), each checking
// that the caller holds an admin token of its own park.
type club struct {
	mu       sync.Mutex
	gateways map[string]*fakeGateway
	tokens   map[string][2]string // peering token → issuing park, park it is for
	calls    []string
}

type fakeGateway struct {
	park  string
	peers []string
	srv   *httptest.Server
}

func newClub(t *testing.T, parks ...string) *club {
	c := &club{gateways: map[string]*fakeGateway{}, tokens: map[string][2]string{}}
	for _, p := range parks {
		g := &fakeGateway{park: p}
		g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(g, w, r) }))
		t.Cleanup(g.srv.Close)
		c.gateways[p] = g
	}
	return c
}

func (c *club) serve(g *fakeGateway, w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, g.park+" "+r.Method+" "+r.URL.Path)
	if iss := tokenIssuer(r); iss != g.park {
		http.Error(w, `{"error":{"code":"unauthorized","message":"not an admin token of this park"}}`, http.StatusUnauthorized)
		return
	}
	var body map[string]string
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":{"code":"invalid","message":"bad JSON"}}`, http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "GET /api/v1/peers":
		var peers []map[string]string
		for _, p := range g.peers {
			peers = append(peers, map[string]string{"park": p, "url": c.gateways[p].srv.URL, "health": "up", "breaker": "closed"})
		}
		json.NewEncoder(w).Encode(map[string]any{"peers": peers})
	case "POST /api/v1/peerings/tokens":
		tok := fmt.Sprintf("pmpt1.%s.%s.%d", g.park, body["peer"], len(c.tokens))
		c.tokens[tok] = [2]string{g.park, body["peer"]}
		json.NewEncoder(w).Encode(map[string]string{"token": tok, "expires_at": "2030-01-01T00:00:00Z"})
	case "POST /api/v1/peerings":
		t, ok := c.tokens[body["token"]]
		if !ok || t[1] != g.park {
			http.Error(w, `{"error":{"code":"invalid","message":"unknown token","field":"token"}}`, http.StatusBadRequest)
			return
		}
		delete(c.tokens, body["token"]) // valid once
		from := c.gateways[t[0]]
		g.peers = append(g.peers, from.park)
		from.peers = append(from.peers, g.park)
		json.NewEncoder(w).Encode(map[string]string{"park": from.park, "url": from.srv.URL})
	default:
		http.Error(w, `{"error":{"code":"not_found","message":"no route"}}`, http.StatusNotFound)
	}
}

// tokenIssuer returns the iss claim of the request's bearer JWT (its
// signature is the product's tests' business).
func tokenIssuer(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct{ Iss string }
	json.Unmarshal(payload, &claims)
	return claims.Iss
}

// TestPeeringJob runs peer-parks as the compose file does (PARKMESH_PEERS
// over several lines, keys under PARKS_ROOT/<park>), twice.
func TestPeeringJob(t *testing.T) {
	parks := []string{"xian-hitech", "chengdu-hitech", "siliconvalley-offshore"}
	c := newClub(t, parks...)
	root := t.TempDir()
	var peers []string
	for _, p := range parks {
		if out, errOut, err := job(t, map[string]string{"PARKMESH_PARK": p, "PARKMESH_DATA_DIR": filepath.Join(root, p)}, "park-init"); err != nil {
			t.Fatalf("park-init %s: %v\n%s%s", p, err, out, errOut)
		}
		peers = append(peers, p+"="+c.gateways[p].srv.URL)
	}
	env := map[string]string{"PARKMESH_PEERS": strings.Join(peers, "\n        "), "PARKS_ROOT": root}

	out, errOut, err := job(t, env, "peer-parks")
	if err != nil {
		t.Fatalf("peer-parks: %v\n%s%s", err, out, errOut)
	}
	for i, a := range parks {
		for _, b := range parks[i+1:] {
			if !strings.Contains(out, a+" and "+b+" are peers") {
				t.Errorf("peer-parks did not report %s and %s peered:\n%s", a, b, out)
			}
		}
		if got := c.gateways[a].peers; len(got) != len(parks)-1 {
			t.Errorf("%s's peers after peer-parks: %v, want the %d others", a, got, len(parks)-1)
		}
	}

	// Every `docker compose up` runs it again: nothing new is established.
	c.mu.Lock()
	c.calls = nil
	c.mu.Unlock()
	out, errOut, err = job(t, env, "peer-parks")
	if err != nil || strings.Count(out, "already peers") != 3 {
		t.Errorf("second peer-parks: %v\n%s%s", err, out, errOut)
	}
	c.mu.Lock()
	for _, call := range c.calls {
		if !strings.HasSuffix(call, "GET /api/v1/peers") {
			t.Errorf("second peer-parks called %s; want only peering lists", call)
		}
	}
	c.mu.Unlock()

	// A gateway that does not answer fails the job (compose restarts it).
	c.gateways["chengdu-hitech"].srv.Close()
	env["PEER_ATTEMPTS"] = "1"
	env["PARKMESH_PEERS"] = "xian-hitech=" + c.gateways["xian-hitech"].srv.URL + " chengdu-hitech=" + c.gateways["chengdu-hitech"].srv.URL
	c.gateways["xian-hitech"].peers = nil
	if out, _, err := job(t, env, "peer-parks"); err == nil {
		t.Errorf("peer-parks succeeded with chengdu-hitech's gateway down:\n%s", out)
	}
}
