package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/gateway/app"
	"github.com/parkmesh/parkmesh/gateway/openapi"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/httpserver"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// contractPark is a park whose services and gateway run in this process
// (real Consul, SQLite and HTTP), every answer of its gateway checked
// against the OpenAPI document on the way out.
type contractPark struct {
	id   string
	keys *parkkey.KeySet
	// parkURL and fedURL are where the park listener and the federation
	// listener are reached, through the validator. The gateway's public URL
	// (what peers call) is fedURL.
	parkURL, fedURL string
	// dir is the gateway's data directory (keys and state).
	dir string
}

// startContractPark starts a park and serves its gateway's handlers behind
// v's middleware: the park handler and the federation handler, each on a
// server of its own. It is the only part of the contract test that knows
// how the gateway exposes its listeners.
func startContractPark(t *testing.T, id string, v *openapi.Validator) *contractPark {
	t.Helper()
	agent, dir, ks := startInprocNode(t, id, nil)
	// The validated listeners are opened first: peers must be told the
	// federation one's URL.
	validated := func() (net.Listener, string) {
		ln := listenLocal(t)
		return ln, "http://" + ln.Addr().String()
	}
	parkLn, parkURL := validated()
	fedLn, public := validated()
	g := app.NewMain(io.Discard)
	gwLog := failLog(t, id+" gateway")
	// The gateway's own listeners stay (Consul checks the park one).
	g.Listeners.Park, g.Listeners.Federation = listenLocal(t), listenLocal(t)
	if err := g.ParseFlags(append([]string{"-data-dir", dir, "-park", id,
		"-public-url", public, "-webhook-backoff", "100ms", "-feed-heartbeat", "1s",
		"-webhook-allow-cidr", "127.0.0.0/8", "-max-webhooks", "1"}, append(nameFlags(id), consulFlags(t, agent, consulacl.Gateway)...)...),
		func(string) string { return "" }, gwLog); err != nil {
		t.Fatal(err)
	}
	runInproc(t, g.Open, g.Run)
	for _, side := range []struct {
		ln net.Listener
		h  http.Handler
	}{{parkLn, g.Handler()}, {fedLn, g.FederationHandler()}} {
		srv := httpserver.New(v.Middleware(side.h), g.Logger)
		go srv.Serve(side.ln)
		t.Cleanup(func() { srv.Close() }) // runs before the gateway stops: ends the streams it serves
	}
	p := &contractPark{id: id, keys: ks, parkURL: parkURL, fedURL: public, dir: dir}
	waitGatewayReady(t, id, p.parkURL+"/readyz", agent)
	return p
}

