package feed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// memSource is an in-memory Source: event n (from 1) sits at Position{0, n, 0}.
type memSource struct {
	mu       sync.Mutex
	events   []*Event
	signal   chan struct{}
	calls    int
	failAt   int           // the Next call (from 1) that fails; 0 never
	perCall  int           // at most this many events a call; 0 the limit
	callTime time.Duration // each Next call takes this long
	caughtUp chan struct{} // closed once a Next call has read everything
	once     sync.Once
}

// drainWhenCaughtUp is a Draining channel closed as soon as a reader has
// read every event: the server starts shutting down once the subscriber
// has caught up.
func (s *memSource) drainWhenCaughtUp() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caughtUp == nil {
		s.caughtUp = make(chan struct{})
	}
	return s.caughtUp
}

func newMemSource(n int) *memSource {
	s := &memSource{signal: make(chan struct{})}
	for range n {
		s.add()
	}
	return s
}

// add appends one event and wakes waiting readers.
func (s *memSource) add() {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := project(home, listing.Club)
	c := created(l)
	c.Seq = int64(len(s.events) + 1)
	s.events = append(s.events, For(home, listing.KindProject, c, "", 0))
	close(s.signal)
	s.signal = make(chan struct{})
}

func (s *memSource) Signals() []<-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []<-chan struct{}{s.signal}
}

func (s *memSource) Head(context.Context) Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Position{0, int64(len(s.events)), 0}
}

func (s *memSource) nextCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *memSource) Next(ctx context.Context, pos Position, limit int) ([]Item[Position], Position, error) {
	time.Sleep(s.callTime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls == s.failAt {
		return nil, pos, errors.New("services down")
	}
	if s.perCall > 0 {
		limit = min(limit, s.perCall)
	}
	var out []Item[Position]
	for n := pos[1] + 1; n <= int64(len(s.events)) && len(out) < limit; n++ {
		pos = Position{0, n, 0}
		out = append(out, Item[Position]{Park: home, Event: s.events[n-1], After: pos})
	}
	if s.caughtUp != nil && pos[1] == int64(len(s.events)) {
		s.once.Do(func() { close(s.caughtUp) })
	}
	return out, pos, nil
}

// serveStream serves src from start over a real HTTP server and returns
// the response body; the handler's end ends the body.
func serveStream(t *testing.T, src Source[Position], start Position, opts Options, keep func(Item[Position]) bool) io.ReadCloser {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.Start(w, r, opts.WriteTimeout)
		if err != nil {
			t.Errorf("sse.Start: %v", err)
			return
		}
		Serve(r.Context(), s, src, start, opts, keep)
	}))
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	return res.Body
}

// readAll reads events until the stream ends; it returns the ids of the
// message events and the error event that ended the stream, if any.
func readAll(t *testing.T, body io.Reader) ([]string, *sse.StreamError) {
	t.Helper()
	r := sse.NewReader(body)
	var ids []string
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if ev.Type == sse.ErrorType {
			var se sse.StreamError
			if err := json.Unmarshal(ev.Data, &se); err != nil {
				t.Fatalf("error event data %q: %v", ev.Data, err)
			}
			if _, err := r.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("stream goes on after its error event: %v", err)
			}
			return ids, &se
		}
		if ev.Type != "" {
			t.Errorf("event type %q, want the default", ev.Type)
		}
		if _, _, _, err := Parse(home, ev.Data); err != nil {
			t.Errorf("event %s is not a valid event of %s: %v", ev.ID, home, err)
		}
		ids = append(ids, ev.ID)
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func pos(n int64) string { return Position{0, n, 0}.String() }

