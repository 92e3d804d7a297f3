package interests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Federation paths of the interests.
const (
	PathInterests = "/federation/v1/interests"
	// PathStatus is PathInterests + "/{id}/status".
	PathStatus = "/status"
)

// lease is how long a claimed message is left to the replica that claimed
// it before another may send it again (one attempt is bounded by
// attemptTimeout).
const (
	lease          = 30 * time.Second
	attemptTimeout = 10 * time.Second
	maxAnswer      = 64 << 10
)

// Run delivers the outbox, expires interests and queues the interest
// events for the webhooks, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	poll := s.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	kick := s.kicks()
	t := time.NewTicker(poll)
	defer t.Stop()
	var lastExpiry time.Time
	for {
		if time.Since(lastExpiry) >= time.Second {
			s.expire(ctx)
			lastExpiry = time.Now()
		}
		s.deliverDue(ctx)
		if _, err := s.State.QueueInterestEvents(ctx); err != nil && ctx.Err() == nil {
			s.logger().WarnContext(ctx, "queueing interest events for webhooks failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
	}
}

// deliverDue sends the messages whose time has come.
func (s *Service) deliverDue(ctx context.Context) {
	msgs, err := s.State.ClaimInterestMessages(ctx, s.now(), lease, 20)
	if err != nil {
		if ctx.Err() == nil {
			s.logger().WarnContext(ctx, "reading the interests outbox failed", "err", err)
		}
		return
	}
	for _, m := range msgs {
		if ctx.Err() != nil {
			return
		}
		s.deliver(ctx, m)
	}
}

// deliveryError is a failed attempt: retry says whether it is worth
// another (the peer did not take the message, for now), after tells when
// the peer asked to be retried (Retry-After).
type deliveryError struct {
	public string
	retry  bool
	after  time.Duration
	err    error
}

func (e *deliveryError) Error() string { return e.public + ": " + fmt.Sprint(e.err) }

func (s *Service) deliver(ctx context.Context, m state.InterestMessage) {
	path := PathInterests
	if m.Kind == kindStatus {
		path = PathInterests + "/" + m.InterestID + PathStatus
	}
	answer, err := s.post(ctx, m.Peer, path, m.Body)
	attempts := m.Attempts + 1
	if err != nil {
		var de *deliveryError
		if !errors.As(err, &de) {
			de = &deliveryError{public: "delivery failed", retry: true, err: err}
		}
		if ctx.Err() != nil {
			return // shutting down: the lease runs out and it is sent again
		}
		if de.retry {
			delay := min(s.backoff()<<min(attempts-1, 20), s.maxBackoff())
			if de.after > delay {
				delay = min(de.after, time.Hour)
			}
			s.logger().WarnContext(ctx, "interest message not delivered; retrying", "interest", m.InterestID, "peer", m.Peer,
				"kind", m.Kind, "attempts", attempts, "retry_in", delay.String(), "err", de.err)
			if err := s.State.InterestMessageFailed(ctx, m.Seq, attempts, de.public, s.now().Add(delay)); err != nil {
				s.logger().WarnContext(ctx, "recording a failed delivery failed", "err", err)
			}
			return
		}
		// Refused for good: the peer will not take it, however often.
		s.logger().WarnContext(ctx, "interest message refused by the peer", "interest", m.InterestID, "peer", m.Peer, "kind", m.Kind, "err", de.err)
		if err := s.State.InterestMessageDone(ctx, m.Seq, attempts, de.public); err != nil {
			s.logger().WarnContext(ctx, "recording a refused delivery failed", "err", err)
		}
		if m.Kind == kindInterest {
			s.refused(ctx, m, de.public)
		}
		return
	}
	if err := s.acknowledged(ctx, m, answer); err != nil {
		// The peer has it; what its answer changes here is retried with
		// the message (idempotent on both sides).
		s.logger().WarnContext(ctx, "recording an acknowledged interest message failed", "interest", m.InterestID, "err", err)
		s.State.InterestMessageFailed(ctx, m.Seq, attempts, "recording the answer failed", s.now().Add(s.backoff()))
		return
	}
	if err := s.State.InterestMessageDone(ctx, m.Seq, attempts, ""); err != nil {
		s.logger().WarnContext(ctx, "recording a delivery failed", "err", err)
	}
}

func (s *Service) backoff() time.Duration {
	if s.Backoff > 0 {
		return s.Backoff
	}
	return time.Second
}

func (s *Service) maxBackoff() time.Duration {
	if s.MaxBackoff > 0 {
		return s.MaxBackoff
	}
	return 5 * time.Minute
}

// acknowledged records what the peer's acknowledgement of m changes here.
func (s *Service) acknowledged(ctx context.Context, m state.InterestMessage, answer []byte) error {
	switch m.Kind {
	case kindInterest:
		return ignoreUnchanged(s.change(ctx, m.InterestID, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
			if in.DeliveredAt != nil {
				return nil, nil, nil, state.ErrUnchanged
			}
			now := s.now()
			in.DeliveredAt = &now
			if in.Status == Sent {
				in.Status = Delivered
			}
			return []state.InterestAudit{s.audit("delivered", parkActor(m.Peer))}, nil, nil, nil
		}))
	case kindStatus:
		var sent StatusMessage
		json.Unmarshal(m.Body, &sent)
		if sent.Status != Accepted {
			return nil
		}
		var ans StatusAnswer
		if err := json.Unmarshal(answer, &ans); err != nil {
			return fmt.Errorf("peer's answer: %w", err)
		}
		if ans.Contact == nil {
			return nil
		}
		if err := ans.Contact.validate("contact"); err != nil {
			s.logger().WarnContext(ctx, "peer sent a malformed contact; ignored", "interest", m.InterestID, "peer", m.Peer)
			return nil
		}
		return ignoreUnchanged(s.change(ctx, m.InterestID, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
			// Withdrawn or expired meanwhile: the exchange has ended.
			if in.Status != Accepted || in.SenderContact != nil {
				return nil, nil, nil, state.ErrUnchanged
			}
			in.SenderContact = ans.Contact
			return []state.InterestAudit{s.audit("contact_received", parkActor(m.Peer), ans.Contact.fields("sender_contact")...)}, nil, nil, nil
		}))
	}
	return nil
}

