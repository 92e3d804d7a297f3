package listingservice_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// Facet counts travel through the service's search API: the client half
// gets the counts the store made (a brute-force count of the matches the
// caller may see), and a bad facets parameter is a 400 naming facets.
func TestSearchFacetsOverHTTP(t *testing.T) {
	base, _ := startService(t, specs[1], t.TempDir()) // project
	svc, err := listingservice.NewHTTPClient(strings.TrimPrefix(base, "http://"), &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	var projects []*listing.Listing
	for _, l := range storetest.FacetData(time.Now().UTC()) {
		if l.Kind != listing.KindProject {
			continue
		}
		got, err := svc.Create(t.Context(), l)
		if err != nil {
			t.Fatal(err)
		}
		projects = append(projects, got)
	}
	q := listing.Query{Text: "芯片", VisibleTo: "haifa-lifescience", Facets: listing.FacetNames, Limit: 1}
	var want []*listing.Listing
	for _, l := range projects {
		if storetest.FacetMatch(l, q) {
			want = append(want, l)
		}
	}
	page, err := svc.Search(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := storetest.FacetsString(page.Facets), storetest.FacetsString(storetest.CountFacets(want, listing.FacetNames)); got != w || len(page.Results) != 1 {
		t.Errorf("facets over HTTP %s (%d results)\nwant %s", got, len(page.Results), w)
	}
	if page.Facets[listing.FacetCountry]["JP"] != 0 {
		t.Errorf("a peer's counts include the private listing: %s", storetest.FacetsString(page.Facets))
	}

	res, err := http.Get(base + "/v1/listings?" + url.Values{"facets": {"sector,colour"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("facets=sector,colour: %d, want 400", res.StatusCode)
	}
	_, err = svc.Search(t.Context(), listing.Query{Facets: []string{"colour"}})
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Code != apierror.Invalid || ae.Field != "facets" || !strings.Contains(ae.Message, "colour") {
		t.Errorf("facets=colour through the client: %v, want invalid naming facets", err)
	}
}
