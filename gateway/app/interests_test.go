package app_test

import (
	"bytes"
	"context"
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

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// crossing is one federation request about interests, as it crossed
// between the parks, with the answer.
type crossing struct {
	from, to, method, path string
	status                 int
	req, resp              string
}

// recorder is a reverse proxy in front of one park's federation side that
// keeps what crosses to it about interests (the feed and search pass
// through unrecorded).
type recorder struct {
	srv      *httptest.Server
	from, to string
	stop     chan struct{}
	mu       sync.Mutex
	seen     []crossing
	all      atomic.Int64 // every request proxied, recorded or not
}

func newRecorder(t *testing.T, from, to *nodetest.Park) *recorder {
	u, _ := url.Parse(to.FederationURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rec := &recorder{from: from.ID, to: to.ID, stop: make(chan struct{})}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Proxied requests (the peer's feed among them) end when the
		// recorder stops, or closing it would wait for them.
		rec.all.Add(1)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-rec.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if !strings.HasPrefix(r.URL.Path, "/federation/v1/interests") {
			rp.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		cw := &captureWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r.WithContext(ctx))
		rec.mu.Lock()
		rec.seen = append(rec.seen, crossing{from: from.ID, to: to.ID, method: r.Method, path: r.URL.Path, status: cw.status, req: string(body), resp: cw.body.String()})
		rec.mu.Unlock()
	}))
	t.Cleanup(func() {
		close(rec.stop)
		rec.srv.CloseClientConnections()
		rec.srv.Close()
	})
	return rec
}

// waitUsed waits until park from's gateway has taken the repointed peer
// record (it reads records as Consul tells it of them): until then its
// interests could go to the peer directly, unrecorded.
func (r *recorder) waitUsed(t *testing.T, from *nodetest.Park) {
	t.Helper()
	waitFor(t, from.ID+" reaching "+r.to+" through the recorder", 20*time.Second, func() bool {
		clubSearch(t, from, "mode=live&q=copper&timeout_ms=1000")
		return r.all.Load() > 0
	})
}

func (r *recorder) crossings() []crossing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]crossing(nil), r.seen...)
}

type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(s int) { c.status = s; c.ResponseWriter.WriteHeader(s) }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

// Flush keeps streams (the peers' feeds) flowing through the proxy.
func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func doJSON(t *testing.T, p *nodetest.Park, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	return p.Do(context.Background(), method, path, token, rd)
}

func getInterest(t *testing.T, p *nodetest.Park, id string) interests.Interest {
	t.Helper()
	status, body := p.Do(context.Background(), "GET", "/api/v1/interests/"+id, p.Token(parktoken.Viewer), nil)
	if status != 200 {
		t.Fatalf("%s: GET interest %s: %d %s", p.ID, id, status, body)
	}
	var in interests.Interest
	json.Unmarshal(body, &in)
	return in
}

// waitStatus waits until park p shows interest id with status want.
func waitStatus(t *testing.T, p *nodetest.Park, id string, want interests.Status) interests.Interest {
	t.Helper()
	var in interests.Interest
	waitFor(t, fmt.Sprintf("%s showing interest %s %s", p.ID, id, want), 60*time.Second, func() bool {
		status, body := p.Do(context.Background(), "GET", "/api/v1/interests?box=received", p.Token(parktoken.Viewer), nil)
		if status != 200 {
			return false
		}
		// The list does not count as opening the interest; only a GET of
		// it does, so look in both boxes' lists.
		var l struct{ Interests []interests.Interest }
		json.Unmarshal(body, &l)
		_, sent := p.Do(context.Background(), "GET", "/api/v1/interests?box=sent", p.Token(parktoken.Viewer), nil)
		var s struct{ Interests []interests.Interest }
		json.Unmarshal(sent, &s)
		for _, x := range append(l.Interests, s.Interests...) {
			if x.ID == id && x.Status == want {
				in = x
				return true
			}
		}
		return false
	})
	return in
}

func auditOf(t *testing.T, p *nodetest.Park, id string) []map[string]any {
	t.Helper()
	status, body := p.Do(context.Background(), "GET", "/api/v1/interests/"+id+"/audit", p.Token(parktoken.Admin), nil)
	if status != 200 {
		t.Fatalf("%s: audit of %s: %d %s", p.ID, id, status, body)
	}
	var a struct{ Audit []map[string]any }
	json.Unmarshal(body, &a)
	return a.Audit
}

