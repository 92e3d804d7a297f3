package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// InterestRow is one expression of interest as stored: the columns lists
// and sweeps select on, and the record (JSON) gateway/interests owns.
type InterestRow struct {
	ID        string
	Box       string // sent | received
	Peer      string
	Status    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UpdatedAt time.Time
	Record    []byte
}

// InterestAudit is one entry of an interest's audit trail. Fields names
// what crossed between the parks (field names, never values).
type InterestAudit struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Actor  string    `json:"actor"`
	Fields []string  `json:"fields,omitempty"`
}

// InterestMessage is one federation message of the outbox.
type InterestMessage struct {
	Seq        int64
	InterestID string
	Peer       string
	Kind       string // interest | status
	Body       []byte
	Attempts   int
	LastError  string
	NextAt     time.Time
}

// InterestEvent is one CloudEvent of the interests, in JSON.
type InterestEvent struct {
	Seq   int64
	ID    string
	Event []byte
}

// InterestWrite is what one change of an interest writes, all in one
// transaction: the record (nil leaves it), audit entries, messages for the
// outbox, events, and whether the interest's undelivered messages are
// dropped (before the new ones are queued).
type InterestWrite struct {
	Row          *InterestRow
	Audit        []InterestAudit
	Outbox       []InterestMessage
	CancelOutbox bool
	Events       []InterestEvent
	// Key, when set, records the Idempotency-Key the interest was made
	// with; when a live record of the same principal and key exists, the
	// transaction writes nothing and UpdateInterest returns
	// *KeyInUseError.
	Key *InterestKey
}

// InterestKey is an Idempotency-Key of a request that made an interest:
// the principal's key, the request's fingerprint, the interest it made,
// and until when it is kept. At, when claiming a key, is the request's
// time: records expired at it are free.
type InterestKey struct {
	Principal   string
	Key         string
	Fingerprint string
	InterestID  string
	ExpiresAt   time.Time
	At          time.Time
}

// KeyInUseError is UpdateInterest's answer to a write whose
// Idempotency-Key another request holds: Held is that request's record.
type KeyInUseError struct{ Held InterestKey }

func (e *KeyInUseError) Error() string { return "state: idempotency key in use" }

// ErrUnchanged may be returned by an UpdateInterest function: nothing is
// written and UpdateInterest returns nil.
var ErrUnchanged = errors.New("state: unchanged")

