package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Webhooks delivers the park-side stream to subscribers that registered a
// URL: each matching event is queued durably, POSTed with an HMAC-SHA256
// signature, retried with exponential backoff, and dead-lettered after
// MaxAttempts failures (visible through the API).
type Webhooks struct {
	Inbox  *Inbox
	Stream *parkStream
	Client *http.Client
	Logger *slog.Logger
	// MaxAttempts is how many failed deliveries dead-letter an event.
	MaxAttempts int
	// Backoff is the first retry delay; it doubles per attempt (cap 5 min).
	Backoff time.Duration
	// Poll is how often due deliveries are looked for.
	Poll time.Duration
}

// Webhook is a registered subscriber.
type Webhook struct {
	ID      string       `json:"id"`
	URL     string       `json:"url"`
	Secret  string       `json:"secret,omitempty"`
	Filter  StreamFilter `json:"filter"`
	Created time.Time    `json:"created_at"`
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

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" with the webhook's secret>"; receivers check it and reject
// old timestamps, so a captured delivery cannot be replayed later.
const SignatureHeader = "X-ParkMesh-Signature"

// Sign returns the signature header value of body at t.
func Sign(secret string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	ts := strconv.FormatInt(t.Unix(), 10)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

func (wh *Webhooks) defaults() {
	if wh.MaxAttempts <= 0 {
		wh.MaxAttempts = 5
	}
	if wh.Backoff <= 0 {
		wh.Backoff = time.Second
	}
	if wh.Poll <= 0 {
		wh.Poll = 100 * time.Millisecond
	}
}

// Run dispatches and delivers until ctx ends.
func (wh *Webhooks) Run(ctx context.Context) {
	wh.defaults()
	done := make(chan struct{})
	go func() { defer close(done); wh.dispatch(ctx) }()
	t := time.NewTicker(wh.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
			wh.deliverDue(ctx)
		}
	}
}

// dispatch reads the park stream from its stored position and queues each
// event for every webhook whose filter matches, moving the position in the
// same transaction.
func (wh *Webhooks) dispatch(ctx context.Context) {
	db := wh.Inbox.write
	var raw string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'webhook_pos'`).Scan(&raw)
	var pos streamPos
	if err == nil {
		pos, err = parseStreamPos(raw)
	}
	if err != nil {
		pos = wh.Stream.head(ctx) // first start: only what happens from now on
	}
	for ctx.Err() == nil {
		localSig, inboxSig := wh.Stream.feed.Signal(), wh.Inbox.Signal()
		evs, next, err := wh.Stream.next(ctx, pos, 200)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if next != pos {
			if err := wh.enqueue(ctx, evs, next); err != nil {
				wh.Logger.Error("queueing webhook deliveries failed", "err", err)
				time.Sleep(time.Second)
				continue
			}
			pos = next
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-localSig:
		case <-inboxSig:
		case <-time.After(5 * time.Second):
		}
	}
}

func (wh *Webhooks) enqueue(ctx context.Context, evs []streamEvent, next streamPos) error {
	hooks, err := wh.list(ctx)
	if err != nil {
		return err
	}
	tx, err := wh.Inbox.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	for _, e := range evs {
		b, _ := json.Marshal(e.Event)
		for _, h := range hooks {
			if h.Filter.Match(e.Park, e.Event) {
				if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries(webhook, event_id, event, next_at, status, updated_at) VALUES (?, ?, ?, ?, 'pending', ?)`,
					h.ID, e.Event.ID, string(b), now, now); err != nil {
					return err
				}
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('webhook_pos', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, next.String()); err != nil {
		return err
	}
	return tx.Commit()
}

func (wh *Webhooks) list(ctx context.Context) ([]Webhook, error) {
	rows, err := wh.Inbox.read.QueryContext(ctx, `SELECT id, url, secret, filter, created FROM webhooks ORDER BY created`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		var h Webhook
		var filter string
		var created int64
		if err := rows.Scan(&h.ID, &h.URL, &h.Secret, &filter, &created); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(filter), &h.Filter)
		h.Created = time.UnixMicro(created).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// deliverDue sends every pending delivery whose time has come.
func (wh *Webhooks) deliverDue(ctx context.Context) {
	rows, err := wh.Inbox.read.QueryContext(ctx, `SELECT d.id, d.event_id, d.event, d.attempts, w.url, w.secret
		FROM deliveries d JOIN webhooks w ON w.id = d.webhook
		WHERE d.status = 'pending' AND d.next_at <= ? ORDER BY d.id LIMIT 50`, time.Now().UnixMicro())
	if err != nil {
		return
	}
	type due struct {
		id                     int64
		eventID, event, u, sec string
		attempts               int
	}
	var list []due
	for rows.Next() {
		var d due
		if rows.Scan(&d.id, &d.eventID, &d.event, &d.attempts, &d.u, &d.sec) == nil {
			list = append(list, d)
		}
	}
	rows.Close()
	for _, d := range list {
		err := wh.post(ctx, d.u, d.sec, d.eventID, []byte(d.event))
		now := time.Now()
		if err == nil {
			wh.Inbox.write.ExecContext(ctx, `UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = '', updated_at = ? WHERE id = ?`, now.UnixMicro(), d.id)
			continue
		}
		attempts := d.attempts + 1
		status := "pending"
		if attempts >= wh.MaxAttempts {
			status = "dead"
			wh.Logger.Warn("webhook delivery dead-lettered", "delivery", d.id, "event", d.eventID, "err", err)
		}
		delay := min(wh.Backoff<<min(attempts-1, 20), 5*time.Minute)
		wh.Inbox.write.ExecContext(ctx, `UPDATE deliveries SET status = ?, attempts = ?, last_error = ?, next_at = ?, updated_at = ? WHERE id = ?`,
			status, attempts, err.Error(), now.Add(delay).UnixMicro(), now.UnixMicro(), d.id)
	}
}

func (wh *Webhooks) post(ctx context.Context, u, secret, eventID string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("X-ParkMesh-Event-Id", eventID)
	req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	res, err := wh.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		return fmt.Errorf("subscriber answered %d", res.StatusCode)
	}
	return nil
}

