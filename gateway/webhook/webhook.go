// Package webhook delivers the park-side stream to subscribers that
// registered a URL: each matching event is queued durably in the gateway's
// state, POSTed as CloudEvents JSON with an HMAC-SHA256 signature, retried
// with exponential backoff, and dead-lettered after MaxAttempts failures.
//
// A webhook is a request the gateway makes on an admin's behalf from inside
// the park's network, so targets are checked: only http(s) URLs without
// user info, at most MaxWebhooks of them, not resolving only to addresses
// the Policy denies (loopback, private, link-local, metadata, …); the
// client that delivers checks every address it dials against the same
// policy and follows no redirect. What a delivery's last_error says is one
// of a few generic texts (see LastErrors); the detail goes to the log.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/outbound"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/retry"
)

// Webhooks queues and delivers the park stream's events to webhooks.
type Webhooks struct {
	State *state.DB
	Index *clubindex.Index
	// Client delivers: built with outbound.New and the same Policy, so
	// every address it dials is checked (nil: such a client without
	// tracing or counts).
	Client *http.Client
	Logger *slog.Logger
	// Policy is what targets may be (nil: nothing in a denied range).
	Policy *outbound.Policy
	// Resolver resolves a URL's host at registration (nil: the system's).
	Resolver outbound.Resolver
	// MaxWebhooks caps the park's webhooks (0: no cap).
	MaxWebhooks int
	// MaxAttempts is how many failed deliveries dead-letter an event.
	MaxAttempts int
	// Backoff is the first retry delay; it doubles per attempt (cap 5 min).
	Backoff time.Duration
	// Poll is how often due deliveries are looked for.
	Poll time.Duration
	// Timeout bounds one delivery attempt (default 10 s).
	Timeout time.Duration

	// What the dispatcher did, for tests: changes it read back from the
	// index, and the last position it skipped to without webhooks.
	readBack   atomic.Int64
	skippedTo  atomic.Value // string
	storedSkip string       // dispatch's own: the skipped position last stored
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

// denyDenied is the policy of Webhooks without one: nothing denied allowed.
var denyDenied = outbound.NewPolicy(nil)

func (wh *Webhooks) policy() *outbound.Policy {
	if wh.Policy != nil {
		return wh.Policy
	}
	return denyDenied
}

func (wh *Webhooks) logger() *slog.Logger {
	if wh.Logger != nil {
		return wh.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (wh *Webhooks) defaults() {
	if wh.Client == nil {
		wh.Client = outbound.New(outbound.Options{Name: "webhook", Policy: wh.policy(), Logger: wh.logger()})
	}
	if wh.MaxAttempts <= 0 {
		wh.MaxAttempts = 5
	}
	if wh.Backoff <= 0 {
		wh.Backoff = time.Second
	}
	if wh.Poll <= 0 {
		wh.Poll = 100 * time.Millisecond
	}
	if wh.Timeout <= 0 {
		wh.Timeout = 10 * time.Second
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
		asked := time.Now()
		for {
			if pos, err = wh.Index.Resume(ctx, "", asked); err == nil {
				err = wh.State.Enqueue(ctx, nil, pos.String())
			}
			if err == nil {
				break
			}
			if !retry.Sleep(ctx, time.Second) {
				return
			}
		}
	}
	src := clubindex.Stream{Index: wh.Index, From: pos, Sent: feed.NewSent()}
	var saved time.Time // when a skipped position was last stored
	for ctx.Err() == nil {
		sig := src.Signals()
		// With no webhook registered nothing would be queued: the changes
		// are not read back, the position skips to the index's head. The
		// head is read before the webhooks are listed, so a webhook
		// registered after the list misses none of its changes. The
		// skipped position is stored now and then (a restart resumes near
		// it, as one with webhooks does).
		head := wh.Index.Head()
		hooks, err := wh.State.Webhooks(ctx)
		if err == nil && len(hooks) == 0 {
			if !head.Equal(pos) {
				pos = head
				wh.skippedTo.Store(pos.String())
			}
			if stored := pos.String(); stored != wh.storedSkip && time.Since(saved) >= skipSave {
				if err := wh.State.Enqueue(ctx, nil, stored); err == nil {
					wh.storedSkip, saved = stored, time.Now()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-sig[0]:
			case <-time.After(skipSave):
			}
			continue
		}
		items, next, err := src.Next(ctx, pos, 200)
		wh.readBack.Add(int64(len(items)))
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

// skipSave is how often at most the dispatcher stores a position it
// skipped to without webhooks.
const skipSave = 5 * time.Second

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
// random one (returned once, in the answer). Errors are Invalid naming the
// field, Conflict when the park has MaxWebhooks already, or Unavailable
// when the URL's host cannot be resolved now.
func (wh *Webhooks) Create(ctx context.Context, u, secret string, filter feed.Filter) (*Webhook, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || len(u) > 2000 {
		return nil, apierror.InvalidField("url", "must be an http(s) URL")
	}
	if p.User != nil {
		return nil, apierror.InvalidField("url", "must not carry a user name or password; receivers check the signature")
	}
	if secret == "" {
		secret = rand.Text() + rand.Text()
	} else if len(secret) < 16 || len(secret) > 256 {
		return nil, apierror.InvalidField("secret", "must be 16 to 256 characters")
	}
	if err := wh.checkHost(ctx, p.Hostname()); err != nil {
		return nil, err
	}
	h := &Webhook{ID: "whk_" + rand.Text(), URL: u, Secret: secret, Filter: filter, Created: time.Now().UTC()}
	fb, _ := json.Marshal(filter)
	err = wh.State.CreateWebhookUpTo(ctx, state.Webhook{ID: h.ID, URL: h.URL, Secret: h.Secret, Filter: string(fb), Created: h.Created}, wh.MaxWebhooks)
	if errors.Is(err, state.ErrLimit) {
		return nil, apierror.New(apierror.Conflict, "the park has %d webhooks, the most it may have (-max-webhooks); delete one first", wh.MaxWebhooks)
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// checkHost refuses at registration a host that is, or resolves only to,
// addresses the policy denies. Delivery checks again at every dial: this
// check only tells the one registering early.
func (wh *Webhooks) checkHost(ctx context.Context, host string) error {
	var r outbound.Resolver = net.DefaultResolver
	if wh.Resolver != nil {
		r = wh.Resolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := wh.policy().CheckHost(ctx, r, host)
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, outbound.ErrAddressDenied):
		wh.logger().WarnContext(ctx, "webhook target refused", "host", host, "err", err)
		return apierror.InvalidField("url", "targets an address webhooks may not reach (loopback, private, link-local, metadata, …); an operator may allow a range with -webhook-allow-cidr")
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return apierror.InvalidField("url", "host %q does not resolve", host)
	default:
		wh.logger().WarnContext(ctx, "resolving a webhook host failed", "host", host, "err", err)
		return apierror.New(apierror.Unavailable, "cannot resolve the URL's host now; try again")
	}
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
		if ctx.Err() != nil {
			return // shutting down: not the subscriber's failure
		}
		attempts := d.Attempts + 1
		status, msg := state.Pending, "webhook delivery failed"
		if attempts >= wh.MaxAttempts {
			status, msg = state.Dead, "webhook delivery dead-lettered"
		}
		public := publicError(err)
		wh.logger().WarnContext(ctx, msg, "delivery", d.ID, "event", d.EventID, "attempts", attempts,
			"host", hostOf(d.URL), "last_error", public, "err", err)
		delay := min(wh.Backoff<<min(attempts-1, 20), 5*time.Minute)
		wh.State.MarkFailed(ctx, d.ID, status, attempts, public, now.Add(delay), now)
	}
}

// The texts a delivery's last_error may hold: what went wrong in kind,
// never the subscriber's answer, an address or an internal message (a
// webhook must not work as a scanner of the park's network). The detail
// goes to the log.
const (
	LastErrorAddress    = "refused: target address not allowed"
	LastErrorRedirect   = "refused: redirect not followed"
	LastErrorTimeout    = "timed out"
	LastErrorConnection = "connection failed"
	LastError4xx        = "HTTP 4xx answer"
	LastError5xx        = "HTTP 5xx answer"
	LastErrorAnswer     = "non-2xx answer"
	LastErrorOther      = "delivery failed"
)

// LastErrors lists every text last_error may hold.
var LastErrors = []string{LastErrorAddress, LastErrorRedirect, LastErrorTimeout, LastErrorConnection,
	LastError4xx, LastError5xx, LastErrorAnswer, LastErrorOther}

// connError is a request that got no answer.
type connError struct{ err error }

func (e *connError) Error() string { return "post: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// statusError is a subscriber's answer other than 2xx.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("subscriber answered %d", e.code) }

// publicError is what may be stored and shown of a failed delivery.
func publicError(err error) string {
	var se *statusError
	var ne net.Error
	var ce *connError
	switch {
	case errors.Is(err, outbound.ErrAddressDenied):
		return LastErrorAddress
	case errors.As(err, &se):
		switch se.code / 100 {
		case 3:
			return LastErrorRedirect
		case 4:
			return LastError4xx
		case 5:
			return LastError5xx
		}
		return LastErrorAnswer
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return LastErrorTimeout
	case errors.As(err, &ce):
		return LastErrorConnection
	}
	return LastErrorOther
}

// Deliveries lists webhook's newest deliveries, optionally of one status,
// as they may be shown: a last_error stored by an older version, which
// could carry detail, reads as LastErrorOther.
func (wh *Webhooks) Deliveries(ctx context.Context, webhook, status string) ([]Delivery, error) {
	out, err := wh.State.Deliveries(ctx, webhook, status)
	for i := range out {
		if e := out[i].LastError; e != "" && !slices.Contains(LastErrors, e) {
			out[i].LastError = LastErrorOther
		}
	}
	return out, err
}

// hostOf is the host of a webhook URL, for the log: its path and query
// may carry a secret.
func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return ""
}

func (wh *Webhooks) post(ctx context.Context, u, secret, eventID string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, wh.Timeout)
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
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, whose path may carry a secret
		}
		return &connError{err}
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		return &statusError{res.StatusCode}
	}
	return nil
}
