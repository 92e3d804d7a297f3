package search

import (
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/cursor"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Merging ranked lists from several sources (the park's three services,
// or the parks of the club in mode=live) goes by score when every source
// scores its results (listing.Match, which a text query carries): the
// stores share one scoring formula that uses no collection statistics, so
// scores compare across sources, and the merged page takes, at each step,
// the best-scored next result (ties: the source that returned fewer, then
// the sources' order). A source whose results carry no score (a query
// without text: newest first; an older peer) makes the merge interleave by
// rank instead: the next result of the source that has returned the
// fewest so far, ties going to the sources' order (docs/decisions.md).
// Either way the merge is deterministic.

// SourceState is where one source stands between pages.
type SourceState struct {
	Cursor string `json:"c,omitempty"` // the source's cursor of the page to fetch
	Skip   int    `json:"s,omitempty"` // results of that page already returned
	Rank   int    `json:"r,omitempty"` // results of the source returned so far
	Done   bool   `json:"d,omitempty"` // nothing more to fetch
	// Last is the score of the source's last result returned (score
	// merges): its next results score no higher.
	Last *float64 `json:"l,omitempty"`
}

// Cursor is the state of a merged search between pages.
type Cursor struct {
	Query   string                 `json:"q"` // hash of the query
	Sources map[string]SourceState `json:"s"`
}

// SourcePage is what one source answered for a page.
type SourcePage struct {
	Name    string
	Results []*listing.Listing // the source's page, before Skip
	Next    string             // the source's next cursor
	Failed  bool               // the source did not answer: contributes nothing, state kept
}

// Merge fuses the sources' pages into one page of at most limit results
// and returns the cursor state for the next page (nil when every source is
// exhausted). A source whose fetched page runs out while it has more stops
// the page early, so no result of a later page can outrank one returned.
func Merge(pages []SourcePage, state map[string]SourceState, limit int) ([]*listing.Listing, map[string]SourceState) {
	type avail struct {
		items []*listing.Listing
		more  bool
	}
	av := make([]avail, len(pages))
	for i, p := range pages {
		st := state[p.Name]
		if p.Failed || st.Done {
			continue
		}
		items := p.Results
		if st.Skip < len(items) {
			items = items[st.Skip:]
		} else {
			items = nil
		}
		av[i] = avail{items: items, more: p.Next != ""}
	}
	taken := make([]int, len(pages))
	var out []*listing.Listing
	last := make([]*float64, len(pages))
	for i, p := range pages {
		last[i] = state[p.Name].Last
	}
	scored := true
	for i := range pages {
		for _, l := range av[i].items {
			if l == nil || l.Match == nil {
				scored = false
			}
		}
	}
	// By score: the best next result; a source that must be fetched
	// further first stops the page while its next results could score
	// higher than the best at hand.
	for scored && len(out) < limit {
		best := -1
		for i, p := range pages {
			if p.Failed || state[p.Name].Done || taken[i] >= len(av[i].items) {
				continue
			}
			if best == -1 {
				best = i
				continue
			}
			a, b := av[i].items[taken[i]].Match.Score, av[best].items[taken[best]].Match.Score
			if a > b || a == b && state[p.Name].Rank+taken[i] < state[pages[best].Name].Rank+taken[best] {
				best = i
			}
		}
		if best == -1 {
			break
		}
		score := av[best].items[taken[best]].Match.Score
		blocked := false
		for i, p := range pages {
			if p.Failed || state[p.Name].Done || taken[i] < len(av[i].items) || !av[i].more {
				continue
			}
			if last[i] == nil || *last[i] > score {
				blocked = true
			}
		}
		if blocked {
			break
		}
		out = append(out, av[best].items[taken[best]])
		taken[best]++
		last[best] = &score
	}
	// Round robin by rank: sources that already returned more rank lower.
	for !scored && len(out) < limit {
		best, bestRank := -1, 0
		for i, p := range pages {
			if p.Failed || state[p.Name].Done {
				continue
			}
			if taken[i] >= len(av[i].items) {
				if av[i].more {
					// Unknown results of this source could rank here.
					if best == -1 || state[p.Name].Rank+taken[i] < bestRank {
						best, bestRank = -2-i, state[p.Name].Rank+taken[i]
					}
				}
				continue
			}
			r := state[p.Name].Rank + taken[i]
			if best == -1 || r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break // all exhausted, or a source must be fetched further first
		}
		out = append(out, av[best].items[taken[best]])
		taken[best]++
	}
	next := map[string]SourceState{}
	anyLeft := false
	for i, p := range pages {
		st := state[p.Name]
		if st.Done {
			next[p.Name] = st
			continue
		}
		if p.Failed {
			next[p.Name] = st
			anyLeft = true
			continue
		}
		st.Rank += taken[i]
		if scored {
			st.Last = last[i]
		}
		if taken[i] < len(av[i].items) {
			st.Skip += taken[i]
		} else if p.Next != "" {
			st.Cursor, st.Skip = p.Next, 0
		} else {
			st.Done = true
		}
		if !st.Done {
			anyLeft = true
		}
		next[p.Name] = st
	}
	if !anyLeft {
		return out, nil
	}
	return out, next
}

// Signer signs merged cursors so a caller cannot edit them or replay one
// against another query.
type Signer struct{ sealer cursor.Signer }

// NewSigner returns a signer with key (every replica of a park's gateway
// derives the same key, so each accepts the others' cursors).
func NewSigner(key []byte) Signer { return Signer{sealer: cursor.New(key)} }

// Encode signs c into an opaque cursor.
func (s Signer) Encode(c Cursor) string { return s.sealer.Seal(c) }

// MaxCursor bounds a merged cursor. A club search's cursor holds every
// peer's own cursor (about 500 bytes each, at most 16 KiB), so the bound
// must hold a large club's; it stays far below the server's header limit.
const MaxCursor = 256 << 10

// Decode checks and reads a cursor issued for the query hashed queryHash;
// any other is Invalid, naming the cursor field.
func (s Signer) Decode(raw, queryHash string) (Cursor, error) {
	var c Cursor
	if !s.sealer.Open(raw, MaxCursor, &c) || c.Query != queryHash || c.Sources == nil {
		return Cursor{}, apierror.InvalidField("cursor", "is not a cursor this gateway issued for this query")
	}
	return c, nil
}
