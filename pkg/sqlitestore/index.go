package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Index mode: a Store used as a club index holds the listings of many
// parks, of every kind, as their origins last sent them. Listings are
// keyed by (park, id); each keeps its origin's version, timestamps and
// sequence (sequences are per origin, that is per park and kind), so
// applying a change twice, or an older one late, does nothing. Nothing is
// written to the change log: the index's history is its origins' business,
// and by_seq holds the current state a reader needs.

// Put stores l as-is (its Park, Kind, ID, Version and timestamps kept) as
// the state at its origin's sequence seq, indexed for search, when
// l.Version is newer than what the store holds for (l.Park, l.ID), live or
// tombstone. It reports whether it applied l. Invalid when l lacks an id,
// a park or a valid kind.
func (s *Store) Put(ctx context.Context, l *listing.Listing, seq int64) (applied bool, err error) {
	err = s.Batch(ctx, func(b *Batch) error {
		applied, err = b.Put(l, seq)
		return err
	})
	return applied, err
}

// Remove tombstones (park, id) at the origin's sequence seq when version
// is newer than what the store holds, also when it holds nothing (the
// tombstone then refuses an older Put arriving late). The tombstone keeps
// no content. It reports whether it applied.
func (s *Store) Remove(ctx context.Context, park string, kind listing.Kind, id string, version, seq int64, at time.Time) (applied bool, err error) {
	err = s.Batch(ctx, func(b *Batch) error {
		applied, err = b.Remove(park, kind, id, version, seq, at)
		return err
	})
	return applied, err
}

// Purge deletes every listing and tombstone of park and returns how many
// listings it deleted.
func (s *Store) Purge(ctx context.Context, park string) (n int64, err error) {
	err = s.Batch(ctx, func(b *Batch) error {
		n, err = b.Purge(park)
		return err
	})
	return n, err
}

// ChangesOf reads the by-sequence index of one origin (park, kind): up to
// limit listings whose latest change has Seq > after, in Seq order, live
// ones with their current state and the others as tombstones.
func (s *Store) ChangesOf(ctx context.Context, park string, kind listing.Kind, after int64, limit int) ([]listing.Change, error) {
	return s.readChanges(ctx, changesSelect+`WHERE b.park = ? AND b.kind = ? AND b.seq > ? ORDER BY b.seq LIMIT ?`,
		park, string(kind), after, limit)
}

// HeadOf returns the newest sequence held of origin (park, kind), 0 if none.
func (s *Store) HeadOf(ctx context.Context, park string, kind listing.Kind) (int64, error) {
	var seq int64
	err := s.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM by_seq WHERE park = ? AND kind = ?`,
		park, string(kind)).Scan(&seq)
	return seq, s.observe(err)
}

// GetOf returns park's listing id, or NotFound.
func (s *Store) GetOf(ctx context.Context, park, id string) (*listing.Listing, error) {
	return s.getDoc(ctx, id, `SELECT doc FROM listings WHERE park = ? AND id = ?`, park, id)
}

// Meta returns the value the index keeps under key, and whether there is
// one.
func (s *Store) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.read.QueryRowContext(ctx, `SELECT value FROM index_meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, s.observe(err)
}

// MetaPrefix returns every key the index keeps that starts with prefix,
// with its value.
func (s *Store) MetaPrefix(ctx context.Context, prefix string) (_ map[string]string, err error) {
	defer func() { err = s.observe(err) }()
	rows, err := s.read.QueryContext(ctx, `SELECT key, value FROM index_meta
		WHERE key >= ?1 AND substr(key, 1, length(?1)) = ?1`, prefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// Batch runs fn in one write transaction, committed only when fn returns
// nil: what fn applied and the meta it set commit together or not at all.
// ChangeSignal wakes after the commit. b is valid only inside fn, and fn
// writes through b only: the Store's own writes would wait for this
// transaction to end (SQLite has one writer). Reads see what has committed.
func (s *Store) Batch(ctx context.Context, fn func(b *Batch) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return fn(&Batch{ctx: ctx, tx: tx})
	})
}

// Batch is the write transaction of Store.Batch.
type Batch struct {
	ctx context.Context
	tx  *sql.Tx
}

