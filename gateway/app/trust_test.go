package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/admin"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// cli runs the parkmesh admin CLI in-process with env as its environment;
// it returns stdout, failing the test on a non-zero exit.
func cli(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &admin.CLI{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }, Now: time.Now}
	if code := c.Run(args); code != 0 {
		t.Fatalf("parkmesh %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// get sends method path to base with token and returns status, headers and body.
func get(t *testing.T, method, url, token string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// metric reports whether p's gateway has counted the series.
func metric(t *testing.T, baseURL, series string) bool {
	t.Helper()
	_, _, body := get(t, "GET", baseURL+"/metrics", "", nil)
	return strings.Contains(string(body), series)
}

// TestRevokedLocalTokenOnEveryReplica: a staff token issued with the CLI
// is recorded (listed by either replica, which share the data dir), and
// revoked with the CLI through one replica it is refused by that replica
// at once and by the other within seconds (Consul KV watch), counted
// under reason revoked; other tokens keep working. A token signed with the
// park's own key but living longer than 366 days is refused too.
func TestRevokedLocalTokenOnEveryReplica(t *testing.T) {
	p := nodetest.StartPark(t, "xian-hitech")
	replica := p.StartReplica()
	replicaURL := "http://" + replica.Addr
	env := map[string]string{}

	leaked := cli(t, env, "token", "create", "--sub", "li.wei", "--role", "editor", "--ttl", "24h", "--data-dir", p.DataDir)
	kept := cli(t, env, "token", "create", "--sub", "ci-bot", "--role", "viewer", "--ttl", "24h", "--data-dir", p.DataDir)
	adminTok := cli(t, env, "token", "create", "--sub", "ops", "--role", "admin", "--ttl", "1h", "--data-dir", p.DataDir)
	id := claimsOf(t, leaked)["jti"].(string)
	read := func(base, tok string) int {
		s, _, _ := get(t, "GET", base+"/api/v1/projects?limit=1", tok, nil)
		return s
	}
	for _, base := range []string{p.GatewayURL, replicaURL} {
		if s := read(base, leaked); s != 200 {
			t.Fatalf("%s: the token before revocation: %d", base, s)
		}
	}
	// Listed, by either replica.
	for _, base := range []string{p.GatewayURL, replicaURL} {
		s, _, body := get(t, "GET", base+"/api/v1/tokens", adminTok, nil)
		if s != 200 || !strings.Contains(string(body), `"id":"`+id+`"`) || strings.Contains(string(body), leaked) {
			t.Fatalf("%s: token list: %d %s", base, s, body)
		}
	}
	listed := cli(t, map[string]string{admin.EnvToken: adminTok}, "token", "list", "--gateway", p.GatewayURL)
	if !strings.Contains(listed, id) || !strings.Contains(listed, "li.wei") {
		t.Errorf("parkmesh token list:\n%s", listed)
	}

	// Revoke through the primary, with the admin token from the environment.
	cli(t, map[string]string{admin.EnvToken: adminTok}, "token", "revoke", "--id", id, "--gateway", p.GatewayURL)
	revoked := time.Now()
	if s := read(p.GatewayURL, leaked); s != 401 {
		t.Errorf("the revoking replica: %d, want 401 at once", s)
	}
	waitFor(t, "the other replica to refuse the revoked token", 5*time.Second, func() bool { return read(replicaURL, leaked) == 401 })
	t.Logf("refused by the other replica %s after the revocation", time.Since(revoked).Round(time.Millisecond))
	if !metric(t, replicaURL, `parkmesh_gateway_auth_failures_total{reason="revoked",side="park"}`) {
		t.Error("the other replica did not count the refusal under reason revoked")
	}
	for _, base := range []string{p.GatewayURL, replicaURL} {
		if s := read(base, kept); s != 200 {
			t.Errorf("%s: another token after the revocation: %d", base, s)
		}
	}
	s, _, body := get(t, "GET", replicaURL+"/api/v1/tokens/"+id, adminTok, nil)
	var rec struct {
		RevokedAt time.Time `json:"revoked_at"`
	}
	json.Unmarshal(body, &rec)
	if s != 200 || rec.RevokedAt.IsZero() {
		t.Errorf("the record on the other replica: %d %s", s, body)
	}
	// A restarted gateway still refuses it (from its state, and Consul).
	p.RestartGateway()
	if s := read(p.GatewayURL, leaked); s != 401 {
		t.Errorf("after a restart: %d, want 401", s)
	}

	// Ten years, signed with the park's own key: refused for its lifetime.
	priv := p.Keys.Current().Signer().(ed25519.PrivateKey)
	now := time.Now()
	long := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": p.ID, "aud": p.ID, "sub": "mallory", "role": "admin",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.AddDate(10, 0, 0).Unix(), "jti": "ten-years"})
	long.Header["kid"], long.Header["typ"] = p.Keys.Current().ID, parktoken.TokenType
	longTok, err := long.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	if s := read(p.GatewayURL, longTok); s != 401 {
		t.Errorf("a ten-year token: %d, want 401", s)
	}
	if !metric(t, p.GatewayURL, `parkmesh_gateway_auth_failures_total{reason="lifetime",side="park"}`) {
		t.Error("the ten-year token was not counted under reason lifetime")
	}
}

// claimsOf decodes a JWT's payload without checking it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCapsAndLimits: the N+1th concurrent stream of one park-local token,
// and of one peer, is refused with 429, Retry-After and the error JSON,
// while another holder is served; bodies and headers over the limits are
// refused on both listeners; a listing id that is not one never reaches a
// service; a federation token is usable once.
func TestCapsAndLimits(t *testing.T) {
	const max = 2
	parks := nodetest.StartClub(t, nodetest.Options{GatewayArgs: []string{
		"-max-streams-per-token", fmt.Sprint(max), "-max-streams-per-peer", fmt.Sprint(max), "-max-body-bytes", "65536",
	}}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]

	open := func(url, tok string) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("GET %s: %v", url, err)
		}
		t.Cleanup(func() { cancel(); res.Body.Close() })
		return res, cancel
	}
	refused := func(what string, res *http.Response) {
		t.Helper()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"too_many_requests"`) {
			t.Errorf("%s: %d, Retry-After %q, %s; want 429 with Retry-After and the error JSON", what, res.StatusCode, res.Header.Get("Retry-After"), body)
		}
	}

	t.Run("streams per park-local token", func(t *testing.T) {
		tok, other := a.Token(parktoken.Viewer), a.Token(parktoken.Viewer)
		var cancels []context.CancelFunc
		for i := range max {
			res, cancel := open(a.GatewayURL+"/api/v1/stream", tok)
			if res.StatusCode != 200 {
				t.Fatalf("stream %d: %d", i+1, res.StatusCode)
			}
			cancels = append(cancels, cancel)
		}
		res, _ := open(a.GatewayURL+"/api/v1/stream", tok)
		refused("stream over the cap", res)
		if res, _ := open(a.GatewayURL+"/api/v1/stream", other); res.StatusCode != 200 {
			t.Errorf("another token's stream: %d", res.StatusCode)
		}
		if !metric(t, a.GatewayURL, `parkmesh_gateway_limited_total{limit="streams_per_token",side="park"}`) {
			t.Error("the refusal was not counted")
		}
		// Closing one frees its place.
		cancels[0]()
		waitFor(t, "a freed stream slot", 5*time.Second, func() bool {
			res, cancel := open(a.GatewayURL+"/api/v1/stream", tok)
			defer cancel()
			return res.StatusCode == 200
		})
	})

	t.Run("streams per peer", func(t *testing.T) {
		feed := func() *http.Response {
			tok, err := parktoken.IssueFederation(b.Keys, a.ID, parktoken.ScopeChanges, time.Minute, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			res, _ := open(a.FederationURL+"/federation/v1/changes?start=now", tok)
			return res
		}
		// b's own follower already holds one stream of a's feed.
		waitFor(t, "b's follower on a's feed", 10*time.Second, func() bool {
			_, _, body := get(t, "GET", b.GatewayURL+"/api/v1/peers", b.Token(parktoken.Viewer), nil)
			return strings.Contains(string(body), `"connected":true`)
		})
		var last *http.Response
		for range max + 1 {
			if last = feed(); last.StatusCode != 200 {
				break
			}
		}
		refused("changes stream over the cap", last)
		if !metric(t, a.GatewayURL, `parkmesh_gateway_limited_total{limit="streams_per_peer",side="federation"}`) {
			t.Error("the refusal was not counted")
		}
	})

	t.Run("a federation token is usable once", func(t *testing.T) {
		tok, _ := parktoken.IssueFederation(b.Keys, a.ID, parktoken.ScopeSearch, time.Minute, time.Now())
		search := func() int {
			s, _, _ := get(t, "POST", a.FederationURL+"/federation/v1/search", tok, strings.NewReader(`{}`))
			return s
		}
		if s := search(); s != 200 {
			t.Fatalf("first use: %d", s)
		}
		if s := search(); s != 401 {
			t.Errorf("replayed: %d, want 401", s)
		}
		if !metric(t, a.GatewayURL, `parkmesh_gateway_auth_failures_total{reason="replay",side="federation"}`) {
			t.Error("the replay was not counted under reason replay")
		}
	})

	t.Run("listing id grammar", func(t *testing.T) {
		for _, path := range []string{"/api/v1/projects/..%2Fchanges", "/api/v1/projects/..%2F..%2Fv1%2Fchanges", "/api/v1/talent/%2E%2E%2Fhealthz"} {
			s, _, body := get(t, "GET", a.GatewayURL+path, a.Token(parktoken.Viewer), nil)
			if s != 400 || !strings.Contains(string(body), `"field":"id"`) {
				t.Errorf("GET %s: %d %s, want 400 naming id", path, s, body)
			}
		}
	})

	t.Run("body and header limits on both listeners", func(t *testing.T) {
		big := strings.NewReader(`{"title":"` + strings.Repeat("x", 70000) + `"}`)
		if s, _, body := get(t, "POST", a.GatewayURL+"/api/v1/projects", a.Token(parktoken.Editor), big); s != 413 {
			t.Errorf("park side, large body: %d %s", s, body)
		}
		tok, _ := parktoken.IssueFederation(b.Keys, a.ID, parktoken.ScopeSearch, time.Minute, time.Now())
		big = strings.NewReader(`{"q":"` + strings.Repeat("x", 70000) + `"}`)
		if s, _, body := get(t, "POST", a.FederationURL+"/federation/v1/search", tok, big); s != 413 {
			t.Errorf("federation side, large body: %d %s", s, body)
		}
		for _, base := range []string{a.GatewayURL + "/api/v1/projects", a.FederationURL + "/.well-known/parkmesh.json"} {
			req, _ := http.NewRequest("GET", base, nil)
			req.Header.Set("X-Padding", strings.Repeat("p", 80<<10))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s, 80 KiB header: %d, want 431", base, res.StatusCode)
			}
		}
	})
}

// TestEstablishWithoutExpDoesNotCrash: the peering handshake verifies the
// caller's proof against a JWKS the caller brings, with no credential; a
// proof without exp used to panic the verifier there. It is a 401 now,
// counted, and the gateway goes on serving; nothing is peered.
func TestEstablishWithoutExpDoesNotCrash(t *testing.T) {
	p := nodetest.StartPark(t, "xian-hitech")
	attacker, err := parkkey.FromKeys("mallory-park", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(attacker.JWKS())
	now := time.Now()
	for _, claims := range []jwt.MapClaims{
		{"iss": "mallory-park", "aud": p.ID, "iat": now.Unix(), "jti": "j1", "scope": parktoken.ScopePeering},
		{"iss": "mallory-park", "aud": p.ID, "exp": now.Add(time.Minute).Unix(), "jti": "j2", "scope": parktoken.ScopePeering},
		{"iss": "mallory-park", "aud": p.ID, "iat": "now", "exp": "later", "jti": "j3", "scope": parktoken.ScopePeering},
		{"iss": "mallory-park", "aud": []string{p.ID, "other"}, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "j4", "scope": parktoken.ScopePeering},
	} {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"], tok.Header["typ"] = attacker.Current().ID, parktoken.FederationType
		proof, err := tok.SignedString(attacker.Current().Signer())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(peering.EstablishRequest{TokenID: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", Secret: "x", Park: "mallory-park", URL: "http://127.0.0.1:1", JWKS: jwks})
		if s, _, b := get(t, "POST", p.FederationURL+"/federation/v1/peering/establish", proof, bytes.NewReader(body)); s != 401 {
			t.Errorf("%v: %d %s, want 401", claims, s, b)
		}
	}
	if s, _, _ := get(t, "GET", p.FederationURL+"/.well-known/parkmesh.json", "", nil); s != 200 {
		t.Fatalf("the gateway no longer serves: %d", s)
	}
	if p.Gateway.Exited() {
		t.Fatal("the gateway exited")
	}
	s, _, body := get(t, "GET", p.GatewayURL+"/api/v1/peers", p.Token(parktoken.Viewer), nil)
	if s != 200 || strings.Contains(string(body), "mallory") {
		t.Errorf("peers after the attempts: %d %s", s, body)
	}
	for _, reason := range []string{"peering_proof_claims", "peering_proof_malformed", "peering_proof_audience"} {
		if !metric(t, p.GatewayURL, fmt.Sprintf(`parkmesh_gateway_auth_failures_total{reason=%q,side="federation"}`, reason)) {
			t.Errorf("no refusal counted under %s", reason)
		}
	}
}
