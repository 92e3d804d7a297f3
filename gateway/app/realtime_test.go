package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// received is one event a test subscriber got.
type received struct {
	ID      string
	Type    string
	Subject string
	Park    string
	Version int64
	Title   string
}

// subscriber follows a park's /api/v1/stream like a staff client would:
// on any disconnect it reconnects (to the URL url() gives) with its last id.
type subscriber struct {
	mu     sync.Mutex
	events []received
	errors []sse.StreamError
	lastID string
	conns  atomic.Int32
}

func subscribe(t *testing.T, url func() string, token, query string) *subscriber {
	s := &subscriber{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			s.once(ctx, url()+"/api/v1/stream?"+query, token)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *subscriber) once(ctx context.Context, u, token string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	s.mu.Lock()
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	s.mu.Unlock()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return
	}
	s.conns.Add(1)
	readSSE(res.Body, func(id, typ, data string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if typ == "error" {
			var e sse.StreamError
			json.Unmarshal([]byte(data), &e)
			s.errors = append(s.errors, e)
			return
		}
		var ev feed.Event
		json.Unmarshal([]byte(data), &ev)
		var body struct {
			Park    string
			Version int64
			Title   string
		}
		json.Unmarshal(ev.Data(), &body)
		s.events = append(s.events, received{ID: id, Type: ev.Type(), Subject: ev.Subject(), Park: body.Park, Version: body.Version, Title: body.Title})
		s.lastID = id
	})
}

// readSSE calls fn for each event until the stream ends.
func readSSE(r io.Reader, fn func(id, typ, data string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var id, typ string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				fn(id, typ, strings.Join(data, "\n"))
			}
			id, typ, data = "", "", nil
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
}

func (s *subscriber) snapshot() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.events...)
}

