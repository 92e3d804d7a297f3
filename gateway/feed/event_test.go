package feed

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

const (
	home  = "xian-hitech" // the park whose feed it is
	peerA = "haifa-park"
	peerB = "tlv-park"
)

var at = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// project returns a valid project of park with the given visibility.
func project(park string, vis listing.Visibility, shareWith ...string) *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindProject, at), Park: park, Kind: listing.KindProject,
		Title: "Nano copper foil", Summary: "Thinner foil for batteries", Sectors: []string{"new-materials"},
		Tags: []string{"graphene"}, Country: "CN", City: "西安", Seeking: []string{"investment"},
		Visibility: vis, ShareWith: shareWith, Version: 1, CreatedAt: at, UpdatedAt: at,
		Attrs: listing.Attrs{Stage: "pilot", TRL: 6},
	}
}

// talent returns a valid talent listing of park with contact data.
func talent(park string, consent *listing.Consent) *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindTalent, at), Park: park, Kind: listing.KindTalent,
		Title: "Dr. Li, battery chemist", Sectors: []string{"new-energy"}, Country: "CN",
		Visibility: listing.Club, Version: 1, CreatedAt: at, UpdatedAt: at,
		Attrs: listing.Attrs{Availability: []string{"mentor"},
			Contact: &listing.Contact{Email: "li@example.cn", Phone: "+86 29 1234"}, Consent: consent},
	}
}

// with returns a copy of l at the next version with visibility vis.
func with(l *listing.Listing, vis listing.Visibility, shareWith ...string) *listing.Listing {
	c := *l
	c.Visibility, c.ShareWith = vis, shareWith
	c.Version = l.Version + 1
	return &c
}

// audience is who could see any of versions.
func audience(versions ...*listing.Listing) listing.Audience {
	var a listing.Audience
	for _, l := range versions {
		a = a.With(l)
	}
	return a
}

// The changes reads of current state answer a listing at its latest change
// (created at seq 7), with who could ever see it; a tombstone has no
// content.
func created(l *listing.Listing) listing.Change {
	return listing.Change{Seq: 7, FirstSeq: 7, Op: listing.OpCreated, Park: l.Park, Kind: l.Kind, ListingID: l.ID, Version: l.Version, At: at, Listing: l, Audience: audience(l)}
}

func updated(prev, now *listing.Listing) listing.Change {
	return listing.Change{Seq: 8, FirstSeq: 7, Op: listing.OpUpdated, Park: now.Park, Kind: now.Kind, ListingID: now.ID, Version: now.Version, At: at, Listing: now, Audience: audience(prev, now)}
}

func deleted(prev *listing.Listing) listing.Change {
	return listing.Change{Seq: 9, FirstSeq: 7, Op: listing.OpDeleted, Park: prev.Park, Kind: prev.Kind, ListingID: prev.ID, Version: prev.Version + 1, At: at, Audience: audience(prev)}
}

