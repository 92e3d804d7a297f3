package localsearch_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// stores is localsearch.Services over one real store per kind; down names
// a kind whose service fails.
type stores struct {
	byKind map[listing.Kind]*sqlitestore.Store
	down   listing.Kind
}

func (s stores) Search(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error) {
	if k == s.down {
		return nil, errors.New("service down")
	}
	return s.byKind[k].Search(ctx, q)
}

// parkData is FacetData plus an organisation, each stored in its kind's
// service.
func parkData(t *testing.T) (stores, []*listing.Listing) {
	t.Helper()
	now := time.Now().UTC()
	all := storetest.FacetData(now)
	org := storetest.NewProject("芯片 公司", now.Add(time.Second))
	org.ID, org.Kind, org.Country = listing.NewID(listing.KindOrganization, now), listing.KindOrganization, "SG"
	org.Attrs = listing.Attrs{OrgType: "company"}
	all = append(all, org)
	s := stores{byKind: map[listing.Kind]*sqlitestore.Store{}}
	dir := t.TempDir()
	for _, k := range listing.Kinds {
		st, err := sqlitestore.Open(t.Context(), filepath.Join(dir, string(k)+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s.byKind[k] = st
	}
	for _, l := range all {
		if err := s.byKind[l.Kind].Create(t.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	return s, all
}

// The park's counts are its three services' summed: every match, as the
// caller may see it, whatever the page; a service whose results ran out
// still counts on a later page.
func TestFacetsSumTheServices(t *testing.T) {
	s, all := parkData(t)
	ls := &localsearch.Searcher{Services: &s, Cursors: search.NewSigner([]byte("test"))}
	for _, c := range []struct {
		q         listing.Query
		visibleTo string
	}{
		{listing.Query{Text: "芯片"}, ""},
		{listing.Query{Text: "芯片"}, "haifa-lifescience"},
		{listing.Query{}, "chengdu-hitech"},
	} {
		var want []*listing.Listing
		for _, l := range all {
			if storetest.FacetMatch(l, listing.Query{Text: c.q.Text, VisibleTo: c.visibleTo}) {
				want = append(want, l)
			}
		}
		w := storetest.FacetsString(storetest.CountFacets(want, listing.FacetNames))
		q := c.q
		q.Facets, q.Limit = listing.FacetNames, 2
		pages := 0
		for {
			page, err := ls.Search(t.Context(), q, listing.Kinds, c.visibleTo)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if got := storetest.FacetsString(page.Facets); got != w || page.FacetsCapped || page.FacetsPartial {
				t.Errorf("q=%q visible to %q, page %d: facets %s (capped %v, partial %v)\nwant %s", c.q.Text, c.visibleTo, pages, got, page.FacetsCapped, page.FacetsPartial, w)
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		if pages < 3 {
			t.Errorf("q=%q: %d pages; the test wants services to run out on earlier pages", c.q.Text, pages)
		}
	}
	// The organisation's service counted: kind and org_type.
	page, err := ls.Search(t.Context(), listing.Query{Text: "芯片", Facets: []string{listing.FacetKind, listing.FacetOrgType}}, listing.Kinds, "")
	if err != nil {
		t.Fatal(err)
	}
	if k := page.Facets[listing.FacetKind]; k["organization"] != 1 || k["project"] == 0 || k["talent"] == 0 || page.Facets[listing.FacetOrgType]["company"] != 1 {
		t.Errorf("kinds %s", storetest.FacetsString(page.Facets))
	}
	// A failed service counts nothing, and says so.
	s.down = listing.KindTalent
	page, err = ls.Search(t.Context(), listing.Query{Facets: []string{listing.FacetKind}}, listing.Kinds, "")
	if err != nil {
		t.Fatal(err)
	}
	if !page.FacetsPartial || page.Facets[listing.FacetKind]["talent"] != 0 || page.Facets[listing.FacetKind]["project"] == 0 {
		t.Errorf("talent down: %s, partial %v", storetest.FacetsString(page.Facets), page.FacetsPartial)
	}
}
