package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/parkmesh/parkmesh/gateway/sse"
)

// Options tune the streams.
type Options struct {
	// Heartbeat is the interval of keep-alive comments.
	Heartbeat time.Duration
	// MaxLag is how many events a subscriber may fall behind the newest
	// before it is cut off with a resumable position.
	MaxLag int64
	// Batch is how many changes are read at a time.
	Batch int
	// WriteTimeout cuts off a subscriber that does not read for this long.
	WriteTimeout time.Duration
	// Draining is closed when the server starts shutting down: streams end
	// then (with a resumable id), so shutdown need not wait for them.
	Draining <-chan struct{}
	// Expired, when set, is closed when the credentials the stream was
	// opened with expire: the stream ends with a resumable token_expired,
	// and the subscriber reconnects with fresh ones.
	Expired <-chan struct{}
	// Synced, when set, marks the moment a stream has delivered everything
	// up to now with an SSE event of type "synced" carrying the position:
	// a follower making a full copy knows it is complete, and that it is
	// live from then on.
	Synced bool
}

// WithDefaults fills unset options.
func (o Options) WithDefaults() Options {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 50_000
	}
	if o.Batch <= 0 {
		o.Batch = 200
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = sse.DefaultWriteTimeout
	}
	return o
}

// Pos is what a stream position must offer the serving loop.
type Pos[P any] interface {
	// String is the SSE id.
	String() string
	// Equal reports whether two positions are the same.
	Equal(P) bool
	// Behind is how many events the position is behind head.
	Behind(head P) int64
}

// Item is one event of a stream with the position right after it.
type Item[P any] struct {
	Park  string
	Event *Event
	After P
}

// Source is a stream the loop can serve: the park's feed as a peer sees it,
// or the park-side stream.
type Source[P any] interface {
	// Signals are closed when new events may be readable (at most two).
	Signals() []<-chan struct{}
	// Head is the newest position.
	Head(ctx context.Context) P
	// Next returns the events after pos (at most about limit) and the
	// position after everything read, which moves even when every event
	// read was hidden from this reader.
	Next(ctx context.Context, pos P, limit int) ([]Item[P], P, error)
}