// actions lists an audit's actions in order, each with its actor.
func actions(audit []map[string]any) []string {
	var out []string
	for _, e := range audit {
		out = append(out, fmt.Sprint(e["action"], "@", e["actor"]))
	}
	return out
}

func hasFields(entry map[string]any, want ...string) bool {
	got := map[string]bool{}
	if fs, ok := entry["fields"].([]any); ok {
		for _, f := range fs {
			got[fmt.Sprint(f)] = true
		}
	}
	for _, w := range want {
		if !got[w] {
			return false
		}
	}
	return true
}

func entry(audit []map[string]any, action string) map[string]any {
	for _, e := range audit {
		if e["action"] == action {
			return e
		}
	}
	return nil
}

func sendInterest(t *testing.T, p *nodetest.Park, req map[string]any) (int, interests.Interest, []byte) {
	t.Helper()
	status, body := doJSON(t, p, "POST", "/api/v1/interests", p.Token(parktoken.Editor), req)
	var in interests.Interest
	json.Unmarshal(body, &in)
	return status, in, body
}

// fedPost sends a federation message to p signed with from's key, as
// from's gateway would.
func fedPost(t *testing.T, from, to *nodetest.Park, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	tok, err := parktoken.IssueFederation(from.Keys, to.ID, parktoken.ScopeInterests, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", to.FederationURL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, rb
}

const (
	senderEmail = "wang.fang@chengdu-office.example"
	senderPhone = "+86 28 8888 1234"
	senderName  = "Wang Fang"
	ownerEmail  = "invest@xian-office.example"
	t1Email     = "dr.zhao@consented.example"
	t2Email     = "dr.qian@private.example"
	t2Phone     = "+86 29 7777 0000"
)

// TestInterestsAcrossParks is the whole journey of expressions of interest
// between two real parks through their APIs: send at B, delivered to A,
// accepted (contacts at both), declined, withdrawn; delivery while A's
// gateway is down; no contact in any federation message before
// acceptance, none of a talent without consent after it; refusals of
// invisible and withdrawn listings; the audit at both parks; the events.
func TestInterestsAcrossParks(t *testing.T) {
	opts := nodetest.Options{GatewayArgs: []string{"-interest-backoff", "200ms", "-webhook-allow-cidr", "127.0.0.1/32"}}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	ctx := context.Background()

	// Everything about interests crossing either way goes through a recorder.
	toA, toB := newRecorder(t, b, a), newRecorder(t, a, b)
	repoint(t, b, a.ID, toA.srv.URL)
	repoint(t, a, b.ID, toB.srv.URL)
	toA.waitUsed(t, b)
	toB.waitUsed(t, a)

	// A's webhook receives its interest events.
	var hookMu sync.Mutex
	var hookEvents []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		json.NewDecoder(r.Body).Decode(&ev)
		hookMu.Lock()
		hookEvents = append(hookEvents, ev)
		hookMu.Unlock()
	}))
	defer hook.Close()
	if status, body := doJSON(t, a, "POST", "/api/v1/webhooks", a.Token(parktoken.Admin), map[string]any{"url": hook.URL}); status != 201 {
		t.Fatalf("webhook: %d %s", status, body)
	}

	prj := a.Create("projects", project("Xi'an 超级铜 landing project", ""))
	talConsent := a.Create("talent", `{"title":"Dr. Zhao, photonics","sectors":["ai"],"country":"CN","attrs":{"availability":["mentor"],"contact":{"email":"`+t1Email+`"},"consent":{"share_contact":true}}}`)
	talPrivate := a.Create("talent", `{"title":"Dr. Qian, batteries","sectors":["new-energy"],"country":"CN","attrs":{"availability":["advisor"],"contact":{"email":"`+t2Email+`","phone":"`+t2Phone+`"},"consent":{"share_contact":false}}}`)
	private := a.Create("projects", project("private copper", `,"visibility":"private"`))
	forOther := a.Create("projects", project("for another park copper", `,"visibility":"peers","share_with":["siliconvalley-offshore"]`))
	gone := a.Create("projects", project("soon withdrawn copper", ""))
	org := b.Create("organizations", `{"title":"Chengdu Photonics Incubator","sectors":["ai"],"country":"CN","attrs":{"org_type":"incubator"}}`)
	// B's club index holds A's four visible listings.
	indexSearch(t, b, "parks=xian-hitech", 4)

	contact := map[string]any{"name": senderName, "email": senderEmail, "phone": senderPhone}
	req := func(kind, id string) map[string]any {
		return map[string]any{
			"listing": map[string]any{"park": a.ID, "kind": kind, "id": id}, "message": "We would like to land this project in Chengdu; 我们希望合作",
			"organization": map[string]any{"listing_id": org.ID}, "offer": "landing space, 200 m2", "sender_contact": contact,
		}
	}

	// Bad input names the field; a viewer may not send.
	for _, c := range []struct {
		mut   func(map[string]any)
		field string
	}{
		{func(m map[string]any) { m["message"] = "" }, "message"},
		{func(m map[string]any) { delete(m, "sender_contact") }, "sender_contact"},
		{func(m map[string]any) { m["sender_contact"] = map[string]any{"email": "not an email"} }, "sender_contact.email"},
		{func(m map[string]any) { m["listing"] = map[string]any{"park": a.ID, "kind": "project", "id": "nope"} }, "listing.id"},
		{func(m map[string]any) {
			m["listing"] = map[string]any{"park": b.ID, "kind": "organization", "id": org.ID}
		}, "listing.park"},
		{func(m map[string]any) {
			m["organization"] = map[string]any{"listing_id": "org_01J0000000000000000000000Z"}
		}, "organization.listing_id"},
		{func(m map[string]any) { m["extra"] = 1 }, "extra"},
	} {
		r := req("project", prj.ID)
		c.mut(r)
		status, _, body := sendInterest(t, b, r)
		if status != 400 || !strings.Contains(string(body), `"field":"`+c.field+`"`) {
			t.Errorf("bad send (%s): %d %s", c.field, status, body)
		}
	}
	if status, _ := doJSON(t, b, "POST", "/api/v1/interests", b.Token(parktoken.Viewer), req("project", prj.ID)); status != 403 {
		t.Errorf("viewer sending: %d, want 403", status)
	}

	// Refusals: B's own check on its club index, and A's on delivery.
	status, _, _ := sendInterest(t, b, req("project", gone.ID))
	if status != 201 {
		t.Fatalf("interest in a visible listing: %d", status)
	}
	if status, body := a.Do(ctx, "DELETE", "/api/v1/projects/"+gone.ID, a.Token(parktoken.Editor), nil); status != 204 && status != 200 {
		t.Fatalf("delete: %d %s", status, body)
	}
	indexSearch(t, b, "parks=xian-hitech", 3)
	for _, l := range []struct{ name, id string }{{"private", private.ID}, {"shared with another park only", forOther.ID}, {"withdrawn", gone.ID}} {
		status, _, body := sendInterest(t, b, req("project", l.id))
		if status != 404 || !strings.Contains(string(body), `"field":"listing"`) || !strings.Contains(string(body), "not visible to this park") {
			t.Errorf("B sending interest in a %s listing: %d %s", l.name, status, body)
		}
		// Had B's index been stale, A refuses it all the same.
		m := interests.Message{ID: interests.NewID(), Listing: interests.ListingRef{Park: a.ID, Kind: "project", ID: l.id},
			Message: "hello", Organization: interests.Organization{Name: "Chengdu Photonics Incubator"},
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		status, _, body = fedPost(t, b, a, "/federation/v1/interests", m)
		if status != 404 || !strings.Contains(string(body), `"field":"listing"`) || !strings.Contains(string(body), "not visible to park chengdu-hitech") {
			t.Errorf("A taking an interest in a %s listing: %d %s", l.name, status, body)
		}
	}

	// A federation message carrying anything more (a contact) is refused;
	// a token of another scope is unauthorized.
	status, _, body := fedPost(t, b, a, "/federation/v1/interests", map[string]any{"id": interests.NewID(), "sender_contact": contact})
	if status != 400 || !strings.Contains(string(body), `"field":"sender_contact"`) {
		t.Errorf("federation message with a contact: %d %s", status, body)
	}
	searchTok, _ := parktoken.IssueFederation(b.Keys, a.ID, parktoken.ScopeSearch, time.Minute, time.Now())
	if status, _ := a.Do(ctx, "POST", "/federation/v1/interests", searchTok, strings.NewReader(`{}`)); status != 401 {
		t.Errorf("search-scope token on interests: %d, want 401", status)
	}

	// Accept: send at B → at A → accepted → contacts at both.
	status, sent, body := sendInterest(t, b, req("project", prj.ID))
	if status != 201 || sent.Status != interests.Sent || sent.Box != "sent" || sent.SenderContact == nil || sent.Organization.Name != org.Title {
		t.Fatalf("send: %d %s", status, body)
	}
	id := sent.ID
	got := waitStatus(t, a, id, interests.Delivered)
	if got.Box != "received" || got.SenderPark != b.ID || got.SenderContact != nil || got.Message == "" || got.Organization.ListingID != org.ID || got.Organization.Name != org.Title {
		t.Errorf("at A before acceptance: %+v", got)
	}
	waitStatus(t, b, id, interests.Delivered)
	// A viewer may not answer; an editor accepts with the contact for the listing.
	if status, _ := doJSON(t, a, "POST", "/api/v1/interests/"+id+"/accept", a.Token(parktoken.Viewer), map[string]any{}); status != 403 {
		t.Errorf("viewer accepting: %d, want 403", status)
	}
	if status, body := doJSON(t, a, "POST", "/api/v1/interests/"+id+"/accept", a.Token(parktoken.Editor), map[string]any{"note": "welcome"}); status != 400 || !strings.Contains(string(body), `"field":"contact"`) {
		t.Errorf("accepting without a contact: %d %s", status, body)
	}
	opened := getInterest(t, a, id) // the first look by a person of A
	if opened.OpenedAt == nil || opened.OpenedBy != "test-viewer" {
		t.Errorf("opened: %+v", opened)
	}
	status, body = doJSON(t, a, "POST", "/api/v1/interests/"+id+"/accept", a.Token(parktoken.Editor),
		map[string]any{"note": "welcome to Xi'an", "contact": map[string]any{"name": "Investment office", "email": ownerEmail}})
	if status != 200 {
		t.Fatalf("accept: %d %s", status, body)
	}
	if status, _ := doJSON(t, a, "POST", "/api/v1/interests/"+id+"/decline", a.Token(parktoken.Editor), nil); status != 409 {
		t.Errorf("declining an accepted interest: %d, want 409", status)
	}
	waitStatus(t, b, id, interests.Accepted)
	atB := getInterest(t, b, id)
	if atB.OwnerContact == nil || atB.OwnerContact.Email != ownerEmail || atB.Note != "welcome to Xi'an" {
		t.Errorf("at B after acceptance: owner contact %+v note %q", atB.OwnerContact, atB.Note)
	}
	waitFor(t, "A receiving the sender's contact", 30*time.Second, func() bool {
		in := getInterest(t, a, id)
		return in.SenderContact != nil && in.SenderContact.Email == senderEmail && in.SenderContact.Phone == senderPhone
	})

	// Decline.
	_, dec, _ := sendInterest(t, b, req("project", prj.ID))
	waitStatus(t, a, dec.ID, interests.Delivered)
	if status, body := doJSON(t, a, "POST", "/api/v1/interests/"+dec.ID+"/decline", a.Token(parktoken.Editor), map[string]any{"note": "not this year"}); status != 200 {
		t.Fatalf("decline: %d %s", status, body)
	}
	declined := waitStatus(t, b, dec.ID, interests.Declined)
	if declined.Note != "not this year" || declined.OwnerContact != nil {
		t.Errorf("declined at B: %+v", declined)
	}
	if in := getInterest(t, a, dec.ID); in.SenderContact != nil {
		t.Errorf("declined at A shows the sender's contact")
	}

	// Withdraw before an answer: A may not answer it any more.
	_, wd, _ := sendInterest(t, b, req("project", prj.ID))
	waitStatus(t, a, wd.ID, interests.Delivered)
	if status, body := doJSON(t, b, "POST", "/api/v1/interests/"+wd.ID+"/withdraw", b.Token(parktoken.Editor), map[string]any{"note": "found another park"}); status != 200 {
		t.Fatalf("withdraw: %d %s", status, body)
	}
	waitStatus(t, a, wd.ID, interests.Withdrawn)
	if status, _ := doJSON(t, a, "POST", "/api/v1/interests/"+wd.ID+"/accept", a.Token(parktoken.Editor), map[string]any{"contact": map[string]any{"email": ownerEmail}}); status != 409 {
		t.Errorf("accepting a withdrawn interest: %d, want 409", status)
	}
	if status, _ := doJSON(t, a, "POST", "/api/v1/interests/"+wd.ID+"/withdraw", a.Token(parktoken.Editor), nil); status != 400 {
		t.Errorf("the owner withdrawing: %d, want 400", status)
	}

	// Talent: without consent no contact of the person crosses, even on
	// acceptance; with consent it does.
	_, tp, _ := sendInterest(t, b, req("talent", talPrivate.ID))
	_, tc, _ := sendInterest(t, b, req("talent", talConsent.ID))
	waitStatus(t, a, tp.ID, interests.Delivered)
	waitStatus(t, a, tc.ID, interests.Delivered)
	if status, body := doJSON(t, a, "POST", "/api/v1/interests/"+tp.ID+"/accept", a.Token(parktoken.Editor), map[string]any{"contact": map[string]any{"email": t2Email}}); status != 400 || !strings.Contains(string(body), `"field":"contact"`) {
		t.Errorf("accepting talent with a contact given: %d %s", status, body)
	}
	for _, x := range []string{tp.ID, tc.ID} {
		if status, body := doJSON(t, a, "POST", "/api/v1/interests/"+x+"/accept", a.Token(parktoken.Editor), map[string]any{"note": "ok"}); status != 200 {
			t.Fatalf("accept talent: %d %s", status, body)
		}
	}
	waitStatus(t, b, tp.ID, interests.Accepted)
	waitStatus(t, b, tc.ID, interests.Accepted)
	if in := getInterest(t, b, tp.ID); in.OwnerContact != nil {
		t.Errorf("talent without consent: B got contact %+v", in.OwnerContact)
	}
	if in := getInterest(t, b, tc.ID); in.OwnerContact == nil || in.OwnerContact.Email != t1Email {
		t.Errorf("talent with consent: B got contact %+v", in.OwnerContact)
	}
	waitFor(t, "A receiving the sender's contact for the talent", 30*time.Second, func() bool {
		return getInterest(t, a, tp.ID).SenderContact != nil
	})

	// Delivery while A's gateway is down: queued at B, delivered once A
	// is back, exactly once.
	a.Gateway.Kill()
	_, down, _ := sendInterest(t, b, req("project", prj.ID))
	waitFor(t, "B failing to deliver to the stopped A", 30*time.Second, func() bool {
		in := getInterest(t, b, down.ID)
		return in.Status == interests.Sent && in.Delivery != nil && in.Delivery.Attempts >= 1 && in.Delivery.LastError != ""
	})
	a.RestartGateway()
	waitStatus(t, b, down.ID, interests.Delivered)
	if in := getInterest(t, b, down.ID); in.Delivery != nil {
		t.Errorf("delivered, yet pending: %+v", in.Delivery)
	}
	// Once at A, whatever arrives again.
	m := interests.Message{ID: down.ID, Listing: interests.ListingRef{Park: a.ID, Kind: "project", ID: prj.ID},
		Message: "again", Organization: interests.Organization{Name: "x"}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if status, _, body := fedPost(t, b, a, "/federation/v1/interests", m); status != 200 {
		t.Errorf("delivering the same interest again: %d %s, want 200", status, body)
	}
	n := 0
	_, body = a.Do(ctx, "GET", "/api/v1/interests?box=received", a.Token(parktoken.Viewer), nil)
	var recv struct{ Interests []interests.Interest }
	json.Unmarshal(body, &recv)
	for _, x := range recv.Interests {
		if x.ID == down.ID {
			n++
			if x.Message == "again" {
				t.Errorf("a delivery again replaced the interest")
			}
		}
	}
	if received := entry(auditOf(t, a, down.ID), "received"); n != 1 || received == nil {
		t.Errorf("A holds the interest %d times; audit %v", n, actions(auditOf(t, a, down.ID)))
	}
	var receivedEntries int
	for _, e := range auditOf(t, a, down.ID) {
		if e["action"] == "received" {
			receivedEntries++
		}
	}
	if receivedEntries != 1 {
		t.Errorf("A's audit records %d receipts of one interest", receivedEntries)
	}

	// Withdrawal after acceptance ends the exchange at both parks.
	if status, body := doJSON(t, b, "POST", "/api/v1/interests/"+id+"/withdraw", b.Token(parktoken.Editor), nil); status != 200 {
		t.Fatalf("withdraw accepted: %d %s", status, body)
	}
	waitStatus(t, a, id, interests.Withdrawn)
	if in := getInterest(t, a, id); in.SenderContact != nil || in.OwnerContact != nil {
		t.Errorf("withdrawn at A still shows contacts: %+v %+v", in.SenderContact, in.OwnerContact)
	}
	if in := getInterest(t, b, id); in.SenderContact != nil || in.OwnerContact != nil {
		t.Errorf("withdrawn at B still shows contacts")
	}

	// The audit at both parks: every step, who, and what crossed (names).
	auditB, auditA := auditOf(t, b, id), auditOf(t, a, id)
	wantB := []string{"sent@test-editor", "delivered@park:xian-hitech", "accepted@park:xian-hitech", "contact_sent@park:chengdu-hitech", "withdrawn@test-editor"}
	wantA := []string{"received@park:chengdu-hitech", "opened@test-viewer", "accepted@test-editor", "contact_received@park:chengdu-hitech", "withdrawn@park:chengdu-hitech"}
	if got := actions(auditB); strings.Join(got, ",") != strings.Join(wantB, ",") {
		t.Errorf("B's audit: %v, want %v", got, wantB)
	}
	if got := actions(auditA); strings.Join(got, ",") != strings.Join(wantA, ",") {
		t.Errorf("A's audit: %v, want %v", got, wantA)
	}
	if !hasFields(entry(auditB, "sent"), "message", "organization.listing_id", "offer") || hasFields(entry(auditB, "sent"), "sender_contact.email") ||
		!hasFields(entry(auditB, "contact_sent"), "sender_contact.email", "sender_contact.phone", "sender_contact.name") ||
		!hasFields(entry(auditA, "accepted"), "status", "note", "contact.email") ||
		!hasFields(entry(auditA, "contact_received"), "sender_contact.email") {
		t.Errorf("audit fields: B %v A %v", auditB, auditA)
	}
	for _, au := range [][]map[string]any{auditA, auditB} {
		raw, _ := json.Marshal(au)
		if bytes.Contains(raw, []byte(senderEmail)) || bytes.Contains(raw, []byte(ownerEmail)) {
			t.Errorf("an audit holds a contact value: %s", raw)
		}
	}
	if status, _ := a.Do(ctx, "GET", "/api/v1/interests/"+id+"/audit", a.Token(parktoken.Editor), nil); status != 403 {
		t.Errorf("editor reading the audit: %d, want 403", status)
	}
	auditDec := actions(auditOf(t, b, dec.ID))
	if strings.Join(auditDec, ",") != "sent@test-editor,delivered@park:xian-hitech,declined@park:xian-hitech" {
		t.Errorf("B's audit of the declined interest: %v", auditDec)
	}
	if got := actions(auditOf(t, a, wd.ID)); strings.Join(got, ",") != "received@park:chengdu-hitech,withdrawn@park:chengdu-hitech" {
		t.Errorf("A's audit of the withdrawn interest: %v", got)
	}

	// What crossed: no contact in any message before acceptance; the
	// owner's contact only in acceptances (the talent's only with
	// consent), the sender's only in the answers to them.
	crossings := append(toA.crossings(), toB.crossings()...)
	if len(crossings) < 10 {
		t.Fatalf("only %d interest messages recorded", len(crossings))
	}
	personal := []string{senderEmail, senderPhone, senderName, ownerEmail, t1Email, t2Email, t2Phone}
	for _, c := range crossings {
		var sm interests.StatusMessage
		json.Unmarshal([]byte(c.req), &sm)
		acceptance := strings.HasSuffix(c.path, "/status") && sm.Status == interests.Accepted
		for _, v := range personal {
			inReq, inResp := strings.Contains(c.req, v), strings.Contains(c.resp, v)
			switch {
			case inReq && !(acceptance && (v == ownerEmail || v == t1Email)):
				t.Errorf("%s → %s %s carried %q: %s", c.from, c.to, c.path, v, c.req)
			case inResp && !(acceptance && (v == senderEmail || v == senderPhone || v == senderName)):
				t.Errorf("%s's answer to %s carried %q: %s", c.to, c.path, v, c.resp)
			}
		}
		if strings.Contains(c.req, "sender_contact") || strings.Contains(c.req, "test-editor") {
			t.Errorf("%s → %s %s carried a sender's contact or a principal: %s", c.from, c.to, c.path, c.req)
		}
	}

	// Events: A's park received, was told of the withdrawal (stream and
	// webhook); B learnt the answers.
	checkStream := func(p *nodetest.Park, want map[string]string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(sctx, "GET", p.GatewayURL+"/api/v1/interests/stream", nil)
		req.Header.Set("Authorization", "Bearer "+p.Token(parktoken.Viewer))
		req.Header.Set("Last-Event-ID", "i0")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s stream: %v %v", p.ID, err, res)
		}
		defer res.Body.Close()
		rd := sse.NewReader(res.Body)
		missing := map[string]string{}
		for k, v := range want {
			missing[k] = v
		}
		for len(missing) > 0 {
			ev, err := rd.Next()
			if err != nil {
				t.Fatalf("%s stream: still missing %v: %v", p.ID, missing, err)
			}
			var ce struct{ Type, Subject, Source string }
			json.Unmarshal([]byte(ev.Data), &ce)
			if missing[ce.Subject] == ce.Type && ce.Source == "/parks/"+p.ID {
				delete(missing, ce.Subject)
			}
			if bytes.Contains([]byte(ev.Data), []byte(senderEmail)) {
				t.Errorf("an event carries a contact: %s", ev.Data)
			}
		}
	}
	checkStream(a, map[string]string{dec.ID: interests.TypeReceived, wd.ID: interests.TypeWithdrawn})
	checkStream(b, map[string]string{id: interests.TypeAnswered, dec.ID: interests.TypeAnswered})
	waitFor(t, "A's webhook receiving the interest events", 30*time.Second, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		seen := map[string]bool{}
		for _, ev := range hookEvents {
			seen[fmt.Sprint(ev["type"], ev["subject"])] = true
		}
		return seen[interests.TypeReceived+id] && seen[interests.TypeWithdrawn+wd.ID]
	})

	// The metrics.
	_, metrics := a.Do(ctx, "GET", "/metrics", "", nil)
	for _, w := range []string{"parkmesh_interests_answered_total{answer=\"accepted\"}", "parkmesh_interests_time_to_answer_seconds_count", "parkmesh_interests_outbox_depth"} {
		if !strings.Contains(string(metrics), w) {
			t.Errorf("A's metrics lack %s", w)
		}
	}
	_, metrics = b.Do(ctx, "GET", "/metrics", "", nil)
	if !strings.Contains(string(metrics), "parkmesh_interests_sent_total 7") {
		t.Errorf("B's metrics: sent_total is not 7")
	}
}

