package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore/ftsdoc"
)

// Window sizes of a ranked text search: each candidate tier reads at most
// window(limit) of its newest hits; a cursor's offset never exceeds
// maxWindow.
const (
	minWindow = 40
	maxWindow = 3 * 2 * listing.MaxLimit
)

func window(limit int) int { return max(minWindow, 2*limit) }

// candidate is a listing read for ranking.
type candidate struct {
	rid   int64
	doc   string
	score float64
}

// newCandidate scores the listing rid from its rank text.
func newCandidate(q *fulltext.Query, rid int64, rank, doc string) *candidate {
	return &candidate{rid: rid, doc: doc, score: q.Score(ftsdoc.RankFields(rank))}
}

// result is c as a search result: the whole listing, its score and
// snippet.
func (c *candidate) result(q *fulltext.Query) (*listing.Listing, error) {
	l, err := decode(c.doc)
	if err != nil {
		return nil, err
	}
	snippet, hl := q.Snippet(fulltext.Doc{Title: l.Title, Body: ftsdoc.Body(l)})
	l.Match = &listing.Match{Score: c.score, Snippet: snippet, Highlights: hl}
	return l, nil
}

// readTier reads up to n hits of MATCH expression m with rowid below
// before, newest first, and calls fn with those whose rowid is not in
// skip. It returns how many rows it read and the last rowid.
func (s *Store) readTier(ctx context.Context, m string, before, since int64, n int, skip map[int64]bool, fn func(rid int64, rank, doc string) error) (read int, last int64, err error) {
	if err := s.prepareSearch(ctx); err != nil {
		return 0, 0, err
	}
	rows, err := s.tierStmt.QueryContext(ctx, m, before, since, n)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlitestore: search: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rid int64
		var rank, doc sql.RawBytes
		if err := rows.Scan(&rid, &rank, &doc); err != nil {
			return read, last, err
		}
		read++
		last = rid
		if skip[rid] {
			continue
		}
		if err := fn(rid, string(rank), string(doc)); err != nil {
			return read, last, err
		}
	}
	return read, last, rows.Err()
}

// searchText answers a text query: the ranked window, then the tail.
//
// The window holds the newest window(limit) hits of each candidate tier
// of the plan (every concept in the title; every concept anywhere; enough
// of them anywhere), strictest first, stopping after the tier that brings
// it to window(limit) candidates (a later tier's hits score lower); each
// candidate is scored once and the window sorted by score, then newest
// first. The loosest tier's other hits follow the window as the tail,
// newest first, their scores capped at the window's lowest so that scores
// never rise down the pages (a gateway merges sources by score). Every
// page reads the window again: its cost is bounded and the cursor need
// not hold it.
func (s *Store) searchText(ctx context.Context, p ftsdoc.Plan, cur cursor, limit int, since int64, page *listing.Page) (*listing.Page, error) {
	if len(p.Tiers) == 0 {
		return page, nil
	}
	aq := p.Text
	w := window(limit)
	seen := map[int64]bool{}
	var cands []*candidate
	// tailFrom: the loosest tier's hits below it follow the window (0:
	// none do).
	tailFrom := int64(0)
	for i, m := range p.Tiers {
		n, last, err := s.readTier(ctx, m, 1<<62-1, since, w, seen, func(rid int64, rank, doc string) error {
			seen[rid] = true
			cands = append(cands, newCandidate(aq, rid, rank, doc))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if i == len(p.Tiers)-1 {
			if n == w {
				tailFrom = last
			}
			break
		}
		if len(cands) >= w {
			tailFrom = 1<<62 - 1 // the loosest tier, unread, from its top
			break
		}
	}
	slices.SortFunc(cands, func(a, b *candidate) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
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
		floor = cands[len(cands)-1].score
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
			l, err := c.result(aq)
			if err != nil {
				return nil, err
			}
			page.Results = append(page.Results, l)
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
	// The tail: the loosest tier's hits outside the window, newest first.
	loosest := p.Tiers[len(p.Tiers)-1]
	lastRid := before
	var tail []*candidate
	for len(page.Results)+len(tail) <= limit {
		want := limit + 1 - len(page.Results) - len(tail)
		n, last, err := s.readTier(ctx, loosest, before, since, want, seen, func(rid int64, rank, doc string) error {
			tail = append(tail, newCandidate(aq, rid, rank, doc))
			return nil
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
		c.score = min(c.score, floor)
		l, err := c.result(aq)
		if err != nil {
			return nil, err
		}
		page.Results = append(page.Results, l)
		lastRid = c.rid
	}
	return page, nil
}

// prepareSearch prepares the statements of text searches, once.
func (s *Store) prepareSearch(ctx context.Context) error {
	s.searchOnce.Do(func() {
		s.tierStmt, s.searchErr = s.read.PrepareContext(ctx, `SELECT l.rid, l.rank_text, l.doc FROM listings_fts f JOIN listings l ON l.rid = f.rowid
			WHERE listings_fts MATCH ? AND f.rowid < ? AND l.updated_at >= ?
			ORDER BY f.rowid DESC LIMIT ?`)
		if s.searchErr == nil {
			s.hasWordStmt, s.searchErr = s.read.PrepareContext(ctx, `SELECT 1 FROM listings_fts WHERE listings_fts MATCH ? LIMIT 1`)
		}
		if s.searchErr != nil {
			s.searchErr = fmt.Errorf("sqlitestore: prepare search: %w", s.searchErr)
		}
	})
	return s.searchErr
}

// hasWord reports whether the index holds word w in a title or body.
func (s *Store) hasWord(ctx context.Context, w string) (bool, error) {
	if err := s.prepareSearch(ctx); err != nil {
		return false, err
	}
	var one int
	err := s.hasWordStmt.QueryRowContext(ctx, fulltext.FTS5Concept(fulltext.Concept{Alts: []fulltext.Alt{{Tokens: []string{w}, Phrase: true, MinMatch: 1}}}, []string{"title", "body"}, nil)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlitestore: search: %w", err)
	}
	return true, nil
}

func errBadCursor() error {
	return apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
}
