package sqlitestore_test

import (
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
)

// When the title tier fills a page exactly and the next tier's first row
// is the one extra row, the next page starts at the top of that tier (a
// search once panicked here: a club search at 10 parks, "medical device").
func TestPageEndingExactlyAtATierBoundary(t *testing.T) {
	s := openStore(t, t.TempDir())
	now := time.Now().UTC()
	inTitle := storetest.NewProject("medical device", now)
	inBody := storetest.NewProject("imaging", now.Add(time.Second))
	inBody.Summary = "a medical device for clinics"
	for _, l := range []*listing.Listing{inTitle, inBody} {
		if err := s.Create(t.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Search(t.Context(), listing.Query{Text: "medical device", Limit: 1})
	if err != nil || len(page.Results) != 1 || page.Results[0].ID != inTitle.ID || page.NextCursor == "" {
		t.Fatalf("first page: %+v, %v; want the title match and a cursor", page, err)
	}
	page, err = s.Search(t.Context(), listing.Query{Text: "medical device", Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Results) != 1 || page.Results[0].ID != inBody.ID || page.NextCursor != "" {
		t.Fatalf("second page: %+v, %v; want the body match, last page", page, err)
	}
}