func (p *contractPark) token(t *testing.T, role parktoken.Role) string {
	t.Helper()
	tok, err := parktoken.Issue(p.keys, p.id, "contract-test", role, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fedToken is a federation token from park from to park to.
func fedToken(t *testing.T, from, to *contractPark, scope string) string {
	t.Helper()
	tok, err := parktoken.IssueFederation(from.keys, to.id, scope, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// contractCall is one request of the contract test.
type contractCall struct {
	method, url, token, body string
	header                   []string // name, value, name, value…
}

func (c contractCall) do(t *testing.T) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if c.body != "" {
		rd = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, c.url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// expect runs c and fails unless it answers status (and, for a 400, names
// field): the contract test drives the answers it means to check.
func expect(t *testing.T, status int, field string, c contractCall) []byte {
	t.Helper()
	got, _, body := c.do(t)
	if got != status {
		t.Fatalf("%s %s: %d %s, want %d", c.method, c.url, got, body, status)
	}
	if field != "" && !strings.Contains(string(body), `"field":"`+field+`"`) {
		t.Fatalf("%s %s: %s, want the error to name %q", c.method, c.url, body, field)
	}
	return body
}

// firstEvents opens an event stream and returns its first n events (id,
// type, data); it fails after timeout.
// start runs once the first after events have arrived (a change made
// before the stream has said where it starts could come before or after
// its opening events).
func firstEvents(t *testing.T, c contractCall, n, after int, timeout time.Duration, start func()) [][3]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, c.method, c.url, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s: %d %q %s, want an event stream", c.url, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	var got [][3]string
	if start != nil && after == 0 {
		start()
	}
	readSSE(res.Body, func(id, typ, data string) {
		if len(got) < n {
			got = append(got, [3]string{id, typ, data})
			if start != nil && len(got) == after {
				start()
			}
		}
		if len(got) == n {
			cancel()
		}
	})
	if len(got) < n {
		t.Fatalf("%s: %d events within %s, want %d: %v", c.url, len(got), timeout, n, got)
	}
	return got
}

// TestContract drives every operation of the OpenAPI document against two
// real parks, successes and the typical refusals, and fails if any answer
// of either gateway does not match the document, or if any documented
// operation was never exercised.
func TestContract(t *testing.T) {
	v, err := openapi.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	a := startContractPark(t, "xian-hitech", v)
	b := startContractPark(t, "chengdu-hitech", v)
	admin, editor, viewer := a.token(t, parktoken.Admin), a.token(t, parktoken.Editor), a.token(t, parktoken.Viewer)
	api := a.parkURL + "/api/v1"

	// Listings: create, read, list, replace, delete, per collection.
	org := `{"title":"西安高新区孵化器 Incubator","sectors":["ai"],"country":"cn","attrs":{"org_type":"incubator","website":"https://incubator.example.cn","founded":2001,"size":"11-50"}}`
	tal := `{"title":"Dr. Li Wei","sectors":["new-energy"],"country":"US","offering":["mentoring"],"attrs":{"expertise":["solid-state batteries"],"languages":["zh","en"],"availability":["mentor"],"contact":{"email":"li.wei@example.org"},"consent":{"share_contact":true}}}`
	prj := project("纳米超级铜 contract copper", `,"seeking":["landing"],"tags":["铜"]`)
	private := project("private contract copper", `,"visibility":"private"`)
	ids := map[string]string{}
	for _, c := range []struct{ coll, body string }{{"organizations", org}, {"talent", tal}, {"projects", prj}, {"projects", private}} {
		var l listing.Listing
		json.Unmarshal(expect(t, 201, "", contractCall{method: "POST", url: api + "/" + c.coll, token: editor, body: c.body}), &l)
		if l.Visibility == listing.Private {
			ids["private"] = l.ID
		} else {
			ids[c.coll] = l.ID
		}
	}
	expect(t, 400, "title", contractCall{method: "POST", url: api + "/projects", token: editor, body: `{"sectors":["ai"],"country":"CN","attrs":{"stage":"idea"}}`})
	expect(t, 400, "attrs.languages", contractCall{method: "POST", url: api + "/projects", token: editor, body: project("x", `,"attrs":{"stage":"idea","languages":["zh"]}`)})
	expect(t, 401, "", contractCall{method: "POST", url: api + "/projects", body: prj})
	expect(t, 403, "", contractCall{method: "POST", url: api + "/projects", token: viewer, body: prj})
	for _, coll := range []string{"organizations", "projects", "talent"} {
		expect(t, 200, "", contractCall{method: "GET", url: api + "/" + coll + "?limit=5&q=" + url.QueryEscape("copper"), token: viewer})
		expect(t, 200, "", contractCall{method: "GET", url: api + "/" + coll + "/" + ids[coll], token: viewer})
	}
	expect(t, 400, "sector", contractCall{method: "GET", url: api + "/projects?sector=ai", token: viewer})
	expect(t, 400, "org_type", contractCall{method: "GET", url: api + "/projects?org_type=lab", token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/talent", token: "not.a.token"})
	expect(t, 404, "", contractCall{method: "GET", url: api + "/projects/prj_01JF3Z6V8Q9W2X4Y6Z8A0B2C4D", token: viewer})
	// An id of another kind, or none at all, never reaches the service.
	expect(t, 400, "id", contractCall{method: "GET", url: api + "/projects/" + ids["organizations"], token: viewer})
	expect(t, 400, "id", contractCall{method: "GET", url: api + "/projects/..%2Fchanges", token: viewer})
	expect(t, 200, "", contractCall{method: "PUT", url: api + "/organizations/" + ids["organizations"], token: editor, body: org, header: []string{"If-Match", `"1"`}})
	expect(t, 412, "", contractCall{method: "PUT", url: api + "/organizations/" + ids["organizations"], token: editor, body: org, header: []string{"If-Match", `"1"`}})
	expect(t, 400, "If-Match", contractCall{method: "PUT", url: api + "/organizations/" + ids["organizations"], token: editor, body: org, header: []string{"If-Match", "yesterday"}})
	expect(t, 400, "country", contractCall{method: "PUT", url: api + "/talent/" + ids["talent"], token: editor, body: strings.Replace(tal, `"US"`, `"USA"`, 1)})
	expect(t, 200, "", contractCall{method: "PUT", url: api + "/talent/" + ids["talent"], token: editor, body: tal})
	expect(t, 200, "", contractCall{method: "PUT", url: api + "/projects/" + ids["projects"], token: editor, body: prj, header: []string{"If-Match", "1"}})
	expect(t, 403, "", contractCall{method: "PUT", url: api + "/projects/" + ids["projects"], token: viewer, body: prj})
	expect(t, 404, "", contractCall{method: "PUT", url: api + "/projects/prj_01JF3Z6V8Q9W2X4Y6Z8A0B2C4D", token: editor, body: prj})

	// Search, local and (once peered) club.
	expect(t, 200, "", contractCall{method: "GET", url: api + "/search?q=copper&limit=2", token: viewer})
	expect(t, 400, "scope", contractCall{method: "GET", url: api + "/search?scope=galaxy", token: viewer})
	expect(t, 400, "mode", contractCall{method: "GET", url: api + "/search?mode=live", token: viewer})
	expect(t, 400, "mode", contractCall{method: "GET", url: api + "/search?scope=club&mode=fast", token: viewer})
	expect(t, 400, "cursor", contractCall{method: "GET", url: api + "/search?q=copper&cursor=forged", token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/search?q=copper"})
	// Facet counts: every match, as the caller may see them (staff see
	// the private project too).
	checkFacets(t, "A's local search", contractCall{method: "GET", url: api + "/search?q=copper&facets=all&limit=100", token: viewer}, 2)
	expect(t, 400, "facets", contractCall{method: "GET", url: api + "/search?q=copper&facets=sector,colour", token: viewer})

	// Portal sessions: accounts made with the CLI, signed in with a
	// password; a session serves the park API as a token of its role does.
	addUser(t, a.dir, "li.wei", "editor", "correct horse battery")
	addUser(t, a.dir, "zhao.min", "viewer", "another good password")
	expect(t, 400, "password", contractCall{method: "POST", url: api + "/session", body: `{"username":"li.wei"}`})
	expect(t, 401, "", contractCall{method: "POST", url: api + "/session", body: `{"username":"li.wei","password":"wrong password"}`})
	ed, vw := signIn(t, a.parkURL, "li.wei", "correct horse battery"), signIn(t, a.parkURL, "zhao.min", "another good password")
	expect(t, 200, "", contractCall{method: "POST", url: api + "/session", body: `{"username":"li.wei","password":"correct horse battery"}`})
	expect(t, 200, "", contractCall{method: "GET", url: api + "/session", header: ed.h(false)})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/session"})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/session", header: []string{"Cookie", "parkmesh_session=forged"}})
	expect(t, 403, "", contractCall{method: "PUT", url: api + "/session/lang", body: `{"lang":"en"}`, header: ed.h(false)})
	expect(t, 400, "lang", contractCall{method: "PUT", url: api + "/session/lang", body: `{"lang":"fr"}`, header: ed.h(true)})
	expect(t, 204, "", contractCall{method: "PUT", url: api + "/session/lang", body: `{"lang":"en"}`, header: ed.h(true)})
	expect(t, 401, "", contractCall{method: "PUT", url: api + "/session/lang", body: `{"lang":"en"}`})
	var parkID struct {
		ID          string            `json:"id"`
		DisplayName map[string]string `json:"display_name"`
		Country     string            `json:"country"`
	}
	json.Unmarshal(expect(t, 200, "", contractCall{method: "GET", url: api + "/park", header: vw.h(false)}), &parkID)
	if parkID.ID != a.id || parkID.DisplayName["zh"] != "西安高新区" || parkID.DisplayName["en"] != "Xi'an Hi-tech Zone" || parkID.Country != "CN" {
		t.Errorf("GET /api/v1/park = %+v", parkID)
	}
	expect(t, 200, "", contractCall{method: "GET", url: api + "/park", token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/park"})
	// A viewer's session reads but cannot write; an editor's writes, with
	// its CSRF token only.
	expect(t, 200, "", contractCall{method: "GET", url: api + "/projects/" + ids["projects"], header: vw.h(false)})
	expect(t, 403, "", contractCall{method: "POST", url: api + "/projects", body: prj, header: vw.h(true)})
	expect(t, 403, "", contractCall{method: "POST", url: api + "/projects", body: prj, header: ed.h(false)})
	var made listing.Listing
	json.Unmarshal(expect(t, 201, "", contractCall{method: "POST", url: api + "/projects", body: prj, header: ed.h(true)}), &made)
	expect(t, 204, "", contractCall{method: "DELETE", url: api + "/projects/" + made.ID, header: ed.h(true)})
	// No OIDC provider configured here: the portal is told so, and its
	// endpoints do not exist (they are driven against a real provider in
	// TestOIDCSignIn).
	expect(t, 200, "", contractCall{method: "GET", url: api + "/auth/oidc"})
	expect(t, 404, "", contractCall{method: "GET", url: a.parkURL + "/auth/oidc/login?return_to=/"})
	expect(t, 404, "", contractCall{method: "GET", url: a.parkURL + "/auth/oidc/callback?state=x&code=y"})
	// Sign-out: needs the CSRF token; the session is gone afterwards.
	expect(t, 403, "", contractCall{method: "DELETE", url: api + "/session", header: vw.h(false)})
	expect(t, 204, "", contractCall{method: "DELETE", url: api + "/session", header: vw.h(true)})
	expect(t, 401, "", contractCall{method: "DELETE", url: api + "/session", header: vw.h(true)})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/projects/" + ids["projects"], header: vw.h(false)})
	// Throttled, then a disabled account.
	for range 4 {
		contractCall{method: "POST", url: api + "/session", body: `{"username":"zhao.min","password":"wrong password"}`}.do(t)
	}
	expect(t, 429, "", contractCall{method: "POST", url: api + "/session", body: `{"username":"zhao.min","password":"wrong password"}`})
	cli(t, nil, "user", "disable", "--data-dir", a.dir, "--username", "li.wei")
	expect(t, 403, "", contractCall{method: "POST", url: api + "/session", body: `{"username":"li.wei","password":"correct horse battery"}`})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/session", header: ed.h(false)})

	// Peering: A generates a token for B, B establishes (B's gateway calls
	// A's federation listener), establishing again is refused (B is A's
	// peer already), a handshake with an unknown token is refused by A.
	expect(t, 400, "peer", contractCall{method: "POST", url: api + "/peerings/tokens", token: admin, body: `{"peer":"` + a.id + `"}`})
	expect(t, 400, "ttl", contractCall{method: "POST", url: api + "/peerings/tokens", token: admin, body: `{"peer":"` + b.id + `","ttl":"forever"}`})
	expect(t, 403, "", contractCall{method: "POST", url: api + "/peerings/tokens", token: editor, body: `{"peer":"` + b.id + `"}`})
	var gen struct{ Token string }
	json.Unmarshal(expect(t, 201, "", contractCall{method: "POST", url: api + "/peerings/tokens", token: admin, body: `{"peer":"` + b.id + `","ttl":"1h"}`}), &gen)
	bAdmin := b.token(t, parktoken.Admin)
	expect(t, 400, "token", contractCall{method: "POST", url: b.parkURL + "/api/v1/peerings", token: bAdmin, body: `{"token":"garbage"}`})
	expect(t, 403, "", contractCall{method: "POST", url: b.parkURL + "/api/v1/peerings", token: b.token(t, parktoken.Editor), body: `{"token":"` + gen.Token + `"}`})
	expect(t, 201, "", contractCall{method: "POST", url: b.parkURL + "/api/v1/peerings", token: bAdmin, body: `{"token":"` + gen.Token + `"}`})
	// Again: B refuses before calling A, since A is its peer already.
	expect(t, 409, "", contractCall{method: "POST", url: b.parkURL + "/api/v1/peerings", token: bAdmin, body: `{"token":"` + gen.Token + `"}`})
	expect(t, 401, "", contractCall{method: "POST", url: a.fedURL + "/federation/v1/peering/establish", token: fedToken(t, b, a, parktoken.ScopePeering),
		body: `{"token_id":"x","secret":"y","park":"chengdu-hitech","url":"http://127.0.0.1:1","jwks":{"keys":[]}}`})
	waitFor(t, "A sees B as a peer", 10*time.Second, func() bool {
		_, _, body := contractCall{method: "GET", url: api + "/peers", token: viewer}.do(t)
		return strings.Contains(string(body), `"park":"`+b.id+`"`)
	})
	waitFor(t, "A learns B's display names", 10*time.Second, func() bool {
		_, _, body := contractCall{method: "GET", url: api + "/peers", token: viewer}.do(t)
		return strings.Contains(string(body), `"display_name":{"zh":"成都高新区","en":"Chengdu Hi-tech Zone"},"country":"CN","since":`)
	})
	expect(t, 200, "", contractCall{method: "GET", url: api + "/peers", token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/peers"})
	var club search.Response
	json.Unmarshal(expect(t, 200, "", contractCall{method: "GET", url: b.parkURL + "/api/v1/search?scope=club&mode=live&q=copper&timeout_ms=5000", token: b.token(t, parktoken.Viewer)}), &club)
	if club.Parks.Total != 2 || club.Parks.OK != 2 {
		t.Fatalf("B's live club search: %+v", club.Parks)
	}
	waitFor(t, "B's club index live for both parks", 20*time.Second, func() bool {
		club = search.Response{}
		json.Unmarshal(expect(t, 200, "", contractCall{method: "GET", url: b.parkURL + "/api/v1/search?scope=club&q=copper", token: b.token(t, parktoken.Viewer)}), &club)
		return club.Parks.Total == 2 && club.Parks.Live == 2 && !club.Partial
	})
	// B's counts of A's listings leave A's private project out: from the
	// club index, asking A now, and in A's federation answer.
	checkFacets(t, "B's club search", contractCall{method: "GET", url: b.parkURL + "/api/v1/search?scope=club&q=copper&facets=kind,country,seeking&limit=100", token: b.token(t, parktoken.Viewer)}, 1)
	checkFacets(t, "B's live club search", contractCall{method: "GET", url: b.parkURL + "/api/v1/search?scope=club&mode=live&q=copper&facets=all&limit=100&timeout_ms=5000", token: b.token(t, parktoken.Viewer)}, 1)
	// Any listing of the club by park: A's own, and one B does not have.
	expect(t, 200, "", contractCall{method: "GET", url: api + "/club/" + a.id + "/projects/" + ids["projects"], token: viewer})
	expect(t, 200, "", contractCall{method: "GET", url: b.parkURL + "/api/v1/club/" + a.id + "/projects/" + ids["projects"], token: b.token(t, parktoken.Viewer)})
	expect(t, 404, "", contractCall{method: "GET", url: b.parkURL + "/api/v1/club/" + a.id + "/projects/" + ids["private"], token: b.token(t, parktoken.Viewer)})
	expect(t, 404, "", contractCall{method: "GET", url: api + "/club/haifa-lifescience/projects/" + ids["projects"], token: viewer})
	expect(t, 400, "kind", contractCall{method: "GET", url: api + "/club/" + a.id + "/widgets/" + ids["projects"], token: viewer})
	expect(t, 400, "id", contractCall{method: "GET", url: api + "/club/" + a.id + "/projects/..%2Fchanges", token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/club/" + a.id + "/projects/" + ids["projects"]})
	expect(t, 400, "timeout_ms", contractCall{method: "GET", url: api + "/search?scope=club&timeout_ms=5", token: viewer})
	expect(t, 400, "required", contractCall{method: "GET", url: api + "/search?scope=club&required=haifa-lifescience", token: viewer})

	// The federation listener, called as B.
	fed := a.fedURL
	var ident struct {
		DisplayName map[string]string `json:"display_name"`
		Country     string            `json:"country"`
	}
	json.Unmarshal(expect(t, 200, "", contractCall{method: "GET", url: fed + "/.well-known/parkmesh.json"}), &ident)
	if ident.DisplayName["zh"] != "西安高新区" || ident.DisplayName["en"] != "Xi'an Hi-tech Zone" || ident.Country != "CN" {
		t.Errorf("parkmesh.json identity = %+v", ident)
	}
	expect(t, 200, "", contractCall{method: "GET", url: fed + "/.well-known/jwks.json"})
	var page listing.Page
	json.Unmarshal(expect(t, 200, "", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeSearch),
		body: `{"q":"copper","kinds":["projects"],"limit":5}`}), &page)
	if len(page.Results) != 1 || page.Results[0].ID != ids["projects"] {
		t.Errorf("federation search from B: %d results, want only the club project", len(page.Results))
	}
	page = listing.Page{}
	json.Unmarshal(expect(t, 200, "", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeSearch),
		body: `{"q":"copper","limit":1,"facets":["kind","seeking"]}`}), &page)
	if page.Facets["kind"]["project"] != 1 || page.Facets["seeking"]["landing"] != 1 || len(page.Facets) != 2 {
		t.Errorf("federation search from B with facets: %v, want kind project=1 (not the private one), seeking landing=1", page.Facets)
	}
	expect(t, 400, "facets", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeSearch), body: `{"facets":["colour"]}`})
	expect(t, 400, "sectors", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeSearch), body: `{"sectors":"ai"}`})
	expect(t, 400, "visible_to", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeSearch), body: `{"visible_to":"x"}`})
	expect(t, 401, "", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeListings), body: `{}`})
	expect(t, 200, "", contractCall{method: "GET", url: fed + "/federation/v1/listings/projects/" + ids["projects"], token: fedToken(t, b, a, parktoken.ScopeListings)})
	expect(t, 200, "", contractCall{method: "GET", url: fed + "/federation/v1/listings/talent/" + ids["talent"], token: fedToken(t, b, a, parktoken.ScopeListings)})
	expect(t, 404, "", contractCall{method: "GET", url: fed + "/federation/v1/listings/project/" + ids["private"], token: fedToken(t, b, a, parktoken.ScopeListings)})
	expect(t, 401, "", contractCall{method: "GET", url: fed + "/federation/v1/listings/project/" + ids["projects"]})
	expect(t, 401, "", contractCall{method: "GET", url: fed + "/federation/v1/changes", token: a.token(t, parktoken.Admin)})
	// The changes feed: its position event, the synced marker (nothing
	// before now), then a change as B may see it.
	evs := firstEvents(t, contractCall{method: "GET", url: fed + "/federation/v1/changes?start=now", token: fedToken(t, b, a, parktoken.ScopeChanges)}, 3, 2, 20*time.Second, func() {
		expect(t, 201, "", contractCall{method: "POST", url: api + "/projects", token: editor, body: project("feed contract copper", "")})
	})
	if evs[0][1] != "position" || evs[0][2] != "{}" || evs[1][1] != "synced" || evs[1][0] != evs[0][0] || evs[2][1] != "" {
		t.Errorf("federation feed began with %v, want a position event, synced at it, then a change", evs)
	}
	if err := v.CheckSchema("CloudEvent", []byte(evs[2][2])); err != nil {
		t.Errorf("federation feed event: %v", err)
	}
	// A start the feed cannot serve is refused before the stream begins.
	expect(t, 409, "Last-Event-ID", contractCall{method: "GET", url: fed + "/federation/v1/changes", token: fedToken(t, b, a, parktoken.ScopeChanges),
		header: []string{"Last-Event-ID", "v1.999999.0.0"}})
	expect(t, 400, "Last-Event-ID", contractCall{method: "GET", url: fed + "/federation/v1/changes", token: fedToken(t, b, a, parktoken.ScopeChanges),
		header: []string{"Last-Event-ID", "c1~xian-hitech.1.2.3"}})
	expect(t, 400, "start", contractCall{method: "GET", url: fed + "/federation/v1/changes?start=yesterday", token: fedToken(t, b, a, parktoken.ScopeChanges)})

	// The park stream: a change made after subscribing, and a refused id.
	evs = firstEvents(t, contractCall{method: "GET", url: api + "/stream?kinds=projects&sectors=new-materials", token: viewer}, 1, 0, 20*time.Second, func() {
		expect(t, 201, "", contractCall{method: "POST", url: api + "/projects", token: editor, body: project("stream contract copper", "")})
	})
	if err := v.CheckSchema("CloudEvent", []byte(evs[0][2])); err != nil {
		t.Errorf("park stream event: %v", err)
	}
	expect(t, 400, "Last-Event-ID", contractCall{method: "GET", url: api + "/stream", token: viewer, header: []string{"Last-Event-ID", "garbage"}})
	expect(t, 409, "Last-Event-ID", contractCall{method: "GET", url: api + "/stream", token: viewer, header: []string{"Last-Event-ID", "c1~" + a.id + ".999999.0.0"}})
	expect(t, 400, "sector", contractCall{method: "GET", url: api + "/stream?sector=ai", token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/stream"})

	// Webhooks: a receiver that checks each delivery against the document.
	var mu sync.Mutex
	var deliveries []error
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := v.CheckWebhook("listingChange", r.Header, body)
		mu.Lock()
		deliveries = append(deliveries, err)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	expect(t, 400, "url", contractCall{method: "POST", url: api + "/webhooks", token: admin, body: `{"url":"ftp://example.org/x"}`})
	expect(t, 400, "url", contractCall{method: "POST", url: api + "/webhooks", token: admin, body: `{"url":"http://169.254.169.254/latest/meta-data/"}`})
	expect(t, 400, "filter.sector", contractCall{method: "POST", url: api + "/webhooks", token: admin, body: `{"url":"` + receiver.URL + `","filter":{"sector":"ai"}}`})
	expect(t, 400, "secret", contractCall{method: "POST", url: api + "/webhooks", token: admin, body: `{"url":"` + receiver.URL + `","secret":"short"}`})
	expect(t, 403, "", contractCall{method: "POST", url: api + "/webhooks", token: editor, body: `{"url":"` + receiver.URL + `"}`})
	var hook webhook.Webhook
	json.Unmarshal(expect(t, 201, "", contractCall{method: "POST", url: api + "/webhooks", token: admin,
		body: `{"url":"` + receiver.URL + `","filter":{"kinds":"projects","sectors":"new-materials"}}`}), &hook)
	expect(t, 409, "", contractCall{method: "POST", url: api + "/webhooks", token: admin, body: `{"url":"` + receiver.URL + `"}`}) // -max-webhooks 1
	expect(t, 200, "", contractCall{method: "GET", url: api + "/webhooks", token: admin})
	expect(t, 403, "", contractCall{method: "GET", url: api + "/webhooks", token: viewer})
	expect(t, 201, "", contractCall{method: "POST", url: api + "/projects", token: editor, body: project("webhook contract copper", "")})
	waitFor(t, "a webhook delivery", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) > 0
	})
	mu.Lock()
	for _, err := range deliveries {
		if err != nil {
			t.Errorf("webhook delivery: %v", err)
		}
	}
	mu.Unlock()
	waitFor(t, "the delivery recorded", 5*time.Second, func() bool {
		_, _, body := contractCall{method: "GET", url: api + "/webhooks/" + hook.ID + "/deliveries?status=delivered", token: admin}.do(t)
		return strings.Contains(string(body), `"status":"delivered"`)
	})
	expect(t, 400, "status", contractCall{method: "GET", url: api + "/webhooks/" + hook.ID + "/deliveries?status=lost", token: admin})
	expect(t, 204, "", contractCall{method: "DELETE", url: api + "/webhooks/" + hook.ID, token: admin})
	expect(t, 404, "", contractCall{method: "DELETE", url: api + "/webhooks/" + hook.ID, token: admin})
	expect(t, 401, "", contractCall{method: "DELETE", url: api + "/webhooks/" + hook.ID})

	// Park-local tokens: issued with the CLI (recorded), listed, revoked.
	recorded := cli(t, map[string]string{}, "token", "create", "--sub", "contract-ops", "--role", "viewer", "--ttl", "1h", "--data-dir", a.dir)
	rid := claimsOf(t, recorded)["jti"].(string)
	expect(t, 200, "", contractCall{method: "GET", url: api + "/tokens", token: admin})
	expect(t, 200, "", contractCall{method: "GET", url: api + "/tokens?all=true", token: admin})
	expect(t, 400, "all", contractCall{method: "GET", url: api + "/tokens?all=maybe", token: admin})
	expect(t, 403, "", contractCall{method: "GET", url: api + "/tokens", token: editor})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/tokens"})
	expect(t, 200, "", contractCall{method: "GET", url: api + "/tokens/" + rid, token: admin})
	expect(t, 404, "", contractCall{method: "GET", url: api + "/tokens/never-issued", token: admin})
	expect(t, 400, "id", contractCall{method: "GET", url: api + "/tokens/not.an.id", token: admin})
	expect(t, 403, "", contractCall{method: "GET", url: api + "/tokens/" + rid, token: viewer})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/tokens/" + rid})
	expect(t, 200, "", contractCall{method: "GET", url: api + "/projects?limit=1", token: recorded})
	expect(t, 200, "", contractCall{method: "DELETE", url: api + "/tokens/" + rid, token: admin})
	expect(t, 401, "", contractCall{method: "GET", url: api + "/projects?limit=1", token: recorded})
	expect(t, 400, "id", contractCall{method: "DELETE", url: api + "/tokens/not.an.id", token: admin})
	expect(t, 403, "", contractCall{method: "DELETE", url: api + "/tokens/" + rid, token: editor})
	expect(t, 401, "", contractCall{method: "DELETE", url: api + "/tokens/" + rid})

	// Expressions of interest, both sides.
	contractInterests(t, a, b, ids["projects"], ids["private"])

	// Deletes, then the peering's end.
	expect(t, 412, "", contractCall{method: "DELETE", url: api + "/talent/" + ids["talent"], token: editor, header: []string{"If-Match", `"1"`}})
	for _, coll := range []string{"organizations", "projects", "talent"} {
		expect(t, 204, "", contractCall{method: "DELETE", url: api + "/" + coll + "/" + ids[coll], token: editor})
	}
	expect(t, 404, "", contractCall{method: "DELETE", url: api + "/talent/" + ids["talent"], token: editor})
	expect(t, 403, "", contractCall{method: "DELETE", url: api + "/projects/" + ids["private"], token: viewer})
	expect(t, 400, "If-Match", contractCall{method: "DELETE", url: api + "/projects/" + ids["private"], token: editor, header: []string{"If-Match", "0"}})
	expect(t, 404, "", contractCall{method: "DELETE", url: api + "/peerings/haifa-lifescience", token: admin})
	expect(t, 403, "", contractCall{method: "DELETE", url: api + "/peerings/" + b.id, token: editor})
	expect(t, 204, "", contractCall{method: "DELETE", url: api + "/peerings/" + b.id, token: admin})
	expect(t, 401, "", contractCall{method: "POST", url: fed + "/federation/v1/search", token: fedToken(t, b, a, parktoken.ScopeSearch), body: `{}`})

	// The document itself, operations, the portal, and what is not a route.
	expect(t, 200, "", contractCall{method: "GET", url: api + "/openapi.json"})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/", "/portal/portal.js", "/portal/portal.css"} {
		expect(t, 200, "", contractCall{method: "GET", url: a.parkURL + path})
	}
	expect(t, 204, "", contractCall{method: "GET", url: a.parkURL + "/favicon.ico"})
	expect(t, 404, "", contractCall{method: "GET", url: a.parkURL + "/portal/missing.js"})
	expect(t, 404, "", contractCall{method: "GET", url: api + "/widgets", token: viewer})
	expect(t, 404, "", contractCall{method: "PATCH", url: api + "/projects/" + ids["private"], token: editor, body: prj})

	// Every answer matched the document, and every operation was driven.
	for _, err := range v.Failures() {
		t.Errorf("answer does not match the OpenAPI document: %v", err)
	}
	seen := v.Seen()
	for _, op := range v.Operations() {
		if len(seen[op]) == 0 {
			t.Errorf("%s was never exercised", op)
		}
	}
	var summary []string
	for op, st := range seen {
		var codes []string
		for code, n := range st {
			codes = append(codes, fmt.Sprintf("%d×%d", code, n))
		}
		slices.Sort(codes)
		summary = append(summary, op+" "+strings.Join(codes, " "))
	}
	slices.Sort(summary)
	t.Logf("answers checked, per operation and status:\n%s", strings.Join(summary, "\n"))
}

// checkFacets runs a search of one page (every result) asking for facet
// counts and checks them: equal to a count of the results, and projects
// counted as many times as wantProjects.
func checkFacets(t *testing.T, name string, c contractCall, wantProjects int) {
	t.Helper()
	var resp search.Response
	if err := json.Unmarshal(expect(t, 200, "", c), &resp); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if resp.NextCursor != "" || resp.FacetsCapped || resp.FacetsPartial {
		t.Fatalf("%s: more than one page, or counts capped (%v) or partial (%v)", name, resp.FacetsCapped, resp.FacetsPartial)
	}
	names := make([]string, 0, len(resp.Facets))
	for n := range resp.Facets {
		names = append(names, n)
	}
	if got, want := storetest.FacetsString(resp.Facets), storetest.FacetsString(storetest.CountFacets(resp.Results, names)); got != want || len(names) < 3 {
		t.Errorf("%s: facets %s, want the results' %s", name, got, want)
	}
	if n := resp.Facets["kind"]["project"]; n != wantProjects {
		t.Errorf("%s: projects counted %d, want %d", name, n, wantProjects)
	}
}
