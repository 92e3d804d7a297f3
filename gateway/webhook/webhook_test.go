package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/outbound"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// fakeResolver answers from a table; anything else does not exist.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// receiver is a subscriber on loopback that counts what reaches it.
type receiver struct {
	*httptest.Server
	hits atomic.Int32
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		if h != nil {
			h(w, req)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func cidrs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// newHooks returns Webhooks on a fresh state whose client and registration
// check share one policy allowing allow, as the gateway wires them.
func newHooks(t *testing.T, db *state.DB, r outbound.Resolver, allow ...string) *Webhooks {
	t.Helper()
	if db == nil {
		var err error
		if db, err = state.Open(t.Context(), t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	}
	p := outbound.NewPolicy(cidrs(allow...))
	wh := &Webhooks{State: db, Policy: p, Resolver: r, Logger: slog.New(slog.DiscardHandler),
		Client: outbound.New(outbound.Options{Name: "webhook", Policy: p}), Timeout: time.Second}
	wh.defaults()
	return wh
}

func count(t *testing.T, wh *Webhooks) int {
	t.Helper()
	hooks, err := wh.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(hooks)
}

// TestCreateRefusesTargets: URLs that would make the gateway call inside
// the park's network, or that are no plain http(s) URLs, are refused with
// 400 naming url; nothing is stored.
func TestCreateRefusesTargets(t *testing.T) {
	wh := newHooks(t, nil, fakeResolver{
		"public.example":   {"93.184.216.34"},
		"internal.example": {"10.0.0.7"},
		"consul.example":   {"::ffff:127.0.0.1", "::1"},
	})
	for _, u := range []string{
		"http://127.0.0.1:8500/v1/kv/parkmesh/peers/rogue",
		"http://10.0.0.5/hook",
		"http://172.20.0.3:7101/api/v1/projects",
		"http://192.168.1.1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://100.100.100.200/",
		"http://[::1]:8500/v1/agent/self",
		"http://[::ffff:127.0.0.1]:8080/",
		"http://[fe80::1%25eth0]/",
		"http://[fd00:ec2::254]/",
		"http://0.0.0.0:8080/",
		"http://internal.example/hook",
		"http://consul.example:8500/",
		"http://localhost:8500/v1/kv/x", // the system's resolver is not asked: the table has no localhost
		"http://nowhere.example/hook",
		"ftp://public.example/hook",
		"javascript:alert(1)",
		"http:///hook",
		"https://user:pass@public.example/hook",
		"https://token@public.example/hook",
	} {
		_, err := wh.Create(t.Context(), u, "", feed.Filter{})
		if e := apierror.Public(err); e.Code != apierror.Invalid || e.Field != "url" {
			t.Errorf("Create(%s) = %v, want invalid naming url", u, err)
		}
	}
	if n := count(t, wh); n != 0 {
		t.Errorf("%d webhooks stored after refusals", n)
	}
	if _, err := wh.Create(t.Context(), "https://public.example/hook?k=v", "", feed.Filter{}); err != nil {
		t.Errorf("a public target: %v", err)
	}
	// localhost through the system's resolver.
	sys := newHooks(t, nil, nil)
	if _, err := sys.Create(t.Context(), "http://localhost:8500/v1/kv/x", "", feed.Filter{}); apierror.Public(err).Field != "url" {
		t.Errorf("localhost with the system's resolver: %v, want invalid naming url", err)
	}
}

// TestCreateAllowedByOperator: a range the operator allows is accepted.
func TestCreateAllowedByOperator(t *testing.T) {
	wh := newHooks(t, nil, nil, "127.0.0.0/8", "::1/128")
	for _, u := range []string{"http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook"} {
		if _, err := wh.Create(t.Context(), u, "", feed.Filter{}); err != nil {
			t.Errorf("Create(%s) with loopback allowed: %v", u, err)
		}
	}
}

// enqueue queues one event for hook and returns its delivery.
func enqueue(t *testing.T, wh *Webhooks, hook string) {
	t.Helper()
	if err := wh.State.Enqueue(t.Context(), []state.Queued{{Webhook: hook, EventID: "ev-" + hook, Event: []byte(`{"specversion":"1.0"}`)}}, "pos-"+hook); err != nil {
		t.Fatal(err)
	}
}

func onlyDelivery(t *testing.T, wh *Webhooks, hook string) Delivery {
	t.Helper()
	ds, err := wh.Deliveries(t.Context(), hook, "")
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries of %s: %+v, %v", hook, ds, err)
	}
	return ds[0]
}

// TestDeliveryRefusedAtDialTime: a target that passed registration but
// resolves to a denied address when delivered to (DNS rebinding), or whose
// allowance the operator has withdrawn, is refused when dialled: the
// receiver gets nothing and last_error says only that it was refused.
func TestDeliveryRefusedAtDialTime(t *testing.T) {
	rcv := newReceiver(t, nil)
	port := rcv.URL[strings.LastIndex(rcv.URL, ":")+1:]
	tests := []struct {
		name string
		url  string
		// register is the webhooks the target is registered with;
		// deliver (on the same state) those that deliver.
		register, deliver func(db *state.DB) *Webhooks
	}{
		{
			name: "name resolving to a public address at registration, loopback at delivery",
			url:  "http://localhost:" + port + "/hook",
			register: func(db *state.DB) *Webhooks {
				return newHooks(t, db, fakeResolver{"localhost": {"203.0.113.10"}})
			},
			deliver: func(db *state.DB) *Webhooks { return newHooks(t, db, nil) },
		},
		{
			name:     "loopback allowed at registration, no longer at delivery",
			url:      rcv.URL + "/hook",
			register: func(db *state.DB) *Webhooks { return newHooks(t, db, nil, "127.0.0.0/8") },
			deliver:  func(db *state.DB) *Webhooks { return newHooks(t, db, nil) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := tt.register(nil)
			h, err := reg.Create(t.Context(), tt.url, "", feed.Filter{})
			if err != nil {
				t.Fatalf("registration: %v", err)
			}
			enqueue(t, reg, h.ID)
			before := rcv.hits.Load()
			del := tt.deliver(reg.State)
			del.deliverDue(t.Context())
			if n := rcv.hits.Load() - before; n != 0 {
				t.Errorf("the receiver got %d requests", n)
			}
			d := onlyDelivery(t, del, h.ID)
			if d.Status != state.Pending || d.Attempts != 1 || d.LastError != LastErrorAddress {
				t.Errorf("delivery = %+v, want pending after 1 attempt with last_error %q", d, LastErrorAddress)
			}
		})
	}
}

// TestLastErrorIsGeneric: whatever the subscriber answers or whatever the
// connection does, last_error holds one generic text: no body, no status
// code, no address. Redirects are not followed.
func TestLastErrorIsGeneric(t *testing.T) {
	var stolen atomic.Int32
	elsewhere := newReceiver(t, func(http.ResponseWriter, *http.Request) { stolen.Add(1) })
	closed := newReceiver(t, nil)
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		url     string // instead of a receiver
		want    string
	}{
		{name: "500 with an internal body", want: LastError5xx, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Internal", "secret-internal")
			w.WriteHeader(500)
			io.WriteString(w, "secret-internal: db at 10.1.2.3:5432 refused")
		}},
		{name: "404 like a Consul API", want: LastError4xx, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(405)
			io.WriteString(w, "secret-internal method not allowed")
		}},
		{name: "307 to another server", want: LastErrorRedirect, handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/secret-internal", http.StatusTemporaryRedirect)
		}},
		{name: "too slow", want: LastErrorTimeout, handler: func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body) // then the server notices the client leave
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}},
		{name: "closed port", url: closedURL + "/hook", want: LastErrorConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if u == "" {
				u = newReceiver(t, tt.handler).URL + "/secret-internal-path"
			}
			wh := newHooks(t, nil, nil, "127.0.0.0/8")
			wh.Timeout = 300 * time.Millisecond
			h, err := wh.Create(t.Context(), u, "", feed.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, wh, h.ID)
			wh.deliverDue(t.Context())
			d := onlyDelivery(t, wh, h.ID)
			if d.LastError != tt.want {
				t.Errorf("last_error = %q, want %q", d.LastError, tt.want)
			}
			pu, _ := url.Parse(u)
			for _, leak := range []string{"secret-internal", pu.Host, pu.Port(), "10.1.2.3", "127.0.0.1"} {
				if strings.Contains(d.LastError, leak) {
					t.Errorf("last_error %q shows %q", d.LastError, leak)
				}
			}
		})
	}
	if stolen.Load() != 0 {
		t.Errorf("the redirect target was asked %d times", stolen.Load())
	}
}

