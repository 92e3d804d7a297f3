package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// fedEvent is one event of a federation feed as a peer reads it.
type fedEvent struct {
	ID, Type string
	Data     string
}

// readFeed opens to's federation feed as from, after lastID ("" for
// none), and reads it until the feed says it has caught up (synced). It
// returns the answer's status, the position it caught up at and the
// CloudEvents read before that (none when the status is not 200).
func readFeed(t *testing.T, from, to *nodetest.Park, lastID string) (int, string, []fedEvent) {
	t.Helper()
	tok, err := parktoken.IssueFederation(from.Keys, to.ID, parktoken.ScopeChanges, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", to.FederationURL+"/federation/v1/changes", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, "", nil
	}
	var evs []fedEvent
	synced := ""
	readSSE(res.Body, func(id, typ, data string) {
		switch {
		case synced != "":
		case typ == feed.SyncedType:
			synced = id
			cancel()
		case typ == "": // the position event and the like carry no CloudEvent
			evs = append(evs, fedEvent{id, typ, data})
		}
	})
	if synced == "" {
		t.Fatalf("%s's feed never said it had caught up; read %d events", to.ID, len(evs))
	}
	return res.StatusCode, synced, evs
}

// replay reads to's federation feed as from, from no position, until it
// has caught up: the full current copy from sees.
func replay(t *testing.T, from, to *nodetest.Park) []fedEvent {
	t.Helper()
	status, _, evs := readFeed(t, from, to, "")
	if status != http.StatusOK {
		t.Fatalf("%s replaying %s's feed: %d", from.ID, to.ID, status)
	}
	return evs
}

// TestReplayFromNoPositionSendsCurrentStateOnly: a peer that replays the
// feed from no position receives each listing once, as it may see it now —
// never an earlier version, never contact data withdrawn from it, a
// withdrawn (identity only) for what it could see before; a park that never
// could see a listing learns nothing about it.
func TestReplayFromNoPositionSendsCurrentStateOnly(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a, b, c := parks[0], parks[1], parks[2]
	ctx := context.Background()
	editor := a.Token(parktoken.Editor)
	put := func(kind, id, body string) {
		t.Helper()
		if s, out := a.Do(ctx, "PUT", "/api/v1/"+kind+"/"+id, editor, strings.NewReader(body)); s != 200 {
			t.Fatalf("update %s: %d %s", id, s, out)
		}
	}
	// Shared with B only; renamed; then made private.
	shared := a.Create("projects", project("first-version-title copper", `,"visibility":"peers","share_with":["chengdu-hitech"]`))
	put("projects", shared.ID, project("second-version-title copper", `,"visibility":"peers","share_with":["chengdu-hitech"]`))
	put("projects", shared.ID, project("third-version-title copper", `,"visibility":"private"`))
	// A club project renamed: only the new title may travel.
	renamed := a.Create("projects", project("old-club-title copper", ""))
	put("projects", renamed.ID, project("new-club-title copper", ""))
	// A person who consented to share their contact, then withdrew it.
	person := `{"title":"Dr. Wang, photonics","sectors":["ai"],"country":"CN","attrs":{"availability":["mentor"],"contact":{"email":"wang@example.cn","phone":"+86 29 5555"},"consent":{"share_contact":%s}}}`
	tal := a.Create("talent", strings.Replace(person, "%s", "true", 1))
	put("talent", tal.ID, strings.Replace(person, "%s", "false", 1))

	// The gateway's feed tails the services: wait until it has read the
	// last change (A's own club index, fed by that tail, shows it).
	waitFor(t, "A's feed to have read the withdrawn consent", 10*time.Second, func() bool {
		_, body := a.Do(ctx, "GET", "/api/v1/search?scope=club&parks="+a.ID+"&kinds=talent", a.Token(parktoken.Viewer), nil)
		return strings.Contains(string(body), `"share_contact":false`)
	})
	for _, viewer := range []*nodetest.Park{b, c} {
		evs := replay(t, viewer, a)
		byID := map[string][]fedEvent{}
		for _, e := range evs {
			for _, leaked := range []string{"first-version-title", "second-version-title", "third-version-title", "old-club-title", "wang@example.cn", "+86 29 5555"} {
				if strings.Contains(e.Data, leaked) {
					t.Errorf("%s received %q: %s", viewer.ID, leaked, e.Data)
				}
			}
			var ev feed.Event
			if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
				t.Fatalf("%s: not a CloudEvent: %s", viewer.ID, e.Data)
			}
			byID[ev.Subject()] = append(byID[ev.Subject()], e)
		}
		typeOf := func(id string) []string {
			var out []string
			for _, e := range byID[id] {
				var ev feed.Event
				json.Unmarshal([]byte(e.Data), &ev)
				out = append(out, strings.TrimPrefix(ev.Type(), "org.parkmesh.listing."))
			}
			return out
		}
		if got := strings.Join(typeOf(renamed.ID), ","); got != "created" || !strings.Contains(byID[renamed.ID][0].Data, "new-club-title") {
			t.Errorf("%s: the renamed club listing arrived as %q, want once, created, current title", viewer.ID, got)
		}
		if got := strings.Join(typeOf(tal.ID), ","); got != "created" {
			t.Errorf("%s: the talent arrived as %q, want once, created (without contact)", viewer.ID, got)
		}
		switch viewer {
		case b: // could see it before: told it is withdrawn, identity only
			if got := strings.Join(typeOf(shared.ID), ","); got != "withdrawn" {
				t.Errorf("B: the listing made private arrived as %q, want one withdrawn", got)
			} else {
				var ev feed.Event
				json.Unmarshal([]byte(byID[shared.ID][0].Data), &ev)
				var fields map[string]any
				json.Unmarshal(ev.Data(), &fields)
				if len(fields) != 4 || fields["id"] != shared.ID || fields["park"] != a.ID {
					t.Errorf("B: withdrawn data %v, want id, park, kind, version only", fields)
				}
			}
		case c: // never could see it: nothing at all, not even its id
			if len(byID[shared.ID]) != 0 {
				t.Errorf("C learned of a listing it never could see: %v", byID[shared.ID])
			}
			for _, e := range evs {
				if strings.Contains(e.Data, shared.ID) {
					t.Errorf("C's feed names the listing it never could see: %s", e.Data)
				}
			}
		}
	}
}