func TestServe(t *testing.T) {
	tests := []struct {
		name       string
		src        *memSource
		start      Position
		batch      int
		keep       func(Item[Position]) bool
		wantIDs    []string
		wantCode   string
		wantResume string
	}{
		{
			name: "every event with its position as id, then drained",
			src:  newMemSource(3), wantIDs: []string{pos(1), pos(2), pos(3)},
			wantCode: "shutting_down", wantResume: pos(3),
		},
		{
			name: "in batches", src: newMemSource(5), batch: 2,
			wantIDs:  []string{pos(1), pos(2), pos(3), pos(4), pos(5)},
			wantCode: "shutting_down", wantResume: pos(5),
		},
		{
			name: "resumes after its start", src: newMemSource(3), start: Position{0, 1, 0},
			wantIDs: []string{pos(2), pos(3)}, wantCode: "shutting_down", wantResume: pos(3),
		},
		{
			name: "nothing to send", src: newMemSource(0),
			wantIDs: nil, wantCode: "shutting_down", wantResume: pos(0),
		},
		{
			name: "keep drops events but the position moves past them",
			src:  newMemSource(4),
			keep: func(it Item[Position]) bool { return it.After[1] == 1 || it.After[1] == 2 },
			// The resume id is past the dropped events 3 and 4: resuming
			// from it does not read them again.
			wantIDs: []string{pos(1), pos(2)}, wantCode: "shutting_down", wantResume: pos(4),
		},
		{
			name:    "a source error ends the stream with unavailable",
			src:     &memSource{signal: make(chan struct{}), failAt: 2},
			batch:   2,
			wantIDs: []string{pos(1), pos(2)}, wantCode: "unavailable", wantResume: pos(2),
		},
		{
			name:    "a source failing at once resumes from the start",
			src:     &memSource{signal: make(chan struct{}), failAt: 1},
			start:   Position{0, 7, 0},
			wantIDs: nil, wantCode: "unavailable", wantResume: pos(7),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.src.failAt > 0 {
				for range 3 {
					tt.src.add()
				}
			}
			opts := Options{Draining: tt.src.drainWhenCaughtUp(), Batch: tt.batch, WriteTimeout: 5 * time.Second}
			gotIDs, se := readAll(t, serveStream(t, tt.src, tt.start, opts, tt.keep))
			if !slices.Equal(gotIDs, tt.wantIDs) {
				t.Errorf("ids = %v, want %v", gotIDs, tt.wantIDs)
			}
			if se == nil {
				t.Fatalf("stream ended without an error event")
			}
			if se.Code != tt.wantCode || se.ResumeID != tt.wantResume || se.Message == "" {
				t.Errorf("error event = %+v, want code %s resume_id %s", se, tt.wantCode, tt.wantResume)
			}
		})
	}
}

// A caught-up stream waits for the source's signal, sends what arrived,
// keeps the connection alive with heartbeats, and ends when drained.
func TestServeLive(t *testing.T) {
	src := newMemSource(1)
	draining := make(chan struct{})
	body := serveStream(t, src, Position{}, Options{Draining: draining, Heartbeat: 20 * time.Millisecond}, nil)
	br := bufio.NewReader(body)
	readLine := func() string {
		t.Helper()
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		return strings.TrimSuffix(line, "\n")
	}
	if got := readLine(); got != "id: "+pos(1) {
		t.Fatalf("first line %q, want the first event's id", got)
	}
	for readLine() != ": heartbeat" {
	}
	src.add()
	for readLine() != "id: "+pos(2) {
	}
	for readLine() != "" { // the rest of that event
	}
	close(draining)
	ids, se := readAll(t, br)
	if len(ids) != 0 || se == nil || se.Code != "shutting_down" || se.ResumeID != pos(2) {
		t.Errorf("after draining: ids %v, error %+v; want shutting_down resuming at %s", ids, se, pos(2))
	}
}

// A subscriber that was live and stays more than MaxLag behind for longer
// than the write timeout is cut off, with the id of the last event it got.
func TestServeCutsOffASlowSubscriber(t *testing.T) {
	src := newMemSource(0)
	src.perCall, src.callTime = 1, 5*time.Millisecond
	draining := make(chan struct{})
	stop := time.AfterFunc(5*time.Second, func() { close(draining) }) // never hang
	defer stop.Stop()
	opts := Options{MaxLag: 2, WriteTimeout: 30 * time.Millisecond, Draining: draining}
	body := serveStream(t, src, Position{}, opts, nil)
	// Once Next has been called, the loop has seen head 0: it is live.
	for src.nextCalls() == 0 {
		time.Sleep(time.Millisecond)
	}
	for range 40 {
		src.add()
	}
	ids, se := readAll(t, body)
	if se == nil || se.Code != "too_slow" {
		t.Fatalf("stream ended with %+v, want too_slow", se)
	}
	if len(ids) == 0 || len(ids) == 40 {
		t.Errorf("got %d of 40 events before the cut-off", len(ids))
	}
	if len(ids) > 0 && se.ResumeID != ids[len(ids)-1] {
		t.Errorf("resume_id %s, want the last id received %s", se.ResumeID, ids[len(ids)-1])
	}
}

