package cursor_test

import (
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/cursor"
)

type state struct {
	Query string `json:"q"`
	Page  int    `json:"p"`
}

func TestSealOpen(t *testing.T) {
	s := cursor.New([]byte("key one"))
	raw := s.Seal(state{Query: "abc", Page: 3})
	var got state
	if !s.Open(raw, 1024, &got) || got != (state{Query: "abc", Page: 3}) {
		t.Fatalf("round trip: ok=false or %+v", got)
	}
	payload, tag, _ := strings.Cut(raw, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"edited payload": flip(payload) + "." + tag,
		"edited tag":     payload + "." + flip(tag),
		"no tag":         payload,
		"garbage":        "%%%.###",
		"empty":          "",
		"too long":       raw + strings.Repeat("A", 2048),
	} {
		if s.Open(bad, 1024, &got) {
			t.Errorf("%s: opened", name)
		}
	}
	if cursor.New([]byte("key two")).Open(raw, 1024, &got) {
		t.Error("a cursor opened with another key")
	}
}