// Put is Store.Put inside the batch.
func (b *Batch) Put(l *listing.Listing, seq int64) (bool, error) {
	if err := checkKey(l.Park, l.Kind, l.ID); err != nil {
		return false, err
	}
	held, err := loadSeqRow(b.ctx, b.tx, l.Park, l.ID)
	if err != nil || held != nil && l.Version <= held.version {
		return false, err
	}
	if l.Match != nil {
		// A search result's, never stored. The caller's listing is not
		// written to: the club index is handed listings that feed
		// streams read at the same time.
		c := *l
		c.Match = nil
		l = &c
	}
	doc, err := json.Marshal(l)
	if err != nil {
		return false, err
	}
	row := &seqRow{park: l.Park, id: l.ID, kind: l.Kind, seq: seq, firstSeq: seq, version: l.Version, at: l.UpdatedAt}
	switch {
	case held == nil:
		err = insertListing(b.ctx, b.tx, l, doc)
	case held.deleted:
		// Present again (shared again, say): a new life, begun here.
		row.audience = held.audience
		err = insertListing(b.ctx, b.tx, l, doc)
	default:
		row.audience, row.firstSeq = held.audience, held.firstSeq
		var rid int64
		if rid, err = b.rid(l.Park, l.ID); err == nil {
			err = replaceListing(b.ctx, b.tx, rid, l, doc)
		}
	}
	if err != nil {
		return false, err
	}
	row.audience = row.audience.With(l)
	return true, saveSeqRow(b.ctx, b.tx, row)
}

// Remove is Store.Remove inside the batch.
func (b *Batch) Remove(park string, kind listing.Kind, id string, version, seq int64, at time.Time) (bool, error) {
	if err := checkKey(park, kind, id); err != nil {
		return false, err
	}
	held, err := loadSeqRow(b.ctx, b.tx, park, id)
	if err != nil || held != nil && version <= held.version {
		return false, err
	}
	row := &seqRow{park: park, id: id, kind: kind, seq: seq, firstSeq: seq, version: version, deleted: true, at: at}
	if held != nil {
		row.firstSeq, row.audience = held.firstSeq, held.audience
		if !held.deleted {
			rid, err := b.rid(park, id)
			if err != nil {
				return false, err
			}
			if err := deleteListing(b.ctx, b.tx, rid); err != nil {
				return false, err
			}
		}
	}
	return true, saveSeqRow(b.ctx, b.tx, row)
}

// checkKey refuses a listing the index could not key or read back by origin.
func checkKey(park string, kind listing.Kind, id string) error {
	switch {
	case id == "":
		return apierror.InvalidField("id", "is required")
	case park == "":
		return apierror.InvalidField("park", "is required")
	case !kind.Valid():
		return apierror.InvalidField("kind", "must be organization, project or talent")
	}
	return nil
}

// Purge is Store.Purge inside the batch.
func (b *Batch) Purge(park string) (int64, error) {
	rows, err := b.tx.QueryContext(b.ctx, `SELECT rid FROM listings WHERE park = ?`, park)
	if err != nil {
		return 0, err
	}
	var rids []int64
	for rows.Next() {
		var rid int64
		if err := rows.Scan(&rid); err != nil {
			rows.Close()
			return 0, err
		}
		rids = append(rids, rid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, rid := range rids {
		if err := deleteListing(b.ctx, b.tx, rid); err != nil {
			return 0, err
		}
	}
	if _, err := b.tx.ExecContext(b.ctx, `DELETE FROM by_seq WHERE park = ?`, park); err != nil {
		return 0, err
	}
	return int64(len(rids)), nil
}

// SetMeta keeps value under key, replacing any earlier value.
func (b *Batch) SetMeta(key, value string) error {
	_, err := b.tx.ExecContext(b.ctx, `INSERT OR REPLACE INTO index_meta(key, value) VALUES (?, ?)`, key, value)
	return err
}

// DeleteMeta forgets key.
func (b *Batch) DeleteMeta(key string) error {
	_, err := b.tx.ExecContext(b.ctx, `DELETE FROM index_meta WHERE key = ?`, key)
	return err
}

// Holds reports whether the batch's transaction holds park's listing id
// (not withdrawn), its own writes included.
func (b *Batch) Holds(park, id string) (bool, error) {
	_, err := b.rid(park, id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// rid is the rowid of park's listing id, which the store holds.
func (b *Batch) rid(park, id string) (int64, error) {
	var rid int64
	err := b.tx.QueryRowContext(b.ctx, `SELECT rid FROM listings WHERE park = ? AND id = ?`, park, id).Scan(&rid)
	return rid, err
}
