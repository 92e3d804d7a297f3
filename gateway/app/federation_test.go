package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

type clubAnswer struct {
	Results    []listing.Listing `json:"results"`
	NextCursor string            `json:"next_cursor"`
	Partial    bool              `json:"partial"`
	Parks      search.ParkSummary
}

func clubSearch(t *testing.T, p *nodetest.Park, query string) (clubAnswer, int, time.Duration) {
	t.Helper()
	start := time.Now()
	status, body := p.Do(context.Background(), "GET", "/api/v1/search?scope=club&"+query, p.Token(parktoken.Viewer), nil)
	took := time.Since(start)
	var a clubAnswer
	if status == 200 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("club answer: %v %s", err, body)
		}
	} else {
		json.Unmarshal(body, &a)
		t.Logf("club search %s: %d %s", query, status, body)
	}
	return a, status, took
}

// indexSearch runs a club search from the club index once every park's
// part is live and it finds want listings (the index fills from the
// feeds, asynchronously).
func indexSearch(t *testing.T, p *nodetest.Park, query string, want int) clubAnswer {
	t.Helper()
	var ans clubAnswer
	waitFor(t, "club index answering "+query, 30*time.Second, func() bool {
		var status int
		ans, status, _ = clubSearch(t, p, query)
		return status == 200 && !ans.Partial && len(ans.Results) == want
	})
	return ans
}

func statusOf(a clubAnswer, park string) string {
	for _, d := range a.Parks.Details {
		if d.Park == park {
			return d.Status
		}
	}
	return "absent"
}

func project(title, extra string) string {
	return `{"title":"` + title + `","summary":"纳米 copper 新材料","sectors":["new-materials"],"country":"CN","attrs":{"stage":"pilot"}` + extra + `}`
}