// A subscriber catching up from an old id is not too slow, however far
// behind it starts.
func TestServeLetsACatchingUpSubscriberFinish(t *testing.T) {
	src := newMemSource(40)
	src.perCall, src.callTime = 1, 2*time.Millisecond
	opts := Options{MaxLag: 2, WriteTimeout: 20 * time.Millisecond, Draining: src.drainWhenCaughtUp()}
	ids, se := readAll(t, serveStream(t, src, Position{}, opts, nil))
	if len(ids) != 40 || se == nil || se.Code != "shutting_down" {
		t.Errorf("got %d events and %+v, want all 40 then shutting_down", len(ids), se)
	}
}

// Draining ends a stream that is still catching up on a backlog, not only
// one that has caught up: shutdown should not wait for a reader to work
// through the whole backlog.
func TestServeDrainsACatchingUpStream(t *testing.T) {
	src := newMemSource(50)
	opts := Options{Batch: 5, Draining: closed()}
	ids, se := readAll(t, serveStream(t, src, Position{}, opts, nil))
	if se == nil || se.Code != "shutting_down" {
		t.Fatalf("stream ended with %+v, want shutting_down", se)
	}
	if len(ids) > opts.Batch {
		t.Errorf("a draining stream sent %d events (batch %d) before ending", len(ids), opts.Batch)
	}
	if len(ids) > 0 && se.ResumeID != ids[len(ids)-1] {
		t.Errorf("resume_id %s, want the last id sent %s", se.ResumeID, ids[len(ids)-1])
	}
}

// fakeLogs is the park's three change logs in memory.
type fakeLogs struct {
	logs map[listing.Kind][]listing.Change
}

