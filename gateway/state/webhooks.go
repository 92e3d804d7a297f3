package state

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Webhook is a registered subscriber as stored; Filter is its filter in
// JSON (the webhook package owns its shape).
type Webhook struct {
	ID      string
	URL     string
	Secret  string
	Filter  string
	Created time.Time
}

// Delivery is one queued event for one webhook.
type Delivery struct {
	ID        int64     `json:"id"`
	Webhook   string    `json:"webhook"`
	EventID   string    `json:"event_id"`
	Attempts  int       `json:"attempts"`
	Status    string    `json:"status"`
	LastError string    `json:"last_error,omitempty"`
	NextAt    time.Time `json:"next_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Delivery statuses.
const (
	Pending   = "pending"
	Delivered = "delivered"
	Dead      = "dead"
)

// ErrNotFound is returned for a webhook that does not exist.
var ErrNotFound = errors.New("state: not found")

// ErrLimit is returned by CreateWebhookUpTo when the limit is reached.
var ErrLimit = errors.New("state: webhook limit reached")

// CreateWebhook stores h.
func (db *DB) CreateWebhook(ctx context.Context, h Webhook) error {
	return db.CreateWebhookUpTo(ctx, h, 0)
}

// CreateWebhookUpTo stores h unless limit (when positive) webhooks exist
// already: ErrLimit then. Count and insert are one statement, so replicas
// registering at once cannot overshoot.
func (db *DB) CreateWebhookUpTo(ctx context.Context, h Webhook, limit int) error {
	res, err := db.write.ExecContext(ctx, `INSERT INTO webhooks(id, url, secret, filter, created)
		SELECT ?, ?, ?, ?, ? WHERE ? <= 0 OR (SELECT count(*) FROM webhooks) < ?`,
		h.ID, h.URL, h.Secret, h.Filter, h.Created.UnixMicro(), limit, limit)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrLimit
	}
	return nil
}

// Webhooks lists the webhooks, oldest first.
func (db *DB) Webhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, url, secret, filter, created FROM webhooks ORDER BY created`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		var h Webhook
		var created int64
		if err := rows.Scan(&h.ID, &h.URL, &h.Secret, &h.Filter, &created); err != nil {
			return nil, err
		}
		h.Created = time.UnixMicro(created).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteWebhook removes webhook id and its queue; ErrNotFound if none.
func (db *DB) DeleteWebhook(ctx context.Context, id string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE webhook = ?`, id); err != nil {
		return err
	}
	return tx.Commit()
}

// Queued is an event to queue for one webhook.
type Queued struct {
	Webhook string
	EventID string
	Event   []byte
}

// WebhookPosition is the stream position the webhook dispatcher has
// queued up to ("" before its first run).
func (db *DB) WebhookPosition(ctx context.Context) (string, error) {
	var raw string
	err := db.write.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'webhook_pos'`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return raw, err
}

// Enqueue queues deliveries and moves the dispatcher's position to pos in
// one transaction, so no event is queued twice or skipped.
func (db *DB) Enqueue(ctx context.Context, qs []Queued, pos string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries(webhook, event_id, event, next_at, status, updated_at) VALUES (?, ?, ?, ?, 'pending', ?)`,
			q.Webhook, q.EventID, string(q.Event), now, now); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('webhook_pos', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, pos); err != nil {
		return err
	}
	return tx.Commit()
}

// Due is a pending delivery whose time has come, with its target.
type Due struct {
	ID       int64
	EventID  string
	Event    []byte
	Attempts int
	URL      string
	Secret   string
}

// DueDeliveries returns up to limit pending deliveries due at now.
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Due, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT d.id, d.event_id, d.event, d.attempts, w.url, w.secret
		FROM deliveries d JOIN webhooks w ON w.id = d.webhook
		WHERE d.status = 'pending' AND d.next_at <= ? ORDER BY d.id LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Due
	for rows.Next() {
		var d Due
		var ev string
		if err := rows.Scan(&d.ID, &d.EventID, &ev, &d.Attempts, &d.URL, &d.Secret); err != nil {
			return nil, err
		}
		d.Event = []byte(ev)
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkDelivered records a successful delivery.
func (db *DB) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = '', updated_at = ? WHERE id = ?`, at.UnixMicro(), id)
	return err
}

// MarkFailed records a failed attempt: the delivery stays pending until
// next, or is dead-lettered (status Dead).
func (db *DB) MarkFailed(ctx context.Context, id int64, status string, attempts int, lastErr string, next, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE deliveries SET status = ?, attempts = ?, last_error = ?, next_at = ?, updated_at = ? WHERE id = ?`,
		status, attempts, lastErr, next.UnixMicro(), at.UnixMicro(), id)
	return err
}

// Deliveries lists webhook's newest deliveries (at most 500), optionally of
// one status.
func (db *DB) Deliveries(ctx context.Context, webhook, status string) ([]Delivery, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, webhook, event_id, attempts, status, last_error, next_at, updated_at
		FROM deliveries WHERE webhook = ? AND (? = '' OR status = ?) ORDER BY id DESC LIMIT 500`, webhook, status, status)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var next, upd int64
		if err := rows.Scan(&d.ID, &d.Webhook, &d.EventID, &d.Attempts, &d.Status, &d.LastError, &next, &upd); err != nil {
			return nil, err
		}
		d.NextAt, d.UpdatedAt = time.UnixMicro(next).UTC(), time.UnixMicro(upd).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
