package peering_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/gateway/fedapi"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// testPark is one park's federation side as the gateway wires it: its own
// Consul agent (peers and peering tokens in KV), a watched peer store, and
// the real federation handlers on a loopback HTTP server.
type testPark struct {
	id    string
	agent *consultest.Agent
	keys  *parkkey.KeySet
	fed   *peering.Federation
	srv   *httptest.Server
}

func startPark(t *testing.T, id string, seed byte) *testPark {
	t.Helper()
	agent := consultest.Start(t)
	ks, err := parkkey.FromKeys(id, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	client := &http.Client{Timeout: 5 * time.Second}
	// The gateway's own least-privilege Consul token, as in production.
	gw := agent.ClientWithToken(t, agent.Token(t, consulacl.Gateway))
	store := peering.NewStore(gw, client, logger, peering.StoreConfig{Keys: func() *parkkey.KeySet { return ks }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); store.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-store.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("peer store never synced")
	}
	p := &testPark{id: id, agent: agent, keys: ks}
	p.fed = &peering.Federation{Park: id, Name: id, Keys: func() *parkkey.KeySet { return ks }, Peers: store, KV: gw.KV(), Client: client}
	api := &fedapi.API{Peering: p.fed, Logger: logger}
	mux := http.NewServeMux()
	api.Routes(mux, func(_ string, h http.Handler) http.Handler { return h })
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.fed.PublicURL = p.srv.URL
	return p
}

// kv returns every key and value under parkmesh/ in the park's Consul: its
// peers, their pinned keys and URLs, and its unused peering tokens.
func (p *testPark) kv(t *testing.T) map[string]string {
	t.Helper()
	pairs, _, err := p.agent.Client().KV().List("parkmesh/", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range pairs {
		out[kv.Key] = string(kv.Value)
	}
	return out
}

func (p *testPark) generate(t *testing.T, peer string) string {
	t.Helper()
	tok, _, err := p.fed.GenerateToken(context.Background(), peer, time.Hour)
	if err != nil {
		t.Fatalf("%s: GenerateToken(%s): %v", p.id, peer, err)
	}
	return tok
}

// editToken decodes a peering token, lets edit change its fields (as an
// attacker would: the token is not signed) and encodes it again.
func editToken(t *testing.T, tok string, edit func(map[string]any)) string {
	t.Helper()
	raw, ok := strings.CutPrefix(tok, peering.PeeringTokenPrefix)
	if !ok {
		t.Fatalf("not a peering token: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	return peering.PeeringTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// decoy is a server that counts the requests it gets: a URL in a refused
// token must never be called.
func decoy(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func wantCode(t *testing.T, err error, code apierror.Code, field string) {
	t.Helper()
	var ae *apierror.Error
	if err == nil {
		t.Fatalf("accepted, want %s", code)
	}
	if !errorsAs(err, &ae) || ae.Code != code || ae.Field != field {
		t.Fatalf("err = %v, want %s (field %q)", err, code, field)
	}
}

func errorsAs(err error, ae **apierror.Error) bool {
	e, ok := err.(*apierror.Error)
	if ok {
		*ae = e
	}
	return ok
}

func sameKV(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed: %q → %q", what, k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared: %q", what, k, after[k])
		}
	}
}

// TestEstablishAttacks: the establishing park (B) refuses, before it calls
// anyone (so the one-time token stays unused at A), a token naming itself,
// a token from a park it already peers with, and a token whose URL is not
// an origin; neither park's peers, pinned keys or tokens change.
func TestEstablishAttacks(t *testing.T) {
	a, b := startPark(t, "xian-hitech", 1), startPark(t, "chengdu-hitech", 2)
	c := startPark(t, "siliconvalley-offshore", 3)
	evil, hits := decoy(t)

	// B already peers with C.
	if _, err := b.fed.Establish(context.Background(), c.generate(t, b.id)); err != nil {
		t.Fatalf("peering B with C: %v", err)
	}
	// B learns C's display names in the background after peering; learned
	// here first, that write cannot land during an attack below (a later
	// one finds nothing new, or loses its check-and-set).
	if _, err := b.fed.Peers.LearnIdentity(context.Background(), c.id); err != nil {
		t.Fatalf("B learning C's identity: %v", err)
	}
	// A's real token for B, which each attack edits.
	good := a.generate(t, b.id)

	tests := []struct {
		name  string
		token string
		code  apierror.Code
		field string
	}{
		{"token naming B itself, URL elsewhere", editToken(t, good, func(m map[string]any) { m["park"] = b.id; m["url"] = evil.URL }), apierror.Invalid, "token"},
		{"token naming B itself at B's own URL", editToken(t, good, func(m map[string]any) { m["park"] = b.id; m["url"] = b.srv.URL }), apierror.Invalid, "token"},
		{"token naming B as issuer and peer", editToken(t, good, func(m map[string]any) { m["park"], m["peer"] = b.id, b.id }), apierror.Invalid, "token"},
		{"existing peer C at an attacker's URL", editToken(t, good, func(m map[string]any) { m["park"] = c.id; m["url"] = evil.URL }), apierror.Conflict, ""},
		{"existing peer C at its own URL", editToken(t, good, func(m map[string]any) { m["park"] = c.id; m["url"] = c.srv.URL }), apierror.Conflict, ""},
		{"URL with a path", editToken(t, good, func(m map[string]any) { m["url"] = a.srv.URL + "/evil" }), apierror.Invalid, "token"},
		{"URL with a query", editToken(t, good, func(m map[string]any) { m["url"] = a.srv.URL + "?x=1" }), apierror.Invalid, "token"},
		{"URL with an empty query", editToken(t, good, func(m map[string]any) { m["url"] = a.srv.URL + "?" }), apierror.Invalid, "token"},
		{"URL with a fragment", editToken(t, good, func(m map[string]any) { m["url"] = a.srv.URL + "#x" }), apierror.Invalid, "token"},
		{"URL with userinfo", editToken(t, good, func(m map[string]any) { m["url"] = strings.Replace(a.srv.URL, "://", "://user:pw@", 1) }), apierror.Invalid, "token"},
		{"plain http to a remote host", editToken(t, good, func(m map[string]any) { m["url"] = "http://parkmesh.xian-hitech.example" }), apierror.Invalid, "token"},
		{"not http at all", editToken(t, good, func(m map[string]any) { m["url"] = "file:///etc/passwd" }), apierror.Invalid, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeA, beforeB, beforeC := a.kv(t), b.kv(t), c.kv(t)
			_, err := b.fed.Establish(context.Background(), tt.token)
			wantCode(t, err, tt.code, tt.field)
			sameKV(t, "A", beforeA, a.kv(t))
			sameKV(t, "B", beforeB, b.kv(t))
			sameKV(t, "C", beforeC, c.kv(t))
			if n := hits.Load(); n != 0 {
				t.Errorf("the token's URL was called %d times", n)
			}
		})
	}
	// The token none of that used up still works, once; then A is a peer
	// and a second token from A is refused as well.
	p, err := b.fed.Establish(context.Background(), good)
	if err != nil {
		t.Fatalf("the untouched token after the attacks: %v", err)
	}
	if p.URL != a.srv.URL {
		t.Errorf("pinned URL %q, want %q", p.URL, a.srv.URL)
	}
	if _, _, err := a.fed.GenerateToken(context.Background(), b.id, time.Hour); !apierror.Is(err, apierror.Conflict) {
		t.Errorf("A generating a token for its peer B: %v, want Conflict", err)
	}
	if _, _, err := b.fed.GenerateToken(context.Background(), b.id, time.Hour); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("B generating a token for itself: %v, want Invalid", err)
	}
}

// caller is who sends a handshake: a park's key set (the park id is the
// key set's) and the URL it gives.
type caller struct {
	keys *parkkey.KeySet
	url  string
}

func (p *testPark) caller() caller { return caller{p.keys, p.srv.URL} }

// impostor is a caller claiming to be park id with a key of its own.
func impostor(t *testing.T, id, url string) caller {
	t.Helper()
	ks, err := parkkey.FromKeys(id, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xee}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return caller{ks, url}
}

// establishRequest is a handshake as the establishing side sends it,
// signed with from's key: what B sends, or an attacker holding a stolen
// peering token with a key of its own.
func establishRequest(t *testing.T, from caller, to *testPark, tok string, edit func(*peering.EstablishRequest)) (int, []byte) {
	t.Helper()
	raw, _ := strings.CutPrefix(tok, peering.PeeringTokenPrefix)
	b, _ := base64.RawURLEncoding.DecodeString(raw)
	var pt struct{ TID, Secret string }
	json.Unmarshal(b, &pt)
	jwks, _ := json.Marshal(from.keys.JWKS())
	req := peering.EstablishRequest{TokenID: pt.TID, Secret: pt.Secret, Park: from.keys.Park(), URL: from.url, JWKS: jwks}
	if edit != nil {
		edit(&req)
	}
	proof, err := parktoken.IssueFederation(from.keys, to.id, parktoken.ScopePeering, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(req)
	hreq, _ := http.NewRequest("POST", to.srv.URL+"/federation/v1/peering/establish", bytes.NewReader(body))
	hreq.Header.Set("Authorization", "Bearer "+proof)
	hreq.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return res.StatusCode, rb
}

// TestAcceptEstablishAttacks: the park that generated the token (A)
// refuses a handshake naming A itself, one from a park it already peers
// with, one with a URL that is not an origin, and a token id that walks
// out of the tokens' KV prefix; every check comes before the token is used
// up, so A's peers, keys and unused tokens stay as they were, and the
// token still works for a correct handshake.
func TestAcceptEstablishAttacks(t *testing.T) {
	a, b := startPark(t, "xian-hitech", 1), startPark(t, "chengdu-hitech", 2)
	c := startPark(t, "siliconvalley-offshore", 3)
	// Two tokens for B before B is a peer; B establishes with the first.
	first, second := a.generate(t, b.id), a.generate(t, b.id)
	if _, err := b.fed.Establish(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	forC := a.generate(t, c.id)

	evil, hits := decoy(t)
	tests := []struct {
		name   string
		from   caller
		token  string
		edit   func(*peering.EstablishRequest)
		status int
	}{
		{"handshake naming A itself", impostor(t, a.id, evil.URL), second, nil, 401},
		{"handshake naming A itself, B's token and key", b.caller(), second, func(r *peering.EstablishRequest) { r.Park = a.id }, 401},
		{"existing peer B, an attacker's key and URL", impostor(t, b.id, evil.URL), second, nil, 409},
		{"existing peer B with B's own key", b.caller(), second, nil, 409},
		{"existing peer B at another URL", b.caller(), second, func(r *peering.EstablishRequest) { r.URL = evil.URL }, 409},
		{"URL with a path", c.caller(), forC, func(r *peering.EstablishRequest) { r.URL = c.srv.URL + "/x" }, 400},
		{"URL with a query", c.caller(), forC, func(r *peering.EstablishRequest) { r.URL = c.srv.URL + "?a=b" }, 400},
		{"URL with userinfo", c.caller(), forC, func(r *peering.EstablishRequest) { r.URL = strings.Replace(c.srv.URL, "://", "://u:p@", 1) }, 400},
		{"plain http to a remote host", c.caller(), forC, func(r *peering.EstablishRequest) { r.URL = "http://gateway.example:8081" }, 400},
		{"token id walking to the peers' prefix", c.caller(), forC, func(r *peering.EstablishRequest) { r.TokenID = "../peers/" + b.id }, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.kv(t)
			status, body := establishRequest(t, tt.from, a, tt.token, tt.edit)
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			if status == 400 && !strings.Contains(string(body), `"field":"url"`) {
				t.Errorf("400 does not name the field url: %s", body)
			}
			sameKV(t, "A", before, a.kv(t))
		})
	}
	// The tokens are unused: C peers with its own, unedited.
	if status, body := establishRequest(t, c.caller(), a, forC, nil); status != 200 {
		t.Errorf("C's token after the attacks: %d %s", status, body)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("an attacker's URL was called %d times", n)
	}
}

// TestOrigin: peer URLs are origins; https unless loopback or allowed.
func TestOrigin(t *testing.T) {
	tests := []struct {
		in, want string
		insecure bool
	}{
		{"https://parkmesh.xian-hitech.example", "https://parkmesh.xian-hitech.example", false},
		{"https://Parkmesh.Xian-Hitech.example:8443/", "https://parkmesh.xian-hitech.example:8443", false},
		{"http://127.0.0.1:8081", "http://127.0.0.1:8081", false},
		{"http://[::1]:8081", "http://[::1]:8081", false},
		{"http://localhost:8081", "http://localhost:8081", false},
		{"http://gateway-xian-hitech:8081", "http://gateway-xian-hitech:8081", true},
		{"http://gateway-xian-hitech:8081", "", false},
		{"https://a.example/path", "", false},
		{"https://a.example/%2e%2e", "", false},
		{"https://a.example?q", "", false},
		{"https://a.example?", "", false},
		{"https://a.example#f", "", false},
		{"https://a.example#", "", false},
		{"https://u@a.example", "", false},
		{"https://a.example:0", "", false},
		{"https://a.example:99999", "", false},
		{"https://:8443", "", false},
		{"ftp://a.example", "", false},
		{"a.example", "", false},
		{"mailto:x@a.example", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := peering.Origin(tt.in, tt.insecure)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Origin(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Origin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
