package search

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// items returns listings named prefix0, prefix1, … (Merge looks at
// nothing but their order).
func items(prefix string, n int) []*listing.Listing {
	out := make([]*listing.Listing, n)
	for i := range out {
		out[i] = &listing.Listing{ID: prefix + strconv.Itoa(i)}
	}
	return out
}

func ids(ls []*listing.Listing) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name      string
		pages     []SourcePage
		state     map[string]SourceState
		limit     int
		want      []string
		wantState map[string]SourceState // nil: every source done
	}{
		{
			name: "interleaves by rank, ties in the sources' order",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 3)},
				{Name: "b", Results: items("b", 2)},
				{Name: "c", Results: items("c", 1)},
			},
			limit: 10,
			want:  []string{"a0", "b0", "c0", "a1", "b1", "a2"},
		},
		{
			name: "limit cuts the page and remembers how far each page was read",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 3)},
				{Name: "b", Results: items("b", 2)},
				{Name: "c", Results: items("c", 1)},
			},
			limit: 4,
			want:  []string{"a0", "b0", "c0", "a1"},
			wantState: map[string]SourceState{
				"a": {Skip: 2, Rank: 2},
				"b": {Skip: 1, Rank: 1},
				"c": {Rank: 1, Done: true},
			},
		},
		{
			name: "a source read to the end of its page moves to its next cursor",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 2), Next: "a-2"},
				{Name: "b", Results: items("b", 3)},
			},
			limit: 4,
			want:  []string{"a0", "b0", "a1", "b1"},
			wantState: map[string]SourceState{
				"a": {Cursor: "a-2", Rank: 2},
				"b": {Skip: 2, Rank: 2},
			},
		},
		{
			name: "a failed source contributes nothing and keeps its state",
			pages: []SourcePage{
				{Name: "a", Failed: true, Results: items("a", 3)},
				{Name: "b", Results: items("b", 2)},
			},
			state: map[string]SourceState{"a": {Cursor: "a-p2", Skip: 1, Rank: 7}},
			limit: 10,
			want:  []string{"b0", "b1"},
			wantState: map[string]SourceState{
				"a": {Cursor: "a-p2", Skip: 1, Rank: 7},
				"b": {Rank: 2, Done: true},
			},
		},
		{
			name: "a failed source with no state yet keeps none",
			pages: []SourcePage{
				{Name: "a", Failed: true},
				{Name: "b", Results: items("b", 1)},
			},
			limit: 10,
			want:  []string{"b0"},
			wantState: map[string]SourceState{
				"a": {},
				"b": {Rank: 1, Done: true},
			},
		},
		{
			name: "every source failing keeps the state and returns nothing",
			pages: []SourcePage{
				{Name: "a", Failed: true},
				{Name: "b", Failed: true},
			},
			state:     map[string]SourceState{"a": {Cursor: "x", Rank: 3}, "b": {Skip: 2, Rank: 2}},
			limit:     10,
			want:      []string{},
			wantState: map[string]SourceState{"a": {Cursor: "x", Rank: 3}, "b": {Skip: 2, Rank: 2}},
		},
		{
			// a1 could outrank b1 (same rank, earlier source): the page must
			// stop before b1 rather than return it and a1 on a later page.
			name: "a source whose page runs out while it has more stops the page",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 1), Next: "a-1"},
				{Name: "b", Results: items("b", 3)},
			},
			limit: 10,
			want:  []string{"a0", "b0"},
			wantState: map[string]SourceState{
				"a": {Cursor: "a-1", Rank: 1},
				"b": {Skip: 1, Rank: 1},
			},
		},
		{
			name: "the stop comes at the blocked source's rank, not before",
			pages: []SourcePage{
				{Name: "b", Results: items("b", 3)},
				{Name: "a", Results: items("a", 1), Next: "a-1"},
			},
			limit: 10,
			want:  []string{"b0", "a0", "b1"},
			wantState: map[string]SourceState{
				"b": {Skip: 2, Rank: 2},
				"a": {Cursor: "a-1", Rank: 1},
			},
		},
		{
			name: "a done source is not read again, even if handed results",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 2)},
				{Name: "b", Results: items("b", 2)},
			},
			state: map[string]SourceState{"a": {Rank: 4, Done: true}},
			limit: 10,
			want:  []string{"b0", "b1"},
		},
		{
			name: "skip drops what earlier pages returned and ranks continue",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 4)},
				{Name: "b", Results: items("b", 3)},
			},
			state: map[string]SourceState{"a": {Cursor: "p", Skip: 2, Rank: 2}, "b": {Rank: 0}},
			limit: 3,
			want:  []string{"b0", "b1", "a2"},
			wantState: map[string]SourceState{
				"a": {Cursor: "p", Skip: 3, Rank: 3},
				"b": {Skip: 2, Rank: 2},
			},
		},
		{
			name: "a page shorter than skip with more behind it only moves the cursor",
			pages: []SourcePage{
				{Name: "a", Results: items("a", 1), Next: "a-next"},
			},
			state: map[string]SourceState{"a": {Cursor: "a-cur", Skip: 5, Rank: 5}},
			limit: 10,
			want:  []string{},
			wantState: map[string]SourceState{
				"a": {Cursor: "a-next", Rank: 5},
			},
		},
		{
			name:  "nil state when all are done",
			pages: []SourcePage{{Name: "a"}, {Name: "b"}},
			limit: 10,
			want:  []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotState := Merge(tt.pages, tt.state, tt.limit)
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("results = %v, want %v", ids(got), tt.want)
			}
			if tt.wantState == nil {
				if gotState != nil {
					t.Errorf("state = %v, want nil (all done)", gotState)
				}
				return
			}
			if !maps.Equal(gotState, tt.wantState) {
				t.Errorf("state = %v, want %v", gotState, tt.wantState)
			}
		})
	}
}

