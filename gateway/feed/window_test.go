package feed

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// oracleWindow is the window as it was first written: the whole window
// copied on every change. The window must hold what it held.
type oracleWindow struct {
	r     []listing.Change
	floor int64
}

func (o *oracleWindow) add(changes []listing.Change, size int) {
	changed := map[string]bool{}
	for _, c := range changes {
		changed[c.ListingID] = true
	}
	var r []listing.Change
	for _, c := range o.r {
		if !changed[c.ListingID] {
			r = append(r, c)
		}
	}
	// A listing twice in one batch is held once, at its later change.
	last := map[string]int64{}
	for _, c := range changes {
		last[c.ListingID] = c.Seq
	}
	for _, c := range changes {
		if last[c.ListingID] == c.Seq {
			r = append(r, c)
		}
	}
	if len(r) > size {
		o.floor = r[len(r)-size-1].Seq
		r = r[len(r)-size:]
	}
	o.r = r
}

func (o *oracleWindow) after(seq int64, limit int) []listing.Change {
	j := sort.Search(len(o.r), func(j int) bool { return o.r[j].Seq > seq })
	return o.r[j:min(len(o.r), j+limit)]
}

func sameChanges(a, b []listing.Change) bool {
	return slices.EqualFunc(a, b, func(x, y listing.Change) bool { return x.Seq == y.Seq && x.ListingID == y.ListingID })
}

// The window holds, after every batch, the listings and floor the first
// window did, answers reads alike, and does not keep superseded entries
// without bound.
func TestWindowMatchesTheWholeCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, size := range []int{1, 3, 50} {
		var w window
		var o oracleWindow
		seq := int64(0)
		for round := range 3000 {
			var batch []listing.Change
			for range rng.IntN(5) + 1 {
				seq++
				batch = append(batch, listing.Change{Seq: seq, ListingID: fmt.Sprintf("l%d", rng.IntN(3*size+2))})
			}
			w.add(batch, size)
			o.add(batch, size)
			if !sameChanges(w.held(), o.r) || w.floor != o.floor {
				t.Fatalf("size %d, round %d: held %v floor %d, want %v floor %d", size, round, w.held(), w.floor, o.r, o.floor)
			}
			at, limit := w.floor+rng.Int64N(seq-w.floor+1), rng.IntN(size+2)
			if got, want := w.after(at, limit), o.after(at, limit); !sameChanges(got, want) && len(got)+len(want) > 0 {
				t.Fatalf("size %d, round %d: after(%d, %d) = %v, want %v", size, round, at, limit, got, want)
			}
			if len(w.entries) > 2*size+64+5 {
				t.Fatalf("size %d: %d entries kept for %d listings", size, len(w.entries), len(w.latest))
			}
		}
	}
}
