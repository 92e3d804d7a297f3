package sqlitestore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
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
	Offset int    `json:"o,omitempty"` // ranked results: rows already returned
	Before int64  `json:"b,omitempty"` // unranked results: last seq returned
}

// queryHash identifies a query's filters, so a cursor cannot be replayed
// against a different query.
func queryHash(q listing.Query) string {
	q.Cursor, q.Limit = "", 0
	b, _ := json.Marshal(q)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func (s *Store) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(payload)
	return m.Sum(nil)[:16]
}

func (s *Store) encodeCursor(c cursor) string {
	payload, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(s.sign(payload))
}

func (s *Store) decodeCursor(raw string, q listing.Query) (cursor, error) {
	bad := apierror.InvalidField("cursor", "is not a cursor this service issued for this query")
	p, m, ok := strings.Cut(raw, ".")
	if !ok || len(raw) > 512 {
		return cursor{}, bad
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(payload)) {
		return cursor{}, bad
	}
	var c cursor
	if err := json.Unmarshal(payload, &c); err != nil || c.Query != queryHash(q) || c.Offset < 0 || c.Before < 0 {
		return cursor{}, bad
	}
	return c, nil
}

// Search implements listing.Store.
//
// Text queries are matched against CJK bigrams and words and ranked with
// BM25 (title weighted above body), paged by offset. Filter-only queries use
// the same index's facet tokens and are ordered newest first, paged by key
// (rowid), which needs no sort. With neither, the listings table is walked
// by rowid.
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

	var clauses []string
	terms := fulltext.ParseQuery(q.Text)
	if len(terms) > 0 {
		clauses = append(clauses, fulltext.FTS5Match(terms, "title", "body"))
	}
	anyOf := func(kind byte, vs ...string) {
		var toks []string
		for _, v := range vs {
			if v != "" {
				toks = append(toks, `"`+facetToken(kind, v)+`"`)
			}
		}
		if len(toks) > 0 {
			clauses = append(clauses, "facets : ("+strings.Join(toks, " OR ")+")")
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
		clauses = append(clauses, fmt.Sprintf(`facets : ("%s" OR ("%s" AND "%s"))`,
			facetToken(facetVisibility, string(listing.Club)),
			facetToken(facetVisibility, string(listing.Peers)), facetToken(facetShareWith, q.VisibleTo)))
	}

	var (
		query string
		args  []any
	)
	since := int64(0)
	if !q.UpdatedSince.IsZero() {
		since = micros(q.UpdatedSince)
	}
	switch {
	case len(terms) > 0:
		query = `SELECT l.seq, l.doc FROM listings_fts f JOIN listings l ON l.seq = f.rowid
			WHERE listings_fts MATCH ? AND l.updated_at >= ?
			ORDER BY bm25(listings_fts, 8.0, 2.0, 0.0), f.rowid DESC LIMIT ? OFFSET ?`
		args = []any{strings.Join(clauses, " AND "), since, limit + 1, cur.Offset}
	case len(clauses) > 0:
		before := cur.Before
		if before == 0 {
			before = 1<<62 - 1
		}
		query = `SELECT l.seq, l.doc FROM listings_fts f JOIN listings l ON l.seq = f.rowid
			WHERE listings_fts MATCH ? AND f.rowid < ? AND l.updated_at >= ?
			ORDER BY f.rowid DESC LIMIT ?`
		args = []any{strings.Join(clauses, " AND "), before, since, limit + 1}
	default:
		before := cur.Before
		if before == 0 {
			before = 1<<62 - 1
		}
		query = `SELECT seq, doc FROM listings WHERE seq < ? AND updated_at >= ? ORDER BY seq DESC LIMIT ?`
		args = []any{before, since, limit + 1}
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: search: %w", err)
	}
	defer rows.Close()
	page := &listing.Page{Results: []*listing.Listing{}}
	var lastSeq int64
	more := false
	for rows.Next() {
		if len(page.Results) == limit {
			more = true
			break
		}
		var doc string
		if err := rows.Scan(&lastSeq, &doc); err != nil {
			return nil, err
		}
		l, err := decode(doc)
		if err != nil {
			return nil, err
		}
		page.Results = append(page.Results, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if more {
		next := cursor{Query: cur.Query}
		if len(terms) > 0 {
			next.Offset = cur.Offset + limit
		} else {
			next.Before = lastSeq
		}
		page.NextCursor = s.encodeCursor(next)
	}
	return page, nil
}