// Serve writes src's events after pos to s, as keep allows (nil keeps
// all), until the subscriber leaves, falls too far behind, the source
// fails or the server drains. Every way out but the subscriber leaving
// ends with an error event carrying the id to resume from.
func Serve[P Pos[P]](ctx context.Context, s *sse.Writer, src Source[P], pos P, opts Options, keep func(Item[P]) bool) error {
	opts = opts.WithDefaults()
	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	live := false
	var behindSince time.Time // when the subscriber last went more than MaxLag behind
	for ctx.Err() == nil {
		// A subscriber working through a backlog must hear of a shutdown
		// too, not only one waiting for news.
		select {
		case <-opts.Draining:
			s.Fail(sse.StreamError{Code: "shutting_down", Message: "this gateway is shutting down; reconnect to resume", ResumeID: pos.String()})
			return nil
		case <-opts.Expired:
			s.Fail(expired(pos.String()))
			return nil
		default:
		}
		var sig [2]<-chan struct{}
		copy(sig[:], src.Signals())
		lag := pos.Behind(src.Head(ctx))
		if lag <= 0 && !live {
			live = true
			if opts.Synced {
				if err := s.Event(pos.String(), SyncedType, []byte("{}")); err != nil {
					return err
				}
				if err := s.Flush(); err != nil {
					return err
				}
			}
		}
		// A subscriber catching up from an old id is not "too slow"; one
		// that was live and is still more than MaxLag behind after a whole
		// write timeout of trying is (a burst alone does not count).
		if !live || lag <= opts.MaxLag {
			behindSince = time.Time{}
		} else if behindSince.IsZero() {
			behindSince = time.Now()
		}
		if !behindSince.IsZero() && time.Since(behindSince) > opts.WriteTimeout {
			s.Fail(sse.StreamError{Code: "too_slow", Message: fmt.Sprintf("this subscriber is %d events behind; reconnect to resume", lag), ResumeID: pos.String()})
			return nil
		}
		items, next, err := src.Next(ctx, pos, opts.Batch)
		if err != nil {
			if ctx.Err() == nil {
				s.Fail(sse.StreamError{Code: "unavailable", Message: "the stream's sources are unavailable; reconnect later", ResumeID: pos.String()})
			}
			return nil
		}
		for _, it := range items {
			if keep != nil && !keep(it) {
				continue
			}
			if err := s.Event(it.After.String(), "", Marshal(it.Event)); err != nil {
				return err
			}
		}
		moved := !next.Equal(pos)
		pos = next
		if moved {
			if err := s.Flush(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-opts.Draining: // ended at the top of the loop
		case <-opts.Expired: // likewise
		case <-sig[0]:
		case <-sig[1]:
		case <-heartbeat.C:
			if err := s.Comment("heartbeat"); err != nil {
				return err
			}
		}
	}
	return nil
}

// SyncedType is the SSE event type marking that a stream has caught up.
const SyncedType = "synced"

// expired is the end of a stream whose token expired.
func expired(resume string) sse.StreamError {
	return sse.StreamError{Code: "token_expired", Message: "the token this stream was opened with expired; reconnect with a fresh one to resume", ResumeID: resume}
}

// PeerView is the park's feed as one viewer may see it (a peer id; ""
// for the park's own staff), for a stream that started at From.
type PeerView struct {
	Feed   *Local
	Viewer string
	// From is where the stream started: a listing created after it is
	// "created" the first time the stream sends it, one created before it
	// "updated". In a log of current state this is a hint (a listing
	// changed again before a reader reached it may be new to the reader
	// although created earlier), so a follower applies both alike, as an
	// upsert by version.
	From Position
	// Sent remembers which listings this stream has sent (NewSent; nil:
	// none remembered).
	Sent *Sent
}

// Sent remembers the listings a stream has sent, so that a listing
// created after the stream's start is "created" once and "updated" after
// that. It stops remembering at a bound (a huge backlog then reads
// "created" for listings it forgot, which followers apply alike).
type Sent struct {
	ids map[string]struct{}
}

// maxSent bounds the listings one stream remembers.
const maxSent = 200_000

// NewSent returns an empty memory.
func NewSent() *Sent { return &Sent{ids: map[string]struct{}{}} }

// After is the position For needs for a listing of park with id created
// at first, in a stream that started at from: past the creation when
// the stream has sent the listing already.
func (s *Sent) After(park, id string, first, from int64) int64 {
	if s == nil {
		return from
	}
	key := park + "/" + id
	if _, ok := s.ids[key]; ok {
		return first
	}
	if len(s.ids) < maxSent {
		s.ids[key] = struct{}{}
	}
	return from
}

// Signals implements Source.
func (v PeerView) Signals() []<-chan struct{} { return []<-chan struct{}{v.Feed.Signal()} }

// Head implements Source.
func (v PeerView) Head(context.Context) Position { return v.Feed.Head() }

// Next implements Source.
func (v PeerView) Next(ctx context.Context, pos Position, limit int) ([]Item[Position], Position, error) {
	batch, err := v.Feed.Next(ctx, pos, limit)
	if err != nil {
		return nil, pos, err
	}
	var out []Item[Position]
	for _, pc := range batch {
		after := v.Sent.After(v.Feed.Park, pc.Change.ListingID, pc.Change.FirstSeq, v.From[KindIndex(pc.Kind)])
		if ev := For(v.Feed.Park, pc.Kind, pc.Change, v.Viewer, after); ev != nil {
			out = append(out, Item[Position]{Park: v.Feed.Park, Event: ev, After: pc.After})
		}
		pos = pc.After
	}
	return out, pos, nil
}