func TestFor(t *testing.T) {
	club := project(home, listing.Club)
	private := project(home, listing.Private)
	shared := project(home, listing.Peers, peerA)
	tests := []struct {
		name   string
		change listing.Change
		viewer string
		want   string // event type; "" for no event
		after  int64  // the reader's position before the change
	}{
		{"created club, staff", created(club), "", TypeCreated, 0},
		{"created club, peer", created(club), peerA, TypeCreated, 0},
		{"created private, staff", created(private), "", TypeCreated, 0},
		{"created private, peer", created(private), peerA, "", 0},
		{"created shared with peer, that peer", created(shared), peerA, TypeCreated, 0},
		{"created shared with peer, another peer", created(shared), peerB, "", 0},
		{"updated club, staff", updated(club, with(club, listing.Club)), "", TypeUpdated, 7},
		{"updated club, peer", updated(club, with(club, listing.Club)), peerA, TypeUpdated, 7},
		{"updated private, staff", updated(private, with(private, listing.Private)), "", TypeUpdated, 7},
		{"updated private, peer", updated(private, with(private, listing.Private)), peerA, "", 7},
		// The type is a hint (created after the reader's position or not);
		// a follower applies both as an upsert by version.
		{"private made club, peer past its creation sees an update", updated(private, with(private, listing.Club)), peerA, TypeUpdated, 7},
		{"private made club, peer replaying from no position sees it created", updated(private, with(private, listing.Club)), peerA, TypeCreated, 0},
		{"private made club, staff sees an update", updated(private, with(private, listing.Club)), "", TypeUpdated, 7},
		{"club made private, peer sees it withdrawn", updated(club, with(club, listing.Private)), peerA, TypeWithdrawn, 7},
		{"club made private, staff sees an update", updated(club, with(club, listing.Private)), "", TypeUpdated, 7},
		{"share moved to another peer, old peer", updated(shared, with(shared, listing.Peers, peerB)), peerA, TypeWithdrawn, 7},
		{"share moved to another peer, new peer", updated(shared, with(shared, listing.Peers, peerB)), peerB, TypeUpdated, 7},
		{"club made private, peer replaying from no position still hears it withdrawn", updated(club, with(club, listing.Private)), peerA, TypeWithdrawn, 0},
		{"private updated, replaying peer never in its audience learns nothing", updated(private, with(private, listing.Private)), peerB, "", 0},
		{"share moved to another peer, third park", updated(shared, with(shared, listing.Peers, peerB)), "ulm-park", "", 7},
		{"deleted club, staff", deleted(club), "", TypeWithdrawn, 7},
		{"deleted club, peer", deleted(club), peerA, TypeWithdrawn, 7},
		{"deleted private, staff", deleted(private), "", TypeWithdrawn, 7},
		{"deleted private, peer", deleted(private), peerA, "", 7},
		{"deleted shared, the peer it was shared with", deleted(shared), peerA, TypeWithdrawn, 7},
		{"deleted shared, another peer", deleted(shared), peerB, "", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := For(home, listing.KindProject, tt.change, tt.viewer, tt.after)
			if tt.want == "" {
				if ev != nil {
					t.Fatalf("viewer %q got a %s event, want none", tt.viewer, ev.Type())
				}
				return
			}
			if ev == nil {
				t.Fatalf("viewer %q got no event, want %s", tt.viewer, tt.want)
			}
			if ev.Type() != tt.want {
				t.Errorf("type = %s, want %s", ev.Type(), tt.want)
			}
			c := tt.change
			if got, want := ev.ID(), home+"/project/"+itoa(c.Seq); got != want {
				t.Errorf("id = %q, want %q", got, want)
			}
			if ev.Source() != "/parks/"+home || ev.Subject() != c.ListingID || !ev.Time().Equal(c.At) {
				t.Errorf("source/subject/time = %s/%s/%s", ev.Source(), ev.Subject(), ev.Time())
			}
			if tt.want == TypeWithdrawn {
				checkWithdrawn(t, ev, Withdrawn{ID: c.ListingID, Park: home, Kind: listing.KindProject, Version: c.Version})
				if bytes.Contains(Marshal(ev), []byte(club.Title)) {
					t.Errorf("withdrawn event carries the title: %s", Marshal(ev))
				}
				return
			}
			var got listing.Listing
			if err := json.Unmarshal(ev.Data(), &got); err != nil {
				t.Fatalf("data is not a listing: %v", err)
			}
			if got.ID != c.Listing.ID || got.Version != c.Listing.Version || got.Visibility != c.Listing.Visibility {
				t.Errorf("data = %+v, want the listing after the change", got)
			}
		})
	}
}

// checkWithdrawn checks a withdrawn event says exactly w and nothing more.
func checkWithdrawn(t *testing.T, ev *Event, w Withdrawn) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data(), &fields); err != nil {
		t.Fatalf("withdrawn data is not an object: %v", err)
	}
	if got, want := slices.Sorted(maps.Keys(fields)), []string{"id", "kind", "park", "version"}; !slices.Equal(got, want) {
		t.Errorf("withdrawn data fields = %v, want %v", got, want)
	}
	var got Withdrawn
	json.Unmarshal(ev.Data(), &got)
	if got != w {
		t.Errorf("withdrawn data = %+v, want %+v", got, w)
	}
}

