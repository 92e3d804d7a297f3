package sqlitestore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// listingOf is a listing of park as its origin sent it, at version v.
func listingOf(park string, k listing.Kind, id, title string, v int64, at time.Time) *listing.Listing {
	l := storetest.NewProject(title, at)
	if k == listing.KindTalent {
		l = storetest.NewTalent(title, at)
	}
	l.ID, l.Park, l.Version, l.UpdatedAt = id, park, v, at.Add(time.Duration(v)*time.Second)
	return l
}

func put(t *testing.T, s *sqlitestore.Store, l *listing.Listing, seq int64, want bool) {
	t.Helper()
	got, err := s.Put(t.Context(), l, seq)
	if err != nil || got != want {
		t.Fatalf("Put(%s/%s v%d @%d) = %v, %v; want %v", l.Park, l.ID, l.Version, seq, got, err, want)
	}
}

func remove(t *testing.T, s *sqlitestore.Store, park string, k listing.Kind, id string, v, seq int64, want bool) {
	t.Helper()
	got, err := s.Remove(t.Context(), park, k, id, v, seq, time.Now())
	if err != nil || got != want {
		t.Fatalf("Remove(%s/%s v%d @%d) = %v, %v; want %v", park, id, v, seq, got, err, want)
	}
}

// changesView renders a changes read compactly: "seq op park/id vN first F".
func changesView(ch []listing.Change) string {
	var out []string
	for _, c := range ch {
		s := fmt.Sprintf("%d %s %s/%s v%d first %d", c.Seq, c.Op, c.Park, c.ListingID, c.Version, c.FirstSeq)
		if (c.Listing == nil) != (c.Op == listing.OpDeleted) {
			s += " (listing does not match op)"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func TestIndexAppliesByVersion(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const haifa, chengdu = "haifa-lifescience", "chengdu-hitech"
	id := listing.NewID(listing.KindProject, now)

	put(t, s, listingOf(haifa, listing.KindProject, id, "v1", 1, now), 10, true)
	put(t, s, listingOf(haifa, listing.KindProject, id, "v1 again", 1, now), 10, false)
	put(t, s, listingOf(haifa, listing.KindProject, id, "v3", 3, now), 14, true)
	put(t, s, listingOf(haifa, listing.KindProject, id, "v2 late", 2, now), 12, false)
	got, err := s.GetOf(ctx, haifa, id)
	if err != nil || got.Title != "v3" || got.Version != 3 || got.Park != haifa || !got.UpdatedAt.Equal(now.Add(3*time.Second)) {
		t.Fatalf("GetOf = %+v, %v; want v3 as sent", got, err)
	}
	// The same id in another park is another listing.
	put(t, s, listingOf(chengdu, listing.KindProject, id, "chengdu's", 1, now), 3, true)
	if got, err := s.GetOf(ctx, chengdu, id); err != nil || got.Title != "chengdu's" {
		t.Errorf("GetOf(chengdu) = %+v, %v", got, err)
	}
	if got, _ := s.GetOf(ctx, haifa, id); got.Title != "v3" {
		t.Errorf("haifa's listing became %q", got.Title)
	}
	if _, err := s.GetOf(ctx, "xian-hitech", id); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("GetOf(unknown park) = %v, want not_found", err)
	}

	// Withdrawn, then an older version arrives late: refused.
	remove(t, s, haifa, listing.KindProject, id, 4, 15, true)
	remove(t, s, haifa, listing.KindProject, id, 4, 15, false)
	put(t, s, listingOf(haifa, listing.KindProject, id, "v3 late", 3, now), 14, false)
	if _, err := s.GetOf(ctx, haifa, id); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("GetOf after Remove = %v, want not_found", err)
	}
	// A withdrawal of a listing never held is remembered too.
	ghost := listing.NewID(listing.KindTalent, now)
	remove(t, s, haifa, listing.KindTalent, ghost, 2, 7, true)
	put(t, s, listingOf(haifa, listing.KindTalent, ghost, "ghost v1", 1, now), 6, false)
	// Visible again (shared again, say): a new life from this sequence.
	put(t, s, listingOf(haifa, listing.KindProject, id, "v5", 5, now), 16, true)

	ch, err := s.ChangesOf(ctx, haifa, listing.KindProject, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changesView(ch), "16 created "+haifa+"/"+id+" v5 first 16"; got != want {
		t.Errorf("ChangesOf(haifa, project) = %s, want %s", got, want)
	}
	ch, _ = s.ChangesOf(ctx, haifa, listing.KindTalent, 0, 100)
	if got, want := changesView(ch), "7 deleted "+haifa+"/"+ghost+" v2 first 7"; got != want {
		t.Errorf("ChangesOf(haifa, talent) = %s, want %s", got, want)
	}
	if ch, _ := s.ChangesOf(ctx, haifa, listing.KindProject, 16, 100); len(ch) != 0 {
		t.Errorf("ChangesOf after the head = %s", changesView(ch))
	}
	for _, c := range []struct {
		park string
		kind listing.Kind
		want int64
	}{{haifa, listing.KindProject, 16}, {haifa, listing.KindTalent, 7}, {chengdu, listing.KindProject, 3}, {chengdu, listing.KindTalent, 0}} {
		if head, err := s.HeadOf(ctx, c.park, c.kind); err != nil || head != c.want {
			t.Errorf("HeadOf(%s, %s) = %d, %v; want %d", c.park, c.kind, head, err, c.want)
		}
	}

	// The index keeps no history and writes no change log.
	if seq, _ := s.LastSeq(ctx); seq != 0 {
		t.Errorf("LastSeq of an index = %d, want 0", seq)
	}
	// Nothing without an origin is accepted.
	bad := listingOf("", listing.KindProject, id, "no park", 9, now)
	if _, err := s.Put(ctx, bad, 1); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("Put without a park = %v, want invalid", err)
	}
	if _, err := s.Remove(ctx, haifa, "", id, 9, 1, now); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("Remove without a kind = %v, want invalid", err)
	}
}

