package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// CloudEvents types of listing changes.
const (
	TypeCreated   = "org.parkmesh.listing.created"
	TypeUpdated   = "org.parkmesh.listing.updated"
	TypeWithdrawn = "org.parkmesh.listing.withdrawn"
)

// CloudEvent is a CloudEvents 1.0 event in JSON form, the data of every
// feed event. Data is the listing (for withdrawn: only its identity).
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// withdrawnData is all a withdrawn event says about the listing.
type withdrawnData struct {
	ID      string       `json:"id"`
	Park    string       `json:"park"`
	Kind    listing.Kind `json:"kind"`
	Version int64        `json:"version"`
}

// eventFor turns a local change into the event a viewer may receive:
// viewer "" is the park's own staff (sees everything); a peer id sees what
// is visible to it, and a withdrawn event when the listing stops being
// visible to it. nil means the viewer gets nothing.
func eventFor(park string, k listing.Kind, c listing.Change, viewer string) *CloudEvent {
	visible := func(l *listing.Listing) bool {
		if l == nil {
			return false
		}
		return viewer == "" || l.VisibleTo(viewer)
	}
	now := c.Op != listing.OpDeleted && visible(c.Listing)
	before := visible(c.Previous)
	ev := &CloudEvent{
		SpecVersion: "1.0", ID: fmt.Sprintf("%s/%s/%d", park, k, c.Seq), Source: "/parks/" + park,
		Subject: c.ListingID, Time: c.At, DataContentType: "application/json",
	}
	switch {
	case now && (c.Op == listing.OpCreated || !before):
		ev.Type = TypeCreated
	case now:
		ev.Type = TypeUpdated
	case before || (viewer == "" && c.Op == listing.OpDeleted):
		ev.Type = TypeWithdrawn
		ev.Data, _ = json.Marshal(withdrawnData{ID: c.ListingID, Park: park, Kind: k, Version: c.Version})
		return ev
	default:
		return nil
	}
	l := c.Listing
	if viewer != "" {
		l = l.ForPeers()
	}
	ev.Data, _ = json.Marshal(l)
	return ev
}

// Position is where a reader stands in the park's three change logs: the
// last sequence number read from each service. It is the SSE id of the
// federation feed ("v1.<org>.<project>.<talent>"), so any gateway replica
// can resume any subscriber and the gateway itself keeps no state for it.
type Position [3]int64

func kindIndex(k listing.Kind) int {
	for i, kk := range listing.Kinds {
		if kk == k {
			return i
		}
	}
	return -1
}

func (p Position) String() string { return fmt.Sprintf("v1.%d.%d.%d", p[0], p[1], p[2]) }

// ParsePosition reads an SSE id written by Position.String.
func ParsePosition(s string) (Position, error) {
	var p Position
	parts := strings.Split(s, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return p, apierror.InvalidField("Last-Event-ID", "is not an id of this feed")
	}
	for i := range 3 {
		n, err := strconv.ParseInt(parts[i+1], 10, 64)
		if err != nil || n < 0 {
			return p, apierror.InvalidField("Last-Event-ID", "is not an id of this feed")
		}
		p[i] = n
	}
	return p, nil
}

// LocalFeed tails the park's three change logs (long-polls on the services
// found through Consul) and keeps the newest changes of each in a bounded
// window; readers behind the window read straight from the services.
type LocalFeed struct {
	Park     string
	Services *Discovery
	Logger   *slog.Logger
	// Window is how many recent changes per kind stay in memory.
	Window int

	mu     sync.Mutex
	recent [3][]listing.Change
	head   Position // last seq known per kind
	synced [3]bool
	signal chan struct{}
}

// NewLocalFeed returns a feed; Run tails the services.
func NewLocalFeed(park string, d *Discovery, logger *slog.Logger) *LocalFeed {
	return &LocalFeed{Park: park, Services: d, Logger: logger, Window: 4096, signal: make(chan struct{})}
}

// Signal returns a channel closed when new changes arrive.
func (f *LocalFeed) Signal() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signal
}