func TestForContactData(t *testing.T) {
	tests := []struct {
		name        string
		consent     *listing.Consent
		viewer      string
		wantContact bool
	}{
		{"staff see contact without consent", nil, "", true},
		{"peer: no consent recorded", nil, peerA, false},
		{"peer: consent refused", &listing.Consent{ShareContact: false}, peerA, false},
		{"peer: consent given", &listing.Consent{ShareContact: true}, peerA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := talent(home, tt.consent)
			for _, c := range []listing.Change{created(l), updated(l, with(l, listing.Club))} {
				ev := For(home, listing.KindTalent, c, tt.viewer, 0)
				if ev == nil {
					t.Fatalf("%s: no event", c.Op)
				}
				raw := Marshal(ev)
				hasEmail := bytes.Contains(raw, []byte("li@example.cn"))
				hasPhone := bytes.Contains(raw, []byte("+86 29 1234"))
				if hasEmail != tt.wantContact || hasPhone != tt.wantContact {
					t.Errorf("%s: email/phone in event = %v/%v, want %v", c.Op, hasEmail, hasPhone, tt.wantContact)
				}
			}
			// The change itself is never edited for the peer's sake.
			if l.Attrs.Contact == nil {
				t.Error("For removed the contact from the stored listing")
			}
			// Withdrawn never carries contact data, whoever sees it.
			ev := For(home, listing.KindTalent, deleted(l), tt.viewer, 7)
			if bytes.Contains(Marshal(ev), []byte("li@example.cn")) {
				t.Errorf("withdrawn event carries contact data: %s", Marshal(ev))
			}
		})
	}
}

func TestForIsStructuredCloudEventsJSON(t *testing.T) {
	l := project(home, listing.Club)
	for _, c := range []listing.Change{created(l), deleted(l)} {
		raw := Marshal(For(home, listing.KindProject, c, peerA, 0))
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: not a JSON object: %v\n%s", c.Op, err, raw)
		}
		str := func(k string) string {
			var s string
			json.Unmarshal(m[k], &s)
			return s
		}
		if str("specversion") != "1.0" || str("datacontenttype") != "application/json" {
			t.Errorf("%s: specversion %q, datacontenttype %q", c.Op, str("specversion"), str("datacontenttype"))
		}
		for _, k := range []string{"id", "source", "type", "subject", "time"} {
			if str(k) == "" {
				t.Errorf("%s: attribute %s missing: %s", c.Op, k, raw)
			}
		}
		if _, ok := m["data_base64"]; ok {
			t.Errorf("%s: data is base64: %s", c.Op, raw)
		}
		if d := bytes.TrimSpace(m["data"]); len(d) == 0 || d[0] != '{' {
			t.Errorf("%s: data is not a JSON object: %s", c.Op, m["data"])
		}
		if _, err := time.Parse(time.RFC3339, str("time")); err != nil {
			t.Errorf("%s: time %q is not RFC 3339", c.Op, str("time"))
		}
	}
}

