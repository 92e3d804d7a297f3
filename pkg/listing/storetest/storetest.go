// Package storetest is the contract every listing.Store implementation must
// meet. An implementation's tests call Run with a function that opens its
// store on a given directory; opening twice on the same directory must see
// the same data.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Opener opens the store kept in dir.
type Opener func(tb testing.TB, dir string) listing.Store

// NewProject returns a valid project listing with the given title.
func NewProject(title string, now time.Time) *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindProject, now), Park: "xian-hitech", Kind: listing.KindProject,
		Title: title, Sectors: []string{"new-materials"}, Country: "CN", City: "西安",
		Seeking: []string{"investment"}, Visibility: listing.Club, Version: 1,
		CreatedAt: now, UpdatedAt: now, Attrs: listing.Attrs{Stage: "pilot", TRL: 6},
	}
}

// Run runs the contract suite.
func Run(t *testing.T, open Opener) {
	t.Run("CreateGetUpdateDelete", func(t *testing.T) { testCRUD(t, open) })
	t.Run("ReopenKeepsDataAndSequence", func(t *testing.T) { testReopen(t, open) })
	t.Run("ChangesAreCurrentState", func(t *testing.T) { testChanges(t, open) })
	t.Run("ConsentWithdrawn", func(t *testing.T) { testConsentWithdrawn(t, open) })
	t.Run("CompactKeepsChangesAndSequence", func(t *testing.T) { testCompact(t, open) })
	t.Run("OriginFilters", func(t *testing.T) { testOriginFilters(t, open) })
	t.Run("SearchChineseAndEnglish", func(t *testing.T) { testSearch(t, open) })
	t.Run("FiltersAndCursor", func(t *testing.T) { testFilters(t, open) })
	t.Run("Visibility", func(t *testing.T) { testVisibility(t, open) })
	t.Run("FacetCounts", func(t *testing.T) { testFacets(t, open) })
}

func ctx(t *testing.T) context.Context { return t.Context() }

func testCRUD(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC().Truncate(time.Microsecond)
	l := NewProject("纳米超级铜 Nano copper", now)
	if err := s.Create(ctx(t), l); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx(t), l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != l.Title || got.Version != 1 || !got.CreatedAt.Equal(now) {
		t.Fatalf("got %+v, want %+v", got, l)
	}
	upd := *got
	upd.Title = "纳米超级铜研究院"
	upd.UpdatedAt = now.Add(time.Second)
	if err := s.Update(ctx(t), &upd, 1); err != nil {
		t.Fatal(err)
	}
	if upd.Version != 2 {
		t.Errorf("version after update = %d, want 2", upd.Version)
	}
	stale := *got
	stale.Title = "stale"
	if err := s.Update(ctx(t), &stale, 1); !apierror.Is(err, apierror.PreconditionFailed) {
		t.Errorf("stale update: err = %v, want precondition_failed", err)
	}
	if got, _ := s.Get(ctx(t), l.ID); got.Title != "纳米超级铜研究院" {
		t.Errorf("title after stale update = %q", got.Title)
	}
	if _, err := s.Delete(ctx(t), l.ID, 1, now); !apierror.Is(err, apierror.PreconditionFailed) {
		t.Errorf("stale delete: err = %v", err)
	}
	final, err := s.Delete(ctx(t), l.ID, 2, now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if final.Version != 3 {
		t.Errorf("deleted version = %d, want 3", final.Version)
	}
	if _, err := s.Get(ctx(t), l.ID); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("get after delete: err = %v, want not_found", err)
	}
	if _, err := s.Delete(ctx(t), l.ID, 0, now); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("second delete: err = %v, want not_found", err)
	}
	if page, err := s.Search(ctx(t), listing.Query{Text: "纳米"}); err != nil || len(page.Results) != 0 {
		t.Errorf("deleted listing still found: %v %v", page, err)
	}
}