func (s *subscriber) waitFor(t *testing.T, what string, timeout time.Duration, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ev := s.snapshot(); cond(ev) {
			return ev
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; got %+v", what, s.snapshot())
	return nil
}

// waitLive waits until p's club index holds peer's part live: its feed is
// connected and caught up.
func waitLive(t *testing.T, p *nodetest.Park, peer string) {
	t.Helper()
	waitFor(t, peer+" live in "+p.ID+"'s club index", 30*time.Second, func() bool {
		ans, status, _ := clubSearch(t, p, "parks="+peer)
		return status == 200 && statusOf(ans, peer) == search.StatusLive
	})
}

func countOf(subject string) func([]received) int {
	return func(evs []received) int {
		n := 0
		for _, e := range evs {
			if e.Subject == subject {
				n++
			}
		}
		return n
	}
}

func TestFeedCreateUpdateWithdraw(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	sub := subscribe(t, func() string { return b.GatewayURL }, b.Token(parktoken.Viewer), "parks="+a.ID)
	waitFor(t, "subscriber connected", 5*time.Second, func() bool { return sub.conns.Load() > 0 })
	waitLive(t, b, a.ID)
	ctx := context.Background()
	editor := a.Token(parktoken.Editor)
	// One step at a time, each seen before the next: a feed of current
	// state sends a listing changed twice before it is read only once.
	l := a.Create("projects", project("实时 新材料 live", ""))
	sub.waitFor(t, "L created", 10*time.Second, func(e []received) bool { return len(e) >= 1 })
	m := a.Create("projects", project("second listing", ""))
	sub.waitFor(t, "M created", 10*time.Second, func(e []received) bool { return len(e) >= 2 })
	body := func(title, vis string) *strings.Reader {
		return strings.NewReader(`{"title":"` + title + `","sectors":["new-materials"],"country":"CN","visibility":"` + vis + `","attrs":{"stage":"pilot"}}`)
	}
	if s, b := a.Do(ctx, "PUT", "/api/v1/projects/"+l.ID, editor, body("实时 updated", "club")); s != 200 {
		t.Fatalf("update: %d %s", s, b)
	}
	sub.waitFor(t, "L updated", 10*time.Second, func(e []received) bool { return len(e) >= 3 })
	if s, b := a.Do(ctx, "PUT", "/api/v1/projects/"+l.ID, editor, body("实时 private", "private")); s != 200 {
		t.Fatalf("make private: %d %s", s, b)
	}
	sub.waitFor(t, "L withdrawn", 10*time.Second, func(e []received) bool { return len(e) >= 4 })
	if s, _ := a.Do(ctx, "DELETE", "/api/v1/projects/"+l.ID, editor, nil); s != 204 {
		t.Fatalf("delete private: %d", s)
	}
	time.Sleep(300 * time.Millisecond) // nothing may follow
	if s, _ := a.Do(ctx, "DELETE", "/api/v1/projects/"+m.ID, editor, nil); s != 204 {
		t.Fatalf("delete: %d", s)
	}
	sub.waitFor(t, "five events", 10*time.Second, func(e []received) bool { return len(e) >= 5 })
	time.Sleep(300 * time.Millisecond) // nothing more may follow
	evs := sub.snapshot()
	var got []string
	for _, e := range evs {
		who := "L"
		if e.Subject == m.ID {
			who = "M"
		}
		got = append(got, fmt.Sprintf("%s:%s:v%d", who, strings.TrimPrefix(e.Type, "org.parkmesh.listing."), e.Version))
	}
	want := "L:created:v1 M:created:v1 L:updated:v2 L:withdrawn:v3 M:withdrawn:v2"
	if strings.Join(got, " ") != want {
		t.Errorf("B's subscriber got\n  %s\nwant\n  %s\n(deleting L after it became private tells B nothing more)", strings.Join(got, " "), want)
	}
	for _, e := range evs {
		if e.Type != feed.TypeWithdrawn && e.Park != a.ID {
			t.Errorf("event data park %q", e.Park)
		}
	}
	// /api/v1/peers shows the feed connected.
	_, pb := b.Do(ctx, "GET", "/api/v1/peers", b.Token(parktoken.Viewer), nil)
	var peers struct{ Peers []clubsearch.PeerView }
	json.Unmarshal(pb, &peers)
	if len(peers.Peers) != 1 || peers.Peers[0].Feed == nil || !peers.Peers[0].Feed.Connected {
		t.Errorf("peer feed health: %s", pb)
	}
	_, metrics := b.Do(ctx, "GET", "/metrics", "", nil)
	if !strings.Contains(string(metrics), `parkmesh_feed_lag_seconds{peer="xian-hitech"}`) {
		t.Error("no feed lag metric")
	}
}

// writer creates n listings at p, one every gap, and returns their ids.
func writer(t *testing.T, p *nodetest.Park, n int, gap time.Duration, title string) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var ids []string
		tok := p.Token(parktoken.Editor)
		base := p.GatewayURL
		for i := 0; i < n; i++ {
			// Not p.Do: requests fail while a gateway restarts, and this
			// goroutine must not stop the test.
			req, _ := http.NewRequest("POST", base+"/api/v1/projects", strings.NewReader(project(fmt.Sprintf("%s %d", title, i), "")))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if res, err := http.DefaultClient.Do(req); err == nil {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == 201 {
					var l listing.Listing
					json.Unmarshal(body, &l)
					ids = append(ids, l.ID)
				}
			}
			time.Sleep(gap)
		}
		out <- ids
	}()
	return out
}

