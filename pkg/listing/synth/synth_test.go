package synth

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestListingsAreValidAndUnique(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for i := range 3000 {
		k := listing.Kinds[i%3]
		l := Listing(r, i, k, "xian-hitech", time.Now())
		if err := l.Validate(k); err != nil {
			t.Fatalf("listing %d invalid: %v (%+v)", i, err, l)
		}
		if !listing.ValidID(k, l.ID) || seen[l.ID] {
			t.Fatalf("listing %d: bad or repeated id %s", i, l.ID)
		}
		seen[l.ID] = true
	}
}