// webhookRoutes are the park-side endpoints for webhooks (admin role).
func (a *API) webhookRoutes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, mw(pattern, a.authorize(parktoken.Admin, h)))
	}
	wh := a.Webhooks
	handle("POST /api/v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			URL    string            `json:"url"`
			Secret string            `json:"secret"`
			Filter map[string]string `json:"filter"`
		}
		if err := decodeSmallJSON(r, &req); err != nil {
			apierror.Write(w, err)
			return
		}
		if u, err := url.Parse(req.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.URL) > 2000 {
			apierror.Write(w, apierror.InvalidField("url", "must be an http(s) URL"))
			return
		}
		v := url.Values{}
		for k, val := range req.Filter {
			v.Set(k, val)
		}
		filter, err := parseStreamFilter(v)
		if err != nil {
			if e := apierror.Public(err); e.Field != "" {
				e2 := *e
				e2.Field = "filter." + e.Field
				err = &e2
			}
			apierror.Write(w, err)
			return
		}
		if req.Secret == "" {
			req.Secret = randomString(32)
		} else if len(req.Secret) < 16 || len(req.Secret) > 256 {
			apierror.Write(w, apierror.InvalidField("secret", "must be 16 to 256 characters"))
			return
		}
		h := Webhook{ID: "whk_" + randomString(12), URL: req.URL, Secret: req.Secret, Filter: filter, Created: time.Now().UTC()}
		fb, _ := json.Marshal(filter)
		if _, err := wh.Inbox.write.ExecContext(r.Context(), `INSERT INTO webhooks(id, url, secret, filter, created) VALUES (?, ?, ?, ?, ?)`,
			h.ID, h.URL, h.Secret, string(fb), h.Created.UnixMicro()); err != nil {
			apierror.Write(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, h)
	})
	handle("GET /api/v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		hooks, err := wh.list(r.Context())
		if err != nil {
			apierror.Write(w, err)
			return
		}
		for i := range hooks {
			hooks[i].Secret = "" // shown once, at creation
		}
		if hooks == nil {
			hooks = []Webhook{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"webhooks": hooks})
	})
	handle("DELETE /api/v1/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		res, err := wh.Inbox.write.ExecContext(r.Context(), `DELETE FROM webhooks WHERE id = ?`, r.PathValue("id"))
		if err != nil {
			apierror.Write(w, err)
			return
		}
		if n, _ := res.RowsAffected(); n == 0 {
			apierror.Write(w, apierror.New(apierror.NotFound, "no webhook %q", clip(r.PathValue("id"))))
			return
		}
		wh.Inbox.write.ExecContext(r.Context(), `DELETE FROM deliveries WHERE webhook = ?`, r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	handle("GET /api/v1/webhooks/{id}/deliveries", func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		switch status {
		case "", "pending", "delivered", "dead":
		default:
			apierror.Write(w, apierror.InvalidField("status", "must be pending, delivered or dead"))
			return
		}
		rows, err := wh.Inbox.read.QueryContext(r.Context(), `SELECT id, webhook, event_id, attempts, status, last_error, next_at, updated_at
			FROM deliveries WHERE webhook = ? AND (? = '' OR status = ?) ORDER BY id DESC LIMIT 500`, r.PathValue("id"), status, status)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		defer rows.Close()
		out := []Delivery{}
		for rows.Next() {
			var d Delivery
			var next, upd int64
			if err := rows.Scan(&d.ID, &d.Webhook, &d.EventID, &d.Attempts, &d.Status, &d.LastError, &next, &upd); err != nil {
				apierror.Write(w, err)
				return
			}
			d.NextAt, d.UpdatedAt = time.UnixMicro(next).UTC(), time.UnixMicro(upd).UTC()
			out = append(out, d)
		}
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
	})
}
