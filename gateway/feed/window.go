package feed

import (
	"sort"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// window is the recent changes of one kind held in memory, each listing
// at its latest change, like the services' reads. Adding costs time in
// proportion to what is added, not to the window: a listing changed again
// leaves its older entry in place, superseded (latest names the entry in
// force), and the entries are copied without the superseded ones only once
// they are most of them. (Copying the whole window on every change was a
// sixth of a busy gateway's CPU, and most of its garbage.)
type window struct {
	entries []listing.Change // in sequence order; some superseded
	latest  map[string]int64 // listing id → sequence of its entry in force
	// floor: every listing whose latest change is after floor is held.
	floor int64
}

func (w *window) inForce(c listing.Change) bool { return w.latest[c.ListingID] == c.Seq }

// add appends changes newer than the window's, then drops the oldest
// listings while more than size are held.
func (w *window) add(changes []listing.Change, size int) {
	if w.latest == nil {
		w.latest = map[string]int64{}
	}
	for _, c := range changes {
		w.entries = append(w.entries, c)
		w.latest[c.ListingID] = c.Seq
	}
	drop := 0
	for ; drop < len(w.entries) && (len(w.latest) > size || !w.inForce(w.entries[drop])); drop++ {
		if c := w.entries[drop]; w.inForce(c) {
			delete(w.latest, c.ListingID)
			w.floor = c.Seq
		}
	}
	w.entries = w.entries[drop:]
	if len(w.entries) > 2*len(w.latest)+64 {
		held := make([]listing.Change, 0, 2*len(w.latest))
		for _, c := range w.entries {
			if w.inForce(c) {
				held = append(held, c)
			}
		}
		w.entries = held
	}
}

// after returns up to limit held changes after seq, in sequence order.
func (w *window) after(seq int64, limit int) []listing.Change {
	j := sort.Search(len(w.entries), func(j int) bool { return w.entries[j].Seq > seq })
	var out []listing.Change
	for _, c := range w.entries[j:] {
		if len(out) == limit {
			break
		}
		if w.inForce(c) {
			out = append(out, c)
		}
	}
	return out
}

// held returns every held change, in sequence order.
func (w *window) held() []listing.Change { return w.after(w.floor, len(w.latest)) }
