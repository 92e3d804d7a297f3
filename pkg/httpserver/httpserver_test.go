package httpserver_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/httpserver"
)

// TestRequestLimits: a server made by New refuses oversized headers (431)
// and, behind LimitBody, oversized bodies: 413 with the error JSON naming
// body when Content-Length says so, a read error when a chunked body runs
// past the limit.
func TestRequestLimits(t *testing.T) {
	readErrs := make(chan error, 10)
	h := httpserver.LimitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErrs <- err
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), 1024)
	srv := httpserver.New(h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"

	post := func(body io.Reader, hdr string) *http.Response {
		req, _ := http.NewRequest("POST", url, body)
		if hdr != "" {
			req.Header.Set("X-Big", hdr)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := post(strings.NewReader(strings.Repeat("a", 1024)), ""); res.StatusCode != 204 || <-readErrs != nil {
		t.Errorf("body at the limit: %d", res.StatusCode)
	}
	res := post(strings.NewReader(strings.Repeat("a", 1025)), "")
	var body struct{ Error struct{ Code, Field string } }
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 413 || body.Error.Code != "invalid" || body.Error.Field != "body" {
		t.Errorf("body over the limit: %d %+v", res.StatusCode, body)
	}
	// Chunked: no Content-Length to refuse up front; the read fails.
	res = post(io.MultiReader(strings.NewReader(strings.Repeat("a", 4096))), "")
	res.Body.Close()
	if err := <-readErrs; res.StatusCode != 400 || err == nil {
		t.Errorf("chunked body over the limit: %d, read error %v", res.StatusCode, err)
	}
	res = post(nil, strings.Repeat("h", httpserver.MaxHeaderBytes+8192))
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %d, want 431", res.StatusCode)
	}
}
