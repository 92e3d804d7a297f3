package interests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

// Index is the club index: the listings this park may see, its own and
// its peers' (NotFound for one it may not see).
type Index interface {
	Get(ctx context.Context, park, id string) (*listing.Listing, error)
}

// Listings reads the park's own listings from its services, current.
type Listings interface {
	Get(ctx context.Context, k listing.Kind, id string) (*listing.Listing, error)
}

// DefaultExpiry is how long an interest runs, and an accepted exchange
// lasts, unless configured otherwise.
const DefaultExpiry = 60 * 24 * time.Hour

// Service is the park's interests: what the park API and the federation
// API call, and the deliverer of the outbox (Run).
type Service struct {
	Park  string
	State *state.DB
	// Index checks, before sending, that the park may see the listing.
	Index Index
	// Listings checks, on receipt, that the listing exists and the sender
	// may see it now; and reads a talent's consented contact.
	Listings Listings
	// PeerURL is an active peer's federation origin (false: not a peer).
	PeerURL func(park string) (string, bool)
	// Keys signs federation tokens.
	Keys func() *parkkey.KeySet
	// Client calls peers (gateway/outbound: no redirects).
	Client *http.Client
	Logger *slog.Logger
	// Expiry is how long an interest runs and an accepted exchange lasts
	// (default DefaultExpiry).
	Expiry time.Duration
	// RatePerHour is how many new interests one peer may deliver in any
	// hour (a sliding window counted in State, so replicas sharing it
	// share the limit; 0: DefaultRatePerHour).
	RatePerHour int
	// Backoff is the first retry delay of a delivery; it doubles per
	// attempt up to MaxBackoff (defaults 1 s and 5 min).
	Backoff, MaxBackoff time.Duration
	// Poll is how often the outbox and expiries are looked at (default
	// 200 ms; a new message is sent at once).
	Poll time.Duration
	// Metrics, when set, counts (NewMetrics).
	Metrics *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu     sync.Mutex
	signal chan struct{} // closed at the next local event
	kick   chan struct{}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) expiry() time.Duration {
	if s.Expiry > 0 {
		return s.Expiry
	}
	return DefaultExpiry
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Signal returns a channel closed at the next interest event this
// gateway writes (other replicas' are found by polling).
func (s *Service) Signal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signal == nil {
		s.signal = make(chan struct{})
	}
	return s.signal
}

func (s *Service) notify() {
	s.mu.Lock()
	if s.signal != nil {
		close(s.signal)
		s.signal = nil
	}
	if s.kick == nil {
		s.kick = make(chan struct{}, 1)
	}
	kick := s.kick
	s.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

func (s *Service) kicks() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kick == nil {
		s.kick = make(chan struct{}, 1)
	}
	return s.kick
}

// row turns in into its stored form.
func row(in *Interest) *state.InterestRow {
	rec, _ := json.Marshal(in)
	return &state.InterestRow{ID: in.ID, Box: in.Box, Peer: in.peer(), Status: string(in.Status),
		CreatedAt: in.CreatedAt, ExpiresAt: in.ExpiresAt, Record: rec}
}

// decode reads a stored interest.
func decode(r *state.InterestRow) (*Interest, error) {
	var in Interest
	if err := json.Unmarshal(r.Record, &in); err != nil {
		return nil, fmt.Errorf("interest %s: stored record: %w", r.ID, err)
	}
	return &in, nil
}

func (s *Service) audit(action, actor string, fields ...string) state.InterestAudit {
	return state.InterestAudit{At: s.now(), Action: action, Actor: actor, Fields: fields}
}

// parkActor names another park as the actor of an audit entry.
func parkActor(park string) string { return "park:" + park }

// SendRequest is what the park's staff send: the listing, a message, the
// sender's organisation (a directory listing of this park, or free text),
// what they offer, and the sender's contact, kept at this park until the
// owner accepts.
type SendRequest struct {
	Listing       ListingRef   `json:"listing"`
	Message       string       `json:"message"`
	Organization  Organization `json:"organization"`
	Offer         string       `json:"offer"`
	SenderContact *Contact     `json:"sender_contact"`
}

