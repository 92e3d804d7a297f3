package sample

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// demoParks are the parks the local demo runs; each needs every kind.
var demoParks = []string{"xian-hitech", "chengdu-hitech", "siliconvalley-offshore"}

func mustParks(t *testing.T) []File {
	t.Helper()
	ps, err := Parks()
	if err != nil {
		t.Fatalf("Parks: %v", err)
	}
	return ps
}

func TestFilesDecodeStrictly(t *testing.T) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no embedded sample files")
	}
	for _, name := range names {
		data, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var f File
		if err := dec.Decode(&f); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if dec.More() {
			t.Errorf("%s: trailing data after the top-level object", name)
		}
		if want := strings.TrimSuffix(name, ".json"); f.Park.ID != want {
			t.Errorf("%s: park id %q does not match the file name", name, f.Park.ID)
		}
	}
}

func TestParksSortedAndWellFormed(t *testing.T) {
	ps := mustParks(t)
	if len(ps) < 8 {
		t.Errorf("got %d parks, want at least 8", len(ps))
	}
	for i, p := range ps {
		if i > 0 && ps[i-1].Park.ID >= p.Park.ID {
			t.Errorf("parks not sorted by id: %q before %q", ps[i-1].Park.ID, p.Park.ID)
		}
		if !listing.ValidParkID(p.Park.ID) {
			t.Errorf("park %q: invalid park id", p.Park.ID)
		}
		if p.Park.Name == "" || p.Park.NameZH == "" || p.Park.City == "" {
			t.Errorf("park %q: name, name_zh and city are required", p.Park.ID)
		}
		if !listing.ValidCountry(p.Park.Country) {
			t.Errorf("park %q: invalid country %q", p.Park.ID, p.Park.Country)
		}
	}
	for _, id := range append(demoParks, "lanzhou-sv-station", "nantong-hitech", "haifa-lifescience") {
		if _, err := Load(id); err != nil {
			t.Errorf("required park missing: %v", err)
		}
	}
}

func TestListingsValidate(t *testing.T) {
	ps := mustParks(t)
	known := map[string]bool{}
	for _, p := range ps {
		known[p.Park.ID] = true
	}
	total := 0
	for _, p := range ps {
		for i := range p.Listings {
			total++
			l := p.Listings[i]
			if !l.Kind.Valid() {
				t.Errorf("%s[%d]: kind %q is not set or unknown", p.Park.ID, i, l.Kind)
				continue
			}
			if l.ID != "" || l.Park != "" || l.Version != 0 || !l.CreatedAt.IsZero() || !l.UpdatedAt.IsZero() {
				t.Errorf("%s[%d]: server-set fields (id, park, version, created_at, updated_at) must be absent", p.Park.ID, i)
			}
			if l.Attrs.OwnerOrg != "" {
				t.Errorf("%s[%d]: attrs.owner_org must not be set", p.Park.ID, i)
			}
			if l.Visibility == "" {
				t.Errorf("%s[%d]: visibility must be explicit", p.Park.ID, i)
			}
			l.Normalize()
			if err := l.Validate(l.Kind); err != nil {
				t.Errorf("%s[%d] %q: %v", p.Park.ID, i, l.Title, err)
			}
			for _, s := range l.ShareWith {
				if !known[s] || s == p.Park.ID {
					t.Errorf("%s[%d]: share_with %q is not another sample park", p.Park.ID, i, s)
				}
			}
			for _, s := range l.Attrs.LandingPreference {
				if !known[s] {
					t.Errorf("%s[%d]: landing_preference %q is not a sample park", p.Park.ID, i, s)
				}
			}
		}
	}
	if total < 100 {
		t.Errorf("got %d listings, want at least 100", total)
	}
}

func TestDemoParksHaveAllKinds(t *testing.T) {
	for _, id := range demoParks {
		f, err := Load(id)
		if err != nil {
			t.Errorf("Load(%q): %v", id, err)
			continue
		}
		if len(f.Listings) < 15 {
			t.Errorf("%s: %d listings, want at least 15", id, len(f.Listings))
		}
		n := map[listing.Kind]int{}
		for _, l := range f.Listings {
			n[l.Kind]++
		}
		for _, k := range listing.Kinds {
			if n[k] == 0 {
				t.Errorf("%s: no %s listing", id, k)
			}
		}
	}
}

func TestSearchableWords(t *testing.T) {
	ps := mustParks(t)
	for _, w := range []string{"硅谷", "芯片", "医疗", "新材料", "copper", "Copper"} {
		found := false
		for _, p := range ps {
			for _, l := range p.Listings {
				if strings.Contains(l.Title, w) || strings.Contains(l.Summary, w) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no listing title or summary contains %q", w)
		}
	}
}

func TestLoad(t *testing.T) {
	f, err := Load("xian-hitech")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if f.Park.ID != "xian-hitech" || f.Park.NameZH != "西安高新区" || f.Park.Country != "CN" {
		t.Errorf("Load(xian-hitech).Park = %+v", f.Park)
	}
	for _, id := range []string{"no-such-park", "../sample", "", "Xian-Hitech"} {
		_, err := Load(id)
		if err == nil {
			t.Errorf("Load(%q) succeeded, want an error", id)
			continue
		}
		if !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "unknown park") {
			t.Errorf("Load(%q) error %q does not name the park", id, err)
		}
	}
}
