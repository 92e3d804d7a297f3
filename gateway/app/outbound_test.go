package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// hitLog records the requests a test server got, by path.
type hitLog struct {
	mu   sync.Mutex
	hits []*http.Request
}

func (h *hitLog) add(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hits = append(h.hits, r)
}

func (h *hitLog) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.hits {
		if path == "" || r.URL.Path == path {
			n++
		}
	}
	return n
}

// TestOutboundRedirectsAreNotFollowed: every call a gateway makes to
// another host — a peer's search, its feed, its JWKS, the peering
// handshake, a webhook — to a server answering 307 towards a second
// server: the call fails, and the second server never sees a request, so
// neither the federation token nor the webhook signature reaches it.
func TestOutboundRedirectsAreNotFollowed(t *testing.T) {
	// Short feed tokens: A's follower of B reconnects (to the redirector)
	// within seconds of the repoint.
	opts := nodetest.Options{GatewayArgs: []string{"-feed-token-ttl", "2s", "-webhook-allow-cidr", "127.0.0.0/8", "-webhook-backoff", "100ms"}}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	ctx := context.Background()

	var second, redirector hitLog
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second.add(r)
		w.WriteHeader(200)
	}))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirector.add(r)
		http.Redirect(w, r, target.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	// A now finds peer B at the redirector.
	repoint(t, a, b.ID, redirect.URL)

	// A key of B's that A has not pinned: A refreshes B's JWKS when it
	// sees it.
	unpinned, err := parkkey.Init(t.TempDir(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	var hook webhook.Webhook
	tests := []struct {
		name string
		path string // what the redirector is asked
		call func(t *testing.T)
		// failed reports whether the caller saw the call fail.
		failed func(t *testing.T) bool
	}{
		{
			name: "peer search",
			path: "/federation/v1/search",
			call: func(t *testing.T) {
				ans, status, _ := clubSearch(t, a, "q=copper&mode=live")
				if status != 200 || statusOf(ans, b.ID) != search.StatusError {
					t.Errorf("club search: %d, B's status %s, want 200 with B in error", status, statusOf(ans, b.ID))
				}
			},
			failed: func(*testing.T) bool { return true },
		},
		{
			name: "peer feed",
			path: "/federation/v1/changes",
			call: func(*testing.T) {},
			failed: func(t *testing.T) bool {
				_, body := a.Do(ctx, "GET", "/api/v1/peers", a.Token(parktoken.Viewer), nil)
				var v struct {
					Peers []struct {
						Park string
						Feed *peering.FeedHealth
					}
				}
				json.Unmarshal(body, &v)
				for _, p := range v.Peers {
					if p.Park == b.ID && p.Feed != nil && !p.Feed.Connected && strings.Contains(p.Feed.LastError, "307") {
						return true
					}
				}
				return false
			},
		},
		{
			name: "JWKS refresh",
			path: "/.well-known/jwks.json",
			call: func(t *testing.T) {
				tok, err := parktoken.IssueFederation(unpinned, a.ID, parktoken.ScopeSearch, time.Minute, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if s, body := a.Do(ctx, "POST", "/federation/v1/search", tok, strings.NewReader(`{}`)); s != 401 {
					t.Errorf("token with a kid only the redirect target could publish: %d %s, want 401", s, body)
				}
			},
			failed: func(*testing.T) bool { return true },
		},
		{
			name: "peering establish",
			path: "/federation/v1/peering/establish",
			call: func(t *testing.T) {
				tok := peering.PeeringTokenPrefix + b64(map[string]any{
					"park": "haifa-lifescience", "url": redirect.URL, "kid": unpinned.Current().ID, "tid": "t1",
					"secret": "s3cret-s3cret-s3cret", "peer": a.ID, "exp": time.Now().Add(time.Hour).UTC(),
				})
				s, body := a.Do(ctx, "POST", "/api/v1/peerings", a.Token(parktoken.Admin), strings.NewReader(`{"token":"`+tok+`"}`))
				if s < 400 {
					t.Errorf("establish through a redirect: %d %s, want an error", s, body)
				}
				if _, body := a.Do(ctx, "GET", "/api/v1/peers", a.Token(parktoken.Viewer), nil); strings.Contains(string(body), "haifa-lifescience") {
					t.Errorf("a peer was stored: %s", body)
				}
			},
			failed: func(*testing.T) bool { return true },
		},
		{
			name: "webhook",
			path: "/hook",
			call: func(t *testing.T) {
				s, body := a.Do(ctx, "POST", "/api/v1/webhooks", a.Token(parktoken.Admin), strings.NewReader(`{"url":"`+redirect.URL+`/hook","filter":{"kinds":"projects"}}`))
				if s != 201 {
					t.Fatalf("register webhook: %d %s", s, body)
				}
				json.Unmarshal(body, &hook)
				time.Sleep(300 * time.Millisecond) // the dispatcher's first "now"
				a.Create("projects", project("redirected copper", ""))
			},
			failed: func(*testing.T) bool {
				_, body := a.Do(ctx, "GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", a.Token(parktoken.Admin), nil)
				var d struct{ Deliveries []webhook.Delivery }
				json.Unmarshal(body, &d)
				return len(d.Deliveries) > 0 && d.Deliveries[0].LastError == webhook.LastErrorRedirect
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := second.count("")
			tt.call(t)
			waitFor(t, "the redirector asked for "+tt.path, 15*time.Second, func() bool { return redirector.count(tt.path) > 0 })
			waitFor(t, "the call reported failed", 10*time.Second, func() bool { return tt.failed(t) })
			if n := second.count("") - before; n != 0 {
				t.Errorf("the redirect target got %d requests", n)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // retries of the webhook, reconnects of the feed
	if n := second.count(""); n != 0 {
		second.mu.Lock()
		for _, r := range second.hits {
			t.Logf("redirect target got %s %s (Authorization %t, signature %t)", r.Method, r.URL.Path,
				r.Header.Get("Authorization") != "", r.Header.Get(webhook.SignatureHeader) != "")
		}
		second.mu.Unlock()
		t.Errorf("the redirect target got %d requests in all", n)
	}
	// What an operator sees: refusals counted per client.
	_, metrics := a.Do(ctx, "GET", "/metrics", "", nil)
	for _, client := range []string{"peer", "stream", "webhook"} {
		if !strings.Contains(string(metrics), `parkmesh_gateway_outbound_refused_total{client="`+client+`",reason="redirect"}`) {
			t.Errorf("no refused redirect counted for the %s client:\n%s", client, grepLines(string(metrics), "outbound_refused"))
		}
	}
}