// Send expresses interest, on behalf of who (a park-local principal), in
// a peer's listing: checked against the club index (the park must see the
// listing now), stored as sent, and queued for delivery. Invalid names the
// field; NotFound (field listing) when the park may not see the listing.
//
// key is the request's Idempotency-Key ("" for none): the first request
// of who with a key makes the interest; the same request again within
// IdempotencyWindow, at any replica sharing State, answers that interest
// as it is now with replayed true; another request with the key is a
// Conflict naming Idempotency-Key.
func (s *Service) Send(ctx context.Context, who, key string, req SendRequest) (in *Interest, replayed bool, err error) {
	var fp string
	if key != "" {
		if key, err = parseKey(key); err != nil {
			return nil, false, err
		}
		fp = fingerprint(req)
		held, err := s.State.InterestKeyOf(ctx, who, key, s.now())
		if err == nil {
			in, err := s.replay(ctx, held, fp)
			return in, err == nil, err
		}
		if !errors.Is(err, state.ErrNotFound) {
			return nil, false, err
		}
	}
	in, err = s.send(ctx, who, key, fp, req)
	var inUse *state.KeyInUseError
	if errors.As(err, &inUse) { // the same key, at once, at another replica
		in, err := s.replay(ctx, &inUse.Held, fp)
		return in, err == nil, err
	}
	return in, false, err
}

// replay answers a request again with the interest its key made.
func (s *Service) replay(ctx context.Context, held *state.InterestKey, fp string) (*Interest, error) {
	if held.Fingerprint != fp {
		return nil, &apierror.Error{Code: apierror.Conflict, Field: "Idempotency-Key",
			Message: "was used for another request (a different body): send a new key with a new interest"}
	}
	in, err := s.load(ctx, held.InterestID)
	if err != nil {
		return nil, err
	}
	return s.withDelivery(ctx, in)
}