// TestStoredDetailIsNotShown: a last_error an older version stored with
// detail reads as the generic LastErrorOther.
func TestStoredDetailIsNotShown(t *testing.T) {
	wh := newHooks(t, nil, fakeResolver{"public.example": {"93.184.216.34"}})
	h, err := wh.Create(t.Context(), "https://public.example/hook", "", feed.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, wh, h.ID)
	d := onlyDelivery(t, wh, h.ID)
	now := time.Now()
	if err := wh.State.MarkFailed(t.Context(), d.ID, state.Pending, 1, `post: Post "http://127.0.0.1:8500/v1/kv": dial tcp 127.0.0.1:8500: connect: connection refused`, now, now); err != nil {
		t.Fatal(err)
	}
	if got := onlyDelivery(t, wh, h.ID).LastError; got != LastErrorOther {
		t.Errorf("last_error = %q, want %q", got, LastErrorOther)
	}
}

// TestWebhookCap: the park's webhooks are capped; the one over the cap is
// a conflict naming the limit, and nothing more is stored.
func TestWebhookCap(t *testing.T) {
	wh := newHooks(t, nil, fakeResolver{"public.example": {"93.184.216.34"}})
	wh.MaxWebhooks = 3
	for i := range 3 {
		if _, err := wh.Create(t.Context(), "https://public.example/hook", "", feed.Filter{}); err != nil {
			t.Fatalf("webhook %d of 3: %v", i+1, err)
		}
	}
	_, err := wh.Create(t.Context(), "https://public.example/hook", "", feed.Filter{})
	var e *apierror.Error
	if !errors.As(err, &e) || e.Code != apierror.Conflict || !strings.Contains(e.Message, "3") || !strings.Contains(e.Message, "max-webhooks") {
		t.Errorf("the fourth webhook: %v, want a conflict naming the limit of 3", err)
	}
	if n := count(t, wh); n != 3 {
		t.Errorf("%d webhooks stored, want 3", n)
	}
}