func assertExactlyOnce(t *testing.T, sub *subscriber, ids []string, timeout time.Duration) {
	t.Helper()
	sub.waitFor(t, fmt.Sprintf("all %d listings", len(ids)), timeout, func(evs []received) bool {
		seen := map[string]bool{}
		for _, e := range evs {
			seen[e.Subject] = true
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	count := map[string]int{}
	for _, e := range sub.snapshot() {
		count[e.Subject+"/"+fmt.Sprint(e.Version)]++
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("event %s arrived %d times", k, n)
		}
	}
}

// TestRestartMatrixLosesNothing: listings are created at a steady rate
// while each gateway is killed (-9) and started again, a service too, and a
// gateway restarts while a service is down. Every listing created reaches
// the other park's club index and its park-side subscriber, exactly once
// after dedupe; no valid position is ever refused (no resync).
func TestRestartMatrixLosesNothing(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	sub := subscribe(t, func() string { return b.GatewayURL }, b.Token(parktoken.Viewer), "parks="+a.ID)
	waitFor(t, "subscriber connected", 5*time.Second, func() bool { return sub.conns.Load() > 0 })
	waitLive(t, b, a.ID)

	var all []string
	// Each round writes for about three seconds; creates fail while A's
	// gateway or its project service is down, and what was created must
	// all arrive.
	round := func(name string, n int, fault func()) {
		t.Helper()
		done := writer(t, a, n, 3*time.Second/time.Duration(n), name)
		time.Sleep(300 * time.Millisecond)
		fault()
		ids := <-done
		if len(ids) == 0 {
			t.Fatalf("%s: A created none of %d listings", name, n)
		}
		all = append(all, ids...)
	}
	// B's gateway dies mid-stream while A keeps writing.
	round("during B restart", 40, b.RestartGateway)
	// A's gateway dies mid-stream: B's follower resumes from its position.
	round("during A restart", 30, a.RestartGateway)
	// A's project service is killed and started again on its file.
	round("during a service restart", 30, func() {
		svc := a.Services[listing.KindProject][0]
		svc.Kill()
		time.Sleep(300 * time.Millisecond)
		a.StartService(listing.KindProject, a.DataDir)
	})
	// A's gateway restarts while its project service is down: it holds
	// streams until it has read its logs, and refuses no valid position.
	round("gateway restart while a service is down", 30, func() {
		svc := a.Services[listing.KindProject][len(a.Services[listing.KindProject])-1]
		svc.Kill()
		a.RestartGateway()
		time.Sleep(time.Second)
		a.StartService(listing.KindProject, a.DataDir)
	})

	assertExactlyOnce(t, sub, all, 60*time.Second)
	// B's club index holds every one of them.
	waitFor(t, "every listing in B's club index", 30*time.Second, func() bool {
		return indexCount(t, b, a.ID) == len(all)
	})
	if sub.conns.Load() < 2 {
		t.Errorf("subscriber never reconnected (conns %d)", sub.conns.Load())
	}
	// No position was refused: B never had to copy A afresh (since its own
	// restart in the first round, which is when it could have).
	_, metrics := b.Do(context.Background(), "GET", "/metrics", "", nil)
	if strings.Contains(string(metrics), `parkmesh_feed_resyncs_total{peer="`+a.ID+`"}`) {
		t.Errorf("B resynced A's feed:\n%s", grepLines(string(metrics), "parkmesh_feed_resyncs_total"))
	}
	for _, line := range strings.Split(b.Gateway.LogTail(100000), "\n") {
		if strings.Contains(line, "cannot resume our feed position") {
			t.Errorf("B resynced: %s", line)
		}
	}
}

func TestFeedRespectsShareWith(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a, b, c := parks[0], parks[1], parks[2]
	subB := subscribe(t, func() string { return b.GatewayURL }, b.Token(parktoken.Viewer), "parks="+a.ID)
	subC := subscribe(t, func() string { return c.GatewayURL }, c.Token(parktoken.Viewer), "parks="+a.ID)
	waitFor(t, "subscribers connected", 5*time.Second, func() bool { return subB.conns.Load() > 0 && subC.conns.Load() > 0 })
	shared := a.Create("projects", project("for B only", `,"visibility":"peers","share_with":["chengdu-hitech"]`))
	marker := a.Create("projects", project("for everyone", ""))
	subB.waitFor(t, "B gets the shared listing", 10*time.Second, func(e []received) bool { return countOf(shared.ID)(e) == 1 && countOf(marker.ID)(e) == 1 })
	evs := subC.waitFor(t, "C gets the marker", 10*time.Second, func(e []received) bool { return countOf(marker.ID)(e) == 1 })
	if countOf(shared.ID)(evs) != 0 {
		t.Errorf("C received a listing shared with B only")
	}
}

// smallReceiveBuffer makes a client whose socket holds little, so a stream
// it does not read backs up on the server quickly.
func smallReceiveBuffer() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
}

func TestSlowSubscriberIsCutOffResumably(t *testing.T) {
	opts := nodetest.Options{GatewayArgs: []string{"-feed-write-timeout", "1s", "-feed-max-lag", "100"}}
	a := nodetest.StartParkWith(t, "xian-hitech", opts)
	tok := a.Token(parktoken.Viewer)
	fast := subscribe(t, func() string { return a.GatewayURL }, tok, "")
	// The slow one connects and then reads nothing for a long while.
	req, _ := http.NewRequest("GET", a.GatewayURL+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	slowCtx, slowCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer slowCancel()
	res, err := smallReceiveBuffer().Do(req.WithContext(slowCtx))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("slow subscriber: %v", err)
	}
	defer res.Body.Close()
	waitFor(t, "fast subscriber connected", 5*time.Second, func() bool { return fast.conns.Load() > 0 })
	// Enough data to fill the slow subscriber's socket: big summaries.
	pad := strings.Repeat("长文本 long text ", 120)
	var ids []string
	for i := 0; i < 150; i++ {
		l := a.Create("projects", `{"title":"bulk `+fmt.Sprint(i)+`","summary":"`+pad+`","sectors":["ai"],"country":"CN","attrs":{"stage":"idea"}}`)
		ids = append(ids, l.ID)
	}
	assertExactlyOnce(t, fast, ids, 20*time.Second)
	time.Sleep(2 * time.Second) // past the write timeout
	// The slow subscriber was cut off: what it has ends, and its last id
	// resumes the rest with no gap.
	var lastID string
	var got []string
	readSSE(res.Body, func(id, typ, data string) {
		if typ == "" {
			var ev feed.Event
			json.Unmarshal([]byte(data), &ev)
			got = append(got, ev.Subject())
			lastID = id
		}
	})
	if len(got) >= len(ids) {
		t.Fatalf("slow subscriber received all %d events: it was never cut off", len(got))
	}
	if lastID == "" {
		t.Fatal("slow subscriber received nothing before being cut off")
	}
	req2, _ := http.NewRequest("GET", a.GatewayURL+"/api/v1/stream", nil)
	req2.Header.Set("Authorization", "Bearer "+tok)
	req2.Header.Set("Last-Event-ID", lastID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res2, err := http.DefaultClient.Do(req2.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	readSSE(res2.Body, func(id, typ, data string) {
		var ev feed.Event
		json.Unmarshal([]byte(data), &ev)
		got = append(got, ev.Subject())
		if len(got) == len(ids) {
			cancel()
		}
	})
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("after resuming, the slow subscriber has %d events, want the %d in order", len(got), len(ids))
	}
}

// A start the park stream cannot serve is refused before the stream
// begins, with a status and a message that say what to do: an id of
// another stream (or the older inbox stream) is a 400 naming
// Last-Event-ID; a position ahead of the park's own logs (restored from a
// backup) is a 409.
func TestStreamRefusesBadLastEventID(t *testing.T) {
	a := nodetest.StartPark(t, "xian-hitech")
	for _, tt := range []struct {
		id     string
		status int
	}{
		{"garbage", 400},
		{"s1.1.2.3.4", 400},
		{"v1.1.2.3", 400},
		{"c1~xian-hitech.999999.0.0", 409},
	} {
		req, _ := http.NewRequest("GET", a.GatewayURL+"/api/v1/stream", nil)
		req.Header.Set("Authorization", "Bearer "+a.Token(parktoken.Viewer))
		req.Header.Set("Last-Event-ID", tt.id)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		res, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error apierror.Error }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		cancel()
		if res.StatusCode != tt.status || body.Error.Field != "Last-Event-ID" || body.Error.Message == "" ||
			strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			t.Errorf("Last-Event-ID %q: %d %+v, want %d naming Last-Event-ID before any stream", tt.id, res.StatusCode, body.Error, tt.status)
		}
	}
}