func (s *Service) send(ctx context.Context, who, key, fp string, req SendRequest) (*Interest, error) {
	if err := validateRef("listing", req.Listing); err != nil {
		return nil, err
	}
	if k, ok := listing.KindOfCollection(string(req.Listing.Kind)); ok {
		req.Listing.Kind = k
	}
	if req.Listing.Park == s.Park {
		return nil, apierror.InvalidField("listing.park", "is this park: interests go to a peer's listings")
	}
	if _, ok := s.PeerURL(req.Listing.Park); !ok {
		return nil, apierror.InvalidField("listing.park", "%s is not a peer of this park", req.Listing.Park)
	}
	if err := text("message", req.Message, 1, MaxMessage); err != nil {
		return nil, err
	}
	if err := text("offer", req.Offer, 0, MaxOffer); err != nil {
		return nil, err
	}
	if err := req.Organization.validate("organization"); err != nil {
		return nil, err
	}
	if err := req.SenderContact.validate("sender_contact"); err != nil {
		return nil, err
	}
	if id := req.Organization.ListingID; id != "" {
		org, err := s.Listings.Get(ctx, listing.KindOrganization, id)
		if apierror.Is(err, apierror.NotFound) {
			return nil, apierror.InvalidField("organization.listing_id", "is not a directory listing of this park")
		}
		if err != nil {
			return nil, err
		}
		if req.Organization.Name == "" {
			req.Organization.Name = org.Title
		}
	}
	l, err := s.Index.Get(ctx, req.Listing.Park, req.Listing.ID)
	if apierror.Is(err, apierror.NotFound) || err == nil && (l.Kind != req.Listing.Kind || !l.VisibleTo(s.Park)) {
		return nil, &apierror.Error{Code: apierror.NotFound, Field: "listing",
			Message: fmt.Sprintf("%s's %s %s is not visible to this park: it was withdrawn, is private, or is not shared with this park", req.Listing.Park, req.Listing.Kind, req.Listing.ID)}
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	in := &Interest{
		ID: NewID(), Box: BoxSent, SenderPark: s.Park, OwnerPark: req.Listing.Park, Listing: req.Listing,
		ListingTitle: l.Title, Message: req.Message, Organization: req.Organization, Offer: req.Offer,
		Status: Sent, SentBy: who, CreatedAt: now, ExpiresAt: now.Add(s.expiry()), SenderContact: req.SenderContact,
	}
	msg := Message{ID: in.ID, Listing: in.Listing, Message: in.Message, Organization: in.Organization, Offer: in.Offer,
		CreatedAt: in.CreatedAt, ExpiresAt: in.ExpiresAt}
	body, _ := json.Marshal(msg)
	var claim *state.InterestKey
	if key != "" {
		claim = &state.InterestKey{Principal: who, Key: key, Fingerprint: fp, InterestID: in.ID,
			ExpiresAt: now.Add(IdempotencyWindow), At: now}
	}
	err = s.State.UpdateInterest(ctx, in.ID, func(cur *state.InterestRow) (state.InterestWrite, error) {
		if cur != nil {
			return state.InterestWrite{}, apierror.New(apierror.Conflict, "interest id in use")
		}
		return state.InterestWrite{
			Row:    row(in),
			Audit:  []state.InterestAudit{s.audit("sent", who, msg.crossed()...)},
			Outbox: []state.InterestMessage{{Peer: in.OwnerPark, Kind: kindInterest, Body: body}},
			Key:    claim,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.Metrics.sent()
	s.notify()
	return in.View(), nil
}

// Outbox message kinds.
const (
	kindInterest = "interest"
	kindStatus   = "status"
)

// RateLimitedError is a refused delivery of a peer over its rate.
type RateLimitedError struct {
	Err        *apierror.Error
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return e.Err.Error() }

// Unwrap gives the *apierror.Error to apierror.Write and errors.As.
func (e *RateLimitedError) Unwrap() error { return e.Err }

// Receive takes an interest delivered by peer: idempotent by its id (the
// same interest again answers as before; created is false), refused over
// the peer's rate (*RateLimitedError), refused with a clear reason
// (NotFound, field listing) when the listing does not exist or peer may
// not see it now.
func (s *Service) Receive(ctx context.Context, peer string, m Message) (r Receipt, created bool, err error) {
	if err := m.validate(s.Park); err != nil {
		return r, false, err
	}
	if k, ok := listing.KindOfCollection(string(m.Listing.Kind)); ok {
		m.Listing.Kind = k
	}
	if cur, err := s.State.Interest(ctx, m.ID); err == nil {
		return s.receipt(cur, peer)
	} else if !errors.Is(err, state.ErrNotFound) {
		return r, false, err
	}
	rate := s.RatePerHour
	if rate <= 0 {
		rate = DefaultRatePerHour
	}
	wait, ok, err := s.State.TakeInterestArrival(ctx, peer, rate, time.Hour, s.now())
	if err != nil {
		return r, false, err
	}
	if !ok {
		s.Metrics.limited()
		return r, false, &RateLimitedError{Err: apierror.New(apierror.TooManyRequests,
			"park %s delivered more interests than this park takes per hour; retry later", peer), RetryAfter: wait}
	}
	l, err := s.Listings.Get(ctx, m.Listing.Kind, m.Listing.ID)
	if err != nil && !apierror.Is(err, apierror.NotFound) {
		return r, false, err
	}
	if err != nil || !l.VisibleTo(peer) {
		// The same answer whether the listing is gone or not for this
		// peer: a park learns nothing of listings it may not see.
		return r, false, &apierror.Error{Code: apierror.NotFound, Field: "listing",
			Message: fmt.Sprintf("%s %s of park %s is not visible to park %s now: it was withdrawn, made private, or is not shared with %s",
				m.Listing.Kind, m.Listing.ID, s.Park, peer, peer)}
	}
	now := s.now()
	in := &Interest{
		ID: m.ID, Box: BoxReceived, SenderPark: peer, OwnerPark: s.Park, Listing: m.Listing, ListingTitle: l.Title,
		Message: m.Message, Organization: m.Organization, Offer: m.Offer, Status: Delivered,
		CreatedAt: m.CreatedAt, DeliveredAt: &now, ExpiresAt: m.ExpiresAt,
	}
	// A sender's clock or expiry does not keep an interest here longer
	// than this park's own expiry.
	if limit := now.Add(s.expiry()); in.ExpiresAt.After(limit) {
		in.ExpiresAt = limit
	}
	created = false
	err = s.State.UpdateInterest(ctx, in.ID, func(cur *state.InterestRow) (state.InterestWrite, error) {
		if cur != nil { // delivered by another replica meanwhile
			again, _, rerr := s.receipt(cur, peer)
			if rerr != nil {
				return state.InterestWrite{}, rerr
			}
			r = again
			return state.InterestWrite{}, state.ErrUnchanged
		}
		created = true
		return state.InterestWrite{
			Row:    row(in),
			Audit:  []state.InterestAudit{s.audit("received", parkActor(peer), m.crossed()...)},
			Events: []state.InterestEvent{s.event(TypeReceived, in)},
		}, nil
	})
	if err != nil || !created {
		return r, false, err
	}
	s.Metrics.received()
	s.notify()
	return Receipt{ID: in.ID, Status: in.Status}, true, nil
}

// receipt answers an interest delivered again.
func (s *Service) receipt(cur *state.InterestRow, peer string) (Receipt, bool, error) {
	if cur.Box != BoxReceived || cur.Peer != peer {
		return Receipt{}, false, apierror.InvalidField("id", "is in use by another interest")
	}
	return Receipt{ID: cur.ID, Status: Status(cur.Status)}, false, nil
}

// Get returns interest id as who may see it; the first look by a
// principal of the receiving park is recorded (opened).
func (s *Service) Get(ctx context.Context, who, id string) (*Interest, error) {
	in, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.Box == BoxReceived && in.OpenedAt == nil {
		err := s.change(ctx, id, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
			if in.OpenedAt != nil {
				return nil, nil, nil, state.ErrUnchanged
			}
			now := s.now()
			in.OpenedAt, in.OpenedBy = &now, who
			return []state.InterestAudit{s.audit("opened", who)}, nil, nil, nil
		})
		if err != nil {
			return nil, err
		}
		if in, err = s.load(ctx, id); err != nil {
			return nil, err
		}
	}
	return s.withDelivery(ctx, in)
}

func (s *Service) withDelivery(ctx context.Context, in *Interest) (*Interest, error) {
	v := in.View()
	pending, err := s.State.InterestOutbox(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if len(pending) > 0 {
		v.Delivery = &Delivery{Pending: len(pending), Attempts: pending[0].Attempts, LastError: pending[0].LastError, NextAt: pending[0].NextAt}
	}
	return v, nil
}

func (s *Service) load(ctx context.Context, id string) (*Interest, error) {
	if !ValidID(id) {
		return nil, apierror.InvalidField("id", "must be an interest id (a UUID)")
	}
	r, err := s.State.Interest(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, apierror.New(apierror.NotFound, "no interest %s", id)
	}
	if err != nil {
		return nil, err
	}
	return decode(r)
}

// change applies fn to the stored interest id in one transaction; fn
// may return state.ErrUnchanged.
func (s *Service) change(ctx context.Context, id string, fn func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error)) error {
	return s.State.UpdateInterest(ctx, id, func(cur *state.InterestRow) (state.InterestWrite, error) {
		if cur == nil {
			return state.InterestWrite{}, apierror.New(apierror.NotFound, "no interest %s", id)
		}
		in, err := decode(cur)
		if err != nil {
			return state.InterestWrite{}, err
		}
		audit, out, events, err := fn(in)
		if err != nil {
			return state.InterestWrite{}, err
		}
		return state.InterestWrite{Row: row(in), Audit: audit, Outbox: out, Events: events}, nil
	})
}

// ListRequest selects interests.
type ListRequest struct {
	Box    string
	Status Status
	Before time.Time
	Limit  int
}

// List returns interests of a box, newest first, as staff may see them.
func (s *Service) List(ctx context.Context, q ListRequest) ([]*Interest, error) {
	if q.Box != "" && q.Box != BoxSent && q.Box != BoxReceived {
		return nil, apierror.InvalidField("box", "must be sent or received")
	}
	if q.Status != "" && !q.Status.Valid() {
		return nil, apierror.InvalidField("status", "must be one of %v", Statuses)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > 200 {
		return nil, apierror.InvalidField("limit", "must be at most 200")
	}
	rows, err := s.State.Interests(ctx, q.Box, string(q.Status), q.Before, q.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Interest, 0, len(rows))
	for i := range rows {
		in, err := decode(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, in.View())
	}
	return out, nil
}

// Audit returns interest id's audit trail.
func (s *Service) Audit(ctx context.Context, id string) ([]state.InterestAudit, error) {
	if _, err := s.load(ctx, id); err != nil {
		return nil, err
	}
	return s.State.InterestAuditOf(ctx, id)
}

// AnswerRequest is the owner's answer. Contact is the owner's contact for
// the listing, required to accept an interest in an organization or a
// project; for talent the person's own contact is taken from the listing,
// and only when they consented to share it.
type AnswerRequest struct {
	Note    string   `json:"note"`
	Contact *Contact `json:"contact"`
}

// Answer accepts or declines a received interest, on behalf of who.
// Conflict when it is not open (answered, withdrawn or expired).
func (s *Service) Answer(ctx context.Context, who, id string, accept bool, req AnswerRequest) (*Interest, error) {
	in, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.Box != BoxReceived {
		return nil, apierror.InvalidField("id", "is an interest this park sent: only the owner park answers")
	}
	if err := text("note", req.Note, 0, MaxNote); err != nil {
		return nil, err
	}
	var contact *Contact
	if accept {
		if in.Listing.Kind == listing.KindTalent {
			if req.Contact != nil {
				return nil, apierror.InvalidField("contact", "must not be given for talent: the person's own contact is shared, from the listing, and only with their consent")
			}
			l, err := s.Listings.Get(ctx, listing.KindTalent, in.Listing.ID)
			if err != nil && !apierror.Is(err, apierror.NotFound) {
				return nil, err
			}
			if err == nil && l.Attrs.Contact != nil && l.Attrs.Consent != nil && l.Attrs.Consent.ShareContact {
				c := Contact{Name: l.Title, Email: l.Attrs.Contact.Email, Phone: l.Attrs.Contact.Phone}
				contact = &c
			}
		} else {
			if err := req.Contact.validate("contact"); err != nil {
				return nil, err
			}
			contact = req.Contact
		}
	} else if req.Contact != nil {
		return nil, apierror.InvalidField("contact", "is only given to accept")
	}
	var answeredAfter time.Duration
	err = s.change(ctx, id, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
		if in.Status != Delivered {
			return nil, nil, nil, apierror.New(apierror.Conflict, "the interest is %s: only a delivered interest is answered", in.Status)
		}
		now := s.now()
		var audit []state.InterestAudit
		if in.OpenedAt == nil { // answering without a look first opens it too
			in.OpenedAt, in.OpenedBy = &now, who
			audit = append(audit, s.audit("opened", who))
		}
		msg := StatusMessage{Status: Declined, Note: req.Note, At: now}
		in.Status, in.Note, in.AnsweredBy, in.AnsweredAt = Declined, req.Note, who, &now
		if accept {
			exp := now.Add(s.expiry())
			in.Status, in.OwnerContact, in.ExpiresAt = Accepted, contact, exp
			msg.Status, msg.Contact, msg.ExpiresAt = Accepted, contact, &exp
		} else {
			in.ClosedAt = &now
		}
		answeredAfter = now.Sub(in.CreatedAt)
		body, _ := json.Marshal(msg)
		return append(audit, s.audit(string(in.Status), who, msg.crossed()...)),
			[]state.InterestMessage{{Peer: in.SenderPark, Kind: kindStatus, Body: body}}, nil, nil
	})
	if err != nil {
		return nil, err
	}
	answer := "declined"
	if accept {
		answer = "accepted"
	}
	s.Metrics.answered(answer, answeredAfter)
	s.notify()
	if in, err = s.load(ctx, id); err != nil {
		return nil, err
	}
	return s.withDelivery(ctx, in)
}

// Withdraw withdraws an interest this park sent, on behalf of who: the
// exchange ends (no contact is shown any more) and the owner park is told.
func (s *Service) Withdraw(ctx context.Context, who, id, note string) (*Interest, error) {
	in, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.Box != BoxSent {
		return nil, apierror.InvalidField("id", "is an interest this park received: only the sender park withdraws")
	}
	if err := text("note", note, 0, MaxNote); err != nil {
		return nil, err
	}
	err = s.change(ctx, id, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
		if !in.Status.open() && in.Status != Accepted {
			return nil, nil, nil, apierror.New(apierror.Conflict, "the interest is %s already", in.Status)
		}
		now := s.now()
		msg := StatusMessage{Status: Withdrawn, Note: note, At: now}
		in.Status, in.WithdrawNote, in.WithdrawBy, in.ClosedAt, in.OwnerContact = Withdrawn, note, who, &now, nil
		body, _ := json.Marshal(msg)
		return []state.InterestAudit{s.audit("withdrawn", who, msg.crossed()...)},
			[]state.InterestMessage{{Peer: in.OwnerPark, Kind: kindStatus, Body: body}}, nil, nil
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return s.Get(ctx, who, id)
}

// ReceiveStatus takes a status message of peer about interest id: a
// withdrawal from the sender park, or an answer from the owner park. It
// is idempotent; a message the interest cannot take any more (answered
// after a withdrawal, …) changes nothing and is acknowledged all the
// same, with the status as it is here. Answering an acceptance this park
// takes, it gives the sender's contact.
func (s *Service) ReceiveStatus(ctx context.Context, peer, id string, m StatusMessage) (StatusAnswer, error) {
	var ans StatusAnswer
	if !ValidID(id) {
		return ans, apierror.InvalidField("id", "must be an interest id (a UUID)")
	}
	if err := text("note", m.Note, 0, MaxNote); err != nil {
		return ans, err
	}
	cur, err := s.State.Interest(ctx, id)
	if errors.Is(err, state.ErrNotFound) || err == nil && cur.Peer != peer {
		return ans, apierror.New(apierror.NotFound, "no interest %s with park %s", id, peer)
	}
	if err != nil {
		return ans, err
	}
	switch {
	case cur.Box == BoxReceived && m.Status == Withdrawn:
	case cur.Box == BoxSent && (m.Status == Accepted || m.Status == Declined):
		if m.Status == Accepted {
			if m.Contact != nil {
				if err := m.Contact.validate("contact"); err != nil {
					return ans, err
				}
			}
			if m.ExpiresAt == nil {
				return ans, apierror.InvalidField("expires_at", "is required with accepted")
			}
		} else if m.Contact != nil || m.ExpiresAt != nil {
			return ans, apierror.InvalidField("contact", "is only sent with accepted")
		}
	default:
		return ans, apierror.InvalidField("status", "%q is not a status park %s may send about this interest", m.Status, peer)
	}
	var event string
	err = s.change(ctx, id, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
		now := s.now()
		actor := parkActor(peer)
		switch {
		case in.Status == m.Status: // again: answer as before
			ans.Status = in.Status
			if in.Status == Accepted {
				ans.Contact = in.SenderContact
			}
			return nil, nil, nil, state.ErrUnchanged
		case m.Status == Withdrawn && (in.Status.open() || in.Status == Accepted):
			in.Status, in.WithdrawNote, in.ClosedAt, in.SenderContact = Withdrawn, m.Note, &now, nil
			ans.Status = in.Status
			event = TypeWithdrawn
			return []state.InterestAudit{s.audit("withdrawn", actor, m.crossed()...)}, nil,
				[]state.InterestEvent{s.event(TypeWithdrawn, in)}, nil
		case (m.Status == Accepted || m.Status == Declined) && in.Status.open():
			in.Status, in.Note, in.AnsweredAt = m.Status, m.Note, &now
			if in.DeliveredAt == nil {
				in.DeliveredAt = &now
			}
			audit := []state.InterestAudit{s.audit(string(m.Status), actor, m.crossed()...)}
			if m.Status == Accepted {
				in.OwnerContact, in.ExpiresAt = m.Contact, *m.ExpiresAt
				// This answer takes the sender's contact to the owner.
				ans.Contact = in.SenderContact
				audit = append(audit, s.audit("contact_sent", parkActor(s.Park), in.SenderContact.fields("sender_contact")...))
			} else {
				in.ClosedAt = &now
			}
			ans.Status = in.Status
			event = TypeAnswered
			return audit, nil, []state.InterestEvent{s.event(TypeAnswered, in)}, nil
		}
		ans.Status = in.Status
		return nil, nil, nil, state.ErrUnchanged
	})
	if err != nil {
		return ans, err
	}
	if event != "" {
		s.notify()
	}
	return ans, nil
}

// statusOpen lists the statuses that expire.
var statusOpen = []string{string(Sent), string(Delivered), string(Accepted)}

// expire closes every interest whose time has come: the exchange ends,
// its undelivered messages are dropped.
func (s *Service) expire(ctx context.Context) {
	ids, err := s.State.InterestsExpiring(ctx, statusOpen, s.now())
	if err != nil {
		s.logger().WarnContext(ctx, "reading expiring interests failed", "err", err)
		return
	}
	for _, id := range ids {
		err := s.State.UpdateInterest(ctx, id, func(cur *state.InterestRow) (state.InterestWrite, error) {
			if cur == nil || !slices.Contains(statusOpen, cur.Status) || cur.ExpiresAt.After(s.now()) {
				return state.InterestWrite{}, state.ErrUnchanged
			}
			in, err := decode(cur)
			if err != nil {
				return state.InterestWrite{}, err
			}
			now := s.now()
			in.Status, in.ClosedAt = Expired, &now
			if in.Box == BoxSent {
				in.OwnerContact = nil
			} else {
				in.SenderContact = nil
			}
			return state.InterestWrite{Row: row(in), CancelOutbox: true, Audit: []state.InterestAudit{s.audit("expired", parkActor(s.Park))}}, nil
		})
		if err != nil {
			s.logger().WarnContext(ctx, "expiring an interest failed", "interest", id, "err", err)
		}
	}
}
