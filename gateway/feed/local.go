package feed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/pkg/retry"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// ChangeLogs reads the park's services' change logs (the gateway's
// discovery implements it over the services' client halves).
type ChangeLogs interface {
	// Changes returns up to limit changes of kind k after seq, waiting up
	// to wait for one when there are none yet.
	Changes(ctx context.Context, k listing.Kind, after int64, limit int, wait time.Duration) ([]listing.Change, error)
	// SeqBefore is kind k's log position of a point in time: reading after
	// it yields the changes made from then on.
	SeqBefore(ctx context.Context, k listing.Kind, t time.Time) (int64, error)
}

// longPoll is how long one tail request waits for a change.
const longPoll = 20 * time.Second

// tailBatch is how many changes one tail request reads.
const tailBatch = 1000

// Local tails the park's three changes reads of current state (long-polls
// on the services' by-sequence indexes) and keeps the newest of each in a
// bounded window — each listing at most once, at its latest change, as the
// services answer; readers behind the window read straight from the
// services.
type Local struct {
	Park   string
	Logs   ChangeLogs
	Logger *slog.Logger
	// Window is how many listings per kind the in-memory window holds,
	// each at its latest change.
	Window int

	mu     sync.Mutex
	recent [3]window // per kind
	head   Position  // last seq known per kind
	synced [3]bool
	gaps   [3][]Gap // per kind: sequences a restore skipped
	signal chan struct{}
	ready  chan struct{} // closed once every log has been read to its end
}

// NewLocal returns a feed; Run tails the services.
func NewLocal(park string, logs ChangeLogs, logger *slog.Logger) *Local {
	return &Local{Park: park, Logs: logs, Logger: logger, Window: 4096, signal: make(chan struct{}), ready: make(chan struct{})}
}

// Signal returns a channel closed when new changes arrive.
func (f *Local) Signal() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signal
}

// ReadyWait is how long a stream that needs the logs' heads waits for a
// just-started gateway to have read them.
const ReadyWait = 10 * time.Second

// ErrNotReady is returned by WaitReady when the logs were not read in time.
var ErrNotReady = errors.New("feed: the park's change logs have not been read yet")

// WaitReady waits until every change log has been read to its end once —
// until then Head is behind the logs, and a position this park issued
// before a restart would look like one from the future — or until max or
// ctx ends (ErrNotReady, or ctx's error).
func (f *Local) WaitReady(ctx context.Context, max time.Duration) error {
	return WaitReady(ctx, f.ready, max)
}

// WaitReady waits until ready is closed (nil), ctx ends (its error) or max
// passes (ErrNotReady).
func WaitReady(ctx context.Context, ready <-chan struct{}, max time.Duration) error {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrNotReady
	}
}

// Ready is closed once every change log has been read to its end once.
func (f *Local) Ready() <-chan struct{} { return f.ready }

// Gap is a range of a log's sequences that the log as it is now never
// issued: (After, Through]. A restore (parkmesh restore) leaves one: the
// restored log stops at After, the backup point, and goes on after
// Through, so a position inside was read from a history the restore undid.
type Gap struct{ After, Through int64 }

// SetGaps tells the feed the gaps of kind k's log (from the gateway's
// state, recorded by restores); call it before serving.
func (f *Local) SetGaps(k listing.Kind, gaps []Gap) {
	i := KindIndex(k)
	if i < 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gaps[i] = append([]Gap(nil), gaps...)
}

// Void reports whether p was not issued by the park's logs as they are
// now: ahead of their heads, or inside a gap a restore left. Such a
// reader must start again from the full copy.
func (f *Local) Void(p Position) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.After(f.head) {
		return true
	}
	for i, gaps := range f.gaps {
		for _, g := range gaps {
			if p[i] > g.After && p[i] <= g.Through {
				return true
			}
		}
	}
	return false
}

// Head is the newest position known.
func (f *Local) Head() Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// Run tails every kind's change log until ctx ends.
func (f *Local) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, k := range listing.Kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.tail(ctx, i, k)
		}()
	}
	wg.Wait()
}

func (f *Local) tail(ctx context.Context, i int, k listing.Kind) {
	var after int64
	pause := retry.New(100*time.Millisecond, 5*time.Second)
	failing := false
	for ctx.Err() == nil {
		f.mu.Lock()
		wait := longPoll
		if !f.synced[i] {
			wait = 0 // catch up first, then long-poll
		}
		f.mu.Unlock()
		changes, err := f.Logs.Changes(ctx, k, after, tailBatch, wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				f.Logger.Warn("cannot tail change log", "kind", k, "err", err)
				failing = true
			}
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		failing = false
		pause.Reset()
		f.mu.Lock()
		if len(changes) > 0 {
			after = changes[len(changes)-1].Seq
			f.remember(i, changes)
			f.head[i] = after
		}
		if len(changes) < tailBatch && !f.synced[i] {
			f.synced[i] = true
			if f.synced == [3]bool{true, true, true} {
				close(f.ready)
			}
		}
		if len(changes) > 0 {
			close(f.signal)
			f.signal = make(chan struct{})
		}
		f.mu.Unlock()
	}
}

// remember adds changes newer than the window to kind i's window. Must be
// called with f.mu held.
func (f *Local) remember(i int, changes []listing.Change) { f.recent[i].add(changes, f.Window) }

// read returns up to limit changes of kind index i after seq: from the
// window when it covers seq, else from the service.
func (f *Local) read(ctx context.Context, i int, after int64, limit int) ([]listing.Change, error) {
	f.mu.Lock()
	if f.synced[i] && after >= f.recent[i].floor {
		out := f.recent[i].after(after, limit)
		f.mu.Unlock()
		return out, nil
	}
	f.mu.Unlock()
	return f.Logs.Changes(ctx, listing.Kinds[i], after, limit, 0)
}

// Next returns the next batch of changes after pos, in time order across
// the three logs, each with the position after it. It returns nothing when
// there is nothing new.
func (f *Local) Next(ctx context.Context, pos Position, limit int) ([]PositionedChange, error) {
	var queues [3][]listing.Change
	for i := range listing.Kinds {
		cs, err := f.read(ctx, i, pos[i], limit)
		if err != nil {
			return nil, err
		}
		queues[i] = cs
	}
	return mergeLogs(queues, pos, limit), nil
}

// mergeLogs merges the three logs by time, keeping each log's own order.
func mergeLogs(queues [3][]listing.Change, pos Position, limit int) []PositionedChange {
	var out []PositionedChange
	p := pos
	for len(out) < limit {
		best := -1
		for i := range queues {
			if len(queues[i]) == 0 {
				continue
			}
			if best == -1 || queues[i][0].At.Before(queues[best][0].At) {
				best = i
			}
		}
		if best == -1 {
			break
		}
		c := queues[best][0]
		queues[best] = queues[best][1:]
		p[best] = c.Seq
		out = append(out, PositionedChange{Kind: listing.Kinds[best], Change: c, After: p})
	}
	return out
}

// PositionedChange is a change with the feed position right after it.
type PositionedChange struct {
	Kind   listing.Kind
	Change listing.Change
	After  Position
}

// PositionAt returns the feed position of a point in time: reading after it
// yields the changes made from t on.
func (f *Local) PositionAt(ctx context.Context, t time.Time) (Position, error) {
	var p Position
	for i, k := range listing.Kinds {
		seq, err := f.Logs.SeqBefore(ctx, k, t)
		if err != nil {
			return p, err
		}
		p[i] = seq
	}
	return p, nil
}
