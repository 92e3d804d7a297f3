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
)

// Facet kinds: the first digit of a facet token.
const (
	facetSector       = '1'
	facetCountry      = '2'
	facetSeeking      = '3'
	facetOffering     = '4'
	facetStage        = '5'
	facetAvailability = '6'
	facetOrgType      = '7'
	facetVisibility   = '8'
	facetShareWith    = '9'
)

// facetToken encodes a filter value as a token of digits only, so the
// porter stemmer leaves it alone and no value can collide with another.
func facetToken(kind byte, v string) string {
	var b strings.Builder
	b.WriteByte(kind)
	for i := 0; i < len(v); i++ {
		fmt.Fprintf(&b, "%03d", v[i])
	}
	return b.String()
}

func facets(l *listing.Listing) string {
	var toks []string
	add := func(kind byte, vs ...string) {
		for _, v := range vs {
			if v != "" {
				toks = append(toks, facetToken(kind, v))
			}
		}
	}
	add(facetSector, l.Sectors...)
	add(facetCountry, l.Country)
	add(facetSeeking, l.Seeking...)
	add(facetOffering, l.Offering...)
	add(facetStage, l.Attrs.Stage)
	add(facetAvailability, l.Attrs.Availability...)
	add(facetOrgType, l.Attrs.OrgType)
	add(facetVisibility, string(l.Visibility))
	add(facetShareWith, l.ShareWith...)
	return strings.Join(toks, " ")
}

// bodyText is everything searchable besides the title.
func bodyText(l *listing.Listing) string {
	parts := []string{l.Summary, l.City}
	parts = append(parts, l.Tags...)
	parts = append(parts, l.Attrs.Expertise...)
	parts = append(parts, l.Attrs.Affiliation)
	return strings.Join(parts, "\n")
}

func index(ctx context.Context, tx *sql.Tx, seq int64, l *listing.Listing) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO listings_fts(rowid, title, body, facets) VALUES (?, ?, ?, ?)`,
		seq, fulltext.IndexText(l.Title), fulltext.IndexText(bodyText(l)), facets(l))
	return err
}

// cursor is the decoded form of an opaque, signed page cursor.
type cursor struct {
	Query  string `json:"q"`           // hash of the query it belongs to
	Tier   int    `json:"t,omitempty"` // ranking tier the next page starts in
	Before int64  `json:"b,omitempty"` // last rowid returned in that tier
}

// queryHash identifies a query's filters, so a cursor cannot be replayed
// against a different query.
func queryHash(q listing.Query) string {
	q.Cursor, q.Limit = "", 0
	b, _ := json.Marshal(q)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func (s *Store) encodeCursor(c cursor) string { return s.cursors.Seal(c) }

func (s *Store) decodeCursor(raw string, q listing.Query) (cursor, error) {
	var c cursor
	if !s.cursors.Open(raw, 512, &c) || c.Query != queryHash(q) || c.Tier < 0 || c.Tier > 1 || c.Before < 0 {
		return cursor{}, apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
	}
	return c, nil
}

// Search implements listing.Store.
//
// Every query walks the FTS5 index newest first (rowid descending), which
// SQLite streams and stops as soon as a page is full, so a query costs the
// same whether it matches ten listings or ninety thousand. Filters are facet
// tokens in the same index. Text queries are ranked in tiers: listings whose
// title holds every term first, then those matching in the rest of their
// text; newest first within a tier. BM25 was measured and dropped: SQLite's
// bm25() counts every document holding each term, 10–70 ms per query for
// common terms at 100k listings (docs/decisions.md, docs/benchmarks.md).
func (s *Store) Search(ctx context.Context, q listing.Query) (*listing.Page, error) {
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

	var filters []string
	anyOf := func(kind byte, vs ...string) {
		var toks []string
		for _, v := range vs {
			if v != "" {
				toks = append(toks, `"`+facetToken(kind, v)+`"`)
			}
		}
		if len(toks) > 0 {
			filters = append(filters, "(facets : ("+strings.Join(toks, " OR ")+"))")
		}
	}
	anyOf(facetSector, q.Sectors...)
	anyOf(facetCountry, q.Country)
	anyOf(facetSeeking, q.Seeking...)
	anyOf(facetOffering, q.Offering...)
	anyOf(facetStage, q.Stage)
	anyOf(facetAvailability, q.Availability)
	anyOf(facetOrgType, q.OrgType)
	if q.VisibleTo != "" {
		// club, or peers shared with the caller; never private.
		filters = append(filters, fmt.Sprintf(`(facets : ("%s" OR ("%s" AND "%s")))`,
			facetToken(facetVisibility, string(listing.Club)),
			facetToken(facetVisibility, string(listing.Peers)), facetToken(facetShareWith, q.VisibleTo)))
	}

	// tiers holds the MATCH expression of each ranking tier, in order; ""
	// means no index constraint at all (walk the listings table).
	var tiers []string
	and := func(parts ...string) string { return strings.Join(parts, " AND ") }
	if terms := fulltext.ParseQuery(q.Text); len(terms) > 0 {
		inTitle := "(" + fulltext.FTS5Match(terms, "title") + ")"
		anywhere := "(" + fulltext.FTS5Match(terms, "title", "body") + ")"
		tiers = []string{
			and(append([]string{inTitle}, filters...)...),
			and(append([]string{"(" + anywhere + " NOT " + inTitle + ")"}, filters...)...),
		}
	} else if len(filters) > 0 {
		tiers = []string{and(filters...)}
	} else {
		tiers = []string{""}
	}
	since := int64(0)
	if !q.UpdatedSince.IsZero() {
		since = micros(q.UpdatedSince)
	}
	if cur.Tier >= len(tiers) {
		return nil, apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
	}

	page := &listing.Page{Results: []*listing.Listing{}}
	for tier := cur.Tier; tier < len(tiers); tier++ {
		before := int64(1<<62 - 1)
		if tier == cur.Tier && cur.Before > 0 {
			before = cur.Before
		}
		want := limit + 1 - len(page.Results)
		var rows *sql.Rows
		var err error
		if tiers[tier] == "" {
			rows, err = s.read.QueryContext(ctx, `SELECT seq, doc FROM listings
				WHERE seq < ? AND updated_at >= ? ORDER BY seq DESC LIMIT ?`, before, since, want)
		} else {
			rows, err = s.read.QueryContext(ctx, `SELECT l.seq, l.doc FROM listings_fts f JOIN listings l ON l.seq = f.rowid
				WHERE listings_fts MATCH ? AND f.rowid < ? AND l.updated_at >= ?
				ORDER BY f.rowid DESC LIMIT ?`, tiers[tier], before, since, want)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: search: %w", err)
		}
		var seqs []int64
		for rows.Next() {
			var seq int64
			var doc string
			if err := rows.Scan(&seq, &doc); err != nil {
				rows.Close()
				return nil, err
			}
			l, err := decode(doc)
			if err != nil {
				rows.Close()
				return nil, err
			}
			page.Results = append(page.Results, l)
			seqs = append(seqs, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(page.Results) > limit {
			// One row too many: there is a next page, starting after the
			// last row kept, in this tier.
			page.Results = page.Results[:limit]
			next := cursor{Query: cur.Query, Tier: tier, Before: seqs[len(seqs)-2]}
			if len(seqs) == 1 {
				// The extra row is the first of this tier: start the next
				// page at the top of it.
				next.Before = 0
			}
			page.NextCursor = s.encodeCursor(next)
			return page, nil
		}
	}
	return page, nil
}