// peerEvent returns a valid event of peer's feed, as a JSON object to edit.
func peerEvent(t *testing.T, c listing.Change) map[string]any {
	t.Helper()
	ev := For(peerA, c.Kind, c, home, 0)
	if ev == nil {
		t.Fatal("no event")
	}
	var m map[string]any
	if err := json.Unmarshal(Marshal(ev), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	l := project(peerA, listing.Club)
	other := project(peerB, listing.Club)
	type edit func(m map[string]any)
	del := func(k string) edit { return func(m map[string]any) { delete(m, k) } }
	set := func(k string, v any) edit { return func(m map[string]any) { m[k] = v } }
	setData := func(k string, v any) edit {
		return func(m map[string]any) { m["data"].(map[string]any)[k] = v }
	}
	tests := []struct {
		name    string
		change  listing.Change
		edit    edit
		wantErr bool
	}{
		{"valid created", created(l), nil, false},
		{"valid updated", updated(l, with(l, listing.Club)), nil, false},
		{"valid withdrawn", deleted(l), nil, false},
		{"unknown extension attribute", created(l), set("parkmeshtrace", "x"), false},
		{"unknown extension on withdrawn", deleted(l), set("parkmeshtrace", "x"), false},
		{"content type with parameters", created(l), set("datacontenttype", "application/json; charset=utf-8"), false},
		{"missing id", created(l), del("id"), true},
		{"empty id", created(l), set("id", ""), true},
		{"missing source", created(l), del("source"), true},
		{"missing type", created(l), del("type"), true},
		{"missing specversion", created(l), del("specversion"), true},
		{"specversion 0.3", created(l), set("specversion", "0.3"), true},
		{"specversion 2.0", created(l), set("specversion", "2.0"), true},
		{"missing subject", created(l), del("subject"), true},
		{"missing time", created(l), del("time"), true},
		{"another park's source", created(l), set("source", "/parks/"+peerB), true},
		{"source not of a park", created(l), set("source", "https://example.com/"), true},
		{"unknown type", created(l), set("type", "org.parkmesh.listing.exploded"), true},
		{"listing of another park", created(l), setData("park", peerB), true},
		{"subject is not the listing", created(l), set("subject", other.ID), true},
		{"listing id of the wrong kind", created(l), func(m map[string]any) {
			id := listing.NewID(listing.KindTalent, at)
			m["subject"] = id
			m["data"].(map[string]any)["id"] = id
		}, true},
		{"listing version 0", created(l), setData("version", 0), true},
		{"listing fails validation", created(l), setData("title", ""), true},
		{"data not JSON", created(l), func(m map[string]any) { m["datacontenttype"] = "text/plain"; m["data"] = "hello" }, true},
		{"data a JSON string", created(l), set("data", "hello"), true},
		{"data a JSON array", created(l), set("data", []any{1, 2}), true},
		{"data missing", created(l), del("data"), true},
		{"withdrawn of another park", deleted(l), setData("park", peerB), true},
		{"withdrawn version 0", deleted(l), setData("version", 0), true},
		{"withdrawn id not the subject", deleted(l), setData("id", other.ID), true},
		{"withdrawn of an unknown kind", deleted(l), setData("kind", "robot"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := peerEvent(t, tt.change)
			if tt.edit != nil {
				tt.edit(m)
			}
			ev, id, version, err := Parse(peerA, encode(t, m))
			if tt.wantErr {
				if err == nil {
					t.Errorf("Parse accepted %s", encode(t, m))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if id != tt.change.ListingID || version != tt.change.Version || ev == nil {
				t.Errorf("Parse = %q v%d, want %q v%d", id, version, tt.change.ListingID, tt.change.Version)
			}
		})
	}
}

func TestParseRefusesWhatIsNotAnEvent(t *testing.T) {
	for _, raw := range []string{``, `not json`, `[]`, `{}`, `null`, `{"specversion":"1.0"}`, strings.Repeat("{", 100)} {
		if _, _, _, err := Parse(peerA, []byte(raw)); err == nil {
			t.Errorf("Parse accepted %q", raw)
		}
	}
}

// What For renders for a peer, the peer's Parse reads back unchanged.
func TestForMarshalParseRoundTrip(t *testing.T) {
	l := project(home, listing.Club)
	tal := talent(home, &listing.Consent{ShareContact: true})
	tests := []struct {
		name   string
		kind   listing.Kind
		change listing.Change
	}{
		{"created", listing.KindProject, created(l)},
		{"updated", listing.KindProject, updated(l, with(l, listing.Club))},
		{"withdrawn by visibility", listing.KindProject, updated(l, with(l, listing.Private))},
		{"withdrawn by delete", listing.KindProject, deleted(l)},
		{"talent with shared contact", listing.KindTalent, created(tal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := For(home, tt.kind, tt.change, peerA, 0)
			got, id, version, err := Parse(home, Marshal(ev))
			if err != nil {
				t.Fatalf("Parse(Marshal(For(…))): %v\n%s", err, Marshal(ev))
			}
			if id != tt.change.ListingID || version != tt.change.Version {
				t.Errorf("id, version = %q, %d; want %q, %d", id, version, tt.change.ListingID, tt.change.Version)
			}
			if got.ID() != ev.ID() || got.Type() != ev.Type() || got.Subject() != ev.Subject() || !got.Time().Equal(ev.Time()) {
				t.Errorf("attributes changed: got %v\nwant %v", got, ev)
			}
			if !jsonEqual(t, got.Data(), ev.Data()) {
				t.Errorf("data changed:\n got %s\nwant %s", got.Data(), ev.Data())
			}
			if !bytes.Equal(Marshal(got), Marshal(ev)) {
				t.Errorf("re-marshalled event differs:\n got %s\nwant %s", Marshal(got), Marshal(ev))
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