func (f fakeLogs) Changes(ctx context.Context, k listing.Kind, after int64, limit int, wait time.Duration) ([]listing.Change, error) {
	var out []listing.Change
	for _, c := range f.logs[k] {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	if len(out) == 0 && wait > 0 {
		select { // a long poll with nothing new waits it out
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	return out, nil
}

func (f fakeLogs) SeqBefore(ctx context.Context, k listing.Kind, t time.Time) (int64, error) {
	var seq int64
	for _, c := range f.logs[k] {
		if c.At.Before(t) {
			seq = c.Seq
		}
	}
	return seq, nil
}

// A peer's view of a changes read of current state: each listing once, at
// its latest change; what the peer may not see is dropped, but the
// position moves past it; a listing it could see and no longer can is
// withdrawn; created or updated depends on where the reader stood.
func TestPeerViewNext(t *testing.T) {
	club, private := project(home, listing.Club), project(home, listing.Private)
	madePrivate := with(club, listing.Private)
	latest := func(c listing.Change, n, first int64, minute int) listing.Change {
		c.Seq, c.FirstSeq, c.At = n, first, at.Add(time.Duration(minute)*time.Minute)
		return c
	}
	// club (created at 1) was made private at 3; private (created at 2)
	// was updated at 4. The earlier versions are not in the log any more.
	logs := fakeLogs{logs: map[listing.Kind][]listing.Change{
		listing.KindProject: {
			latest(updated(club, madePrivate), 3, 1, 2),
			latest(updated(private, with(private, listing.Private)), 4, 2, 3),
		},
	}}
	local := NewLocal(home, logs, nil)
	tests := []struct {
		viewer    string
		from      Position
		wantTypes []string
		wantIDs   []string
	}{
		{peerA, Position{}, []string{TypeWithdrawn}, []string{pos(3)}},
		{peerB, Position{0, 2, 0}, []string{TypeWithdrawn}, []string{pos(3)}},
		{"", Position{}, []string{TypeCreated, TypeCreated}, []string{pos(3), pos(4)}},
		{"", Position{0, 2, 0}, []string{TypeUpdated, TypeUpdated}, []string{pos(3), pos(4)}},
		{"", Position{0, 3, 0}, []string{TypeUpdated}, []string{pos(4)}},
	}
	for _, tt := range tests {
		items, next, err := PeerView{Feed: local, Viewer: tt.viewer, From: tt.from}.Next(t.Context(), tt.from, 10)
		if err != nil {
			t.Fatal(err)
		}
		var types, ids []string
		for _, it := range items {
			types, ids = append(types, it.Event.Type()), append(ids, it.After.String())
			if it.Park != home {
				t.Errorf("item park %q", it.Park)
			}
			if it.Event.Type() == TypeWithdrawn && bytes.Contains(Marshal(it.Event), []byte(club.Title)) {
				t.Errorf("withdrawn event carries content: %s", Marshal(it.Event))
			}
		}
		if !slices.Equal(types, tt.wantTypes) || !slices.Equal(ids, tt.wantIDs) {
			t.Errorf("viewer %q from %v: types %v at %v, want %v at %v", tt.viewer, tt.from, types, ids, tt.wantTypes, tt.wantIDs)
		}
		if next != (Position{0, 4, 0}) {
			t.Errorf("viewer %q: next position %v, want past every change read", tt.viewer, next)
		}
	}
}

// countingLogs counts the reads that do not wait (catch-up reads).
type countingLogs struct {
	fakeLogs
	mu    sync.Mutex
	reads int
}

func (c *countingLogs) Changes(ctx context.Context, k listing.Kind, after int64, limit int, wait time.Duration) ([]listing.Change, error) {
	if wait == 0 {
		c.mu.Lock()
		c.reads++
		c.mu.Unlock()
	}
	return c.fakeLogs.Changes(ctx, k, after, limit, wait)
}

func (c *countingLogs) catchUpReads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// Local tails every log; once synced it serves readers from its window,
// without asking the services again.
func TestLocalTailsAndServesFromItsWindow(t *testing.T) {
	ch := func(seq int64, minute int) listing.Change {
		l := project(home, listing.Club)
		c := created(l)
		c.Seq, c.At = seq, at.Add(time.Duration(minute)*time.Minute)
		return c
	}
	logs := &countingLogs{fakeLogs: fakeLogs{logs: map[listing.Kind][]listing.Change{
		listing.KindProject: {ch(1, 0), ch(2, 2)},
		listing.KindTalent:  {ch(1, 1)},
	}}}
	local := NewLocal(home, logs, nil)
	sig := local.Signal()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { local.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for local.Head() != (Position{0, 2, 1}) {
		if time.Now().After(deadline) {
			t.Fatalf("head %v, want v1.0.2.1", local.Head())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-sig:
	default:
		t.Error("the signal taken before the changes arrived is not closed")
	}
	before := logs.catchUpReads()
	got, err := local.Next(t.Context(), Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pc := range got {
		ids = append(ids, pc.After.String())
	}
	if want := []string{"v1.0.1.0", "v1.0.1.1", "v1.0.2.1"}; !slices.Equal(ids, want) {
		t.Errorf("Next = %v, want %v", ids, want)
	}
	if n := logs.catchUpReads() - before; n != 0 {
		t.Errorf("Next read the services %d times; the window covers it", n)
	}
	p, err := local.PositionAt(t.Context(), at.Add(90*time.Second))
	if err != nil || p != (Position{0, 1, 1}) {
		t.Errorf("PositionAt = %v, %v; want v1.0.1.1", p, err)
	}
}

// gatedLogs holds every read of one kind's log until released: a
// just-started gateway whose service answers slowly.
type gatedLogs struct {
	fakeLogs
	slow    listing.Kind
	release chan struct{}
}

func (g gatedLogs) Changes(ctx context.Context, k listing.Kind, after int64, limit int, wait time.Duration) ([]listing.Change, error) {
	if k == g.slow {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.fakeLogs.Changes(ctx, k, after, limit, wait)
}

// Until every log has been read once, the head is not known: WaitReady
// holds (a resuming stream must not be told its valid position is ahead),
// then returns once the slowest log is read, with the head complete.
func TestLocalIsReadyOnlyOnceEveryLogIsRead(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	c := created(project(home, listing.Club))
	c.Seq, c.At = 7, at
	logs := gatedLogs{fakeLogs: fakeLogs{logs: map[listing.Kind][]listing.Change{listing.KindProject: {c}}}, slow: listing.KindProject, release: make(chan struct{})}
	local := NewLocal(home, logs, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { local.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if err := local.WaitReady(t.Context(), 200*time.Millisecond); !errors.Is(err, ErrNotReady) {
		t.Fatalf("WaitReady with the project log unread: %v, want ErrNotReady", err)
	}
	close(logs.release)
	if err := local.WaitReady(t.Context(), 5*time.Second); err != nil {
		t.Fatalf("WaitReady after every log was read: %v", err)
	}
	if got := local.Head(); got != (Position{0, 7, 0}) {
		t.Errorf("head once ready = %v, want v1.0.7.0", got)
	}
}

// The window holds each listing once, at its latest change, like the
// services' reads; it serves a reader only from where it holds everything.
func TestLocalWindowHoldsEachListingOnce(t *testing.T) {
	logs := &countingLogs{}
	f := NewLocal(home, logs, nil)
	f.Window = 3
	ch := func(id string, seq int64) listing.Change {
		return listing.Change{Seq: seq, ListingID: id, At: at.Add(time.Duration(seq) * time.Minute)}
	}
	ids := func(cs []listing.Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s%d", c.ListingID, c.Seq))
		}
		return out
	}
	f.remember(1, []listing.Change{ch("a", 1), ch("b", 2)})
	f.remember(1, []listing.Change{ch("a", 3)})
	if got := ids(f.recent[1].held()); !slices.Equal(got, []string{"b2", "a3"}) {
		t.Errorf("window %v, want b2 a3: a listing changed again leaves its older entry", got)
	}
	f.remember(1, []listing.Change{ch("c", 4), ch("d", 5)})
	if got := ids(f.recent[1].held()); !slices.Equal(got, []string{"a3", "c4", "d5"}) || f.recent[1].floor != 2 {
		t.Errorf("window %v floor %d, want a3 c4 d5 above 2", got, f.recent[1].floor)
	}
	f.synced[1], f.head[1] = true, 5
	got, err := f.read(t.Context(), 1, 2, 10)
	if err != nil || !slices.Equal(ids(got), []string{"a3", "c4", "d5"}) || logs.catchUpReads() != 0 {
		t.Errorf("read after 2 = %v, %v (%d service reads); want the window", ids(got), err, logs.catchUpReads())
	}
	if _, err := f.read(t.Context(), 1, 1, 10); err != nil || logs.catchUpReads() != 1 {
		t.Errorf("read after 1 (below the window) read the services %d times, %v; want once", logs.catchUpReads(), err)
	}
}

// A listing created after the stream's start is "created" the first time
// the stream sends it and "updated" after that.
func TestSentMakesCreatedOnce(t *testing.T) {
	s := NewSent()
	if got := s.After(home, "prj_1", 5, 2); got != 2 {
		t.Errorf("first send: after %d, want the stream's start 2", got)
	}
	if got := s.After(home, "prj_1", 5, 2); got != 5 {
		t.Errorf("second send: after %d, want past the creation 5", got)
	}
	if got := s.After(peerA, "prj_1", 5, 2); got != 2 {
		t.Errorf("the same id of another park: after %d, want 2", got)
	}
	var none *Sent
	if got := none.After(home, "prj_1", 5, 2); got != 2 {
		t.Errorf("no memory: after %d, want 2", got)
	}
}

// A restored log (backup point 3, next change after 1000) voids the
// positions it skipped, even once the log has gone past them; positions up
// to the backup point and after the restart stay valid, and a log without
// a gap is unaffected.
func TestLocalVoidsTheRangeARestoreSkipped(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	change := func(id string, seq int64) listing.Change {
		return listing.Change{Park: home, Kind: listing.KindProject, ListingID: id, Op: listing.OpDeleted, Seq: seq, FirstSeq: seq, At: at}
	}
	logs := fakeLogs{logs: map[listing.Kind][]listing.Change{
		listing.KindProject: {change("prj_a", 2), change("prj_b", 3), change("prj_c", 1001), change("prj_d", 1002)},
	}}
	local := NewLocal(home, logs, nil)
	local.SetGaps(listing.KindProject, []Gap{{After: 3, Through: 1000}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go local.Run(ctx)
	if err := local.WaitReady(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    Position
		void bool
	}{
		{Position{0, 0, 0}, false},
		{Position{0, 3, 0}, false},    // the backup point
		{Position{0, 4, 0}, true},     // read after the backup, before the restore
		{Position{0, 120, 0}, true},   // far behind the head now, still void
		{Position{0, 1000, 0}, true},  // the base itself was never issued
		{Position{0, 1001, 0}, false}, // after the restart
		{Position{0, 1002, 0}, false},
		{Position{0, 1003, 0}, true}, // ahead of the head
		{Position{5, 3, 0}, true},    // ahead in another log
	} {
		if got := local.Void(c.p); got != c.void {
			t.Errorf("Void(%s) = %v, want %v", c.p, got, c.void)
		}
	}
}