func ignoreUnchanged(err error) error {
	if errors.Is(err, state.ErrUnchanged) {
		return nil
	}
	return err
}

// refused records that the owner park refused an interest for good.
func (s *Service) refused(ctx context.Context, m state.InterestMessage, reason string) {
	err := s.change(ctx, m.InterestID, func(in *Interest) ([]state.InterestAudit, []state.InterestMessage, []state.InterestEvent, error) {
		if in.Status != Sent {
			return nil, nil, nil, state.ErrUnchanged
		}
		now := s.now()
		in.Status, in.Reason, in.ClosedAt = Refused, reason, &now
		return []state.InterestAudit{s.audit("refused", parkActor(m.Peer))}, nil, []state.InterestEvent{s.event(TypeAnswered, in)}, nil
	})
	if ignoreUnchanged(err) != nil {
		s.logger().WarnContext(ctx, "recording a refused interest failed", "interest", m.InterestID, "err", err)
	}
	s.notify()
}

// post sends one federation message to peer and returns its answer.
func (s *Service) post(ctx context.Context, peer, path string, body []byte) ([]byte, error) {
	base, ok := s.PeerURL(peer)
	if !ok {
		return nil, &deliveryError{public: "park " + peer + " is not a peer now", retry: true, err: errors.New("no active peering")}
	}
	tok, err := parktoken.IssueFederation(s.Keys(), peer, parktoken.ScopeInterests, time.Minute, time.Now())
	if err != nil {
		return nil, &deliveryError{public: "signing failed", retry: true, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, &deliveryError{public: "bad peer URL", retry: true, err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &deliveryError{public: "peer unreachable", retry: true, err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, &deliveryError{public: "peer's answer unreadable", retry: true, err: err}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return b, nil
	}
	e := apierror.Read(res.StatusCode, bytes.NewReader(b))
	de := &deliveryError{public: fmt.Sprintf("peer answered %d", res.StatusCode), err: e}
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		de.retry = true
		de.public = "peer rate-limited this park's interests"
		if sec, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && sec > 0 {
			de.after = time.Duration(sec) * time.Second
		}
	case res.StatusCode >= 500, res.StatusCode == http.StatusUnauthorized, res.StatusCode == http.StatusRequestTimeout:
		// The peer's trouble, or keys not refreshed yet: not a verdict.
		de.retry = true
	default:
		// A verdict: the peer's reason, clipped, is what staff read.
		if p, ok := apierror.Parse(b); ok {
			de.public = clip(p.Message, 300)
		}
	}
	return nil, de
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