// UpdateInterest reads interest id (nil when there is none), calls fn with
// it and writes what fn returns, in one transaction that holds the write
// lock throughout, so replicas changing the same interest at once are
// serialized (a shared database would SELECT … FOR UPDATE). fn's error is
// returned as it is, and nothing is written.
func (db *DB) UpdateInterest(ctx context.Context, id string, fn func(cur *InterestRow) (InterestWrite, error)) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cur, err := scanInterest(tx.QueryRowContext(ctx, interestSelect+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	w, err := fn(cur)
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	if k := w.Key; k != nil {
		if err := claimKey(ctx, tx, k); err != nil {
			return err
		}
	}
	now := time.Now().UnixMicro()
	if r := w.Row; r != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO interests(id, box, peer, status, created_at, expires_at, updated_at, record)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET status = excluded.status, expires_at = excluded.expires_at,
				updated_at = excluded.updated_at, record = excluded.record`,
			id, r.Box, r.Peer, r.Status, r.CreatedAt.UnixMicro(), r.ExpiresAt.UnixMicro(), now, string(r.Record)); err != nil {
			return err
		}
	}
	for _, a := range w.Audit {
		fields, _ := json.Marshal(a.Fields)
		if a.Fields == nil {
			fields = []byte("[]")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO interest_audit(interest_id, at, action, actor, fields) VALUES (?, ?, ?, ?, ?)`,
			id, a.At.UnixMicro(), a.Action, a.Actor, string(fields)); err != nil {
			return err
		}
	}
	if w.CancelOutbox {
		if _, err := tx.ExecContext(ctx, `UPDATE interest_outbox SET done = 1, last_error = 'cancelled' WHERE interest_id = ? AND done = 0`, id); err != nil {
			return err
		}
	}
	for _, m := range w.Outbox {
		if _, err := tx.ExecContext(ctx, `INSERT INTO interest_outbox(interest_id, peer, kind, body, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, m.Peer, m.Kind, string(m.Body), now, now); err != nil {
			return err
		}
	}
	for _, e := range w.Events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO interest_events(event_id, event, at) VALUES (?, ?, ?)`, e.ID, string(e.Event), now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// claimKey records k in tx, unless a live record of its principal and key
// exists (*KeyInUseError). Expired records go at the same time: keys are
// written once per new interest, rare enough to sweep here.
func claimKey(ctx context.Context, tx *sql.Tx, k *InterestKey) error {
	now := k.At.UnixMicro()
	held, err := scanKey(tx.QueryRowContext(ctx, keySelect+` WHERE principal = ? AND key = ? AND expires_at > ?`,
		k.Principal, k.Key, now))
	if err == nil {
		return &KeyInUseError{Held: *held}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM interest_keys WHERE expires_at <= ?`, now); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO interest_keys(principal, key, fingerprint, interest_id, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(principal, key) DO UPDATE SET fingerprint = excluded.fingerprint, interest_id = excluded.interest_id, expires_at = excluded.expires_at`,
		k.Principal, k.Key, k.Fingerprint, k.InterestID, k.ExpiresAt.UnixMicro())
	return err
}

const keySelect = `SELECT principal, key, fingerprint, interest_id, expires_at FROM interest_keys`

func scanKey(s rowScanner) (*InterestKey, error) {
	var k InterestKey
	var exp int64
	if err := s.Scan(&k.Principal, &k.Key, &k.Fingerprint, &k.InterestID, &exp); err != nil {
		return nil, err
	}
	k.ExpiresAt = time.UnixMicro(exp).UTC()
	return &k, nil
}

// InterestKeyOf returns principal's record of Idempotency-Key key live at
// now; ErrNotFound when there is none (never used, or kept no longer).
func (db *DB) InterestKeyOf(ctx context.Context, principal, key string, now time.Time) (*InterestKey, error) {
	k, err := scanKey(db.read.QueryRowContext(ctx, keySelect+` WHERE principal = ? AND key = ? AND expires_at > ?`,
		principal, key, now.UnixMicro()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return k, err
}

// TakeInterestArrival counts one new interest from peer at now against
// limit per window, a sliding window shared by every replica over this
// state: in one write transaction it forgets peer's arrivals older than
// the window, counts the rest, and records this one when there are fewer
// than limit. When there are not, nothing is recorded and wait says when
// the oldest one leaves the window.
func (db *DB) TakeInterestArrival(ctx context.Context, peer string, limit int, window time.Duration, now time.Time) (wait time.Duration, ok bool, err error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM interest_arrivals WHERE peer = ? AND at <= ?`, peer, now.Add(-window).UnixMicro()); err != nil {
		return 0, false, err
	}
	var n int
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT count(*), min(at) FROM interest_arrivals WHERE peer = ?`, peer).Scan(&n, &oldest); err != nil {
		return 0, false, err
	}
	if n >= limit {
		if err := tx.Commit(); err != nil { // keep the forgetting
			return 0, false, err
		}
		return time.UnixMicro(oldest.Int64).Add(window).Sub(now), false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO interest_arrivals(peer, at) VALUES (?, ?)`, peer, now.UnixMicro()); err != nil {
		return 0, false, err
	}
	return 0, true, tx.Commit()
}

const interestSelect = `SELECT id, box, peer, status, created_at, expires_at, updated_at, record FROM interests`

type rowScanner interface{ Scan(...any) error }

func scanInterest(s rowScanner) (*InterestRow, error) {
	var r InterestRow
	var created, expires, updated int64
	var rec string
	if err := s.Scan(&r.ID, &r.Box, &r.Peer, &r.Status, &created, &expires, &updated, &rec); err != nil {
		return nil, err
	}
	r.CreatedAt, r.ExpiresAt, r.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC(), time.UnixMicro(updated).UTC()
	r.Record = []byte(rec)
	return &r, nil
}

// Interest returns interest id; ErrNotFound when there is none.
func (db *DB) Interest(ctx context.Context, id string) (*InterestRow, error) {
	r, err := scanInterest(db.read.QueryRowContext(ctx, interestSelect+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// Interests lists the interests of box ("" for both), optionally of one
// status, newest first, created before before (zero: from the newest), at
// most limit.
func (db *DB) Interests(ctx context.Context, box, status string, before time.Time, limit int) ([]InterestRow, error) {
	b := int64(1<<63 - 1)
	if !before.IsZero() {
		b = before.UnixMicro()
	}
	rows, err := db.read.QueryContext(ctx, interestSelect+` WHERE (? = '' OR box = ?) AND (? = '' OR status = ?) AND created_at < ?
		ORDER BY created_at DESC, id LIMIT ?`, box, box, status, status, b, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []InterestRow{}
	for rows.Next() {
		r, err := scanInterest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// InterestsExpiring returns the ids of interests in one of statuses whose
// expiry has come at now.
func (db *DB) InterestsExpiring(ctx context.Context, statuses []string, now time.Time) ([]string, error) {
	js, _ := json.Marshal(statuses)
	rows, err := db.read.QueryContext(ctx, `SELECT id FROM interests WHERE status IN (SELECT value FROM json_each(?)) AND expires_at <= ? LIMIT 500`,
		string(js), now.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// InterestAuditOf returns interest id's audit trail, oldest first.
func (db *DB) InterestAuditOf(ctx context.Context, id string) ([]InterestAudit, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, at, action, actor, fields FROM interest_audit WHERE interest_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []InterestAudit{}
	for rows.Next() {
		var a InterestAudit
		var at int64
		var fields string
		if err := rows.Scan(&a.Seq, &at, &a.Action, &a.Actor, &fields); err != nil {
			return nil, err
		}
		a.At = time.UnixMicro(at).UTC()
		json.Unmarshal([]byte(fields), &a.Fields)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ClaimInterestMessages returns up to limit outbox messages due at now,
// the oldest undelivered one of each interest only (an interest's messages
// go out in order), and moves each one's next attempt to now+lease in the
// same transaction, so another replica does not send it meanwhile.
func (db *DB) ClaimInterestMessages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]InterestMessage, error) {
	// Polled often: look without the write lock first.
	var due bool
	if err := db.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM interest_outbox WHERE done = 0 AND next_at <= ?)`, now.UnixMicro()).Scan(&due); err != nil || !due {
		return nil, err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT o.seq, o.interest_id, o.peer, o.kind, o.body, o.attempts, o.last_error, o.next_at
		FROM interest_outbox o
		WHERE o.done = 0 AND o.next_at <= ?
		  AND o.seq = (SELECT min(seq) FROM interest_outbox f WHERE f.interest_id = o.interest_id AND f.done = 0)
		ORDER BY o.seq LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, err
	}
	var out []InterestMessage
	for rows.Next() {
		var m InterestMessage
		var body string
		var next int64
		if err := rows.Scan(&m.Seq, &m.InterestID, &m.Peer, &m.Kind, &body, &m.Attempts, &m.LastError, &next); err != nil {
			rows.Close()
			return nil, err
		}
		m.Body, m.NextAt = []byte(body), time.UnixMicro(next).UTC()
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, m := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE interest_outbox SET next_at = ? WHERE seq = ?`, now.Add(lease).UnixMicro(), m.Seq); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

// InterestMessageDone records that the peer acknowledged (or refused for
// good) outbox message seq; lastErr says why when it refused.
func (db *DB) InterestMessageDone(ctx context.Context, seq int64, attempts int, lastErr string) error {
	_, err := db.write.ExecContext(ctx, `UPDATE interest_outbox SET done = 1, attempts = ?, last_error = ? WHERE seq = ?`, attempts, lastErr, seq)
	return err
}

// InterestMessageFailed records a failed attempt at message seq: it is
// tried again at next.
func (db *DB) InterestMessageFailed(ctx context.Context, seq int64, attempts int, lastErr string, next time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE interest_outbox SET attempts = ?, last_error = ?, next_at = ? WHERE seq = ? AND done = 0`,
		attempts, lastErr, next.UnixMicro(), seq)
	return err
}

// InterestOutbox returns interest id's undelivered messages (oldest first).
func (db *DB) InterestOutbox(ctx context.Context, id string) ([]InterestMessage, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, interest_id, peer, kind, attempts, last_error, next_at FROM interest_outbox
		WHERE interest_id = ? AND done = 0 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InterestMessage
	for rows.Next() {
		var m InterestMessage
		var next int64
		if err := rows.Scan(&m.Seq, &m.InterestID, &m.Peer, &m.Kind, &m.Attempts, &m.LastError, &next); err != nil {
			return nil, err
		}
		m.NextAt = time.UnixMicro(next).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// InterestOutboxDepth is how many outbox messages are not delivered yet.
func (db *DB) InterestOutboxDepth(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM interest_outbox WHERE done = 0`).Scan(&n)
	return n, err
}

// InterestEventsAfter returns up to limit interest events after seq.
func (db *DB) InterestEventsAfter(ctx context.Context, seq int64, limit int) ([]InterestEvent, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, event_id, event FROM interest_events WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InterestEvent
	for rows.Next() {
		var e InterestEvent
		var ev string
		if err := rows.Scan(&e.Seq, &e.ID, &ev); err != nil {
			return nil, err
		}
		e.Event = []byte(ev)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastInterestEvent is the newest interest event's seq (0 when none).
func (db *DB) LastInterestEvent(ctx context.Context) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM interest_events`).Scan(&n)
	return n, err
}

// QueueInterestEvents queues every interest event not queued yet for
// every webhook (the webhook dispatcher delivers them with the stream's
// events) and moves its own position in the same transaction, so none is
// queued twice or skipped. It returns how many deliveries it queued.
func (db *DB) QueueInterestEvents(ctx context.Context) (int64, error) {
	// Polled often: look without the write lock first.
	var behind bool
	if err := db.read.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM interest_events), 0) >
		coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'interest_event_pos'), 0)`).Scan(&behind); err != nil || !behind {
		return 0, err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var pos, head int64
	err = tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'interest_event_pos'`).Scan(&pos)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM interest_events`).Scan(&head); err != nil {
		return 0, err
	}
	if head <= pos {
		return 0, nil
	}
	now := time.Now().UnixMicro()
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries(webhook, event_id, event, next_at, status, updated_at)
		SELECT w.id, e.event_id, e.event, ?, 'pending', ? FROM interest_events e, webhooks w
		WHERE e.seq > ? AND e.seq <= ? ORDER BY e.seq`, now, now, pos, head)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('interest_event_pos', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, head); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
