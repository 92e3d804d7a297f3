package outbound_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parkmesh/parkmesh/gateway/outbound"
	"github.com/parkmesh/parkmesh/pkg/cliflag"
)

// refusals counts what a client reports refused, by "client/reason".
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) count(client, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[client+"/"+reason]++
}

func (r *refusals) get(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

// TestRedirectsAreNotFollowed: whatever the redirect status, method and
// target (another host or the same one), the client hands the 3xx back, the
// target is never asked, and neither the token nor the signature reaches it.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var secondHits, sameHostHits atomic.Int32
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secondHits.Add(1)
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-ParkMesh-Signature") != "" {
			t.Errorf("credentials reached the redirect target: %v", r.Header)
		}
	}))
	defer second.Close()
	var first *httptest.Server
	first = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			sameHostHits.Add(1)
			return
		}
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		to := second.URL + "/stolen"
		if r.URL.Query().Get("same") != "" {
			to = first.URL + "/elsewhere"
		}
		http.Redirect(w, r, to, code)
	}))
	defer first.Close()

	var refused refusals
	c := outbound.New(outbound.Options{Name: "test", Refused: refused.count})
	n := 0
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, method := range []string{"GET", "POST"} {
			for _, same := range []string{"", "1"} {
				n++
				req, _ := http.NewRequest(method, first.URL+"/start?code="+strconv.Itoa(code)+"&same="+same, strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer secret-token")
				req.Header.Set("X-ParkMesh-Signature", "t=1,v1=abc")
				res, err := c.Do(req)
				if err != nil {
					t.Fatalf("%d %s same=%q: %v", code, method, same, err)
				}
				res.Body.Close()
				if res.StatusCode != code {
					t.Errorf("%d %s same=%q: status %d, want the redirect itself", code, method, same, res.StatusCode)
				}
			}
		}
	}
	if secondHits.Load() != 0 || sameHostHits.Load() != 0 {
		t.Errorf("redirect targets were asked: other host %d times, same host %d times", secondHits.Load(), sameHostHits.Load())
	}
	if got := refused.get("test/" + outbound.RefusedRedirect); got != n {
		t.Errorf("refusals counted %d, want %d", got, n)
	}
}