func testReopen(t *testing.T, open Opener) {
	dir := t.TempDir()
	s := open(t, dir)
	now := time.Now().UTC()
	var ids []string
	for i := range 3 {
		l := NewProject(fmt.Sprintf("硅谷项目 %d", i), now)
		if err := s.Create(ctx(t), l); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	if _, err := s.Delete(ctx(t), ids[2], 0, now); err != nil {
		t.Fatal(err)
	}
	seq, _ := s.LastSeq(ctx(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir)
	seq2, err := s2.LastSeq(ctx(t))
	if err != nil || seq2 != seq || seq != 4 {
		t.Fatalf("last seq after reopen = %d (%v), before = %d, want 4", seq2, err, seq)
	}
	for _, id := range ids[:2] {
		if _, err := s2.Get(ctx(t), id); err != nil {
			t.Errorf("get %s after reopen: %v", id, err)
		}
	}
	page, err := s2.Search(ctx(t), listing.Query{Text: "硅谷"})
	if err != nil || len(page.Results) != 2 {
		t.Fatalf("search after reopen: %d results, %v", len(page.Results), err)
	}
	l := NewProject("after reopen", now)
	if err := s2.Create(ctx(t), l); err != nil {
		t.Fatal(err)
	}
	ch, _ := s2.Changes(ctx(t), seq, 10)
	if len(ch) != 1 || ch[0].Seq != seq+1 {
		t.Errorf("change after reopen = %+v, want seq %d", ch, seq+1)
	}
}

func testChanges(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC().Truncate(time.Microsecond)
	sig := s.ChangeSignal()
	a := NewProject("a", now)
	must(t, s.Create(ctx(t), a)) // 1
	select {
	case <-sig:
	default:
		t.Error("change signal not closed after a commit")
	}
	b := NewProject("b", now)
	c := NewProject("c", now)
	e := NewProject("e", now)
	e.Visibility, e.ShareWith = listing.Peers, []string{"chengdu-hitech"}
	must(t, s.Create(ctx(t), b)) // 2
	must(t, s.Create(ctx(t), c)) // 3
	must(t, s.Create(ctx(t), e)) // 4
	a2 := *a
	a2.Summary = "changed"
	must(t, s.Update(ctx(t), &a2, 0))        // 5
	_, err := s.Delete(ctx(t), b.ID, 0, now) // 6
	must(t, err)
	c2 := *c
	c2.Visibility = listing.Private
	must(t, s.Update(ctx(t), &c2, 0)) // 7
	e2 := *e
	e2.ShareWith = []string{"haifa-lifescience"}
	must(t, s.Update(ctx(t), &e2, 0)) // 8
	d := NewProject("d", now)
	must(t, s.Create(ctx(t), d)) // 9
	// A failed write leaves no change behind.
	if err := s.Update(ctx(t), &a2, 99); err == nil {
		t.Fatal("update with wrong version succeeded")
	}

	// Each listing once, at its latest change, in sequence order.
	ch, err := s.Changes(ctx(t), 0, 100)
	must(t, err)
	type want struct {
		op              listing.Op
		id              string
		seq, first, ver int64
		audience        string
	}
	wants := []want{
		{listing.OpUpdated, a.ID, 5, 1, 2, "club"},
		{listing.OpDeleted, b.ID, 6, 2, 2, "club"},
		{listing.OpUpdated, c.ID, 7, 3, 2, "club"},
		{listing.OpUpdated, e.ID, 8, 4, 2, "[chengdu-hitech haifa-lifescience]"},
		{listing.OpCreated, d.ID, 9, 9, 1, "club"},
	}
	if len(ch) != len(wants) {
		t.Fatalf("got %d changes, want %d: %+v", len(ch), len(wants), ch)
	}
	for i, w := range wants {
		c := ch[i]
		aud := fmt.Sprint(c.Audience.Parks)
		if c.Audience.Club {
			aud = "club"
		}
		if c.Op != w.op || c.ListingID != w.id || c.Seq != w.seq || c.FirstSeq != w.first || c.Version != w.ver || aud != w.audience {
			t.Errorf("change %d = %s %s seq %d first %d v%d audience %s; want %s %s seq %d first %d v%d audience %s",
				i, c.Op, c.ListingID, c.Seq, c.FirstSeq, c.Version, aud, w.op, w.id, w.seq, w.first, w.ver, w.audience)
		}
		if c.Park != "xian-hitech" || c.Kind != listing.KindProject || c.At.IsZero() {
			t.Errorf("change %d: park %q kind %q at %s", i, c.Park, c.Kind, c.At)
		}
		if c.Op == listing.OpDeleted {
			if c.Listing != nil {
				t.Errorf("tombstone of %s carries a listing: %+v", c.ListingID, c.Listing)
			}
		} else if c.Listing == nil || c.Listing.ID != c.ListingID || c.Listing.Version != c.Version {
			t.Errorf("change %d: listing %+v, want the current state", i, c.Listing)
		}
	}
	// Only the current state: A's first version, C's club version and E's
	// first share are nowhere.
	if ch[0].Listing.Summary != "changed" || ch[2].Listing.Visibility != listing.Private ||
		fmt.Sprint(ch[3].Listing.ShareWith) != "[haifa-lifescience]" {
		t.Errorf("states read: %+v %+v %+v", ch[0].Listing, ch[2].Listing, ch[3].Listing)
	}
	if !ch[1].Audience.Includes("anyone") || ch[3].Audience.Includes("anyone") || !ch[3].Audience.Includes("chengdu-hitech") {
		t.Errorf("audiences: %+v %+v", ch[1].Audience, ch[3].Audience)
	}
	// After a position: only what changed later, still each once.
	tail, _ := s.Changes(ctx(t), 5, 100)
	if len(tail) != 4 || tail[0].ListingID != b.ID || tail[0].Seq != 6 {
		t.Errorf("Changes(after=5) = %+v", tail)
	}
	page, _ := s.Changes(ctx(t), 0, 2)
	if len(page) != 2 || page[1].Seq != 6 {
		t.Errorf("Changes(0, limit 2) = %+v", page)
	}
	if seq, err := s.LastSeq(ctx(t)); err != nil || seq != 9 {
		t.Errorf("LastSeq = %d, %v; want 9", seq, err)
	}
	// SeqBefore finds where a point in time falls in the index.
	if seq, err := s.SeqBefore(ctx(t), ch[0].At.Add(-time.Second)); err != nil || seq != 0 {
		t.Errorf("SeqBefore(before everything) = %d, %v", seq, err)
	}
	if seq, _ := s.SeqBefore(ctx(t), time.Now().Add(time.Hour)); seq != 9 {
		t.Errorf("SeqBefore(future) = %d, want 9", seq)
	}
}

// NewTalent returns a valid talent listing holding a person's contact data,
// shared with their consent.
func NewTalent(title string, now time.Time) *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindTalent, now), Park: "xian-hitech", Kind: listing.KindTalent,
		Title: title, Sectors: []string{"ai"}, Country: "CN", Visibility: listing.Club, Version: 1,
		CreatedAt: now, UpdatedAt: now, Attrs: listing.Attrs{
			Expertise: []string{"robotics"}, Availability: []string{"mentor"},
			Contact: &listing.Contact{Email: "li.wei@example.cn", Phone: "+86 29 8888 0000"},
			Consent: &listing.Consent{ShareContact: true},
		},
	}
}

