package clubsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// parkSide parses a park-side club search as the gateway's API does.
func parkSide(t *testing.T, query string) search.Request {
	t.Helper()
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := search.ParseRequest(v)
	if err != nil {
		t.Fatalf("ParseRequest(%q): %v", query, err)
	}
	return sr
}

// overTheWire renders sr as the federation search a peer receives and
// decodes it as the peer does.
func overTheWire(t *testing.T, sr search.Request, cursor string) (listing.Query, []listing.Kind) {
	t.Helper()
	body, err := json.Marshal(federationSearchOf(sr.Query, sr.Kinds, cursor))
	if err != nil {
		t.Fatal(err)
	}
	q, kinds, err := DecodeFederationSearch(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the peer refuses %s: %v", body, err)
	}
	return q, kinds
}

// A peer searches exactly what the park-side search asked: the same
// filters, the same kinds, the peer's own cursor.
func TestFederationSearchRoundTrip(t *testing.T) {
	for _, query := range []string{
		"scope=club",
		"scope=club&q=纳米+copper&sectors=ai,new-materials&country=cn",
		"scope=club&seeking=investment,partner&offering=rnd",
		"scope=club&kinds=projects",
		"scope=club&kinds=organizations,talent",
		"scope=club&stage=pilot",
		"scope=club&availability=mentor&kinds=talent",
		"scope=club&org_type=lab",
		"scope=club&updated_since=2026-01-02T15:04:05Z",
		"scope=club&limit=5",
	} {
		t.Run(query, func(t *testing.T) {
			sr := parkSide(t, query)
			q, kinds := overTheWire(t, sr, "peer-cursor")
			want := sr.Query
			want.Cursor = "peer-cursor"
			if !reflect.DeepEqual(q, want) {
				t.Errorf("peer query = %+v\nwant %+v", q, want)
			}
			if !slices.Equal(kinds, sr.Kinds) {
				t.Errorf("peer kinds = %v, want %v", kinds, sr.Kinds)
			}
		})
	}
}

// A search whose kind filter excludes every kind it names
// (kinds=talent&stage=pilot: stage belongs to projects) is refused naming
// the filter, at the park side and on the wire alike: searching nothing
// here while the peers searched every kind would mislead the officer.
func TestFilterExcludingEveryKindIsRefused(t *testing.T) {
	_, err := search.ParseRequest(url.Values{"scope": {"club"}, "kinds": {"talent"}, "stage": {"pilot"}})
	if e := apierror.Public(err); err == nil || e.Code != apierror.Invalid || e.Field != "stage" {
		t.Errorf("park side: %v, want Invalid naming stage", err)
	}
	_, _, err = DecodeFederationSearch(strings.NewReader(`{"kinds":["talent"],"stage":"pilot"}`))
	if e := apierror.Public(err); err == nil || e.Code != apierror.Invalid || e.Field != "stage" {
		t.Errorf("federation side: %v, want Invalid naming stage", err)
	}
}

func TestDecodeFederationSearch(t *testing.T) {
	tests := []struct {
		body      string
		wantQuery listing.Query
		wantKinds []listing.Kind
	}{
		{`{}`, listing.Query{}, listing.Kinds},
		{`{"q":" copper ","limit":10,"cursor":"abc.def"}`, listing.Query{Text: "copper", Limit: 10, Cursor: "abc.def"}, listing.Kinds},
		{`{"kinds":["projects","talent"]}`, listing.Query{}, []listing.Kind{listing.KindProject, listing.KindTalent}},
		{`{"kinds":["project"],"stage":"growth"}`, listing.Query{Stage: "growth"}, []listing.Kind{listing.KindProject}},
		{`{"availability":"advisor"}`, listing.Query{Availability: "advisor"}, []listing.Kind{listing.KindTalent}},
		{`{"sectors":["ai"],"country":"il"}`, listing.Query{Sectors: []string{"ai"}, Country: "IL"}, listing.Kinds},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			q, kinds, err := DecodeFederationSearch(strings.NewReader(tt.body))
			if err != nil {
				t.Fatalf("DecodeFederationSearch: %v", err)
			}
			if !reflect.DeepEqual(q, tt.wantQuery) || !slices.Equal(kinds, tt.wantKinds) {
				t.Errorf("= %+v %v, want %+v %v", q, kinds, tt.wantQuery, tt.wantKinds)
			}
		})
	}
}

func TestDecodeFederationSearchRefusals(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"unknown field", `{"x":1}`, "x"},
		{"visible_to is the gateway's to set", `{"visible_to":"haifa-park"}`, "visible_to"},
		{"scope is not a wire field", `{"scope":"club"}`, "scope"},
		{"parks are not wire fields", `{"parks":["haifa-park"]}`, "parks"},
		{"wrong JSON type", `{"sectors":"ai"}`, "sectors"},
		{"wrong JSON type, number", `{"limit":"ten"}`, "limit"},
		{"not an object", `[]`, "body"},
		{"not JSON", `limit=10`, "body"},
		{"empty", ``, "body"},
		{"two objects", `{}{}`, "body"},
		{"over the size bound", `{"q":"` + strings.Repeat("x", MaxFederationSearchBody) + `"}`, "body"},
		{"limit too large", `{"limit":1000}`, "limit"},
		{"negative limit", `{"limit":-1}`, "limit"},
		{"unknown kind", `{"kinds":["robots"]}`, "kinds"},
		{"unknown sector", `{"sectors":["astrology"]}`, "sectors"},
		{"bad country", `{"country":"XX"}`, "country"},
		{"bad time", `{"updated_since":"yesterday"}`, "updated_since"},
		{"query text too long", `{"q":"` + strings.Repeat("长", listing.MaxQueryText+1) + `"}`, "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeFederationSearch(strings.NewReader(tt.body))
			var e *apierror.Error
			if !errors.As(err, &e) || e.Code != apierror.Invalid || e.Field != tt.field {
				t.Errorf("= %v, want Invalid naming %q", err, tt.field)
			}
		})
	}
}