// A tombstone keeps who could see the listing and nothing of its content.
func TestIndexTombstoneKeepsAudienceNotContent(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	now := time.Now().UTC()
	const park = "haifa-lifescience"
	p := listingOf(park, listing.KindTalent, listing.NewID(listing.KindTalent, now), "李伟 robotics", 1, now)
	p.Visibility, p.ShareWith = listing.Peers, []string{"xian-hitech"}
	put(t, s, p, 1, true)
	p2 := *p
	p2.Version, p2.ShareWith = 2, []string{"chengdu-hitech"}
	put(t, s, &p2, 2, true)
	remove(t, s, park, listing.KindTalent, p.ID, 3, 3, true)
	ch, err := s.ChangesOf(ctx, park, listing.KindTalent, 0, 10)
	if err != nil || len(ch) != 1 {
		t.Fatalf("ChangesOf = %+v, %v", ch, err)
	}
	c := ch[0]
	if c.Op != listing.OpDeleted || c.Listing != nil || c.FirstSeq != 1 || c.Seq != 3 ||
		fmt.Sprint(c.Audience.Parks) != "[chengdu-hitech xian-hitech]" || c.Audience.Club {
		t.Errorf("tombstone = %+v", c)
	}
}

func TestIndexSearchAcrossParks(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	now := time.Now().UTC()
	parks := []string{"xian-hitech", "haifa-lifescience", "chengdu-hitech"}
	// Per park: 芯片 projects (2, 3, 4), and one talent.
	for i, park := range parks {
		for j := range i + 2 {
			l := listingOf(park, listing.KindProject, listing.NewID(listing.KindProject, now), fmt.Sprintf("芯片 %s %d", park, j), 1, now)
			if i == 2 {
				l.Sectors = []string{"ai"}
			}
			put(t, s, l, int64(j+1), true)
		}
		put(t, s, listingOf(park, listing.KindTalent, listing.NewID(listing.KindTalent, now), "芯片 talent "+park, 1, now), 1, true)
	}
	for _, c := range []struct {
		name string
		q    listing.Query
		hits map[string]int
	}{
		{"everything", listing.Query{}, map[string]int{parks[0]: 3, parks[1]: 4, parks[2]: 5}},
		{"one park", listing.Query{Parks: parks[1:2]}, map[string]int{parks[1]: 4}},
		{"two parks", listing.Query{Parks: parks[:2]}, map[string]int{parks[0]: 3, parks[1]: 4}},
		{"exclude one", listing.Query{ExcludeParks: parks[:1]}, map[string]int{parks[1]: 4, parks[2]: 5}},
		{"parks and exclude", listing.Query{Parks: parks[:2], ExcludeParks: parks[1:]}, map[string]int{parks[0]: 3}},
		{"talent", listing.Query{Kinds: []listing.Kind{listing.KindTalent}}, map[string]int{parks[0]: 1, parks[1]: 1, parks[2]: 1}},
		{"projects of one park", listing.Query{Kinds: []listing.Kind{listing.KindProject}, Parks: parks[2:]}, map[string]int{parks[2]: 4}},
		{"sector, excluding its park", listing.Query{Sectors: []string{"ai"}, ExcludeParks: parks[2:]}, map[string]int{parks[0]: 1, parks[1]: 1}},
		{"sector", listing.Query{Sectors: []string{"ai"}}, map[string]int{parks[0]: 1, parks[1]: 1, parks[2]: 5}},
	} {
		for _, text := range []string{"", "芯片"} {
			q := c.q
			q.Text, q.CountParks, q.Limit = text, true, 2
			got := map[string]int{}
			for pages := 0; ; pages++ {
				page, err := s.Search(ctx, q)
				if err != nil {
					t.Fatalf("%s %q: %v", c.name, text, err)
				}
				if fmt.Sprint(page.ParkHits) != fmt.Sprint(c.hits) {
					t.Errorf("%s %q: park hits %v, want %v", c.name, text, page.ParkHits, c.hits)
				}
				for _, l := range page.Results {
					got[l.Park]++
					if len(c.q.Kinds) > 0 && l.Kind != c.q.Kinds[0] {
						t.Errorf("%s %q: a %s", c.name, text, l.Kind)
					}
				}
				if page.NextCursor == "" || pages > 20 {
					break
				}
				q.Cursor = page.NextCursor
			}
			if fmt.Sprint(got) != fmt.Sprint(c.hits) {
				t.Errorf("%s %q: paged through %v, want %v", c.name, text, got, c.hits)
			}
		}
	}
	// A cursor belongs to its parks: another selection refuses it.
	page, _ := s.Search(ctx, listing.Query{Parks: parks[:1], Limit: 1})
	if _, err := s.Search(ctx, listing.Query{Parks: parks[1:2], Limit: 1, Cursor: page.NextCursor}); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("cursor of other parks: %v, want invalid", err)
	}
	// Purge takes a park's listings out of every search and read.
	n, err := s.Purge(ctx, parks[1])
	if err != nil || n != 4 {
		t.Fatalf("Purge = %d, %v; want 4", n, err)
	}
	page, _ = s.Search(ctx, listing.Query{Text: "芯片", CountParks: true, Limit: 100})
	if fmt.Sprint(page.ParkHits) != fmt.Sprint(map[string]int{parks[0]: 3, parks[2]: 5}) || len(page.Results) != 8 {
		t.Errorf("after Purge: %d results, hits %v", len(page.Results), page.ParkHits)
	}
	if head, _ := s.HeadOf(ctx, parks[1], listing.KindProject); head != 0 {
		t.Errorf("HeadOf a purged park = %d", head)
	}
}