// TestInterestsRateLimit: a peer delivering more new interests than the
// park takes per hour gets 429 with Retry-After; the sender's gateway
// keeps the interest queued, with the reason.
func TestInterestsRateLimit(t *testing.T) {
	opts := nodetest.Options{GatewayArgs: []string{"-interest-rate-per-peer", "3", "-interest-backoff", "200ms"}}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	prj := a.Create("projects", project("Xi'an copper", ""))
	indexSearch(t, b, "parks=xian-hitech", 1)
	req := map[string]any{
		"listing": map[string]any{"park": a.ID, "kind": "projects", "id": prj.ID}, "message": "interested",
		"organization": map[string]any{"name": "Chengdu office"}, "sender_contact": map[string]any{"email": senderEmail},
	}
	var ids []string
	for range 3 {
		status, in, body := sendInterest(t, b, req)
		if status != 201 {
			t.Fatalf("send: %d %s", status, body)
		}
		ids = append(ids, in.ID)
	}
	for _, id := range ids {
		waitStatus(t, a, id, interests.Delivered)
	}
	// The fourth of the hour waits at B, with the reason.
	_, fourth, _ := sendInterest(t, b, req)
	waitFor(t, "B's fourth interest held back by A's rate limit", 30*time.Second, func() bool {
		in := getInterest(t, b, fourth.ID)
		return in.Status == interests.Sent && in.Delivery != nil && strings.Contains(in.Delivery.LastError, "rate")
	})
	// Straight at A's federation side: 429 with Retry-After; a delivery
	// again of an interest A holds is not limited.
	m := interests.Message{ID: interests.NewID(), Listing: interests.ListingRef{Park: a.ID, Kind: "project", ID: prj.ID},
		Message: "one more", Organization: interests.Organization{Name: "x"}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	status, hdr, body := fedPost(t, b, a, "/federation/v1/interests", m)
	if status != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "too_many_requests") {
		t.Errorf("over the rate: %d %q %s", status, hdr.Get("Retry-After"), body)
	}
	m.ID = ids[0]
	if status, _, body := fedPost(t, b, a, "/federation/v1/interests", m); status != 200 {
		t.Errorf("a delivery again over the rate: %d %s, want 200", status, body)
	}
	if status, _ := a.Do(context.Background(), "GET", "/api/v1/interests/"+fourth.ID, a.Token(parktoken.Viewer), nil); status != 404 {
		t.Errorf("A holds the interest it refused: %d", status)
	}
}