func TestPolicyCheck(t *testing.T) {
	cidrs := func(ss ...string) []netip.Prefix {
		var ps outbound.Prefixes
		for _, s := range ss {
			if err := ps.Set(s); err != nil {
				t.Fatal(err)
			}
		}
		return ps
	}
	tests := []struct {
		addr  string
		allow []netip.Prefix
		ok    bool
	}{
		{"8.8.8.8", nil, true},
		{"93.184.216.34", nil, true},
		{"2606:4700:4700::1111", nil, true},
		{"172.32.0.1", nil, true},
		{"100.128.0.1", nil, true},
		{"203.0.113.10", nil, true},
		{"127.0.0.1", nil, false},
		{"127.255.255.254", nil, false},
		{"10.1.2.3", nil, false},
		{"172.16.0.1", nil, false},
		{"172.31.255.255", nil, false},
		{"192.168.1.1", nil, false},
		{"169.254.1.1", nil, false},
		{"169.254.169.254", nil, false},
		{"100.64.0.1", nil, false},
		{"100.100.100.200", nil, false},
		{"0.0.0.0", nil, false},
		{"224.0.0.1", nil, false},
		{"239.255.255.250", nil, false},
		{"255.255.255.255", nil, false},
		{"198.18.0.1", nil, false},
		{"::1", nil, false},
		{"::", nil, false},
		{"::ffff:127.0.0.1", nil, false},
		{"::ffff:10.0.0.1", nil, false},
		{"::ffff:169.254.169.254", nil, false},
		{"fe80::1", nil, false},
		{"fe80::1%eth0", nil, false},
		{"fc00::1", nil, false},
		{"fd12:3456::1", nil, false},
		{"fd00:ec2::254", nil, false},
		{"ff02::1", nil, false},
		{"64:ff9b::7f00:1", nil, false},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", nil, false}, // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", nil, true},    // NAT64 of 8.8.8.8
		{"2002:7f00:1::1", nil, false},     // 6to4 of 127.0.0.1
		// Allowed by the operator.
		{"127.0.0.1", cidrs("127.0.0.0/8"), true},
		{"::ffff:127.0.0.1", cidrs("127.0.0.0/8"), true},
		{"::1", cidrs("127.0.0.0/8"), false},
		{"::1", cidrs("::1/128"), true},
		{"10.1.2.3", cidrs("10.1.0.0/16"), true},
		{"10.2.0.1", cidrs("10.1.0.0/16"), false},
		{"64:ff9b::7f00:1", cidrs("127.0.0.0/8"), true},
		// Metadata only as itself.
		{"169.254.169.254", cidrs("169.254.0.0/16"), false},
		{"169.254.169.254", cidrs("0.0.0.0/0"), false},
		{"169.254.1.1", cidrs("169.254.0.0/16"), true},
		{"169.254.169.254", cidrs("169.254.169.254"), true},
		{"fd00:ec2::254", cidrs("fc00::/7"), false},
		{"fd00:ec2::254", cidrs("fd00:ec2::254/128"), true},
	}
	for _, tt := range tests {
		p := outbound.NewPolicy(tt.allow)
		err := p.Check(netip.MustParseAddr(tt.addr))
		if got := err == nil; got != tt.ok {
			t.Errorf("Check(%s) with allow %v = %v, want allowed %v", tt.addr, tt.allow, err, tt.ok)
		}
		if err != nil && !errors.Is(err, outbound.ErrAddressDenied) {
			t.Errorf("Check(%s) = %v, not ErrAddressDenied", tt.addr, err)
		}
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func serveOn(t *testing.T, network, addr string) (*countingListener, string) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", addr, err)
	}
	cl := &countingListener{Listener: ln}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return cl, port
}

// TestDialTimeRefusal: a client with a policy refuses to connect to a
// denied address however it is written (literal, IPv4-mapped, a name that
// resolves to it); the receiver accepts no connection. Allowed by the
// operator, the same receivers are reached.
func TestDialTimeRefusal(t *testing.T) {
	v4, port4 := serveOn(t, "tcp4", "127.0.0.1:0")
	tests := []struct {
		name string
		url  string
		ln   *countingListener
	}{
		{"loopback literal", "http://127.0.0.1:" + port4 + "/hook", v4},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port4 + "/hook", v4},
		{"name resolving to loopback", "http://localhost:" + port4 + "/hook", v4},
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		v6, port6 := serveOn(t, "tcp6", "[::1]:0")
		tests = append(tests, struct {
			name string
			url  string
			ln   *countingListener
		}{"IPv6 loopback", "http://[::1]:" + port6 + "/hook", v6})
	}
	var refused refusals
	denyAll := outbound.New(outbound.Options{Name: "webhook", Policy: outbound.NewPolicy(nil), Refused: refused.count})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, counted := tt.ln.accepted.Load(), refused.get("webhook/"+outbound.RefusedAddress)
			res, err := denyAll.Post(tt.url, "application/json", strings.NewReader("{}"))
			if err == nil {
				res.Body.Close()
				t.Fatalf("POST %s: %s, want a refused dial", tt.url, res.Status)
			}
			if !errors.Is(err, outbound.ErrAddressDenied) {
				t.Errorf("POST %s: %v, want ErrAddressDenied", tt.url, err)
			}
			if n := tt.ln.accepted.Load() - before; n != 0 {
				t.Errorf("the receiver accepted %d connections", n)
			}
			if refused.get("webhook/"+outbound.RefusedAddress) == counted {
				t.Error("the refusal was not counted")
			}
		})
	}
	allow := outbound.New(outbound.Options{Name: "webhook", Policy: outbound.NewPolicy([]netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})})
	for _, tt := range tests {
		res, err := allow.Post(tt.url, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Errorf("%s allowed by the operator: %v", tt.name, err)
			continue
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s allowed by the operator: %s", tt.name, res.Status)
		}
	}
}

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

