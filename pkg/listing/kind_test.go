package listing_test

import (
	"strconv"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestKindContract(t *testing.T) {
	cases := []struct {
		kind        listing.Kind
		collection  string
		service     string
		serviceName string
		port        int
	}{
		{listing.KindOrganization, "organizations", "directory", "parkmesh-directory", 7101},
		{listing.KindProject, "projects", "project", "parkmesh-project", 7102},
		{listing.KindTalent, "talent", "talent", "parkmesh-talent", 7103},
		{"", "", "", "", 0},
		{"organizations", "", "", "", 0}, // a collection is not a kind
		{"Project", "", "", "", 0},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			if got := c.kind.Collection(); got != c.collection {
				t.Errorf("Collection() = %q, want %q", got, c.collection)
			}
			if got := c.kind.Service(); got != c.service {
				t.Errorf("Service() = %q, want %q", got, c.service)
			}
			if got := c.kind.ServiceName(); got != c.serviceName {
				t.Errorf("ServiceName() = %q, want %q", got, c.serviceName)
			}
			if got := c.kind.DefaultPort(); got != c.port {
				t.Errorf("DefaultPort() = %d, want %d", got, c.port)
			}
		})
	}
}

func TestKindOfCollection(t *testing.T) {
	cases := []struct {
		in     string
		want   listing.Kind
		wantOK bool
	}{
		{"organizations", listing.KindOrganization, true},
		{"projects", listing.KindProject, true},
		{"talent", listing.KindTalent, true},
		{"organization", "", false}, // the kind, not its collection
		{"project", "", false},
		{"talents", "", false},
		{"Projects", "", false}, // URL segments are case-sensitive
		{"", "", false},
		{"directory", "", false}, // a service name is not a collection
	}
	for _, c := range cases {
		got, ok := listing.KindOfCollection(c.in)
		if got != c.want || ok != c.wantOK {
			t.Errorf("KindOfCollection(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.wantOK)
		}
	}
}

// Every kind has a whole contract, and no two kinds share a name or a
// port: two services on one default port could not run side by side.
func TestKindContractsAreCompleteAndDistinct(t *testing.T) {
	seen := map[string]listing.Kind{}
	claim := func(what, v string, k listing.Kind) {
		t.Helper()
		if v == "" || v == "0" {
			t.Errorf("%s has no %s", k, what)
			return
		}
		if other, dup := seen[what+"="+v]; dup {
			t.Errorf("%s and %s share %s %s", other, k, what, v)
		}
		seen[what+"="+v] = k
	}
	for _, k := range listing.Kinds {
		claim("collection", k.Collection(), k)
		claim("service", k.Service(), k)
		claim("service name", k.ServiceName(), k)
		claim("port", strconv.Itoa(k.DefaultPort()), k)
		if back, ok := listing.KindOfCollection(k.Collection()); !ok || back != k {
			t.Errorf("KindOfCollection(%s.Collection()) = %q, %v", k, back, ok)
		}
	}
}