// TestInterestsIdempotencyKey: a send repeated with its Idempotency-Key
// (a double click, a retry after a timeout) makes one interest, answered
// again with 200 and Idempotent-Replayed, and A receives one; the key
// with a changed body is refused naming it, and so is a malformed key.
func TestInterestsIdempotencyKey(t *testing.T) {
	opts := nodetest.Options{GatewayArgs: []string{"-interest-backoff", "200ms"}}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	prj := a.Create("projects", project("Xi'an copper", ""))
	indexSearch(t, b, "parks=xian-hitech", 1)
	send := `{"listing":{"park":"` + a.ID + `","kind":"projects","id":"` + prj.ID + `"},"message":"interested","organization":{"name":"Chengdu office"},"sender_contact":{"email":"` + senderEmail + `"}}`
	key := "0b6f7a52-8c1e-4d3a-9f27-5e4c3b2a1d0f"
	post := func(body, key string) (int, http.Header, interests.Interest, []byte) {
		t.Helper()
		c := contractCall{method: "POST", url: b.GatewayURL + "/api/v1/interests", token: b.Token(parktoken.Editor), body: body,
			header: []string{"Idempotency-Key", key}}
		status, hdr, raw := c.do(t)
		var in interests.Interest
		json.Unmarshal(raw, &in)
		return status, hdr, in, raw
	}
	status, hdr, first, raw := post(send, key)
	if status != 201 || hdr.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first send: %d %q %s, want 201 not replayed", status, hdr.Get("Idempotent-Replayed"), raw)
	}
	// The same again, spaced otherwise: the same interest.
	status, hdr, again, raw := post(strings.ReplaceAll(send, ",", ", "), key)
	if status != 200 || again.ID != first.ID || hdr.Get("Idempotent-Replayed") != "true" || hdr.Get("Location") != "/api/v1/interests/"+first.ID {
		t.Errorf("again: %d %q %q %s; want 200 replaying %s", status, hdr.Get("Idempotent-Replayed"), hdr.Get("Location"), raw, first.ID)
	}
	waitStatus(t, a, first.ID, interests.Delivered)
	status, _, third, raw := post(send, key)
	if status != 200 || third.ID != first.ID || third.Status != interests.Delivered {
		t.Errorf("again once delivered: %d %s; want 200 with %s as it is now (delivered)", status, raw, first.ID)
	}
	// Changed, with the same key: refused, nothing made.
	status, _, _, raw = post(strings.Replace(send, `"interested"`, `"very interested"`, 1), key)
	if status != 409 || !strings.Contains(string(raw), `"field":"Idempotency-Key"`) {
		t.Errorf("changed body, same key: %d %s; want 409 naming Idempotency-Key", status, raw)
	}
	status, _, _, raw = post(send, "two words")
	if status != 400 || !strings.Contains(string(raw), `"field":"Idempotency-Key"`) {
		t.Errorf("malformed key: %d %s; want 400 naming Idempotency-Key", status, raw)
	}
	for _, p := range []*nodetest.Park{a, b} {
		status, body := p.Do(context.Background(), "GET", "/api/v1/interests", p.Token(parktoken.Viewer), nil)
		var list struct{ Interests []interests.Interest }
		json.Unmarshal(body, &list)
		if status != 200 || len(list.Interests) != 1 || list.Interests[0].ID != first.ID {
			t.Errorf("%s's interests: %d %s; want only %s", p.ID, status, body, first.ID)
		}
	}
	// Without a key, each send is a new interest.
	if status, in, body := sendInterest(t, b, jsonMap(t, send)); status != 201 || in.ID == first.ID {
		t.Errorf("send without a key: %d %s, want a new interest", status, body)
	}
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
