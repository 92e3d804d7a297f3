// Package sse is the gateway's one implementation of Server-Sent Events
// (the WHATWG event-stream format): a Writer for the feeds the gateway
// serves and a Reader for the peers' feeds it follows.
package sse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/httpserver"
)

// DefaultWriteTimeout bounds each write to a subscriber: one that does not
// read for this long is cut off (it can resume with its last id).
const DefaultWriteTimeout = 10 * time.Second

// sendBuffer is the kernel send buffer of a stream connection.
const sendBuffer = 64 << 10

// MaxEvent bounds one event (and one line) a Reader accepts.
const MaxEvent = 2 << 20

// Writer writes Server-Sent Events to one subscriber.
type Writer struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// Start answers r with an event stream. The server's write timeout is
// lifted for the stream; every write gets its own deadline instead.
func Start(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration) (*Writer, error) {
	// Bound what the kernel buffers for this subscriber, so one that stops
	// reading is noticed (its writes block, then time out) long before it
	// holds megabytes of this host's memory.
	if tc, ok := httpserver.Conn(r.Context()).(*net.TCPConn); ok {
		tc.SetWriteBuffer(sendBuffer)
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
		writeTimeout = DefaultWriteTimeout
	}
	s := &Writer{w: w, rc: rc, timeout: writeTimeout}
	return s, s.Flush()
}

// Flush sends what is buffered.
func (s *Writer) Flush() error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	return s.rc.Flush()
}

// Event writes one event (typ "" for the default "message" type); it is
// buffered until Flush.
func (s *Writer) Event(id, typ string, data []byte) error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.w.Write(Format(id, typ, data))
	return err
}

// Format renders one event in the event-stream format.
func Format(id, typ string, data []byte) []byte {
	var b bytes.Buffer
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
	return b.Bytes()
}

// Comment writes and flushes a comment line: a heartbeat proxies see as
// traffic.
func (s *Writer) Comment(text string) error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.Flush()
}

// ErrorType is the event type of a StreamError.
const ErrorType = "error"

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

// Fail sends an error event and flushes; the caller then ends the stream.
func (s *Writer) Fail(e StreamError) {
	b, _ := json.Marshal(e)
	s.Event("", ErrorType, b)
	s.Flush()
}

// Event is one event read off a stream.
type Event struct {
	ID   string // the id field of this event ("" when it had none)
	Type string // "" for the default "message" type
	Data []byte // the data lines joined by "\n"
}

// Reader reads events from an event stream, refusing any line or event
// larger than MaxEvent, so a peer cannot make the reader buffer without
// bound.
type Reader struct {
	rd *bufio.Reader
}

// NewReader reads events from r.
func NewReader(r io.Reader) *Reader { return &Reader{rd: bufio.NewReaderSize(r, 64<<10)} }

// Next returns the next event, skipping comments and blank dispatches.
// The id is the event's own: as the browser's EventSource keeps the last
// id across events, a caller that needs that keeps it itself.
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	seen := false
	for {
		line, err := r.line()
		if err != nil {
			return Event{}, err
		}
		if line == "" {
			if seen {
				ev.Data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
				return ev, nil
			}
			ev = Event{}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (heartbeat)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Type, seen = value, true
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			seen = true
			if data.Len() > MaxEvent {
				return Event{}, errors.New("sse: event larger than 2 MiB")
			}
		}
	}
}

func (r *Reader) line() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.rd.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > MaxEvent {
			return "", errors.New("sse: line larger than 2 MiB")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}