func TestCheckHost(t *testing.T) {
	r := fakeResolver{
		"public.example":   {"93.184.216.34"},
		"internal.example": {"10.0.0.7", "::ffff:127.0.0.1"},
		"mixed.example":    {"10.0.0.7", "93.184.216.34"},
		"metadata.example": {"169.254.169.254"},
	}
	p := outbound.NewPolicy(nil)
	tests := []struct {
		host   string
		denied bool
		other  bool // an error other than ErrAddressDenied
	}{
		{"public.example", false, false},
		{"mixed.example", false, false}, // the dial skips the denied address
		{"93.184.216.34", false, false},
		{"internal.example", true, false},
		{"metadata.example", true, false},
		{"127.0.0.1", true, false},
		{"10.0.0.5", true, false},
		{"169.254.169.254", true, false},
		{"::1", true, false},
		{"::ffff:127.0.0.1", true, false},
		{"nowhere.example", false, true},
	}
	for _, tt := range tests {
		err := p.CheckHost(t.Context(), r, tt.host)
		switch {
		case tt.denied && !errors.Is(err, outbound.ErrAddressDenied):
			t.Errorf("CheckHost(%s) = %v, want ErrAddressDenied", tt.host, err)
		case tt.other && (err == nil || errors.Is(err, outbound.ErrAddressDenied)):
			t.Errorf("CheckHost(%s) = %v, want a resolution error", tt.host, err)
		case !tt.denied && !tt.other && err != nil:
			t.Errorf("CheckHost(%s) = %v, want nil", tt.host, err)
		}
	}
	// The system's resolver: localhost is loopback.
	if err := p.CheckHost(t.Context(), net.DefaultResolver, "localhost"); !errors.Is(err, outbound.ErrAddressDenied) {
		t.Errorf("CheckHost(localhost) = %v, want ErrAddressDenied", err)
	}
}

func TestPrefixesFlag(t *testing.T) {
	parse := func(args []string, env map[string]string) (outbound.Prefixes, error) {
		var ps outbound.Prefixes
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(&ps, "webhook-allow-cidr", "")
		err := cliflag.Parse(fs, args, func(k string) string { return env[k] })
		return ps, err
	}
	tests := []struct {
		args []string
		env  map[string]string
		want string // the prefixes, or "error"
	}{
		{nil, nil, ""},
		{[]string{"-webhook-allow-cidr", "127.0.0.0/8"}, nil, "127.0.0.0/8"},
		{[]string{"-webhook-allow-cidr", "127.0.0.0/8", "-webhook-allow-cidr", "::1/128"}, nil, "127.0.0.0/8,::1/128"},
		{[]string{"-webhook-allow-cidr", "127.0.0.0/8, 10.1.0.0/16"}, nil, "127.0.0.0/8,10.1.0.0/16"},
		{[]string{"-webhook-allow-cidr", "169.254.169.254"}, nil, "169.254.169.254/32"},
		{nil, map[string]string{"PARKMESH_WEBHOOK_ALLOW_CIDR": "127.0.0.0/8,::1/128"}, "127.0.0.0/8,::1/128"},
		{[]string{"-webhook-allow-cidr", "127.0.0.1/8"}, nil, "error"},
		{[]string{"-webhook-allow-cidr", "loopback"}, nil, "error"},
		{nil, map[string]string{"PARKMESH_WEBHOOK_ALLOW_CIDR": "10.0.0.0/33"}, "error"},
	}
	for _, tt := range tests {
		ps, err := parse(tt.args, tt.env)
		got := ps.String()
		if err != nil {
			got = "error"
			if !strings.Contains(err.Error(), "webhook-allow-cidr") {
				t.Errorf("%v %v: error %q does not name the flag", tt.args, tt.env, err)
			}
		}
		if got != tt.want {
			t.Errorf("%v %v: %q, want %q", tt.args, tt.env, got, tt.want)
		}
	}
}
