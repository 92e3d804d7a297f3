package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/httpserver"
)

// sseWriteTimeout bounds each write to a stream subscriber: one that does
// not read for this long is cut off (it can resume with its last id).
const sseWriteTimeout = 10 * time.Second

// sseSendBuffer is the kernel send buffer of a stream connection.
const sseSendBuffer = 64 << 10

// sseStream writes Server-Sent Events to one subscriber.
type sseStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// startSSE answers with an event stream. The server's write timeout is
// lifted for the stream; every write gets its own deadline instead.
func startSSE(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration) (*sseStream, error) {
	// Bound what the kernel buffers for this subscriber, so one that stops
	// reading is noticed (its writes block, then time out) long before it
	// holds megabytes of this host's memory.
	if tc, ok := httpserver.Conn(r.Context()).(*net.TCPConn); ok {
		tc.SetWriteBuffer(sseSendBuffer)
	}
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		return nil, err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if writeTimeout <= 0 {
		writeTimeout = sseWriteTimeout
	}
	s := &sseStream{w: w, rc: rc, timeout: writeTimeout}
	return s, s.flush()
}

func (s *sseStream) flush() error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	return s.rc.Flush()
}

// event writes one event (typ "" for the default "message" type).
func (s *sseStream) event(id, typ string, data []byte) error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	if typ != "" {
		fmt.Fprintf(&b, "event: %s\n", typ)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	if _, err := s.w.Write([]byte(b.String())); err != nil {
		return err
	}
	return nil
}

// comment writes a comment line: a heartbeat proxies see as traffic.
func (s *sseStream) comment(text string) error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.flush()
}

// StreamError is the data of an "error" event: why the stream ends and how
// to carry on.
type StreamError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// ResumeID, when set, is the id to reconnect with (Last-Event-ID).
	ResumeID string `json:"resume_id,omitempty"`
	// Resync says how to catch up when resuming is impossible.
	Resync string `json:"resync,omitempty"`
}

// fail sends an error event and ends the stream.
func (s *sseStream) fail(e StreamError) {
	b, _ := json.Marshal(e)
	s.event("", "error", b)
	s.flush()
}

// FeedOptions tune the streams.
type FeedOptions struct {
	// Heartbeat is the interval of keep-alive comments.
	Heartbeat time.Duration
	// MaxLag is how many changes a subscriber may fall behind the newest
	// before it is cut off with a resumable position.
	MaxLag int64
	// Batch is how many changes are read at a time.
	Batch int
	// WriteTimeout cuts off a subscriber that does not read for this long.
	WriteTimeout time.Duration
	// Draining is closed when the server starts shutting down: streams end
	// then (with a resumable id), so shutdown need not wait for them.
	Draining <-chan struct{}
}

func (o FeedOptions) writeTimeout() time.Duration {
	if o.WriteTimeout > 0 {
		return o.WriteTimeout
	}
	return sseWriteTimeout
}

func (o FeedOptions) withDefaults() FeedOptions {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 50_000
	}
	if o.Batch <= 0 {
		o.Batch = 200
	}
	return o
}

// streamLocal writes the park's changes after pos, as viewer may see them
// and as keep allows, until the subscriber leaves or falls too far behind.
func streamLocal(ctx context.Context, s *sseStream, feed *LocalFeed, pos Position, viewer string, opts FeedOptions, keep func(*CloudEvent) bool) error {
	opts = opts.withDefaults()
	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	live := false
	var behindSince time.Time // when the subscriber last went more than MaxLag behind // a subscriber catching up from an old id is not "too slow"
	for ctx.Err() == nil {
		signal := feed.Signal()
		head := feed.Head()
		lag := (head[0] - pos[0]) + (head[1] - pos[1]) + (head[2] - pos[2])
		if lag == 0 {
			live = true
		}
		if !live || lag <= opts.MaxLag {
			behindSince = time.Time{}
		} else if behindSince.IsZero() {
			behindSince = time.Now()
		}
		// Too slow: still more than MaxLag behind after a whole write
		// timeout of trying (a burst alone does not count).
		if !behindSince.IsZero() && time.Since(behindSince) > opts.writeTimeout() {
			s.fail(StreamError{Code: "too_slow", Message: fmt.Sprintf("this subscriber is %d changes behind; reconnect to resume", lag), ResumeID: pos.String()})
			return nil
		}
		batch, err := feed.Next(ctx, pos, opts.Batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.fail(StreamError{Code: "unavailable", Message: "the park's change logs are unavailable; reconnect later", ResumeID: pos.String()})
			return nil
		}
		for _, pc := range batch {
			pos = pc.After
			ev := eventFor(feed.Park, pc.Kind, pc.Change, viewer)
			if ev == nil || (keep != nil && !keep(ev)) {
				continue
			}
			b, _ := json.Marshal(ev)
			if err := s.event(pos.String(), "", b); err != nil {
				return err
			}
		}
		if len(batch) > 0 {
			if err := s.flush(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-opts.Draining:
			s.fail(StreamError{Code: "shutting_down", Message: "this gateway is shutting down; reconnect to resume", ResumeID: pos.String()})
			return nil
		case <-signal:
		case <-heartbeat.C:
			if err := s.comment("heartbeat"); err != nil {
				return err
			}
		}
	}
	return nil
}
