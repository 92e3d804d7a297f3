package fedapi_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/fedapi"
	"github.com/parkmesh/parkmesh/gateway/peering"
)

// TestPendingEstablishIsBounded: the peering handshake needs no
// credential, so the handshakes in progress at once are bounded: with
// that many held open (a body that never finishes), the next is refused
// with 429 and Retry-After, and counted; once they end, handshakes are
// served again.
func TestPendingEstablishIsBounded(t *testing.T) {
	var mu sync.Mutex
	var limited []string
	api := &fedapi.API{Peering: &peering.Federation{Park: "xian-hitech"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxPendingEstablish: 2, Limited: func(l string) { mu.Lock(); limited = append(limited, l); mu.Unlock() }}
	mux := http.NewServeMux()
	api.Routes(mux, func(_ string, h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Two handshakes that send their headers and then stall mid-body.
	var stalled []net.Conn
	closeStalled := func() {
		for _, c := range stalled {
			c.Close()
		}
		stalled = nil
	}
	defer closeStalled() // before srv.Close, which waits for their handlers
	stall := func() {
		for range 2 {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "POST /federation/v1/peering/establish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
			stalled = append(stalled, c)
		}
	}
	establish := func() *http.Response {
		res, err := http.Post(srv.URL+"/federation/v1/peering/establish", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	refused := func() bool { mu.Lock(); defer mu.Unlock(); return len(limited) > 0 }
	deadline := time.Now().Add(20 * time.Second)
	var res *http.Response
	for {
		stall()
		for res = establish(); res.StatusCode != 429 && !refused() && time.Now().Before(deadline); res = establish() {
			time.Sleep(20 * time.Millisecond) // until both stalled ones hold their slot
		}
		if res.StatusCode == 429 || time.Now().After(deadline) {
			break
		}
		// A stalled handshake reached the server while a probe held the
		// other slot, and was refused itself (under load the server may
		// read it that late): start again.
		closeStalled()
		mu.Lock()
		limited = nil
		mu.Unlock()
	}
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third handshake: %d (Retry-After %q), want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	mu.Lock()
	if len(limited) == 0 || limited[0] != "pending_establish" {
		t.Errorf("counted %v, want pending_establish", limited)
	}
	mu.Unlock()
	closeStalled()
	for res = establish(); res.StatusCode == 429 && time.Now().Before(deadline.Add(5*time.Second)); res = establish() {
		time.Sleep(20 * time.Millisecond)
	}
	if res.StatusCode != 401 {
		t.Errorf("after the stalled ones ended: %d, want the handshake's own 401", res.StatusCode)
	}
}
