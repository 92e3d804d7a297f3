// Package webhook delivers the park-side stream to subscribers that
// registered a URL: each matching event is queued durably in the gateway's
// state, POSTed as CloudEvents JSON with an HMAC-SHA256 signature, retried
// with exponential backoff, and dead-lettered after MaxAttempts failures.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
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

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/retry"
)

// Webhooks queues and delivers the park stream's events to webhooks.
type Webhooks struct {
	State  *state.DB
	Index  *clubindex.Index
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
	ID      string      `json:"id"`
	URL     string      `json:"url"`
	Secret  string      `json:"secret,omitempty"`
	Filter  feed.Filter `json:"filter"`
	Created time.Time   `json:"created_at"`
}

// Delivery is one queued event for one webhook.
type Delivery = state.Delivery

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
	raw, err := wh.State.WebhookPosition(ctx)
	var pos feed.ClubPosition
	if err == nil && raw != "" {
		pos, err = feed.ParseClubPosition(raw)
	}
	if err != nil || raw == "" {
		// First start (or a position of the older inbox stream): only what
		// happens from now on, once the index has read the park's logs.
		for {
			if pos, err = wh.Index.Resume(ctx, ""); err == nil {
				break
			}
			if !retry.Sleep(ctx, time.Second) {
				return
			}
		}
	}
	src := clubindex.Stream{Index: wh.Index, From: pos}
	for ctx.Err() == nil {
		sig := src.Signals()
		items, next, err := src.Next(ctx, pos, 200)
		if err != nil {
			if !retry.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if !next.Equal(pos) {
			if err := wh.enqueue(ctx, items, next); err != nil {
				wh.Logger.Error("queueing webhook deliveries failed", "err", err)
				if !retry.Sleep(ctx, time.Second) {
					return
				}
				continue
			}
			pos = next
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-sig[0]:
		case <-time.After(5 * time.Second):
		}
	}
}

func (wh *Webhooks) enqueue(ctx context.Context, items []feed.Item[feed.ClubPosition], next feed.ClubPosition) error {
	hooks, err := wh.List(ctx)
	if err != nil {
		return err
	}
	var qs []state.Queued
	for _, it := range items {
		b := feed.Marshal(it.Event)
		for _, h := range hooks {
			if h.Filter.Match(it.Park, it.Event) {
				qs = append(qs, state.Queued{Webhook: h.ID, EventID: it.Event.ID(), Event: b})
			}
		}
	}
	return wh.State.Enqueue(ctx, qs, next.String())
}

// List returns the webhooks, secrets included.
func (wh *Webhooks) List(ctx context.Context) ([]Webhook, error) {
	rows, err := wh.State.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	var out []Webhook
	for _, r := range rows {
		h := Webhook{ID: r.ID, URL: r.URL, Secret: r.Secret, Created: r.Created}
		json.Unmarshal([]byte(r.Filter), &h.Filter)
		out = append(out, h)
	}
	return out, nil
}

// Create registers a webhook for u with filter. An empty secret gets a
// random one (returned once, in the answer). Errors are Invalid and name
// the field.
func (wh *Webhooks) Create(ctx context.Context, u, secret string, filter feed.Filter) (*Webhook, error) {
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || len(u) > 2000 {
		return nil, apierror.InvalidField("url", "must be an http(s) URL")
	}
	if secret == "" {
		secret = rand.Text() + rand.Text()
	} else if len(secret) < 16 || len(secret) > 256 {
		return nil, apierror.InvalidField("secret", "must be 16 to 256 characters")
	}
	h := &Webhook{ID: "whk_" + rand.Text(), URL: u, Secret: secret, Filter: filter, Created: time.Now().UTC()}
	fb, _ := json.Marshal(filter)
	if err := wh.State.CreateWebhook(ctx, state.Webhook{ID: h.ID, URL: h.URL, Secret: h.Secret, Filter: string(fb), Created: h.Created}); err != nil {
		return nil, err
	}
	return h, nil
}

// deliverDue sends every pending delivery whose time has come.
func (wh *Webhooks) deliverDue(ctx context.Context) {
	due, err := wh.State.DueDeliveries(ctx, time.Now(), 50)
	if err != nil {
		return
	}
	for _, d := range due {
		err := wh.post(ctx, d.URL, d.Secret, d.EventID, d.Event)
		now := time.Now()
		if err == nil {
			wh.State.MarkDelivered(ctx, d.ID, now)
			continue
		}
		attempts := d.Attempts + 1
		status := state.Pending
		if attempts >= wh.MaxAttempts {
			status = state.Dead
			wh.Logger.Warn("webhook delivery dead-lettered", "delivery", d.ID, "event", d.EventID, "err", err)
		}
		delay := min(wh.Backoff<<min(attempts-1, 20), 5*time.Minute)
		wh.State.MarkFailed(ctx, d.ID, status, attempts, err.Error(), now.Add(delay), now)
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