// indexCount is how many listings (live, not tombstones) of park p's
// club index holds, read from its file.
func indexCount(t *testing.T, p *nodetest.Park, park string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(p.DataDir, clubindex.FileName)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM listings WHERE park = ?`, park).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNewPeeringBackfillsAndDeletePurges: a new peering starts with the
// full copy of what the peer may see (never a private or unshared
// listing), then follows live; deleting the peering purges the copy.
func TestNewPeeringBackfillsAndDeletePurges(t *testing.T) {
	a := nodetest.StartPark(t, "xian-hitech")
	b := nodetest.StartPark(t, "chengdu-hitech")
	var club []listing.Listing
	for i := range 12 {
		club = append(club, a.Create("projects", project("backfill copper "+string(rune('a'+i)), "")))
	}
	private := a.Create("projects", project("backfill copper private", `,"visibility":"private"`))
	unshared := a.Create("projects", project("backfill copper elsewhere", `,"visibility":"peers","share_with":["haifa-lifescience"]`))
	org := a.Create("organizations", `{"title":"Backfill incubator copper","sectors":["ai"],"country":"CN","attrs":{"org_type":"incubator"}}`)

	nodetest.Peer(t, a, b)
	ans := indexSearch(t, b, "q=copper&parks="+a.ID+"&limit=100", len(club)+1)
	got := map[string]bool{}
	for _, l := range ans.Results {
		got[l.ID] = true
	}
	for _, l := range append(club, org) {
		if !got[l.ID] {
			t.Errorf("backfill missed %s %q", l.ID, l.Title)
		}
	}
	if got[private.ID] || got[unshared.ID] {
		t.Errorf("backfill copied a listing B may not see")
	}
	if n := indexCount(t, b, a.ID); n != len(club)+1 {
		t.Errorf("B's club index holds %d of A's listings, want %d", n, len(club)+1)
	}
	// Then live.
	later := a.Create("projects", project("backfill copper later", ""))
	indexSearch(t, b, "q=copper&parks="+a.ID+"&limit=100", len(club)+2)
	// A listing of A read from B: fresh from A.
	s, body := b.Do(context.Background(), "GET", "/api/v1/club/"+a.ID+"/projects/"+later.ID, b.Token(parktoken.Viewer), nil)
	var one clubsearch.ListingAnswer
	json.Unmarshal(body, &one)
	if s != 200 || one.Source != clubsearch.SourceOrigin || one.Stale || one.Listing == nil || one.Listing.ID != later.ID {
		t.Errorf("B reads A's listing: %d %s", s, body)
	}

	// B deletes the peering: A's listings leave B's index.
	if s, body := b.Do(context.Background(), "DELETE", "/api/v1/peerings/"+a.ID, b.Token(parktoken.Admin), nil); s != 204 {
		t.Fatalf("delete peering: %d %s", s, body)
	}
	waitFor(t, "A's listings purged from B's club index", 10*time.Second, func() bool { return indexCount(t, b, a.ID) == 0 })
	ans, status, _ := clubSearch(t, b, "q=copper")
	if status != 200 || len(ans.Results) != 0 {
		t.Errorf("B's club search after the peering was deleted: %d, %d results", status, len(ans.Results))
	}
}

// TestClubSearchFromIndexWithAPeerStopped: with one peer frozen (SIGSTOP:
// its connections stay open, it answers nothing), a club search from the
// index answers at once with that park stale (as_of) and its listings
// present; mode=live still answers within its budget, that park timed out
// or its breaker open. Single listings of it come from the index, stale.
func TestClubSearchFromIndexWithAPeerStopped(t *testing.T) {
	opts := nodetest.Options{GatewayArgs: []string{"-feed-heartbeat", "1s", "-feed-idle-timeout", "3s"}}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a, c := parks[0], parks[2]
	var cListing listing.Listing
	for _, p := range parks {
		l := p.Create("projects", project(p.ID+" frozen copper", ""))
		if p == c {
			cListing = l
		}
	}
	indexSearch(t, a, "q=copper", 3)

	pid := c.Gateway.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	stoppedAt := time.Now()

	var ans clubAnswer
	waitFor(t, "C stale in A's club index", 20*time.Second, func() bool {
		var status int
		ans, status, _ = clubSearch(t, a, "q=copper")
		return status == 200 && statusOf(ans, c.ID) == search.StatusStale
	})
	if !ans.Partial || len(ans.Results) != 3 {
		t.Errorf("index search with C stopped: partial %v, %d results; want partial, C's listing still there", ans.Partial, len(ans.Results))
	}
	for _, d := range ans.Parks.Details {
		if d.Park == c.ID && (d.AsOf == nil || d.AsOf.After(stoppedAt.Add(time.Second)) || d.Hits != 1) {
			t.Errorf("C's part: %+v, want stale as of before it stopped, its one hit", d)
		}
		if d.Park != c.ID && d.Status != search.StatusLive {
			t.Errorf("%s's part: %+v, want live", d.Park, d)
		}
	}
	// A required park that is not live fails the index search clearly.
	if _, status, _ := clubSearch(t, a, "q=copper&required="+c.ID); status != 503 {
		t.Errorf("required stale park: %d, want 503", status)
	}
	// mode=live asks C now: it answers within the budget without C.
	live, status, _ := clubSearch(t, a, "q=copper&mode=live&timeout_ms=1000")
	if st := statusOf(live, c.ID); status != 200 || (st != search.StatusTimeout && st != search.StatusCircuitOpen) || !live.Partial {
		t.Errorf("live search with C stopped: %d, C %s, partial %v", status, st, live.Partial)
	}
	// C's listing read from A: the index's copy, marked stale.
	s, body := a.Do(context.Background(), "GET", "/api/v1/club/"+c.ID+"/projects/"+cListing.ID, a.Token(parktoken.Viewer), nil)
	var one clubsearch.ListingAnswer
	json.Unmarshal(body, &one)
	if s != 200 || one.Source != clubsearch.SourceIndex || !one.Stale || one.AsOf == nil || one.Listing == nil || one.Listing.ID != cListing.ID {
		t.Errorf("A reads stopped C's listing: %d %s", s, body)
	}

	// C thaws: its part turns live again.
	syscall.Kill(pid, syscall.SIGCONT)
	waitFor(t, "C live again", 30*time.Second, func() bool {
		ans, status, _ := clubSearch(t, a, "q=copper")
		return status == 200 && statusOf(ans, c.ID) == search.StatusLive
	})
}
