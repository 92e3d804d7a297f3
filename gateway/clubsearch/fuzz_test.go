package clubsearch_test

import (
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// FuzzDecodeFederationSearch: whatever a peer sends, the decoder never
// panics; it accepts only queries within the limits and otherwise refuses
// with an Invalid error naming a field.
func FuzzDecodeFederationSearch(f *testing.F) {
	for _, s := range []string{
		`{"q":"硅谷 copper","sectors":["ai"],"limit":10}`,
		`{"q":"新材料","kinds":["projects"],"stage":"pilot"}`,
		`{"cursor":"abc.def"}`, `{}`, `{"limit":1000}`, `{"sectors":"ai"}`, `{"x":1}`, `[]`, `{"q":"` + strings.Repeat("长", 300) + `"}`,
		`{"updated_since":"2026-01-01T00:00:00Z","country":"cn"}`, `{"availability":"mentor","org_type":"lab"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, kinds, err := clubsearch.DecodeFederationSearch(strings.NewReader(string(body)))
		if err != nil {
			e := apierror.Public(err)
			if e.Code != apierror.Invalid || e.Field == "" {
				t.Fatalf("refusal %#v does not name a field", e)
			}
			return
		}
		if q.Limit < 0 || q.Limit > listing.MaxLimit || len([]rune(q.Text)) > listing.MaxQueryText || q.VisibleTo != "" {
			t.Fatalf("accepted an out-of-range query: %+v", q)
		}
		for _, s := range q.Sectors {
			if !listing.Sectors.Has(s) {
				t.Fatalf("accepted sector %q", s)
			}
		}
		for _, k := range kinds {
			if !k.Valid() {
				t.Fatalf("accepted kind %q", k)
			}
		}
	})
}
