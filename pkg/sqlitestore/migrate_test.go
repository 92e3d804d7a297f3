package sqlitestore

import (
	_ "embed"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
)

//go:embed testdata/pre_0004.sql
var pre0004 string

// A store written before the by-sequence index opens with one row per
// listing at its latest change, tombstones without content for deleted
// listings, audiences made of every version the log kept, and a search
// index that knows each listing's park and kind.
func TestUpgradeToTheBySeqIndex(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	w, r, err := sqlitefile.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, pre0004); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	const a, b, c, d = "prj_01JNJ4ZV00AAAAAAAAAAAAAAAA", "prj_01JNJ4ZV00BBBBBBBBBBBBBBBB", "prj_01JNJ4ZV00CCCCCCCCCCCCCCCC", "prj_01JNJ4ZV00DDDDDDDDDDDDDDDD"
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var got []string
	for _, c := range ch {
		state := "tombstone"
		if c.Listing != nil {
			state = fmt.Sprintf("%s %q", c.Listing.Visibility, c.Listing.Summary)
		}
		got = append(got, fmt.Sprintf("%d %s %s v%d first %d at +%s park %s kind %s audience %+v %s",
			c.Seq, c.Op, c.ListingID, c.Version, c.FirstSeq, c.At.Sub(t0), c.Park, c.Kind, c.Audience, state))
	}
	want := []string{
		`5 updated ` + a + ` v2 first 1 at +10m0s park xian-hitech kind project audience {Club:true Parks:[]} club "新材料 growth"`,
		`6 updated ` + b + ` v2 first 2 at +11m0s park xian-hitech kind project audience {Club:true Parks:[]} private "新材料 pilot"`,
		`7 deleted ` + c + ` v2 first 3 at +12m0s park xian-hitech kind project audience {Club:false Parks:[chengdu-hitech]} tombstone`,
		`8 updated ` + d + ` v2 first 4 at +13m0s park xian-hitech kind project audience {Club:false Parks:[chengdu-hitech haifa-lifescience]} peers "新材料 pilot"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes after the upgrade:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if seq, err := s.LastSeq(ctx); err != nil || seq != 8 {
		t.Errorf("LastSeq = %d, %v; want 8", seq, err)
	}
	if seq, err := s.SeqBefore(ctx, t0.Add(11*time.Minute)); err != nil || seq != 5 {
		t.Errorf("SeqBefore(+11m) = %d, %v; want 5", seq, err)
	}
	// The search entries were made again: park and kind tokens work with
	// text, and the old rowids still lead to their listings.
	for _, q := range []struct {
		q    listing.Query
		want string
	}{
		{listing.Query{Text: "copper", Parks: []string{"xian-hitech"}, Kinds: []listing.Kind{listing.KindProject}}, "[" + a + "]"},
		{listing.Query{Text: "芯片", Kinds: []listing.Kind{listing.KindProject}}, "[" + b + "]"},
		{listing.Query{Text: "新材料", ExcludeParks: []string{"xian-hitech"}}, "[]"},
		{listing.Query{Text: "硅谷"}, "[]"},
		{listing.Query{Kinds: []listing.Kind{listing.KindProject}}, "[" + d + " " + b + " " + a + "]"},
	} {
		page, err := s.Search(ctx, q.q)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, l := range page.Results {
			ids = append(ids, l.ID)
		}
		if fmt.Sprint(ids) != q.want {
			t.Errorf("search %+v = %v, want %s", q.q, ids, q.want)
		}
		// Migration 0005 made every listing's rank text: text hits score.
		for _, l := range page.Results {
			if q.q.Text != "" && (l.Match == nil || l.Match.Score <= 0) {
				t.Errorf("search %+v: %s has match %+v, want a score", q.q, l.ID, l.Match)
			}
		}
	}
	// And folded its index text: a Traditional query finds the listing.
	if page, err := s.Search(ctx, listing.Query{Text: "晶片設計", Kinds: []listing.Kind{listing.KindProject}}); err != nil || len(page.Results) == 0 || page.Results[0].ID != b {
		t.Errorf("Traditional query after the upgrade: %v", err)
	}
	var marks int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = ?`, reindexMark).Scan(&marks); err != nil || marks != 0 {
		t.Errorf("reindex mark left: %d %v", marks, err)
	}
	// The sequence goes on, and a deleted id stays taken.
	l := storetest.NewProject("after the upgrade", time.Now().UTC())
	if err := s.Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	if ch, _ := s.Changes(ctx, 8, 10); len(ch) != 1 || ch[0].Seq != 9 || ch[0].Op != listing.OpCreated {
		t.Errorf("first change after the upgrade = %+v", ch)
	}
	again := storetest.NewProject("again", t0)
	again.ID = c
	if err := s.Create(ctx, again); err == nil {
		t.Error("created a listing with a deleted listing's id")
	}
}