// pagedSource is a source that pages through its n results pageSize at a
// time, its cursor being the offset of the page.
type pagedSource struct {
	name     string
	n        int
	pageSize int
}

func (s pagedSource) page(cursor string) SourcePage {
	off := 0
	if cursor != "" {
		off, _ = strconv.Atoi(strings.TrimPrefix(cursor, s.name+"@"))
	}
	end := min(off+s.pageSize, s.n)
	p := SourcePage{Name: s.name, Results: items(s.name, s.n)[off:end]}
	if end < s.n {
		p.Next = fmt.Sprintf("%s@%d", s.name, end)
	}
	return p
}

// pageAll pages a merge of srcs to exhaustion, limit results a page, the
// sources in fail failing on the page numbers listed; it returns every
// page's results.
func pageAll(t *testing.T, srcs []pagedSource, limit int, fail map[string][]int) [][]string {
	t.Helper()
	var out [][]string
	state := map[string]SourceState{}
	for n := 0; ; n++ {
		if n > 1000 {
			t.Fatalf("no end after %d pages; state %v", n, state)
		}
		pages := make([]SourcePage, len(srcs))
		for i, s := range srcs {
			if slices.Contains(fail[s.name], n) {
				pages[i] = SourcePage{Name: s.name, Failed: true}
				continue
			}
			pages[i] = s.page(state[s.name].Cursor)
		}
		got, next := Merge(pages, state, limit)
		if len(got) > limit {
			t.Fatalf("page %d holds %d results, limit %d", n, len(got), limit)
		}
		out = append(out, ids(got))
		if next == nil {
			return out
		}
		state = next
	}
}

// roundRobin is the order a merge of srcs must produce: by rank, ties in
// the sources' order.
func roundRobin(srcs []pagedSource) []string {
	var out []string
	for r := 0; ; r++ {
		any := false
		for _, s := range srcs {
			if r < s.n {
				out = append(out, s.name+strconv.Itoa(r))
				any = true
			}
		}
		if !any {
			return out
		}
	}
}

