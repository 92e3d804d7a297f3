package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore/ftsdoc"
)

// index adds l's search entry (ftsdoc.Of) under the rowid rid of its
// listing row.
func index(ctx context.Context, tx *sql.Tx, rid int64, l *listing.Listing) error {
	d := ftsdoc.Of(l)
	_, err := tx.ExecContext(ctx, `INSERT INTO listings_fts(rowid, title, body, facets) VALUES (?, ?, ?, ?)`,
		rid, d.Title, d.Body, d.Facets)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `UPDATE listings SET rank_text = ? WHERE rid = ?`, d.Rank, rid); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO listing_facets(rid, codes) VALUES (?, ?)`, rid, d.Codes)
	return err
}

// unindex removes the search entry of the listing row rid.
func unindex(ctx context.Context, tx *sql.Tx, rid int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM listings_fts WHERE rowid = ?`, rid); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM listing_facets WHERE rid = ?`, rid)
	return err
}

// reindexMark is the meta key a migration sets when the search entries
// must be made again (the index text is made in Go, not in SQL).
const reindexMark = "reindex"

// reindexIfMarked rebuilds every search entry, in one transaction, when a
// migration asked for it, then clears the mark. An interrupted rebuild
// leaves the mark and runs again at the next Open.
func (s *Store) reindexIfMarked(ctx context.Context) error {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = ?`, reindexMark).Scan(&n); err != nil || n == 0 {
		return err
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO listings_fts(listings_fts) VALUES ('delete-all')`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM listing_facets`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT rid, doc FROM listings`)
	if err != nil {
		return err
	}
	type entry struct {
		rid int64
		l   *listing.Listing
	}
	var all []entry
	for rows.Next() {
		var e entry
		var doc string
		if err := rows.Scan(&e.rid, &doc); err != nil {
			rows.Close()
			return err
		}
		if e.l, err = decode(doc); err != nil {
			rows.Close()
			return err
		}
		all = append(all, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range all {
		if err := index(ctx, tx, e.rid, e.l); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, reindexMark); err != nil {
		return err
	}
	return tx.Commit()
}

// cursor is the decoded form of an opaque, signed page cursor.
type cursor struct {
	Query string `json:"q"` // hash of the query it belongs to
	// Filter-only queries (no text): the tier the next page starts in and
	// the last rowid returned in that tier.
	Tier   int   `json:"t,omitempty"`
	Before int64 `json:"b,omitempty"`
	// Text queries: the next page starts at Offset of the ranked window,
	// or, with Tail set, in the tail (rowids below Before).
	Offset int  `json:"o,omitempty"`
	Tail   bool `json:"l,omitempty"`
}

// queryHash identifies a query's filters, so a cursor cannot be replayed
// against a different query. CountParks and Facets change no result, so a
// caller may ask for counts on the first page only and page on without
// them.
func queryHash(q listing.Query) string {
	q.Cursor, q.Limit, q.CountParks, q.Facets = "", 0, false, nil
	b, _ := json.Marshal(q)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func (s *Store) encodeCursor(c cursor) string { return s.cursors.Seal(c) }

func (s *Store) decodeCursor(raw string, q listing.Query) (cursor, error) {
	var c cursor
	if !s.cursors.Open(raw, 512, &c) || c.Query != queryHash(q) || c.Tier < 0 || c.Tier > 1 || c.Before < 0 || c.Offset < 0 || c.Offset > maxWindow {
		return cursor{}, apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
	}
	return c, nil
}

// Search implements listing.Store.
//
// A text query is ranked (searchText): a bounded window of candidates is
// read from the FTS5 index in tiers (newest first within each), each
// candidate scored by pkg/fulltext's formula and the window sorted by
// score; past the window, the loosest tier's remaining hits follow newest
// first. The cost is flat: it depends on the window, not on how many
// listings match (bm25() over every match was 120–360 ms for common terms
// at 100k listings: docs/decisions.md, docs/benchmarks.md).
//
// A query without text walks the FTS5 index (its facet filters) or the
// listings table newest first, which SQLite streams and stops as soon as a
// page is full. Filters are facet tokens in the same index.
//
// ParkHits (q.CountParks) and facet counts (q.Facets) each read at most
// FacetScan matches, newest first, and say so when there were more
// (countParks, countFacets), so their cost is bounded like the page's.
func (s *Store) Search(ctx context.Context, q listing.Query) (_ *listing.Page, err error) {
	defer func() { err = s.observe(err) }()
	limit := q.Limit
	if limit <= 0 {
		limit = listing.DefaultLimit
	}
	if limit > listing.MaxLimit {
		return nil, apierror.InvalidField("limit", "must be between 1 and %d", listing.MaxLimit)
	}
	var cur cursor
	if q.Cursor != "" {
		c, err := s.decodeCursor(q.Cursor, q)
		if err != nil {
			return nil, err
		}
		cur = c
	}
	cur.Query = queryHash(q)
	aq := fulltext.Analyze(q.Text)
	if w := aq.PrefixWord(); w != "" {
		// Typed ahead only when the word is not one the index holds: a
		// prefix query reads every word it begins (10–20 ms for a common
		// one at 100k listings).
		has, err := s.hasWord(ctx, w)
		if err != nil {
			return nil, err
		}
		if has {
			aq = aq.WithoutPrefix()
		}
	}
	p := ftsdoc.PlanSearch(q, aq)
	since := int64(0)
	if !q.UpdatedSince.IsZero() {
		since = micros(q.UpdatedSince)
	}
	page := &listing.Page{Results: []*listing.Listing{}}
	if q.CountParks {
		hits, capped, err := s.countParks(ctx, p, since)
		if err != nil {
			return nil, err
		}
		page.ParkHits, page.ParkHitsCapped = hits, capped
	}
	if len(q.Facets) > 0 {
		counts, capped, err := s.countFacets(ctx, p, since, q.Facets)
		if err != nil {
			return nil, err
		}
		page.Facets, page.FacetsCapped = counts, capped
	}
	if p.Text != nil {
		return s.searchText(ctx, p, cur, limit, since, page)
	}
	if cur.Tier >= len(p.Tiers) || cur.Offset != 0 || cur.Tail {
		return nil, apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
	}
	for tier := cur.Tier; tier < len(p.Tiers); tier++ {
		before := int64(1<<62 - 1)
		if tier == cur.Tier && cur.Before > 0 {
			before = cur.Before
		}
		want := limit + 1 - len(page.Results)
		var rows *sql.Rows
		var err error
		if p.Tiers[tier] == "" {
			args := append([]any{before, since}, p.ColumnArgs...)
			rows, err = s.read.QueryContext(ctx, `SELECT rid, doc FROM listings
				WHERE rid < ? AND updated_at >= ?`+p.Columns+` ORDER BY rid DESC LIMIT ?`, append(args, want)...)
		} else {
			rows, err = s.read.QueryContext(ctx, `SELECT l.rid, l.doc FROM listings_fts f JOIN listings l ON l.rid = f.rowid
				WHERE listings_fts MATCH ? AND f.rowid < ? AND l.updated_at >= ?
				ORDER BY f.rowid DESC LIMIT ?`, p.Tiers[tier], before, since, want)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: search: %w", err)
		}
		var rids []int64
		for rows.Next() {
			var rid int64
			var doc string
			if err := rows.Scan(&rid, &doc); err != nil {
				rows.Close()
				return nil, err
			}
			l, err := decode(doc)
			if err != nil {
				rows.Close()
				return nil, err
			}
			page.Results = append(page.Results, l)
			rids = append(rids, rid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(page.Results) > limit {
			// One row too many: there is a next page, starting after the
			// last row kept, in this tier.
			page.Results = page.Results[:limit]
			// The extra row is the first of this tier when the earlier
			// tiers filled the page: the next page starts at the top of it.
			next := cursor{Query: cur.Query, Tier: tier}
			if len(rids) > 1 {
				next.Before = rids[len(rids)-2]
			}
			page.NextCursor = s.encodeCursor(next)
			return page, nil
		}
	}
	return page, nil
}

// countParks counts the hits of p per origin park. A plan that matches
// through the index (text or facet filters) reads at most scan hits,
// newest first, the same ones countFacets reads, and reports whether there
// were more (the counts are then lower bounds): counting every match was
// a GROUP BY whose cost grew with the club and exceeded the page's
// (docs/benchmarks.md). A plan without either (every listing of some
// parks) counts them all: it reads no document and no index entry of the
// full-text index, and callers use it to check a copy is complete.
func (s *Store) countParks(ctx context.Context, p ftsdoc.Plan, since int64) (map[string]int, bool, error) {
	if p.Text != nil && len(p.Tiers) == 0 {
		return map[string]int{}, false, nil
	}
	hits := map[string]int{}
	if p.All == "" {
		rows, err := s.read.QueryContext(ctx, `SELECT park, count(*) FROM listings WHERE updated_at >= ?`+p.Columns+` GROUP BY park`,
			append([]any{since}, p.ColumnArgs...)...)
		if err != nil {
			return nil, false, fmt.Errorf("sqlitestore: count: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var park string
			var n int
			if err := rows.Scan(&park, &n); err != nil {
				return nil, false, err
			}
			hits[park] = n
		}
		return hits, false, rows.Err()
	}
	scan := s.countScan()
	rows, err := s.read.QueryContext(ctx, `SELECT l.park FROM listings_fts f JOIN listings l ON l.rid = f.rowid
		WHERE listings_fts MATCH ? AND l.updated_at >= ? ORDER BY f.rowid DESC LIMIT ?`, p.All, since, scan+1)
	if err != nil {
		return nil, false, fmt.Errorf("sqlitestore: count: %w", err)
	}
	defer rows.Close()
	read := 0
	for rows.Next() {
		if read == scan {
			return hits, true, rows.Close()
		}
		read++
		var park string
		if err := rows.Scan(&park); err != nil {
			return nil, false, err
		}
		hits[park]++
	}
	return hits, false, rows.Err()
}

// countScan is how many matches, newest first, a search's counts read at
// most (Store.FacetScan, DefaultFacetScan when unset).
func (s *Store) countScan() int {
	if s.FacetScan > 0 {
		return s.FacetScan
	}
	return DefaultFacetScan
}

// DefaultFacetScan is how many matches, newest first, a search's facet
// counts and per-park hit counts each read at most (Store.FacetScan): about 2 µs each at 100k
// listings, so counting adds about 2 ms to a query that asks for it;
// counting every match of a common word adds 50–250 ms, and one FTS5
// count per facet value more still (docs/benchmarks.md, docs/decisions.md).
const DefaultFacetScan = 1000

// countFacets counts the hits of p per value of each facet in names,
// reading the facet codes of at most s.FacetScan hits, newest first (the
// same hits countParks counts, visibility and every filter included). It
// reports whether there were more hits than it read.
func (s *Store) countFacets(ctx context.Context, p ftsdoc.Plan, since int64, names []string) (listing.FacetCounts, bool, error) {
	counts := listing.FacetCounts{}
	for _, n := range names {
		counts[n] = map[string]int{}
	}
	if p.Text != nil && len(p.Tiers) == 0 {
		return counts, false, nil
	}
	scan := s.countScan()
	var rows *sql.Rows
	var err error
	switch {
	case p.All == "":
		rows, err = s.read.QueryContext(ctx, `SELECT c.codes FROM listings l JOIN listing_facets c ON c.rid = l.rid
			WHERE l.updated_at >= ?`+p.Columns+` ORDER BY l.rid DESC LIMIT ?`,
			append(append([]any{since}, p.ColumnArgs...), scan+1)...)
	case since > 0:
		rows, err = s.read.QueryContext(ctx, `SELECT c.codes FROM listings_fts f JOIN listings l ON l.rid = f.rowid
			JOIN listing_facets c ON c.rid = f.rowid
			WHERE listings_fts MATCH ? AND l.updated_at >= ? ORDER BY f.rowid DESC LIMIT ?`, p.All, since, scan+1)
	default:
		// No time filter: the listings rows (their documents) are not read.
		rows, err = s.read.QueryContext(ctx, `SELECT c.codes FROM listings_fts f JOIN listing_facets c ON c.rid = f.rowid
			WHERE listings_fts MATCH ? ORDER BY f.rowid DESC LIMIT ?`, p.All, scan+1)
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlitestore: facets: %w", err)
	}
	defer rows.Close()
	want := make(map[string]map[string]int, len(names))
	for _, n := range names {
		want[n] = counts[n]
	}
	read := 0
	for rows.Next() {
		if read == scan {
			return counts, true, rows.Close()
		}
		read++
		var codes string
		if err := rows.Scan(&codes); err != nil {
			return nil, false, err
		}
		for _, code := range strings.Fields(codes) {
			name, value, _ := strings.Cut(code, ":")
			if m := want[name]; m != nil {
				m[value]++
			}
		}
	}
	return counts, false, rows.Err()
}
