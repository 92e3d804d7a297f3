// Package storetest is the contract every listing.Store implementation must
// meet. An implementation's tests call Run with a function that opens its
// store on a given directory; opening twice on the same directory must see
// the same data.
package storetest

import (
	"context"
	"fmt"
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
	t.Run("ChangeLogInOrder", func(t *testing.T) { testChanges(t, open) })
	t.Run("SearchChineseAndEnglish", func(t *testing.T) { testSearch(t, open) })
	t.Run("FiltersAndCursor", func(t *testing.T) { testFilters(t, open) })
	t.Run("Visibility", func(t *testing.T) { testVisibility(t, open) })
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
	now := time.Now().UTC()
	sig := s.ChangeSignal()
	a := NewProject("a", now)
	b := NewProject("b", now)
	must(t, s.Create(ctx(t), a))
	select {
	case <-sig:
	default:
		t.Error("change signal not closed after a commit")
	}
	must(t, s.Create(ctx(t), b))
	a2 := *a
	a2.Summary = "changed"
	must(t, s.Update(ctx(t), &a2, 0))
	_, err := s.Delete(ctx(t), b.ID, 0, now)
	must(t, err)
	// A failed write leaves no change behind.
	if err := s.Update(ctx(t), &a2, 99); err == nil {
		t.Fatal("update with wrong version succeeded")
	}
	ch, err := s.Changes(ctx(t), 0, 100)
	must(t, err)
	want := []struct {
		op listing.Op
		id string
		v  int64
	}{{listing.OpCreated, a.ID, 1}, {listing.OpCreated, b.ID, 1}, {listing.OpUpdated, a.ID, 2}, {listing.OpDeleted, b.ID, 2}}
	if len(ch) != len(want) {
		t.Fatalf("got %d changes, want %d", len(ch), len(want))
	}
	for i, w := range want {
		c := ch[i]
		if c.Op != w.op || c.ListingID != w.id || c.Version != w.v || c.Listing == nil || c.Listing.Version != w.v {
			t.Errorf("change %d = %s %s v%d, want %s %s v%d", i, c.Op, c.ListingID, c.Version, w.op, w.id, w.v)
		}
		if i > 0 && c.Seq <= ch[i-1].Seq {
			t.Errorf("sequence not increasing: %d after %d", c.Seq, ch[i-1].Seq)
		}
	}
	// The state before: none for a create, the prior version otherwise.
	if ch[0].Previous != nil || ch[2].Previous == nil || ch[2].Previous.Version != 1 || ch[2].Previous.Summary != "" ||
		ch[3].Previous == nil || ch[3].Previous.Version != 1 {
		t.Errorf("previous states: %+v %+v %+v", ch[0].Previous, ch[2].Previous, ch[3].Previous)
	}
	// SeqBefore finds where a point in time falls in the log.
	if seq, err := s.SeqBefore(ctx(t), ch[0].At.Add(-time.Second)); err != nil || seq != 0 {
		t.Errorf("SeqBefore(before everything) = %d, %v", seq, err)
	}
	if seq, _ := s.SeqBefore(ctx(t), time.Now().Add(time.Hour)); seq != ch[3].Seq {
		t.Errorf("SeqBefore(future) = %d, want %d", seq, ch[3].Seq)
	}
	tail, _ := s.Changes(ctx(t), ch[1].Seq, 1)
	if len(tail) != 1 || tail[0].Seq != ch[2].Seq {
		t.Errorf("Changes(after=%d, 1) = %+v", ch[1].Seq, tail)
	}
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
	mk := func(title, summary string) string {
		l := NewProject(title, now)
		l.Summary = summary
		must(t, s.Create(ctx(t), l))
		return l.ID
	}
	titleHit := mk("硅谷离岸创新中心 Silicon Valley offshore centre", "")
	bodyHit := mk("Offshore incubator", "在硅谷设立孵化器，连接西安与美国")
	_ = mk("芯片设计 chip design", "Semiconductor IP")
	copper := mk("Nano Super-Copper Research Institute", "纳米超级铜 新材料 研究院")
	_ = mk("新能源汽车", "Electric vehicles 新能源")

	cases := []struct {
		q    string
		want []string // in rank order
	}{
		{"硅谷", []string{titleHit, bodyHit}},
		{"新材料", []string{copper}},
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
