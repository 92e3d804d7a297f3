package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// seqRow is a listing's row in by_seq, the by-sequence index: where its
// latest change sits and who could ever see it. A tombstone (deleted) has
// no listing row and keeps no content.
type seqRow struct {
	park, id string
	kind     listing.Kind
	seq      int64
	firstSeq int64
	version  int64
	deleted  bool
	at       time.Time
	audience listing.Audience
}

// loadSeqRow returns (park, id)'s by_seq row, or nil when there is none.
func loadSeqRow(ctx context.Context, tx *sql.Tx, park, id string) (*seqRow, error) {
	r := &seqRow{park: park, id: id}
	var kind, audience string
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT kind, seq, first_seq, version, deleted, at, audience FROM by_seq WHERE park = ? AND id = ?`,
		park, id).Scan(&kind, &r.seq, &r.firstSeq, &r.version, &r.deleted, &at, &audience)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.kind, r.at = listing.Kind(kind), time.UnixMicro(at).UTC()
	if r.audience, err = decodeAudience(audience); err != nil {
		return nil, err
	}
	return r, nil
}

// heldSeqRow is loadSeqRow for a listing the store holds, whose row must
// exist.
func heldSeqRow(ctx context.Context, tx *sql.Tx, park, id string) (*seqRow, error) {
	r, err := loadSeqRow(ctx, tx, park, id)
	if err == nil && r == nil {
		err = fmt.Errorf("sqlitestore: listing %s of %s has no by-sequence row", id, park)
	}
	return r, err
}

// saveSeqRow writes r over whatever row (park, id) had.
func saveSeqRow(ctx context.Context, tx *sql.Tx, r *seqRow) error {
	audience, err := json.Marshal(r.audience)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO by_seq(park, id, kind, seq, first_seq, version, deleted, at, audience)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.park, r.id, string(r.kind), r.seq, r.firstSeq, r.version, r.deleted, micros(r.at), string(audience))
	return err
}

func decodeAudience(s string) (listing.Audience, error) {
	var a listing.Audience
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return a, fmt.Errorf("sqlitestore: corrupt audience %q: %w", s, err)
	}
	if len(a.Parks) == 0 {
		a.Parks = nil
	}
	return a, nil
}

// changesSelect reads by_seq rows with the current document of the live ones.
const changesSelect = `SELECT b.park, b.id, b.kind, b.seq, b.first_seq, b.version, b.deleted, b.at, b.audience, l.doc
	FROM by_seq b LEFT JOIN listings l ON l.park = b.park AND l.id = b.id `

// Changes implements listing.Store: the by-sequence index after a position.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]listing.Change, error) {
	return s.readChanges(ctx, changesSelect+`WHERE b.seq > ? ORDER BY b.seq LIMIT ?`, after, limit)
}

func (s *Store) readChanges(ctx context.Context, query string, args ...any) ([]listing.Change, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []listing.Change{}
	for rows.Next() {
		var c listing.Change
		var kind, audience string
		var deleted bool
		var at int64
		var doc sql.NullString
		if err := rows.Scan(&c.Park, &c.ListingID, &kind, &c.Seq, &c.FirstSeq, &c.Version, &deleted, &at, &audience, &doc); err != nil {
			return nil, err
		}
		c.Kind, c.At = listing.Kind(kind), time.UnixMicro(at).UTC()
		if c.Audience, err = decodeAudience(audience); err != nil {
			return nil, err
		}
		switch {
		case deleted:
			c.Op = listing.OpDeleted
		case !doc.Valid:
			return nil, fmt.Errorf("sqlitestore: listing %s of %s is in by_seq but not stored", c.ListingID, c.Park)
		default:
			if c.Listing, err = decode(doc.String); err != nil {
				return nil, err
			}
			c.Op = listing.OpUpdated
			if c.FirstSeq == c.Seq {
				c.Op = listing.OpCreated
			}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LastSeq implements listing.Store.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	// sqlite_sequence keeps the highest sequence AUTOINCREMENT issued even
	// when Compact deleted its row: a sequence is never reused.
	err := s.read.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'changes'`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq.Int64, err
}

// SeqBefore implements listing.Store.
func (s *Store) SeqBefore(ctx context.Context, t time.Time) (int64, error) {
	var seq int64
	err := s.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM by_seq WHERE at < ?`, micros(t)).Scan(&seq)
	return seq, err
}

// compactBatch bounds the change-log rows one Compact transaction deletes,
// so a first compaction of a long log does not hold the writer for long.
const compactBatch = 5000

// Compact implements listing.Store. It deletes in batches, each its own
// transaction, and wakes no one: no changes read sees the difference.
func (s *Store) Compact(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.write.ExecContext(ctx, `DELETE FROM changes WHERE seq IN (
			SELECT seq FROM changes WHERE at < ? ORDER BY at LIMIT ?)`, micros(before), compactBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < compactBatch {
			return total, nil
		}
	}
}