// A person withdraws consent: the read gives the current state (consent
// off), never the consenting one; their tombstone carries nothing of them.
func testConsentWithdrawn(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC()
	p := NewTalent("李伟 robotics mentor", now)
	must(t, s.Create(ctx(t), p))
	p2 := *p
	p2.Attrs.Consent = &listing.Consent{ShareContact: false}
	must(t, s.Update(ctx(t), &p2, 0))
	ch, err := s.Changes(ctx(t), 0, 10)
	must(t, err)
	if len(ch) != 1 || ch[0].Listing == nil || ch[0].Listing.Attrs.Consent == nil || ch[0].Listing.Attrs.Consent.ShareContact || ch[0].Version != 2 {
		t.Fatalf("changes after consent withdrawn = %+v", ch)
	}
	_, err = s.Delete(ctx(t), p.ID, 0, now)
	must(t, err)
	ch, err = s.Changes(ctx(t), 0, 10)
	must(t, err)
	if len(ch) != 1 || ch[0].Op != listing.OpDeleted || ch[0].Listing != nil {
		t.Fatalf("changes after delete = %+v", ch)
	}
	b := jsonOf(t, ch[0])
	for _, secret := range []string{"li.wei", "8888", "李伟", "robotics"} {
		if strings.Contains(b, secret) {
			t.Errorf("tombstone %s carries %q", b, secret)
		}
	}
}