func TestIndexBatchIsAtomic(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	now := time.Now().UTC()
	const park = "haifa-lifescience"
	keep := listingOf(park, listing.KindProject, listing.NewID(listing.KindProject, now), "kept", 1, now)
	put(t, s, keep, 1, true)
	page, _ := s.Search(ctx, listing.Query{Limit: 1})
	sig := s.ChangeSignal()
	err := s.Batch(ctx, func(b *sqlitestore.Batch) error {
		if err := b.SetMeta("cursor_key", "mine"); err != nil {
			return err
		}
		if err := b.SetMeta("feed/"+park, "v1.9"); err != nil {
			return err
		}
		if err := b.SetMeta("feed/chengdu-hitech", "v1.2"); err != nil {
			return err
		}
		if err := b.SetMeta("other", "x"); err != nil {
			return err
		}
		l := listingOf(park, listing.KindProject, listing.NewID(listing.KindProject, now), "batched", 1, now)
		if ok, err := b.Put(l, 2); err != nil || !ok {
			return fmt.Errorf("put: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sig:
	default:
		t.Error("Batch did not wake ChangeSignal")
	}
	if v, ok, err := s.Meta(ctx, "feed/"+park); v != "v1.9" || !ok || err != nil {
		t.Errorf("Meta = %q %v %v", v, ok, err)
	}
	if _, ok, err := s.Meta(ctx, "nothing"); ok || err != nil {
		t.Errorf("Meta(absent) = %v %v", ok, err)
	}
	if m, err := s.MetaPrefix(ctx, "feed/"); err != nil || fmt.Sprint(m) != "map[feed/chengdu-hitech:v1.2 feed/haifa-lifescience:v1.9]" {
		t.Errorf("MetaPrefix = %v, %v", m, err)
	}

	boom := errors.New("boom")
	err = s.Batch(ctx, func(b *sqlitestore.Batch) error {
		b.SetMeta("feed/"+park, "v1.99")
		b.DeleteMeta("other")
		b.Put(listingOf(park, listing.KindProject, listing.NewID(listing.KindProject, now), "lost", 1, now), 3)
		b.Remove(park, listing.KindProject, keep.ID, 2, 4, now)
		b.Purge("chengdu-hitech")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Batch = %v, want fn's error", err)
	}
	if v, _, _ := s.Meta(ctx, "feed/"+park); v != "v1.9" {
		t.Errorf("meta after a failed batch = %q", v)
	}
	if _, ok, _ := s.Meta(ctx, "other"); !ok {
		t.Error("a failed batch deleted meta")
	}
	if head, _ := s.HeadOf(ctx, park, listing.KindProject); head != 2 {
		t.Errorf("head after a failed batch = %d, want 2", head)
	}
	if _, err := s.GetOf(ctx, park, keep.ID); err != nil {
		t.Errorf("a failed batch removed a listing: %v", err)
	}
	// cursor_key is not the caller's: cursors issued before still open.
	s.Close()
	s = openStore(t, dir)
	if _, err := s.Search(ctx, listing.Query{Limit: 1, Cursor: page.NextCursor}); err != nil {
		t.Errorf("cursor after SetMeta(cursor_key): %v", err)
	}
	if m, _ := s.MetaPrefix(ctx, ""); len(m) != 4 {
		t.Errorf("MetaPrefix(\"\") = %v", m)
	}
}

// In a club index, one query ranks every park's listings together: a
// peer's title match comes before the searching park's newer body-only
// match (interleaving parks put the searching park's first hit first).
func TestIndexRanksAPeersBetterMatchFirst(t *testing.T) {
	s := openStore(t, t.TempDir())
	now := time.Now().UTC()
	peer := listingOf("haifa-lifescience", listing.KindProject, listing.NewID(listing.KindProject, now), "CO2 heat pump for cold regions", 1, now)
	own := listingOf("xian-hitech", listing.KindOrganization, listing.NewID(listing.KindOrganization, now.Add(time.Second)), "Boiler retrofit office", 1, now.Add(time.Second))
	own.Attrs = listing.Attrs{OrgType: "company"}
	own.Summary = "We also install a heat pump or two."
	put(t, s, peer, 1, true)
	put(t, s, own, 1, true)
	page, err := s.Search(t.Context(), listing.Query{Text: "heat pump", Parks: []string{"xian-hitech", "haifa-lifescience"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 2 || page.Results[0].ID != peer.ID || page.Results[1].ID != own.ID {
		t.Fatalf("got %v, want the peer's title match, then this park's body match", ids(page.Results))
	}
	if m0, m1 := page.Results[0].Match, page.Results[1].Match; m0 == nil || m1 == nil || m0.Score <= m1.Score || m1.Snippet == "" || len(m1.Highlights) == 0 {
		t.Fatalf("matches %+v %+v: want scores falling, the body match's snippet highlighted", m0, m1)
	}
}

func ids(ls []*listing.Listing) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

// Per-park hit counts of a search that matches through the index read at
// most DefaultFacetScan matches, newest first, like the facet counts: up
// to that many they are exact; past it they are the newest matches' and
// say they are capped. Counting every listing of some parks (no text, no
// filter) stays exact.
func TestParkHitsCapped(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	now := time.Now().UTC()
	const a, b, c = "xian-hitech", "haifa-lifescience", "chengdu-hitech"
	// Oldest first: 590 of a, 400 of b, 10 of c match 芯片 (1,000 in all,
	// exactly the cap); 50 of a do not.
	seq := int64(0)
	add := func(park string, n int, title string) {
		err := s.Batch(ctx, func(bt *sqlitestore.Batch) error {
			for range n {
				seq++
				if _, err := bt.Put(listingOf(park, listing.KindProject, listing.NewID(listing.KindProject, now), title, 1, now), seq); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(a, 50, "copper wire")
	add(a, 590, "芯片 design")
	add(b, 400, "芯片 test")
	add(c, 10, "芯片 fab")
	if sqlitestore.DefaultFacetScan != 1000 {
		t.Fatalf("DefaultFacetScan = %d; this test is written for 1000", sqlitestore.DefaultFacetScan)
	}
	search := func(q listing.Query) *listing.Page {
		t.Helper()
		q.CountParks, q.Limit = true, 5
		page, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Results) != 5 {
			t.Errorf("%+v: %d results, want 5", q, len(page.Results))
		}
		return page
	}
	check := func(name string, page *listing.Page, want map[string]int, capped bool) {
		t.Helper()
		if fmt.Sprint(page.ParkHits) != fmt.Sprint(want) || page.ParkHitsCapped != capped {
			t.Errorf("%s: park hits %v (capped %v), want %v (capped %v)", name, page.ParkHits, page.ParkHitsCapped, want, capped)
		}
	}
	check("text, exactly the cap", search(listing.Query{Text: "芯片"}), map[string]int{a: 590, b: 400, c: 10}, false)
	add(c, 1, "芯片 fab")
	check("text, one past the cap", search(listing.Query{Text: "芯片"}), map[string]int{a: 589, b: 400, c: 11}, true)
	check("text, two parks below the cap", search(listing.Query{Text: "芯片", Parks: []string{b, c}}), map[string]int{b: 400, c: 11}, false)
	check("filter past the cap", search(listing.Query{Kinds: []listing.Kind{listing.KindProject}, Sectors: storetest.NewProject("x", now).Sectors}),
		map[string]int{a: 589, b: 400, c: 11}, true)
	check("every listing", search(listing.Query{}), map[string]int{a: 640, b: 400, c: 11}, false)
	check("every listing of a", search(listing.Query{Parks: []string{a}}), map[string]int{a: 640}, false)
}
