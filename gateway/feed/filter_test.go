package feed

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		query string
		want  Filter
	}{
		{"", Filter{}},
		{"kinds=projects,talent", Filter{Kinds: []listing.Kind{listing.KindProject, listing.KindTalent}}},
		{"kinds=organization", Filter{Kinds: []listing.Kind{listing.KindOrganization}}},
		{"sectors=ai,new-materials", Filter{Sectors: []string{"ai", "new-materials"}}},
		{"seeking=investment", Filter{Seeking: []string{"investment"}}},
		{"q=Nano+COPPER", Filter{Text: "nano copper"}},
		{"parks=xian-hitech,haifa-park", Filter{Parks: []string{"xian-hitech", "haifa-park"}}},
		{"last_event_id=s1.1.2.3.4&kinds=talent", Filter{Kinds: []listing.Kind{listing.KindTalent}}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.query)
			got, err := ParseFilter(v)
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("filter = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseFilterRefusals(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		query, field string
	}{
		{"sector=ai", "sector"},
		{"country=CN", "country"},
		{"limit=5", "limit"},
		{long + "=1", long[:64] + "…"},
		{"kinds=robots", "kinds"},
		{"sectors=astrology", "sectors"},
		{"seeking=luck", "seeking"},
		{"parks=Not_A_Park", "parks"},
		{"q=" + strings.Repeat("长", listing.MaxQueryText+1), "q"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.query)
			_, err := ParseFilter(v)
			var e *apierror.Error
			if !errors.As(err, &e) || e.Code != apierror.Invalid || e.Field != tt.field {
				t.Errorf("ParseFilter = %v, want Invalid naming %q", err, tt.field)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	prj := project(home, listing.Club) // new-materials, seeking investment, "Nano copper foil"
	tal := talent(home, nil)           // new-energy, no seeking
	evPrj := For(home, listing.KindProject, created(prj), "", 0)
	evTal := For(home, listing.KindTalent, created(tal), "", 0)
	wdPrj := For(home, listing.KindProject, deleted(prj), "", 0)
	wdTal := For(home, listing.KindTalent, deleted(tal), "", 0)
	type want struct{ prj, tal, wdPrj, wdTal bool }
	tests := []struct {
		name   string
		filter Filter
		park   string
		want   want
	}{
		{"empty filter keeps all", Filter{}, home, want{true, true, true, true}},
		{"kinds", Filter{Kinds: []listing.Kind{listing.KindProject}}, home, want{true, false, true, false}},
		{"two kinds", Filter{Kinds: []listing.Kind{listing.KindProject, listing.KindTalent}}, home, want{true, true, true, true}},
		{"parks: the event's park", Filter{Parks: []string{peerA, home}}, home, want{true, true, true, true}},
		{"parks: another park", Filter{Parks: []string{peerA}}, home, want{false, false, false, false}},
		// A withdrawn event carries no content: only kind and park decide.
		{"sectors", Filter{Sectors: []string{"new-materials"}}, home, want{true, false, true, true}},
		{"sectors any of", Filter{Sectors: []string{"ai", "new-energy"}}, home, want{false, true, true, true}},
		{"seeking", Filter{Seeking: []string{"investment"}}, home, want{true, false, true, true}},
		{"seeking, none match", Filter{Seeking: []string{"talent"}}, home, want{false, false, true, true}},
		{"text in the title", Filter{Text: "copper"}, home, want{true, false, true, true}},
		{"text, every word", Filter{Text: "nano copper"}, home, want{true, false, true, true}},
		{"text, one word missing", Filter{Text: "copper zinc"}, home, want{false, false, true, true}},
		{"text in the summary", Filter{Text: "batteries"}, home, want{true, false, true, true}},
		{"text in a tag", Filter{Text: "graphene"}, home, want{true, false, true, true}},
		{"text matches case-insensitively", Filter{Text: "dr. li"}, home, want{false, true, true, true}},
		{"kinds and sectors", Filter{Kinds: []listing.Kind{listing.KindTalent}, Sectors: []string{"new-materials"}}, home, want{false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := want{
				tt.filter.Match(tt.park, evPrj), tt.filter.Match(tt.park, evTal),
				tt.filter.Match(tt.park, wdPrj), tt.filter.Match(tt.park, wdTal),
			}
			if got != tt.want {
				t.Errorf("project, talent, withdrawn project, withdrawn talent = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A filter parsed from a query (text lower-cased) matches mixed-case text.
func TestParseFilterThenMatch(t *testing.T) {
	f, err := ParseFilter(url.Values{"q": {"NANO"}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(home, For(home, listing.KindProject, created(project(home, listing.Club)), "", 0)) {
		t.Error("q=NANO does not match the title \"Nano copper foil\"")
	}
}