// Compact trims the change log's history only: the changes read, the
// newest sequence and the next one issued are what they were.
func testCompact(t *testing.T, open Opener) {
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	var ids []string
	for i := range 3 {
		l := NewProject(fmt.Sprintf("p%d", i), t0.Add(time.Duration(i)*time.Minute))
		must(t, s.Create(ctx(t), l))
		ids = append(ids, l.ID)
	}
	upd, err := s.Get(ctx(t), ids[0])
	must(t, err)
	upd.UpdatedAt = t0.Add(3 * time.Minute)
	must(t, s.Update(ctx(t), upd, 0))
	before, err := s.Changes(ctx(t), 0, 100)
	must(t, err)
	last, _ := s.LastSeq(ctx(t))

	// Changes at t0 and t0+1m are older than the cutoff; the update of
	// the first listing (t0+3m) and the third's creation (t0+2m) are not.
	if n, err := s.Compact(ctx(t), t0.Add(90*time.Second)); err != nil || n != 2 {
		t.Errorf("Compact(t0+90s) = %d, %v; want 2", n, err)
	}
	if n, err := s.Compact(ctx(t), t0.Add(90*time.Second)); err != nil || n != 0 {
		t.Errorf("Compact(t0+90s) again = %d, %v; want 0", n, err)
	}
	if n, err := s.Compact(ctx(t), time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("Compact(future) = %d, %v; want the 2 left", n, err)
	}
	after, err := s.Changes(ctx(t), 0, 100)
	must(t, err)
	if b, a := jsonOf(t, before), jsonOf(t, after); a != b {
		t.Errorf("changes read moved with compaction:\nbefore %s\nafter  %s", b, a)
	}
	must(t, s.Close())
	s = open(t, dir)
	if seq, err := s.LastSeq(ctx(t)); err != nil || seq != last {
		t.Errorf("LastSeq after compacting everything and reopening = %d, %v; want %d", seq, err, last)
	}
	l := NewProject("after compaction", time.Now().UTC())
	must(t, s.Create(ctx(t), l))
	if ch, _ := s.Changes(ctx(t), last, 10); len(ch) != 1 || ch[0].Seq != last+1 {
		t.Errorf("change after compaction = %+v, want seq %d", ch, last+1)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testSearch(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC()
	mkIn := func(sector, title, summary string) string {
		l := NewProject(title, now)
		l.Summary, l.Sectors = summary, []string{sector}
		must(t, s.Create(ctx(t), l))
		return l.ID
	}
	mk := func(title, summary string) string { return mkIn("other", title, summary) }
	titleHit := mk("硅谷离岸创新中心 Silicon Valley offshore centre", "")
	bodyHit := mk("Offshore incubator", "在硅谷设立孵化器，连接西安与美国")
	_ = mk("芯片设计 chip design", "Semiconductor IP")
	copper := mkIn("new-materials", "Nano Super-Copper Research Institute", "纳米超级铜 新材料 研究院")
	_ = mk("新能源汽车", "Electric vehicles 新能源")
	// No word of 新材料 in its text, but its sector is new-materials: the
	// query's vocabulary code finds it, ranked below the text match.
	bySector := mkIn("new-materials", "铜铬锆合金 CuCrZr rotor", "")

	cases := []struct {
		q    string
		want []string // in rank order
	}{
		{"硅谷", []string{titleHit, bodyHit}},
		{"新材料", []string{copper, bySector}},
		{"新材", []string{copper}},
		{"COPPER", []string{copper}},
		{"copper institute", []string{copper}},
		{"材", []string{copper}},
		{"谷创", nil}, // not a word of either text ("硅谷离岸")
	}
	for _, c := range cases {
		page, err := s.Search(ctx(t), listing.Query{Text: c.q})
		if err != nil {
			t.Fatalf("search %q: %v", c.q, err)
		}
		var got []string
		for _, r := range page.Results {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("search %q = %v, want %v", c.q, got, c.want)
		}
	}
}

func testFilters(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC()
	var ai []string
	for i := range 7 {
		l := NewProject(fmt.Sprintf("项目 %d", i), now.Add(time.Duration(i)*time.Second))
		l.UpdatedAt = l.CreatedAt
		if i%2 == 0 {
			l.Sectors = []string{"ai", "biomedicine"}
			l.Country = "US"
			ai = append(ai, l.ID)
		}
		must(t, s.Create(ctx(t), l))
	}
	q := listing.Query{Sectors: []string{"ai"}, Country: "US", Limit: 3}
	var got []string
	for pages := 0; ; pages++ {
		page, err := s.Search(ctx(t), q)
		must(t, err)
		for _, r := range page.Results {
			got = append(got, r.ID)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	// newest first
	want := []string{ai[3], ai[2], ai[1], ai[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged filter results = %v, want %v", got, want)
	}
	// ranked pagination covers every hit once
	q = listing.Query{Text: "项目", Limit: 2}
	seen := map[string]bool{}
	for {
		page, err := s.Search(ctx(t), q)
		must(t, err)
		for _, r := range page.Results {
			if seen[r.ID] {
				t.Errorf("%s returned twice", r.ID)
			}
			seen[r.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	if len(seen) != 7 {
		t.Errorf("ranked pagination returned %d listings, want 7", len(seen))
	}
	// ranked pagination across tiers: title matches first, none twice
	var bodyOnly []string
	for i := range 3 {
		l := NewProject(fmt.Sprintf("other %d", i), now)
		l.Summary = "这个项目在硅谷"
		must(t, s.Create(ctx(t), l))
		bodyOnly = append(bodyOnly, l.ID)
	}
	q = listing.Query{Text: "项目", Limit: 2}
	var order []string
	for {
		page, err := s.Search(ctx(t), q)
		must(t, err)
		for _, r := range page.Results {
			order = append(order, r.ID)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	if len(order) != 10 {
		t.Fatalf("cross-tier pagination returned %d listings, want 10", len(order))
	}
	for i, id := range order {
		isBody := id == bodyOnly[0] || id == bodyOnly[1] || id == bodyOnly[2]
		if isBody != (i >= 7) {
			t.Errorf("position %d: %s (body-only=%v); title matches must come first", i, id, isBody)
		}
	}
	// updated_since
	page, err := s.Search(ctx(t), listing.Query{UpdatedSince: now.Add(5 * time.Second), Text: "项目"})
	must(t, err)
	if len(page.Results) != 2 {
		t.Errorf("updated_since: %d results, want 2", len(page.Results))
	}
	// a cursor of another query, or tampered, is refused
	page, _ = s.Search(ctx(t), listing.Query{Limit: 1})
	if _, err := s.Search(ctx(t), listing.Query{Limit: 1, Country: "CN", Cursor: page.NextCursor}); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("cursor of another query: err = %v, want invalid", err)
	}
	tampered := []byte(page.NextCursor)
	tampered[2] ^= 1
	if _, err := s.Search(ctx(t), listing.Query{Limit: 1, Cursor: string(tampered)}); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("tampered cursor: err = %v, want invalid", err)
	}
}

func testVisibility(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC()
	club := NewProject("club 芯片", now)
	private := NewProject("private 芯片", now)
	private.Visibility = listing.Private
	shared := NewProject("shared 芯片", now)
	shared.Visibility, shared.ShareWith = listing.Peers, []string{"chengdu-hitech"}
	for _, l := range []*listing.Listing{club, private, shared} {
		must(t, s.Create(ctx(t), l))
	}
	for _, c := range []struct {
		peer string
		want int
	}{{"chengdu-hitech", 2}, {"haifa-lifescience", 1}} {
		page, err := s.Search(ctx(t), listing.Query{Text: "芯片", VisibleTo: c.peer})
		must(t, err)
		if len(page.Results) != c.want {
			t.Errorf("visible to %s: %d results, want %d", c.peer, len(page.Results), c.want)
		}
		for _, r := range page.Results {
			if !r.VisibleTo(c.peer) {
				t.Errorf("%s sees %s (%s)", c.peer, r.Title, r.Visibility)
			}
		}
	}
}

// A service's store holds one park's listings of one kind; it still
// answers the club index's filters on park and kind, and counts per park.
func testOriginFilters(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC()
	for i := range 3 {
		must(t, s.Create(ctx(t), NewProject(fmt.Sprintf("芯片 %d", i), now)))
	}
	home, other := "xian-hitech", "haifa-lifescience"
	for _, c := range []struct {
		name string
		q    listing.Query
		want int
	}{
		{"parks: this one", listing.Query{Parks: []string{home, other}}, 3},
		{"parks: another", listing.Query{Parks: []string{other}}, 0},
		{"exclude: this one", listing.Query{ExcludeParks: []string{home}}, 0},
		{"exclude: another", listing.Query{ExcludeParks: []string{other}}, 3},
		{"kinds: this one", listing.Query{Kinds: []listing.Kind{listing.KindProject}}, 3},
		{"kinds: others", listing.Query{Kinds: []listing.Kind{listing.KindTalent, listing.KindOrganization}}, 0},
	} {
		for _, text := range []string{"", "芯片"} {
			q := c.q
			q.Text, q.CountParks = text, true
			page, err := s.Search(ctx(t), q)
			must(t, err)
			want := map[string]int{}
			if c.want > 0 {
				want[home] = c.want
			}
			if len(page.Results) != c.want || fmt.Sprint(page.ParkHits) != fmt.Sprint(want) {
				t.Errorf("%s, text %q: %d results, park hits %v; want %d, %v", c.name, text, len(page.Results), page.ParkHits, c.want, want)
			}
		}
	}
	// Paging with counts: every page counts all the hits.
	q := listing.Query{Limit: 2, CountParks: true}
	page, err := s.Search(ctx(t), q)
	must(t, err)
	q.Cursor = page.NextCursor
	next, err := s.Search(ctx(t), q)
	must(t, err)
	if len(next.Results) != 1 || next.ParkHits[home] != 3 {
		t.Errorf("second page: %d results, hits %v", len(next.Results), next.ParkHits)
	}
	// A count is not asked unless wanted.
	if page, _ := s.Search(ctx(t), listing.Query{}); page.ParkHits != nil {
		t.Errorf("park hits without CountParks: %v", page.ParkHits)
	}
}
