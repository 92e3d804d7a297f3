package listing_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestParseFacets(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: the names in order, or "!" for invalid
	}{
		{"", ""},
		{"all", strings.Join(listing.FacetNames, ",")},
		{"country,sector,country", "sector,country"},
		{" kind , org_type", "kind,org_type"},
		{"sectors", "!"},
		{"sector,", "!"},
		{"all,kind", "!"},
	} {
		q, err := listing.ParseQuery(url.Values{"facets": {c.in}}, "")
		if c.want == "!" {
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Code != apierror.Invalid || ae.Field != "facets" {
				t.Errorf("facets=%q: %v, want invalid naming facets", c.in, err)
			}
			continue
		}
		if err != nil || strings.Join(q.Facets, ",") != c.want {
			t.Errorf("facets=%q: %v, %v; want %s", c.in, q.Facets, err, c.want)
		}
		// Values renders them back.
		if got := q.Values().Get("facets"); got != c.want {
			t.Errorf("facets=%q rendered %q", c.in, got)
		}
	}
}