func TestClubSearchAndVisibility(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a, b, c := parks[0], parks[1], parks[2]
	for _, p := range parks {
		p.Create("projects", project(p.ID+" 超级铜 copper", ""))
	}
	private := b.Create("projects", project("private 超级铜 copper", `,"visibility":"private"`))
	forC := b.Create("projects", project("for-c 超级铜 copper", `,"visibility":"peers","share_with":["siliconvalley-offshore"]`))

	ans, status, _ := clubSearch(t, a, "q=copper&mode=live")
	if status != 200 || ans.Partial || ans.Parks.Total != 3 || ans.Parks.OK != 3 {
		t.Fatalf("live club search from A: %d %+v", status, ans.Parks)
	}
	// Merged by rank: the first page interleaves parks, not all of one park first.
	if ans.Results[0].Park == ans.Results[1].Park {
		t.Errorf("merge did not interleave parks: %s, %s", ans.Results[0].Park, ans.Results[1].Park)
	}
	for _, mode := range []string{"live", "index"} {
		if mode == "index" {
			ans = indexSearch(t, a, "q=copper", 3)
			if ans.Parks.Live != 3 || ans.Parks.Total != 3 {
				t.Errorf("index club search from A: %+v", ans.Parks)
			}
		} else {
			ans, _, _ = clubSearch(t, a, "q=copper&mode=live")
		}
		got := map[string]bool{}
		for _, l := range ans.Results {
			got[l.Park] = true
			if l.ID == private.ID || l.ID == forC.ID {
				t.Errorf("%s: A received %q (%s) from B", mode, l.Title, l.Visibility)
			}
		}
		if len(ans.Results) != 3 || len(got) != 3 {
			t.Errorf("%s: A's club search: %d results from parks %v, want one per park", mode, len(ans.Results), got)
		}
		// C is in share_with: it sees B's peers-only listing, never the private one.
		if mode == "index" {
			ans = indexSearch(t, c, "q=copper&parks=chengdu-hitech", 2)
		} else {
			ans, _, _ = clubSearch(t, c, "q=copper&parks=chengdu-hitech&mode=live")
		}
		ids := map[string]bool{}
		for _, l := range ans.Results {
			ids[l.ID] = true
		}
		if !ids[forC.ID] || ids[private.ID] || len(ans.Results) != 2 {
			t.Errorf("%s: C's search of B: %v (want B's club and for-c listings)", mode, ids)
		}
	}
	// By id through the federation API, with A's own federation token.
	get := func(from *nodetest.Park, to *nodetest.Park, l listing.Listing) int {
		tok, _ := parktoken.IssueFederation(from.Keys, to.ID, parktoken.ScopeListings, time.Minute, time.Now())
		status, _ := to.Do(context.Background(), "GET", "/federation/v1/listings/projects/"+l.ID, tok, nil)
		return status
	}
	if s := get(a, b, private); s != 404 {
		t.Errorf("A gets B's private listing by id: %d", s)
	}
	if s := get(a, b, forC); s != 404 {
		t.Errorf("A gets B's listing shared with C only: %d", s)
	}
	if s := get(c, b, forC); s != 200 {
		t.Errorf("C gets B's listing shared with it: %d", s)
	}
	// Pagination across parks returns each listing once, in both modes.
	for _, mode := range []string{"live", "index"} {
		seen := map[string]bool{}
		q := "q=copper&limit=1&mode=" + mode
		for i := 0; i < 10; i++ {
			ans, status, _ := clubSearch(t, a, q)
			if status != 200 {
				t.Fatal(status)
			}
			for _, l := range ans.Results {
				if seen[l.ID] {
					t.Errorf("%s: %s on two pages", mode, l.ID)
				}
				seen[l.ID] = true
			}
			if ans.NextCursor == "" {
				break
			}
			q = "q=copper&limit=1&mode=" + mode + "&cursor=" + url.QueryEscape(ans.NextCursor)
		}
		if len(seen) != 3 {
			t.Errorf("%s: paging the club search saw %d listings, want 3", mode, len(seen))
		}
	}
	// Bad input names the field.
	for _, c := range []struct{ q, field string }{
		{"timeout_ms=5", "timeout_ms"}, {"timeout_ms=999999", "timeout_ms"}, {"parks=haifa-lifescience", "parks"},
		{"q=copper&cursor=" + url.QueryEscape("x."+ans.NextCursor), "cursor"}, {"required=nowhere", "required"},
	} {
		status, body := a.Do(context.Background(), "GET", "/api/v1/search?scope=club&"+c.q, a.Token(parktoken.Viewer), nil)
		if status != 400 || !strings.Contains(string(body), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.q, status, body, c.field)
		}
	}
	// /api/v1/peers shows each peer's health.
	status, body := a.Do(context.Background(), "GET", "/api/v1/peers", a.Token(parktoken.Viewer), nil)
	var peers struct{ Peers []clubsearch.PeerView }
	json.Unmarshal(body, &peers)
	if status != 200 || len(peers.Peers) != 2 || peers.Peers[0].Breaker != "closed" || peers.Peers[0].LastSuccess.IsZero() {
		t.Errorf("peers: %d %s", status, body)
	}
}