func TestMergePagingToExhaustion(t *testing.T) {
	tests := []struct {
		name  string
		srcs  []pagedSource
		limit int
		fail  map[string][]int
	}{
		{"equal sources", []pagedSource{{"a", 6, 3}, {"b", 6, 3}}, 4, nil},
		{"uneven sizes and page sizes", []pagedSource{{"a", 7, 3}, {"b", 0, 5}, {"c", 12, 5}, {"d", 1, 1}}, 4, nil},
		{"source pages smaller than the merged page", []pagedSource{{"a", 9, 2}, {"b", 5, 1}}, 10, nil},
		{"merged page of one", []pagedSource{{"a", 3, 2}, {"b", 4, 3}}, 1, nil},
		{"one source", []pagedSource{{"a", 25, 10}}, 20, nil},
		{"no results anywhere", []pagedSource{{"a", 0, 5}, {"b", 0, 5}}, 5, nil},
		{"a source failing on some pages", []pagedSource{{"a", 7, 3}, {"b", 8, 4}, {"c", 5, 5}}, 3, map[string][]int{"b": {1, 2}, "c": {0}}},
		{"every source failing on a page", []pagedSource{{"a", 5, 2}, {"b", 5, 2}}, 3, map[string][]int{"a": {1}, "b": {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := pageAll(t, tt.srcs, tt.limit, tt.fail)
			var got []string
			for _, p := range pages {
				got = append(got, p...)
			}
			want := roundRobin(tt.srcs)
			seen := map[string]int{}
			for _, id := range got {
				seen[id]++
			}
			for _, id := range want {
				if seen[id] != 1 {
					t.Errorf("%s returned %d times, want once", id, seen[id])
				}
			}
			if len(got) != len(want) {
				t.Errorf("returned %d results, want %d", len(got), len(want))
			}
			if tt.fail == nil && !slices.Equal(got, want) {
				// Without failures no later page may hold a result that
				// outranks one already returned: the pages are the
				// round robin, cut into pieces.
				t.Errorf("pages in order = %v\nwant %v", got, want)
			}
			if tt.fail == nil {
				for i, p := range pages[:len(pages)-1] {
					if len(p) == 0 {
						t.Errorf("page %d is empty but has a next cursor", i)
					}
				}
			}
		})
	}
}

func TestSigner(t *testing.T) {
	s := NewSigner([]byte("park key"))
	c := Cursor{Query: "q1", Sources: map[string]SourceState{
		"xian-hitech": {Cursor: "abc.def", Skip: 2, Rank: 5},
		"haifa-park":  {Done: true, Rank: 3},
	}}
	raw := s.Encode(c)
	got, err := s.Decode(raw, "q1")
	if err != nil {
		t.Fatalf("Decode(Encode(c)): %v", err)
	}
	if got.Query != c.Query || !maps.Equal(got.Sources, c.Sources) {
		t.Errorf("round trip = %+v, want %+v", got, c)
	}

	payload, mac, _ := strings.Cut(raw, ".")
	edited := c
	edited.Sources = map[string]SourceState{"xian-hitech": {Skip: 0, Rank: 0}}
	editedPayload, _, _ := strings.Cut(s.Encode(edited), ".")
	flip := func(s string) string { // change one character, keeping the alphabet
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	noSources := s.Encode(Cursor{Query: "q1"})
	bigRaw := s.Encode(Cursor{Query: "q1", Sources: map[string]SourceState{"x": {Cursor: strings.Repeat("c", 1<<20)}}})

	bad := []struct {
		name, raw, query string
	}{
		{"tampered payload, old MAC", editedPayload + "." + mac, "q1"},
		{"tampered payload byte", flip(payload) + "." + mac, "q1"},
		{"tampered MAC", payload + "." + flip(mac), "q1"},
		{"MAC cut short", payload + "." + mac[:len(mac)-2], "q1"},
		{"another query's hash", raw, "q2"},
		{"empty", "", "q1"},
		{"no dot", payload + mac, "q1"},
		{"garbage", "not a cursor", "q1"},
		{"two dots", payload + "." + mac + ".x", "q1"},
		{"not base64", "!!!." + mac, "q1"},
		{"signed but without sources", noSources, "q1"},
		{"1 MiB, though signed", bigRaw, "q1"},
		{"signed by another key", NewSigner([]byte("other key")).Encode(c), "q1"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Decode(tt.raw, tt.query)
			var e *apierror.Error
			if !errors.As(err, &e) || e.Code != apierror.Invalid || e.Field != "cursor" {
				t.Errorf("Decode = %v, want Invalid naming cursor", err)
			}
		})
	}
}

func TestSignerKeysDoNotMix(t *testing.T) {
	a, b := NewSigner([]byte("key a")), NewSigner([]byte("key b"))
	c := Cursor{Query: "q", Sources: map[string]SourceState{"x": {Rank: 1}}}
	if _, err := b.Decode(a.Encode(c), "q"); err == nil {
		t.Error("b accepted a's cursor")
	}
	if _, err := a.Decode(b.Encode(c), "q"); err == nil {
		t.Error("a accepted b's cursor")
	}
	// Replicas derive the same key: each accepts the others' cursors.
	if _, err := NewSigner([]byte("key a")).Decode(a.Encode(c), "q"); err != nil {
		t.Errorf("a replica with the same key refused the cursor: %v", err)
	}
}

// A club search's cursor holds every peer's own cursor, itself a merged
// cursor of the peer's three services (about 500 bytes). The gateway must
// accept the cursors it issues for a club of a few dozen parks.
func TestSignerAcceptsWhatItIssuesForALargeClub(t *testing.T) {
	s := NewSigner([]byte("park key"))
	service := strings.Repeat("A", 54) + "." + strings.Repeat("B", 22) // a service's page cursor
	peerCursor := NewSigner([]byte("peer key")).Encode(Cursor{Query: "0123456789abcdef", Sources: map[string]SourceState{
		"organization": {Cursor: service, Skip: 3, Rank: 40},
		"project":      {Cursor: service, Skip: 7, Rank: 40},
		"talent":       {Cursor: service, Skip: 1, Rank: 40},
	}})
	club := Cursor{Query: "0123456789abcdef", Sources: map[string]SourceState{}}
	for i := range 30 {
		club.Sources[fmt.Sprintf("park-number-%02d", i)] = SourceState{Cursor: peerCursor, Skip: 5, Rank: 100}
	}
	raw := s.Encode(club)
	if _, err := s.Decode(raw, club.Query); err != nil {
		t.Errorf("a %d-byte cursor for 30 parks: %v", len(raw), err)
	}
}
