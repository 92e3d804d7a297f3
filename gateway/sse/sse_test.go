package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		id, typ, data string
		want          string
	}{
		{"", "", "hello", "data: hello\n\n"},
		{"v1.1.2.3", "", `{"a":1}`, "id: v1.1.2.3\ndata: {\"a\":1}\n\n"},
		{"7", "error", "x", "id: 7\nevent: error\ndata: x\n\n"},
		{"", "", "one\ntwo\n\nfour", "data: one\ndata: two\ndata: \ndata: four\n\n"},
		{"", "", "", "data: \n\n"},
	}
	for _, tt := range tests {
		if got := string(Format(tt.id, tt.typ, []byte(tt.data))); got != tt.want {
			t.Errorf("Format(%q, %q, %q) = %q, want %q", tt.id, tt.typ, tt.data, got, tt.want)
		}
	}
}

// readEvents reads every event of stream until EOF.
func readEvents(t *testing.T, stream string) []Event {
	t.Helper()
	r := NewReader(strings.NewReader(stream))
	var out []Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, ev)
	}
}

func TestFormatReaderRoundTrip(t *testing.T) {
	events := []Event{
		{ID: "v1.0.1.0", Data: []byte(`{"specversion":"1.0"}`)},
		{ID: "", Type: "error", Data: []byte(`{"code":"shutting_down"}`)},
		{ID: "2", Data: []byte("line one\nline two\n\nline four")},
		{ID: "3", Data: []byte("trailing newline\n")},
		{ID: "4", Data: []byte("data: looks like a field\n: looks like a comment")},
		{ID: "5", Data: []byte("长 unicode ✓")},
		{ID: "6", Data: []byte{}},
	}
	var stream bytes.Buffer
	stream.WriteString(": a comment before anything\n\n")
	for _, ev := range events {
		stream.Write(Format(ev.ID, ev.Type, ev.Data))
		stream.WriteString(": heartbeat\n\n")
	}
	got := readEvents(t, stream.String())
	if len(got) != len(events) {
		t.Fatalf("read %d events, want %d: %q", len(got), len(events), got)
	}
	for i := range events {
		if got[i].ID != events[i].ID || got[i].Type != events[i].Type || !bytes.Equal(got[i].Data, events[i].Data) {
			t.Errorf("event %d = {%q %q %q}, want {%q %q %q}", i, got[i].ID, got[i].Type, got[i].Data, events[i].ID, events[i].Type, events[i].Data)
		}
	}
}

func TestReaderFields(t *testing.T) {
	tests := []struct {
		name, stream string
		want         []Event
	}{
		{"no space after the colon", "id:1\nevent:x\ndata:a\n\n", []Event{{ID: "1", Type: "x", Data: []byte("a")}}},
		{"only one leading space is dropped", "data:  a\n\n", []Event{{Data: []byte(" a")}}},
		{"field without a colon", "data\ndata\n\n", []Event{{Data: []byte("\n")}}},
		{"CRLF line ends", "id: 1\r\ndata: a\r\n\r\n", []Event{{ID: "1", Data: []byte("a")}}},
		{"unknown fields and retry ignored", "retry: 10\nfoo: bar\ndata: a\n\n", []Event{{Data: []byte("a")}}},
		{"comments between fields", "id: 1\n: keep-alive\ndata: a\n\n", []Event{{ID: "1", Data: []byte("a")}}},
		{"the id is the event's own", "id: 1\ndata: a\n\ndata: b\n\n", []Event{{ID: "1", Data: []byte("a")}, {Data: []byte("b")}}},
		{"an id without data is no event", "id: 9\n\ndata: b\n\n", []Event{{Data: []byte("b")}}},
		{"blank lines alone", "\n\n\n", nil},
		{"an unfinished event at EOF is dropped", "data: a\n\ndata: b\n", []Event{{Data: []byte("a")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readEvents(t, tt.stream)
			if len(got) != len(tt.want) {
				t.Fatalf("events = %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i].ID != tt.want[i].ID || got[i].Type != tt.want[i].Type || !bytes.Equal(got[i].Data, tt.want[i].Data) {
					t.Errorf("event %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReaderRefusesOversize(t *testing.T) {
	big := strings.Repeat("x", MaxEvent)
	tests := []struct {
		name, stream string
	}{
		{"one line over 2 MiB", "data: " + big + "\n\n"},
		{"many lines over 2 MiB together", strings.Repeat("data: "+strings.Repeat("y", 768<<10)+"\n", 3) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.stream))
			_, err := r.Next()
			if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "2 MiB") {
				t.Errorf("Next = %v, want an error about 2 MiB", err)
			}
		})
	}
	// Just under the bound is fine.
	ok := "data: " + strings.Repeat("z", MaxEvent-len("data: ")) + "\n\n"
	if got := readEvents(t, ok); len(got) != 1 || len(got[0].Data) != MaxEvent-len("data: ") {
		t.Errorf("an event just under 2 MiB was not read whole")
	}
}

// The Writer over a real HTTP server: headers, events, comments and the
// error event, read back with the Reader.
func TestWriter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Start(w, r, time.Second)
		if err != nil {
			t.Errorf("Start: %v", err)
			return
		}
		s.Event("1", "", []byte("first\nsecond"))
		s.Flush()
		s.Comment("heartbeat")
		s.Event("2", "custom", []byte(`{"n":2}`))
		s.Fail(StreamError{Code: "shutting_down", Message: "bye", ResumeID: "2"})
	}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	body, _ := io.ReadAll(res.Body)
	if !bytes.Contains(body, []byte("\n: heartbeat\n\n")) {
		t.Errorf("no heartbeat comment in %q", body)
	}
	got := readEvents(t, string(body))
	if len(got) != 3 {
		t.Fatalf("events = %q", got)
	}
	if got[0].ID != "1" || string(got[0].Data) != "first\nsecond" || got[1].ID != "2" || got[1].Type != "custom" {
		t.Errorf("events = %q", got)
	}
	var se StreamError
	if got[2].Type != ErrorType || json.Unmarshal(got[2].Data, &se) != nil || se != (StreamError{Code: "shutting_down", Message: "bye", ResumeID: "2"}) {
		t.Errorf("error event = %q", got[2])
	}
	if keys := jsonKeys(t, got[2].Data); !slices.Equal(keys, []string{"code", "message", "resume_id"}) {
		t.Errorf("error event fields = %v (resync omitted when empty)", keys)
	}
}

func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