// faultProxy stands in front of a real peer gateway and misbehaves on
// demand: the faults real gateways cannot produce when asked.
type faultProxy struct {
	mode atomic.Value // "pass", "slow", "garbage", "html", "huge", "hole"
	srv  *httptest.Server
	stop chan struct{}
	once sync.Once
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	fp := &faultProxy{stop: make(chan struct{})}
	fp.mode.Store("pass")
	fp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch fp.mode.Load().(string) {
		case "slow":
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
				return
			case <-fp.stop:
				return
			}
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"results": [{"id": 42, "park": true}`)
			return
		case "html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<html>maintenance</html>`)
			return
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"results":[],"pad":"`+strings.Repeat("x", 5<<20)+`"}`)
			return
		case "hole":
			select {
			case <-r.Context().Done():
			case <-fp.stop:
			}
			return
		}
		// Proxied requests (a peer's feed stream among them) end when the
		// proxy stops, or closing it would wait for them forever.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-fp.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		rp.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(func() {
		fp.once.Do(func() { close(fp.stop) })
		fp.srv.CloseClientConnections()
		fp.srv.Close()
	})
	return fp
}

// repoint changes, in park p's Consul KV, the URL p uses for peer, as an
// operator re-addressing a peer would: with the management token, and the
// record signed with the park's key (an unsigned one has no effect).
func repoint(t *testing.T, p *nodetest.Park, peer, newURL string) {
	t.Helper()
	kv := p.Agent.Client().KV()
	pair, _, err := kv.Get("parkmesh/peers/"+peer, nil)
	if err != nil || pair == nil {
		t.Fatalf("peer record %s: %v", peer, err)
	}
	rec, err := peering.OpenPeerRecord(p.Keys, pair.Key, pair.Value)
	if err != nil {
		t.Fatalf("peer record %s: %v", peer, err)
	}
	rec.URL = newURL
	if _, pair.Value, err = peering.SealPeerRecord(p.Keys, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(pair, nil); err != nil {
		t.Fatal(err)
	}
}

func TestClubSearchFaultsAndBreaker(t *testing.T) {
	// Searches here have a 500 ms budget (470 ms for the peers): a floor of
	// 300 ms lets a peer's silence within them count against its breaker.
	opts := nodetest.Options{GatewayArgs: []string{"-breaker-open", "1s", "-peer-slow-floor", "300ms"}}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a, b, c := parks[0], parks[1], parks[2]
	for _, p := range parks {
		p.Create("projects", project(p.ID+" copper", ""))
	}
	proxy := newFaultProxy(t, c.FederationURL)
	repoint(t, a, c.ID, proxy.srv.URL)
	waitFor(t, "A using the proxy for C", 5*time.Second, func() bool {
		ans, _, _ := clubSearch(t, a, "mode=live&q=copper&timeout_ms=1000")
		return ans.Parks.OK == 3
	})
	const budget = 500 * time.Millisecond
	q := fmt.Sprintf("mode=live&q=copper&timeout_ms=%d", budget.Milliseconds())
	checkWithin := func(budget time.Duration, name, park, want string) {
		t.Helper()
		ans, status, took := clubSearch(t, a, fmt.Sprintf("mode=live&q=copper&timeout_ms=%d", budget.Milliseconds()))
		if status != 200 {
			t.Fatalf("%s: status %d", name, status)
		}
		if got := statusOf(ans, park); got != want {
			t.Errorf("%s: %s status %q, want %q (%+v)", name, park, got, want, ans.Parks.Details)
		}
		if !ans.Partial {
			t.Errorf("%s: partial = false", name)
		}
		if took > budget+100*time.Millisecond {
			t.Errorf("%s: answer took %s, budget %s", name, took, budget)
		}
		if statusOf(ans, a.ID) != search.StatusOK {
			t.Errorf("%s: local park status %s", name, statusOf(ans, a.ID))
		}
	}
	check := func(name, park, want string) { t.Helper(); checkWithin(budget, name, park, want) }
	for _, mode := range []string{"garbage", "html", "huge"} {
		proxy.mode.Store(mode)
		// Reading a 4 MiB answer to find it too large takes time on a busy
		// machine: a budget that cannot run out first.
		checkWithin(3*time.Second, "peer answering "+mode, c.ID, search.StatusError)
		proxy.mode.Store("pass")
		check := func() bool { ans, _, _ := clubSearch(t, a, q); return ans.Parks.OK == 3 }
		waitFor(t, "C healthy again", 5*time.Second, check)
	}
	proxy.mode.Store("slow")
	check("peer slower than the budget", c.ID, search.StatusTimeout)
	proxy.mode.Store("pass")
	waitFor(t, "C healthy again", 5*time.Second, func() bool { ans, _, _ := clubSearch(t, a, q); return ans.Parks.OK == 3 })

	// A stopped peer.
	b.Gateway.Kill()
	check("peer stopped", b.ID, search.StatusError)

	// Repeated failures open the breaker: answers at once, circuit_open.
	proxy.mode.Store("hole")
	for i := 0; i < 3; i++ {
		clubSearch(t, a, q)
	}
	ans, _, took := clubSearch(t, a, q)
	if statusOf(ans, c.ID) != search.StatusCircuitOpen {
		t.Errorf("after 3 failures C's status is %s, want circuit_open", statusOf(ans, c.ID))
	}
	if took > 250*time.Millisecond {
		t.Errorf("an open breaker answered in %s, not at once", took)
	}
	_, metrics := a.Do(context.Background(), "GET", "/metrics", "", nil)
	if !strings.Contains(string(metrics), `parkmesh_peer_breaker_state{peer="siliconvalley-offshore"} 2`) {
		t.Errorf("metrics do not show C's breaker open")
	}
	// The peer recovers: after the open period one probe goes through and
	// the breaker closes.
	proxy.mode.Store("pass")
	waitFor(t, "breaker closed again", 10*time.Second, func() bool {
		ans, _, _ := clubSearch(t, a, q)
		return statusOf(ans, c.ID) == search.StatusOK
	})
	_, metrics = a.Do(context.Background(), "GET", "/metrics", "", nil)
	if !strings.Contains(string(metrics), `parkmesh_peer_breaker_state{peer="siliconvalley-offshore"} 0`) {
		t.Errorf("metrics do not show C's breaker closed")
	}
	// A required park that is missing makes the answer an error naming it.
	status, body := a.Do(context.Background(), "GET", "/api/v1/search?scope=club&"+q+"&required="+b.ID, a.Token(parktoken.Viewer), nil)
	if status != 503 || !strings.Contains(string(body), b.ID) {
		t.Errorf("required missing park: %d %s", status, body)
	}
}

func signFed(t *testing.T, key ed25519.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = kid
	tok.Header["typ"] = parktoken.FederationType
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFederationTokenAttacks(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a, b, c := parks[0], parks[1], parks[2]
	b.Create("projects", project("b copper", ""))
	now := time.Now()
	search := func(tok string) (int, string) {
		status, body := b.Do(context.Background(), "POST", "/federation/v1/search", tok, strings.NewReader(`{"q":"copper"}`))
		return status, string(body)
	}
	valid, _ := parktoken.IssueFederation(a.Keys, b.ID, parktoken.ScopeSearch, time.Minute, now)
	if status, body := search(valid); status != 200 || !strings.Contains(body, "b copper") {
		t.Fatalf("valid token: %d %s", status, body)
	}
	// a's real key, by hand, to vary one claim at a time
	aPriv := mustPrivate(t, a)
	kid := a.Keys.Current().ID
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": a.ID, "aud": b.ID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"jti": "j1", "scope": parktoken.ScopeSearch}
	}
	with := func(k string, v any) jwt.MapClaims { m := base(); m[k] = v; return m }
	aPub := a.Keys.Current().PublicKey
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, base())
	hs.Header["kid"] = kid
	hsTok, _ := hs.SignedString([]byte(aPub))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, base())
	none.Header["kid"] = kid
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	_, strangerPriv, _ := ed25519.GenerateKey(rand.Reader)
	strangerKid := parkkey.Thumbprint(strangerPriv.Public().(ed25519.PublicKey))
	attacks := []struct{ name, token string }{
		{"no token", ""},
		{"alg none", noneTok},
		{"HS256 with the peer's public key as secret", hsTok},
		{"expired", signFed(t, aPriv, kid, with("exp", now.Add(-2*time.Minute).Unix()))},
		{"not yet valid", signFed(t, aPriv, kid, func() jwt.MapClaims {
			m := base()
			m["nbf"], m["iat"], m["exp"] = now.Add(10*time.Minute).Unix(), now.Add(10*time.Minute).Unix(), now.Add(11*time.Minute).Unix()
			return m
		}())},
		{"wrong aud", signFed(t, aPriv, kid, with("aud", c.ID))},
		{"lifetime over 5 minutes", signFed(t, aPriv, kid, with("exp", now.Add(30*time.Minute).Unix()))},
		{"wrong scope", signFed(t, aPriv, kid, with("scope", parktoken.ScopeListings))},
		{"unknown kid", signFed(t, strangerPriv, strangerKid, base())},
		{"never a peer", signFed(t, strangerPriv, strangerKid, with("iss", "haifa-lifescience"))},
	}
	for _, at := range attacks {
		if status, body := search(at.token); status != 401 || !strings.Contains(body, "missing or invalid access token") {
			t.Errorf("%s: %d %s, want a generic 401", at.name, status, body)
		}
	}
	// Reasons are counted.
	_, metrics := b.Do(context.Background(), "GET", "/metrics", "", nil)
	for _, reason := range []string{"alg", "expired", "not_yet_valid", "audience", "kid", "peer", "lifetime", "scope", "missing"} {
		if !strings.Contains(string(metrics), fmt.Sprintf(`parkmesh_gateway_auth_failures_total{reason=%q,side="federation"}`, reason)) {
			t.Errorf("no federation auth failure counted for %q", reason)
		}
	}
	// A one-time peering token works once. A and C are peers: a token for
	// an existing peer is refused (a peering is never replaced), so they
	// part first, and C forgets A again before reusing the token, so that
	// it is A that refuses it.
	part := func(p *nodetest.Park, peer string) {
		if s, body := p.Do(context.Background(), "DELETE", "/api/v1/peerings/"+peer, p.Token(parktoken.Admin), nil); s != 204 {
			t.Fatalf("%s deleting its peering with %s: %d %s", p.ID, peer, s, body)
		}
	}
	if s, _ := a.Do(context.Background(), "POST", "/api/v1/peerings/tokens", a.Token(parktoken.Admin), strings.NewReader(`{"peer":"`+c.ID+`"}`)); s != 409 {
		t.Errorf("peering token for an existing peer: %d, want 409", s)
	}
	part(a, c.ID)
	part(c, a.ID)
	status, body := a.Do(context.Background(), "POST", "/api/v1/peerings/tokens", a.Token(parktoken.Admin), strings.NewReader(`{"peer":"`+c.ID+`"}`))
	var gen struct{ Token string }
	json.Unmarshal(body, &gen)
	establish := func() int {
		s, _ := c.Do(context.Background(), "POST", "/api/v1/peerings", c.Token(parktoken.Admin), strings.NewReader(`{"token":"`+gen.Token+`"}`))
		return s
	}
	if status != 201 || establish() != 201 {
		t.Fatalf("fresh peering token did not work")
	}
	if s := establish(); s != 409 {
		t.Errorf("establishing again with a peer: %d, want 409", s)
	}
	part(c, a.ID)
	if s := establish(); s != 401 {
		t.Errorf("reused peering token: %d, want 401", s)
	}
	// Deleting the peering revokes A on every replica of B within 2 s.
	replica := b.StartReplica()
	replicaSearch := func() int {
		tok, _ := parktoken.IssueFederation(a.Keys, b.ID, parktoken.ScopeSearch, time.Minute, time.Now())
		req, _ := http.NewRequest("POST", "http://"+replica.FederationAddr+"/federation/v1/search", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor(t, "replica serving A", 5*time.Second, func() bool { return replicaSearch() == 200 })
	if s, _ := b.Do(context.Background(), "DELETE", "/api/v1/peerings/"+a.ID, b.Token(parktoken.Admin), nil); s != 204 {
		t.Fatalf("delete peering: %d", s)
	}
	deleted := time.Now()
	waitFor(t, "revocation on the other replica", 2*time.Second, func() bool { return replicaSearch() == 401 })
	t.Logf("revoked on the other replica %s after the delete", time.Since(deleted).Round(time.Millisecond))
	fresh, _ := parktoken.IssueFederation(a.Keys, b.ID, parktoken.ScopeSearch, time.Minute, time.Now())
	if s, _ := search(fresh); s != 401 {
		t.Errorf("valid token from a deleted peer: %d, want 401", s)
	}
}

// mustPrivate reads park p's current private key from its data dir.
func mustPrivate(t *testing.T, p *nodetest.Park) ed25519.PrivateKey {
	t.Helper()
	signer := p.Keys.Current().Signer()
	priv, ok := signer.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("signer is %T", signer)
	}
	return priv
}

// TestPeerKeyRotationIsPickedUp: a park rotates its key; its peers see a
// token with an unknown kid, refresh its JWKS once from the pinned URL and
// accept it, with no manual step.
func TestPeerKeyRotationIsPickedUp(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	b.Create("projects", project("b copper", ""))
	oldKid := a.Keys.Current().ID
	rotated, err := parkkey.Rotate(a.DataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Current().ID == oldKid {
		t.Fatal("rotation kept the kid")
	}
	// A's gateway re-reads its keys within a second; then its calls to B
	// carry the new kid, which B has never seen.
	waitFor(t, "A's gateway publishing the new key", 5*time.Second, func() bool {
		_, body := a.Do(context.Background(), "GET", "/.well-known/jwks.json", "", nil)
		return strings.Contains(string(body), rotated.Current().ID) && strings.Contains(string(body), oldKid)
	})
	ans, status, _ := clubSearch(t, a, "q=copper&mode=live")
	if status != 200 || statusOf(ans, b.ID) != search.StatusOK {
		t.Fatalf("club search after A rotated: %d %+v", status, ans.Parks.Details)
	}
	// B pinned the new key (in its Consul KV, for every replica).
	_, body := b.Do(context.Background(), "GET", "/api/v1/peers", b.Token(parktoken.Viewer), nil)
	if !strings.Contains(string(body), rotated.Current().ID) {
		t.Errorf("B's peers view does not list A's new kid: %s", body)
	}
	// A token signed with the retired key still works while it is published.
	old, _ := parktoken.IssueFederation(a.Keys, b.ID, parktoken.ScopeSearch, time.Minute, time.Now())
	if s, body := b.Do(context.Background(), "POST", "/federation/v1/search", old, strings.NewReader(`{}`)); s != 200 {
		t.Errorf("token signed by A's previous key: %d %s", s, body)
	}
}

// openFeed opens park to's federation feed as park from, with a token of
// ttl, at server (a gateway's federation address); it returns a channel
// that yields the stream's error event (or nil) when the stream ends.
func openFeed(t *testing.T, from *nodetest.Park, to string, server string, ttl time.Duration) <-chan *sse.StreamError {
	t.Helper()
	tok, err := parktoken.IssueFederation(from.Keys, to, parktoken.ScopeChanges, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+server+"/federation/v1/changes?start=now", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 {
		t.Fatalf("feed: %d", res.StatusCode)
	}
	rd := sse.NewReader(res.Body)
	if ev, err := rd.Next(); err != nil || ev.Type != "position" {
		t.Fatalf("feed did not start with its position: %+v %v", ev, err)
	}
	ended := make(chan *sse.StreamError, 1)
	go func() {
		for {
			ev, err := rd.Next()
			if err != nil {
				ended <- nil
				return
			}
			if ev.Type == sse.ErrorType {
				var e sse.StreamError
				json.Unmarshal(ev.Data, &e)
				ended <- &e
				return
			}
		}
	}()
	return ended
}

// Deleting a peering ends every open feed stream of that peer at once, on
// every replica of the park, not only new requests.
func TestPeeringDeleteClosesOpenStreams(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	replica := a.StartReplica()
	streams := map[string]<-chan *sse.StreamError{
		"primary": openFeed(t, b, a.ID, a.Gateway.FederationAddr, time.Minute),
		"replica": openFeed(t, b, a.ID, replica.FederationAddr, time.Minute),
	}
	if s, body := a.Do(context.Background(), "DELETE", "/api/v1/peerings/"+b.ID, a.Token(parktoken.Admin), nil); s != 204 {
		t.Fatalf("delete peering: %d %s", s, body)
	}
	deleted := time.Now()
	for name, ended := range streams {
		select {
		case <-ended:
			t.Logf("%s: stream closed %s after the delete", name, time.Since(deleted).Round(time.Millisecond))
		case <-time.After(time.Until(deleted.Add(time.Second))):
			t.Errorf("%s: the deleted peer's stream is still open 1 s after the delete", name)
		}
	}
}

// A stream ends when its token expires, with a resumable token_expired
// event; the follower then reconnects with a fresh token.
func TestStreamEndsWhenItsTokenExpires(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	opened := time.Now()
	ended := openFeed(t, b, a.ID, a.Gateway.FederationAddr, 2*time.Second)
	select {
	case e := <-ended:
		if e == nil || e.Code != "token_expired" || e.ResumeID == "" {
			t.Fatalf("stream ended with %+v, want token_expired with a resume id", e)
		}
		if took := time.Since(opened); took < 900*time.Millisecond { // exp is whole seconds
			t.Errorf("stream ended after %s, before its 2 s token expired", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open 10 s after its 2 s token expired")
	}
}