// Head is the newest position known.
func (f *LocalFeed) Head() Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// Run tails every kind's change log until ctx ends.
func (f *LocalFeed) Run(ctx context.Context) {
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

func (f *LocalFeed) tail(ctx context.Context, i int, k listing.Kind) {
	var after int64
	backoff := 100 * time.Millisecond
	failing := false
	for ctx.Err() == nil {
		f.mu.Lock()
		wait := "20s"
		if !f.synced[i] {
			wait = "0s" // catch up first, then long-poll
		}
		f.mu.Unlock()
		changes, err := f.fetch(ctx, k, after, 1000, wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				f.Logger.Warn("cannot tail change log", "kind", k, "err", err)
				failing = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		failing, backoff = false, 100*time.Millisecond
		f.mu.Lock()
		if len(changes) > 0 {
			after = changes[len(changes)-1].Seq
			r := append(f.recent[i], changes...)
			if len(r) > f.Window {
				r = append([]listing.Change(nil), r[len(r)-f.Window:]...)
			}
			f.recent[i] = r
			f.head[i] = after
		}
		if len(changes) < 1000 {
			f.synced[i] = true
		}
		if len(changes) > 0 {
			close(f.signal)
			f.signal = make(chan struct{})
		}
		f.mu.Unlock()
	}
}

// fetch reads changes of kind k after seq from a service instance.
func (f *LocalFeed) fetch(ctx context.Context, k listing.Kind, after int64, limit int, wait string) ([]listing.Change, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}, "wait": {wait}}
	// The budget must outlast the long-poll's wait (20 s).
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := f.Services.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/changes", Query: q.Encode(), Timeout: 29 * time.Second})
	if err != nil {
		return nil, err
	}
	if rep.Status != http.StatusOK {
		return nil, fmt.Errorf("%s change log answered %d", k, rep.Status)
	}
	var page struct {
		Changes []listing.Change `json:"changes"`
	}
	if err := json.Unmarshal(rep.Body, &page); err != nil {
		return nil, err
	}
	return page.Changes, nil
}

// read returns up to limit changes of kind index i after seq: from the
// window when it covers seq, else from the service.
func (f *LocalFeed) read(ctx context.Context, i int, after int64, limit int) ([]listing.Change, error) {
	f.mu.Lock()
	r := f.recent[i]
	covered := f.synced[i] && (len(r) == 0 && after >= f.head[i] || len(r) > 0 && after >= r[0].Seq-1)
	if covered {
		j := sort.Search(len(r), func(j int) bool { return r[j].Seq > after })
		end := min(len(r), j+limit)
		out := append([]listing.Change(nil), r[j:end]...)
		f.mu.Unlock()
		return out, nil
	}
	f.mu.Unlock()
	return f.fetch(ctx, listing.Kinds[i], after, limit, "0s")
}

// Next returns the next batch of changes after pos, in time order across
// the three logs, each with the position after it. It returns nothing when
// there is nothing new.
func (f *LocalFeed) Next(ctx context.Context, pos Position, limit int) ([]PositionedChange, error) {
	var queues [3][]listing.Change
	for i := range listing.Kinds {
		cs, err := f.read(ctx, i, pos[i], limit)
		if err != nil {
			return nil, err
		}
		queues[i] = cs
	}
	// Merge the three logs by time, keeping each log's own order.
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
	return out, nil
}

// PositionedChange is a change with the feed position right after it.
type PositionedChange struct {
	Kind   listing.Kind
	Change listing.Change
	After  Position
}

// PositionAt returns the feed position of a point in time: reading after it
// yields the changes made from t on.
func (f *LocalFeed) PositionAt(ctx context.Context, t time.Time) (Position, error) {
	var p Position
	for i, k := range listing.Kinds {
		q := url.Values{"since": {t.UTC().Format(time.RFC3339Nano)}, "limit": {"1"}, "wait": {"0s"}}
		rep, err := f.Services.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/changes", Query: q.Encode()})
		if err != nil {
			return p, err
		}
		var page struct {
			From int64 `json:"from"`
		}
		if rep.Status != http.StatusOK || json.Unmarshal(rep.Body, &page) != nil {
			return p, fmt.Errorf("%s change log answered %d", k, rep.Status)
		}
		p[i] = page.From
	}
	return p, nil
}