func TestWebhookRetriesAndDeadLetters(t *testing.T) {
	// The receiver is on loopback, which webhooks may target only when
	// the operator allows it.
	opts := nodetest.Options{GatewayArgs: []string{"-webhook-attempts", "3", "-webhook-backoff", "100ms", "-webhook-allow-cidr", "127.0.0.0/8"}}
	a := nodetest.StartParkWith(t, "xian-hitech", opts)
	var calls atomic.Int32
	var okSig atomic.Bool
	const secret = "0123456789abcdef-secret"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(webhook.SignatureHeader)
		ts := strings.TrimPrefix(strings.Split(sig, ",")[0], "t=")
		var sec int64
		fmt.Sscan(ts, &sec)
		okSig.Store(sig == webhook.Sign(secret, time.Unix(sec, 0), body))
		n := calls.Add(1)
		if strings.Contains(string(body), "recovers") && n%2 == 0 {
			w.WriteHeader(204) // second try of each succeeds
			return
		}
		w.WriteHeader(500)
		io.WriteString(w, "secret-internal: upstream 10.1.2.3:5432 down")
	}))
	defer hook.Close()
	admin := a.Token(parktoken.Admin)
	ctx := context.Background()
	status, body := a.Do(ctx, "POST", "/api/v1/webhooks", admin, strings.NewReader(`{"url":"`+hook.URL+`","secret":"`+secret+`","filter":{"kinds":"projects"}}`))
	if status != 201 {
		t.Fatalf("register webhook: %d %s", status, body)
	}
	var wh webhook.Webhook
	json.Unmarshal(body, &wh)
	time.Sleep(300 * time.Millisecond)
	a.Create("projects", project("recovers after one failure", ""))
	waitFor(t, "first delivery done", 10*time.Second, func() bool {
		_, b := a.Do(ctx, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries?status=delivered", admin, nil)
		return strings.Contains(string(b), `"attempts":2`)
	})
	if !okSig.Load() {
		t.Error("webhook signature does not verify")
	}
	a.Create("projects", project("always fails", ""))
	waitFor(t, "dead letter", 10*time.Second, func() bool {
		_, b := a.Do(ctx, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries?status=dead", admin, nil)
		var d struct{ Deliveries []webhook.Delivery }
		json.Unmarshal(b, &d)
		// Generic: neither the answer's body nor its status code.
		return len(d.Deliveries) == 1 && d.Deliveries[0].Attempts == 3 && d.Deliveries[0].LastError == webhook.LastError5xx
	})
	// An organization does not match the filter: never delivered.
	a.Create("organizations", `{"title":"not for the hook","sectors":["ai"],"country":"CN","attrs":{"org_type":"lab"}}`)
	time.Sleep(500 * time.Millisecond)
	_, all := a.Do(ctx, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries", admin, nil)
	var d struct{ Deliveries []webhook.Delivery }
	json.Unmarshal(all, &d)
	if len(d.Deliveries) != 2 {
		t.Errorf("deliveries: %s", all)
	}
	if s, b := a.Do(ctx, "POST", "/api/v1/webhooks", admin, strings.NewReader(`{"url":"ftp://x"}`)); s != 400 || !strings.Contains(string(b), `"field":"url"`) {
		t.Errorf("bad webhook url: %d %s", s, b)
	}
}

// TestMalformedPeerEventsAreSkipped: a peer whose feed sends malformed
// events has them logged and counted, and the rest of its stream applies.
func TestMalformedPeerEventsAreSkipped(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	good := func(n int) string {
		l := listing.Listing{ID: listing.NewID(listing.KindProject, time.Now()), Park: a.ID, Kind: listing.KindProject,
			Title: fmt.Sprintf("good %d", n), Sectors: []string{"ai"}, Country: "CN", Visibility: listing.Club, Version: 1,
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), Attrs: listing.Attrs{Stage: "idea"}}
		return string(feed.Marshal(feed.For(a.ID, listing.KindProject, listing.Change{Seq: int64(n), FirstSeq: int64(n), Op: listing.OpCreated,
			ListingID: l.ID, Version: 1, At: time.Now().UTC(), Listing: &l}, b.ID, 0)))
	}
	goodOne, goodTwo := good(1), good(2)
	var served atomic.Bool
	stop := make(chan struct{})
	idle := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/federation/v1/changes" || served.Swap(true) {
			idle(r) // later connections: an idle stream
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: v1.0.1.0\ndata: %s\n\n", goodOne)
		fmt.Fprintf(w, "id: v1.0.2.0\ndata: {\"specversion\":\"1.0\",\"type\":\"bogus\"\n\n")
		fmt.Fprintf(w, "id: v1.0.3.0\ndata: not json at all\n\n")
		fmt.Fprintf(w, "id: v1.0.4.0\ndata: %s\n\n", strings.Replace(goodTwo, `"park":"xian-hitech"`, `"park":"somewhere-else"`, 1))
		fmt.Fprintf(w, "id: v1.0.5.0\ndata: %s\n\n", goodTwo)
		w.(http.Flusher).Flush()
		idle(r)
	}))
	defer func() { close(stop); fake.Close() }()
	sub := subscribe(t, func() string { return b.GatewayURL }, b.Token(parktoken.Viewer), "parks="+a.ID)
	waitFor(t, "subscriber connected", 5*time.Second, func() bool { return sub.conns.Load() > 0 })
	repoint(t, b, a.ID, fake.URL)
	// B's follower reconnects to the new URL once its current stream ends.
	a.RestartGateway()
	evs := sub.waitFor(t, "both good events", 20*time.Second, func(e []received) bool { return len(e) >= 2 })
	if len(evs) != 2 || evs[0].Title != "good 1" || evs[1].Title != "good 2" {
		t.Errorf("events after malformed ones: %+v", evs)
	}
	_, metrics := b.Do(context.Background(), "GET", "/metrics", "", nil)
	if !strings.Contains(string(metrics), `parkmesh_feed_malformed_events_total{peer="xian-hitech"} 3`) {
		t.Errorf("malformed events not counted as 3:\n%s", grepLines(string(metrics), "malformed"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Feed tokens that expire every 2 s end the follower's stream again and
// again while a peer writes: every listing still reaches the subscriber
// exactly once.
func TestFeedSurvivesTokenExpiries(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{GatewayArgs: []string{"-feed-token-ttl", "2s"}}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	sub := subscribe(t, func() string { return b.GatewayURL }, b.Token(parktoken.Viewer), "parks="+a.ID)
	waitFor(t, "subscriber connected", 5*time.Second, func() bool { return sub.conns.Load() > 0 })
	ids := <-writer(t, a, 24, 250*time.Millisecond, "across token expiries")
	if len(ids) != 24 {
		t.Fatalf("A created %d of 24", len(ids))
	}
	assertExactlyOnce(t, sub, ids, 20*time.Second)
	_, metrics := b.Do(context.Background(), "GET", "/metrics", "", nil)
	var reconnects float64
	for _, line := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(line, `parkmesh_feed_reconnects_total{peer="xian-hitech"} `); ok {
			reconnects, _ = strconv.ParseFloat(v, 64)
		}
	}
	// About 6 s of writing with 2 s tokens: the stream was ended at least twice.
	if reconnects < 2 {
		t.Errorf("B's follower reconnected %v times; its 2 s tokens should have ended the stream at least twice", reconnects)
	}
}
