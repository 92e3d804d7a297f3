package search

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestParseRequest(t *testing.T) {
	all := listing.Kinds
	prj, tal, org := listing.KindProject, listing.KindTalent, listing.KindOrganization
	tests := []struct {
		query     string
		wantScope string
		wantKinds []listing.Kind
		wantParks []string
		wantExcl  []string
		wantReq   []string
		wantBudg  time.Duration
	}{
		{"", ScopeLocal, all, nil, nil, nil, DefaultBudget},
		{"scope=local", ScopeLocal, all, nil, nil, nil, DefaultBudget},
		{"scope=club", ScopeClub, all, nil, nil, nil, DefaultBudget},
		{"kinds=projects,talent", ScopeLocal, []listing.Kind{prj, tal}, nil, nil, nil, DefaultBudget},
		{"kinds=organization", ScopeLocal, []listing.Kind{org}, nil, nil, nil, DefaultBudget},
		{"kinds=organizations,project", ScopeLocal, []listing.Kind{org, prj}, nil, nil, nil, DefaultBudget},
		{"stage=pilot", ScopeLocal, []listing.Kind{prj}, nil, nil, nil, DefaultBudget},
		{"availability=mentor", ScopeLocal, []listing.Kind{tal}, nil, nil, nil, DefaultBudget},
		{"org_type=lab", ScopeLocal, []listing.Kind{org}, nil, nil, nil, DefaultBudget},
		{"kinds=projects,talent&availability=mentor", ScopeLocal, []listing.Kind{tal}, nil, nil, nil, DefaultBudget},
		{"scope=club&parks=xian-hitech,haifa-park", ScopeClub, all, []string{"xian-hitech", "haifa-park"}, nil, nil, DefaultBudget},
		{"scope=club&exclude_parks=haifa-park&required=xian-hitech", ScopeClub, all, nil, []string{"haifa-park"}, []string{"xian-hitech"}, DefaultBudget},
		{"timeout_ms=50", ScopeLocal, all, nil, nil, nil, 50 * time.Millisecond},
		{"timeout_ms=10000", ScopeLocal, all, nil, nil, nil, 10 * time.Second},
		{"timeout_ms=750&scope=club", ScopeClub, all, nil, nil, nil, 750 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v := mustQuery(t, tt.query)
			got, err := ParseRequest(v)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if got.Scope != tt.wantScope {
				t.Errorf("scope = %q, want %q", got.Scope, tt.wantScope)
			}
			if !slices.Equal(got.Kinds, tt.wantKinds) {
				t.Errorf("kinds = %v, want %v", got.Kinds, tt.wantKinds)
			}
			if !slices.Equal(got.Parks, tt.wantParks) || !slices.Equal(got.Exclude, tt.wantExcl) || !slices.Equal(got.Required, tt.wantReq) {
				t.Errorf("parks/exclude/required = %v/%v/%v, want %v/%v/%v", got.Parks, got.Exclude, got.Required, tt.wantParks, tt.wantExcl, tt.wantReq)
			}
			if got.Budget != tt.wantBudg {
				t.Errorf("budget = %v, want %v", got.Budget, tt.wantBudg)
			}
		})
	}
}

func TestParseRequestKeepsTheServiceQuery(t *testing.T) {
	got, err := ParseRequest(mustQuery(t, "q=纳米+copper&sectors=ai,new-materials&country=cn&limit=7&cursor=abc.def&scope=club"))
	if err != nil {
		t.Fatal(err)
	}
	q := got.Query
	if q.Text != "纳米 copper" || !slices.Equal(q.Sectors, []string{"ai", "new-materials"}) || q.Country != "CN" || q.Limit != 7 || q.Cursor != "abc.def" {
		t.Errorf("query = %+v", q)
	}
}

func TestParseRequestRefusals(t *testing.T) {
	tests := []struct {
		query, field string
	}{
		{"scope=world", "scope"},
		{"kinds=people", "kinds"},
		{"kinds=projects,", "kinds"},
		{"stage=done", "stage"},
		{"scope=club&parks=Not_A_Park", "parks"},
		{"scope=club&parks=xian-hitech,-bad", "parks"},
		{"scope=club&exclude_parks=x", "exclude_parks"},
		{"scope=club&required=UPPER", "required"},
		{"parks=xian-hitech", "scope"},
		{"scope=local&exclude_parks=xian-hitech", "scope"},
		{"required=xian-hitech", "scope"},
		{"timeout_ms=49", "timeout_ms"},
		{"timeout_ms=10001", "timeout_ms"},
		{"timeout_ms=0", "timeout_ms"},
		{"timeout_ms=-5", "timeout_ms"},
		{"timeout_ms=1s", "timeout_ms"},
		{"kinds=talent&stage=pilot", "stage"},
		{"stage=pilot&availability=mentor", "availability"},
		{"visible_to=haifa-park", "visible_to"},
		{"visible_to=NOT%20A%20PARK", "visible_to"},
		{"sector=ai", "sector"},
		{"limit=0", "limit"},
		{"q=a&q=b", "q"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, err := ParseRequest(mustQuery(t, tt.query))
			var e *apierror.Error
			if !errors.As(err, &e) || e.Code != apierror.Invalid || e.Field != tt.field {
				t.Errorf("ParseRequest = %v, want Invalid naming %q", err, tt.field)
			}
		})
	}
}

func TestQueryHash(t *testing.T) {
	base := listing.Query{Text: "copper", Sectors: []string{"ai"}}
	h := QueryHash(base, ScopeLocal, "project")
	paged := base
	paged.Limit, paged.Cursor = 50, "abc.def"
	if got := QueryHash(paged, ScopeLocal, "project"); got != h {
		t.Errorf("limit and cursor change the hash: %s != %s", got, h)
	}
	differ := []struct {
		name string
		hash string
	}{
		{"another text", QueryHash(listing.Query{Text: "zinc", Sectors: []string{"ai"}}, ScopeLocal, "project")},
		{"another filter", QueryHash(listing.Query{Text: "copper", Sectors: []string{"ai"}, Country: "CN"}, ScopeLocal, "project")},
		{"another scope", QueryHash(base, ScopeClub, "project")},
		{"other kinds", QueryHash(base, ScopeLocal, "project,talent")},
		{"extras split elsewhere", QueryHash(base, ScopeLocal+"p", "roject")},
		{"no extras", QueryHash(base)},
	}
	for _, d := range differ {
		if d.hash == h {
			t.Errorf("%s: same hash %s", d.name, h)
		}
	}
}

func TestKindsKey(t *testing.T) {
	if got, want := KindsKey(listing.Kinds), "organization,project,talent"; got != want {
		t.Errorf("KindsKey = %q, want %q", got, want)
	}
	if got := KindsKey(nil); got != "" {
		t.Errorf("KindsKey(nil) = %q", got)
	}
}

func TestParkSummaryAdd(t *testing.T) {
	var s ParkSummary
	for _, st := range []string{StatusOK, StatusOK, StatusTimeout, StatusCircuitOpen, StatusUnauthorized, StatusError, "weird"} {
		s.Add(ParkStatus{Park: "p", Status: st})
	}
	want := ParkSummary{Total: 7, OK: 2, Timeout: 1, CircuitOpen: 1, Unauthorized: 1, Error: 2}
	counts := func(s ParkSummary) [6]int {
		return [6]int{s.Total, s.OK, s.Timeout, s.CircuitOpen, s.Unauthorized, s.Error}
	}
	if counts(s) != counts(want) || len(s.Details) != 7 {
		t.Errorf("summary = %+v, want counts %+v and 7 details", s, want)
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
