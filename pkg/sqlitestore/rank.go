package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Window sizes of a ranked text search: each candidate tier reads at most
// window(limit) of its newest hits; a cursor's offset never exceeds
// maxWindow.
const (
	minWindow = 50
	maxWindow = 3 * 2 * listing.MaxLimit
)

func window(limit int) int { return max(minWindow, 2*limit) }

// candidate is a listing read for ranking.
type candidate struct {
	rid  int64
	l    *listing.Listing
	rank fulltext.Ranked
}

// rankDoc is l's text as pkg/fulltext ranks it: the title, then the body
// in parts (summary first, as the snippet prefers it), and its codes.
func rankDoc(l *listing.Listing) fulltext.Doc {
	body := make([]string, 0, 4+len(l.Tags)+len(l.Attrs.Expertise))
	body = append(body, l.Summary)
	body = append(body, l.Tags...)
	body = append(body, l.Attrs.Expertise...)
	body = append(body, l.City, l.Attrs.Affiliation)
	return fulltext.Doc{Title: l.Title, Body: body, Has: func(field, value string) bool {
		switch field {
		case "sector":
			return slices.Contains(l.Sectors, value)
		case "seeking":
			return slices.Contains(l.Seeking, value)
		case "offering":
			return slices.Contains(l.Offering, value)
		case "org_type":
			return l.Attrs.OrgType == value
		case "stage":
			return l.Attrs.Stage == value
		case "availability":
			return slices.Contains(l.Attrs.Availability, value)
		}
		return false
	}}
}

func (c *candidate) result() *listing.Listing {
	c.l.Match = &listing.Match{Score: c.rank.Score, Snippet: c.rank.Snippet, Highlights: c.rank.Highlights}
	return c.l
}

// readTier reads up to n hits of MATCH expression m with rowid below
// before, newest first, skipping rowids in skip (they are not decoded).
func (s *Store) readTier(ctx context.Context, m string, before, since int64, n int, skip map[int64]bool, fn func(rid int64, l *listing.Listing)) (read int, last int64, err error) {
	rows, err := s.read.QueryContext(ctx, `SELECT l.rid, l.doc FROM listings_fts f JOIN listings l ON l.rid = f.rowid
		WHERE listings_fts MATCH ? AND f.rowid < ? AND l.updated_at >= ?
		ORDER BY f.rowid DESC LIMIT ?`, m, before, since, n)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlitestore: search: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rid int64
		var doc sql.RawBytes
		if err := rows.Scan(&rid, &doc); err != nil {
			return read, last, err
		}
		read++
		last = rid
		if skip[rid] {
			continue
		}
		l, err := decode(string(doc))
		if err != nil {
			return read, last, err
		}
		fn(rid, l)
	}
	return read, last, rows.Err()
}

// searchText answers a text query: the ranked window, then the tail.
//
// The window holds, for each candidate tier of the plan (every concept in
// the title; every concept anywhere; enough of them anywhere), its newest
// window(limit) hits, each scored once; sorted by score, then newest
// first. When the loosest tier had more hits than it read, they follow
// the window as the tail, newest first, their scores capped at the
// window's lowest so that scores never rise down the pages (a gateway
// merges sources by score). Every page reads the window again: its cost
// is bounded, and the cursor need not hold it.
func (s *Store) searchText(ctx context.Context, p searchPlan, cur cursor, limit int, since int64, page *listing.Page) (*listing.Page, error) {
	if len(p.tiers) == 0 {
		return page, nil
	}
	w := window(limit)
	seen := map[int64]bool{}
	var cands []*candidate
	tailFrom := int64(0) // the loosest tier's lowest rowid read, when it had more
	for i, m := range p.tiers {
		n, last, err := s.readTier(ctx, m, 1<<62-1, since, w, seen, func(rid int64, l *listing.Listing) {
			seen[rid] = true
			cands = append(cands, &candidate{rid: rid, l: l, rank: p.text.Rank(rankDoc(l))})
		})
		if err != nil {
			return nil, err
		}
		if i == len(p.tiers)-1 && n == w {
			tailFrom = last
		}
	}
	slices.SortFunc(cands, func(a, b *candidate) int {
		switch {
		case a.rank.Score > b.rank.Score:
			return -1
		case a.rank.Score < b.rank.Score:
			return 1
		case a.rid > b.rid:
			return -1
		case a.rid < b.rid:
			return 1
		}
		return 0
	})
	floor := 0.0
	if len(cands) > 0 {
		floor = cands[len(cands)-1].rank.Score
	}
	before := tailFrom
	if !cur.Tail {
		if cur.Offset > len(cands) {
			return nil, errBadCursor()
		}
		for _, c := range cands[cur.Offset:] {
			if len(page.Results) == limit {
				page.NextCursor = s.encodeCursor(cursor{Query: cur.Query, Offset: cur.Offset + limit})
				return page, nil
			}
			page.Results = append(page.Results, c.result())
		}
	} else {
		if cur.Before <= 0 || tailFrom == 0 || cur.Before > tailFrom {
			return nil, errBadCursor()
		}
		before = cur.Before
	}
	if tailFrom == 0 {
		return page, nil
	}
	// The tail: the loosest tier's hits below the window, newest first.
	loosest := p.tiers[len(p.tiers)-1]
	lastRid := before
	var tail []*candidate
	for len(page.Results)+len(tail) <= limit {
		want := limit + 1 - len(page.Results) - len(tail)
		n, last, err := s.readTier(ctx, loosest, before, since, want, seen, func(rid int64, l *listing.Listing) {
			tail = append(tail, &candidate{rid: rid, l: l, rank: p.text.Rank(rankDoc(l))})
		})
		if err != nil {
			return nil, err
		}
		before = last
		if n < want {
			break
		}
	}
	for _, c := range tail {
		if len(page.Results) == limit {
			page.NextCursor = s.encodeCursor(cursor{Query: cur.Query, Tail: true, Before: lastRid})
			break
		}
		c.rank.Score = min(c.rank.Score, floor)
		page.Results = append(page.Results, c.result())
		lastRid = c.rid
	}
	return page, nil
}

func errBadCursor() error {
	return apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
}
