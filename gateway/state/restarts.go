package state

import (
	"context"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// RecordFeedRestart records that kind k's store was restored and its
// sequence moved on (parkmesh restore, with the node stopped). Recording
// the same restart twice keeps one.
func (db *DB) RecordFeedRestart(ctx context.Context, k listing.Kind, r sqlitestore.Restart) error {
	_, err := db.write.ExecContext(ctx, `INSERT OR REPLACE INTO feed_restarts(kind, after_seq, base_seq, at) VALUES (?, ?, ?, ?)`,
		string(k), r.After, r.Base, r.At.UnixMicro())
	return err
}

// FeedRestarts lists every recorded restart per kind, oldest first.
func (db *DB) FeedRestarts(ctx context.Context) (map[listing.Kind][]sqlitestore.Restart, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT kind, after_seq, base_seq, at FROM feed_restarts ORDER BY kind, base_seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[listing.Kind][]sqlitestore.Restart{}
	for rows.Next() {
		var kind string
		var r sqlitestore.Restart
		var at int64
		if err := rows.Scan(&kind, &r.After, &r.Base, &at); err != nil {
			return nil, err
		}
		r.At = time.UnixMicro(at).UTC()
		out[listing.Kind(kind)] = append(out[listing.Kind(kind)], r)
	}
	return out, rows.Err()
}
