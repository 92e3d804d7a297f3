package listingservice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
	"github.com/parkmesh/parkmesh/pkg/telemetry"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// newListing is validBody(k) as a listing, changed by edit.
func newListing(t *testing.T, k listing.Kind, edit func(b map[string]any)) *listing.Listing {
	t.Helper()
	b := validBody(k)
	if edit != nil {
		edit(b)
	}
	buf, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := listing.Decode(strings.NewReader(string(buf)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// inProcess is the service as the server runs it, on its own SQLite file.
func inProcess(t *testing.T, k listing.Kind) listingservice.Service {
	t.Helper()
	st, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "inproc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return listingservice.New(k, "xian-hitech", st)
}

// overHTTP is the client half pointed at the real Main, served on loopback
// with its own SQLite file.
func overHTTP(t *testing.T, spec listingservice.Spec) listingservice.Service {
	t.Helper()
	base, _ := startService(t, spec, t.TempDir())
	svc, err := listingservice.NewHTTPClient(strings.TrimPrefix(base, "http://"), &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// contractRun is one pass of the contract table over one Service. Ids and
// times differ between passes, so results are compared by the names the
// table gave the listings.
type contractRun struct {
	svc     listingservice.Service
	ids     map[string]string // table name → id
	names   map[string]string // id → table name
	marks   map[string]time.Time
	cursor  string
	lastSeq int64
}

func (r *contractRun) name(id string) string {
	if n, ok := r.names[id]; ok {
		return n
	}
	return "?" + id
}

// view is a listing as the contract compares it: the server-chosen id and
// times vary between runs, so they are checked for form, then left out.
func (r *contractRun) view(t *testing.T, l *listing.Listing) string {
	t.Helper()
	if l == nil {
		return "<nil>"
	}
	c := *l
	if !listing.ValidID(c.Kind, c.ID) || c.CreatedAt.IsZero() || c.UpdatedAt.Before(c.CreatedAt) {
		t.Errorf("listing id %q created %s updated %s: not what a store sets", c.ID, c.CreatedAt, c.UpdatedAt)
	}
	c.ID, c.CreatedAt, c.UpdatedAt = r.name(l.ID), time.Time{}, time.Time{}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (r *contractRun) pageView(t *testing.T, p *listing.Page) string {
	t.Helper()
	var out []string
	for _, l := range p.Results {
		out = append(out, r.view(t, l))
	}
	return fmt.Sprintf("%d results, more: %v\n%s", len(p.Results), p.NextCursor != "", strings.Join(out, "\n"))
}

func (r *contractRun) changesView(t *testing.T, p *listingservice.ChangesPage) string {
	t.Helper()
	out := []string{fmt.Sprintf("from %d next %d", p.From, p.Next)}
	for _, c := range p.Changes {
		if c.At.IsZero() {
			t.Errorf("change %d has no time", c.Seq)
		}
		out = append(out, fmt.Sprintf("%d %s %s/%s/%s v%d first %d audience %+v %s", c.Seq, c.Op, c.Park, c.Kind, r.name(c.ListingID),
			c.Version, c.FirstSeq, c.Audience, r.view(t, c.Listing)))
	}
	if len(p.Changes) > 0 {
		r.lastSeq = p.Changes[len(p.Changes)-1].Seq
	}
	return strings.Join(out, "\n")
}

type contractOp struct {
	name string
	do   func(ctx context.Context, t *testing.T, r *contractRun) (string, error)
}

// contractOps are the operations both halves must answer alike: values, and
// errors' codes, fields and messages. They run in order on one service.
func contractOps(k listing.Kind) []contractOp {
	unknown := listing.NewID(k, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	create := func(name string, edit func(map[string]any)) func(context.Context, *testing.T, *contractRun) (string, error) {
		return func(ctx context.Context, t *testing.T, r *contractRun) (string, error) {
			l, err := r.svc.Create(ctx, newListing(t, k, edit))
			if err != nil {
				return "", err
			}
			r.ids[name], r.names[l.ID] = l.ID, name
			return r.view(t, l), nil
		}
	}
	get := func(id func(*contractRun) string) func(context.Context, *testing.T, *contractRun) (string, error) {
		return func(ctx context.Context, t *testing.T, r *contractRun) (string, error) {
			l, err := r.svc.Get(ctx, id(r))
			return r.view(t, l), err
		}
	}
	update := func(id func(*contractRun) string, ifVersion int64, edit func(map[string]any)) func(context.Context, *testing.T, *contractRun) (string, error) {
		return func(ctx context.Context, t *testing.T, r *contractRun) (string, error) {
			l, err := r.svc.Update(ctx, id(r), newListing(t, k, edit), ifVersion)
			return r.view(t, l), err
		}
	}
	search := func(q func(*contractRun) listing.Query) func(context.Context, *testing.T, *contractRun) (string, error) {
		return func(ctx context.Context, t *testing.T, r *contractRun) (string, error) {
			p, err := r.svc.Search(ctx, q(r))
			if err != nil {
				return "", err
			}
			r.cursor = p.NextCursor
			return r.pageView(t, p), nil
		}
	}
	changes := func(after func(*contractRun) int64, limit int, wait time.Duration) func(context.Context, *testing.T, *contractRun) (string, error) {
		return func(ctx context.Context, t *testing.T, r *contractRun) (string, error) {
			p, err := r.svc.Changes(ctx, after(r), limit, wait)
			if err != nil {
				return "", err
			}
			return r.changesView(t, p), nil
		}
	}
	idOf := func(name string) func(*contractRun) string { return func(r *contractRun) string { return r.ids[name] } }
	fixed := func(id string) func(*contractRun) string { return func(*contractRun) string { return id } }
	set := func(key string, v any) func(map[string]any) { return func(b map[string]any) { b[key] = v } }
	return []contractOp{
		{"create", create("a", nil)},
		{"create another", create("b", func(b map[string]any) {
			b["title"], b["sectors"], b["country"] = "AI 芯片 lab", []string{"ai", "semiconductors"}, "DE"
		})},
		{"create: sector outside vocabulary", create("x", set("sectors", []string{"space-mining"}))},
		{"create: no title", create("x", func(b map[string]any) { delete(b, "title") })},
		{"create: another service's kind", create("x", set("kind", "organization"))},
		{"get", get(idOf("a"))},
		{"get: unknown id", get(fixed(unknown))},
		{"get: malformed id", get(fixed("nope/../x?y"))},
		{"mark the time", func(_ context.Context, _ *testing.T, r *contractRun) (string, error) {
			// Apart from the changes on either side, whatever the clock's grain.
			time.Sleep(20 * time.Millisecond)
			r.marks["before update"] = time.Now()
			time.Sleep(20 * time.Millisecond)
			return "", nil
		}},
		{"update if version 1", update(idOf("a"), 1, set("title", "更新 Updated"))},
		{"update: stale If-Match", update(idOf("a"), 1, set("title", "stale write"))},
		{"update: id differs from the path's", update(idOf("a"), 0, set("id", unknown))},
		{"update: unknown id", update(fixed(unknown), 0, nil)},
		{"update: invalid", update(idOf("a"), 0, set("country", "XX"))},
		{"get the update", get(idOf("a"))},
		{"share with one peer only", update(idOf("b"), 0, func(b map[string]any) {
			b["title"], b["visibility"], b["share_with"] = "AI 芯片 lab", "peers", []string{"chengdu-hitech"}
		})},
		{"search: all", search(func(*contractRun) listing.Query { return listing.Query{} })},
		{"search: by sector and country", search(func(*contractRun) listing.Query {
			return listing.Query{Sectors: []string{"ai"}, Country: "DE"}
		})},
		{"search: first page", search(func(*contractRun) listing.Query { return listing.Query{Limit: 1} })},
		{"search: next page", search(func(r *contractRun) listing.Query { return listing.Query{Limit: 1, Cursor: r.cursor} })},
		{"search: bad cursor", search(func(*contractRun) listing.Query { return listing.Query{Cursor: "eyJxIjoiMDAifQ.AAAA"} })},
		{"changes", changes(func(*contractRun) int64 { return 0 }, 10, 0)},
		{"changes: default limit", changes(func(*contractRun) int64 { return 1 }, 0, 0)},
		{"seq before the mark", func(ctx context.Context, _ *testing.T, r *contractRun) (string, error) {
			seq, err := r.svc.SeqBefore(ctx, r.marks["before update"])
			return strconv.FormatInt(seq, 10), err
		}},
		{"seq before any change", func(ctx context.Context, _ *testing.T, r *contractRun) (string, error) {
			seq, err := r.svc.SeqBefore(ctx, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
			return strconv.FormatInt(seq, 10), err
		}},
		{"delete: stale If-Match", func(ctx context.Context, _ *testing.T, r *contractRun) (string, error) {
			return "", r.svc.Delete(ctx, r.ids["a"], 1)
		}},
		{"delete if version 2", func(ctx context.Context, _ *testing.T, r *contractRun) (string, error) {
			return "", r.svc.Delete(ctx, r.ids["a"], 2)
		}},
		{"get: deleted", get(idOf("a"))},
		{"delete: unknown id", func(ctx context.Context, _ *testing.T, r *contractRun) (string, error) {
			return "", r.svc.Delete(ctx, unknown, 0)
		}},
		{"changes since the last read", changes(func(r *contractRun) int64 { return r.lastSeq }, 10, 0)},
		{"changes: nothing new within the wait", changes(func(r *contractRun) int64 { return r.lastSeq }, 10, 50*time.Millisecond)},
		{"ready", func(ctx context.Context, _ *testing.T, r *contractRun) (string, error) {
			return "", r.svc.Ready(ctx)
		}},
	}
}

type contractResult struct {
	value                string
	code                 apierror.Code
	field, message, text string
}

func (c contractResult) String() string {
	if c.code == "" {
		return "ok: " + c.value
	}
	return fmt.Sprintf("error %s field %q message %q (%s)", c.code, c.field, c.message, c.text)
}

func runContract(t *testing.T, svc listingservice.Service, ops []contractOp) []contractResult {
	t.Helper()
	r := &contractRun{svc: svc, ids: map[string]string{}, names: map[string]string{}, marks: map[string]time.Time{}}
	var out []contractResult
	for _, op := range ops {
		v, err := op.do(t.Context(), t, r)
		res := contractResult{value: v}
		if err != nil {
			if listingservice.IsTransport(err) {
				t.Fatalf("%s: transport failure %v", op.name, err)
			}
			pub := apierror.Public(err)
			res = contractResult{code: pub.Code, field: pub.Field, message: pub.Message, text: err.Error()}
		}
		out = append(out, res)
	}
	// Messages name listings by id; the ids differ between runs.
	for i := range out {
		for id, name := range r.names {
			out[i].message = strings.ReplaceAll(out[i].message, id, "<"+name+">")
			out[i].text = strings.ReplaceAll(out[i].text, id, "<"+name+">")
		}
	}
	return out
}

// The client half is the service: the same operations give the same
// values and the same errors in process and over HTTP.
func TestClientContract(t *testing.T) {
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			ops := contractOps(spec.Kind)
			want := runContract(t, inProcess(t, spec.Kind), ops)
			got := runContract(t, overHTTP(t, spec), ops)
			for i, op := range ops {
				if got[i] != want[i] {
					t.Errorf("%s:\nover HTTP  %v\nin process %v", op.name, got[i], want[i])
				}
			}
			// The table must exercise the errors it is meant to compare.
			codes := map[apierror.Code][]string{}
			for i, w := range want {
				if w.code != "" {
					codes[w.code] = append(codes[w.code], w.field)
				}
				if strings.Contains(w.value, "?") && strings.Contains(w.value, `"id":"?`) {
					t.Errorf("%s: a listing the table did not create: %s", ops[i].name, w.value)
				}
			}
			for _, c := range []struct {
				code  apierror.Code
				field string
			}{
				{apierror.NotFound, ""}, {apierror.PreconditionFailed, ""}, {apierror.Invalid, "cursor"},
				{apierror.Invalid, "sectors[0]"}, {apierror.Invalid, "title"}, {apierror.Invalid, "id"},
			} {
				if !strings.Contains(strings.Join(codes[c.code], ","), c.field) || len(codes[c.code]) == 0 {
					t.Errorf("no %s error on field %q in the table: %v", c.code, c.field, codes)
				}
			}
		})
	}
}

// A client instance given as a base URL reaches the same service.
func TestNewHTTPClientInstanceForms(t *testing.T) {
	base, _ := startService(t, specs[0], t.TempDir())
	for _, inst := range []string{strings.TrimPrefix(base, "http://"), base, base + "/"} {
		svc, err := listingservice.NewHTTPClient(inst, nil)
		if err != nil {
			t.Fatalf("%q: %v", inst, err)
		}
		if err := svc.Ready(t.Context()); err != nil {
			t.Errorf("%q: Ready: %v", inst, err)
		}
	}
	for _, inst := range []string{"", "ftp://127.0.0.1:7101", "http://", "http://127.0.0.1:7101/?x=1", "http://u:p@127.0.0.1:7101", "127.0.0.1:port"} {
		if _, err := listingservice.NewHTTPClient(inst, nil); err == nil {
			t.Errorf("NewHTTPClient(%q) accepted", inst)
		}
	}
}

// unusedAddr is a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	ports, err := localproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(ports[0])
}

// wantTransport checks err is a transport failure with the given code.
func wantTransport(t *testing.T, what string, err error, code apierror.Code) *listingservice.TransportError {
	t.Helper()
	var te *listingservice.TransportError
	if !listingservice.IsTransport(err) || !errors.As(err, &te) {
		t.Fatalf("%s: err = %v (%T), want a transport failure", what, err, err)
	}
	if got := apierror.CodeOf(err); got != code {
		t.Errorf("%s: code %s, want %s", what, got, code)
	}
	if pub := apierror.Public(err); strings.Contains(pub.Message, "127.0.0.1") {
		t.Errorf("%s: public message %q names the instance", what, pub.Message)
	}
	return te
}

// Failures a balancer should retry elsewhere are transport failures; the
// service's verdicts are not.
func TestTransportFailuresAreToldFromVerdicts(t *testing.T) {
	ctx := t.Context()
	spec := specs[1]

	t.Run("connection refused", func(t *testing.T) {
		svc, err := listingservice.NewHTTPClient(unusedAddr(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Create(ctx, newListing(t, spec.Kind, nil))
		te := wantTransport(t, "create", err, apierror.Unavailable)
		if !te.Refused() || te.Status != 0 || te.Op != "POST /v1/listings" {
			t.Errorf("refused = %v, status %d, op %q", te.Refused(), te.Status, te.Op)
		}
	})

	t.Run("search text stays out of the error", func(t *testing.T) {
		svc, err := listingservice.NewHTTPClient(unusedAddr(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Search(ctx, listing.Query{Text: "secret-merger-target"})
		te := wantTransport(t, "search", err, apierror.Unavailable)
		if strings.Contains(te.Error(), "secret-merger-target") || !strings.Contains(te.Error(), "/v1/listings") {
			t.Errorf("error %q: want the route, not the query text (errors end up in logs)", te.Error())
		}
	})

	t.Run("instance unavailable (503)", func(t *testing.T) {
		// A real instance whose store is gone: its readiness says 503.
		m := listingservice.NewMain(spec, io.Discard)
		if err := m.ParseFlags([]string{"-listen", "127.0.0.1:0", "-data-dir", t.TempDir(), "-park", "xian-hitech", "-consul", "off"}, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		if err := m.Open(ctx); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(m.Handler())
		t.Cleanup(srv.Close)
		svc, err := listingservice.NewHTTPClient(srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Ready(ctx); err != nil {
			t.Fatalf("ready before the store closed: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		err = svc.Ready(ctx)
		te := wantTransport(t, "ready", err, apierror.Unavailable)
		if te.Status != http.StatusServiceUnavailable || te.Refused() {
			t.Errorf("status %d refused %v", te.Status, te.Refused())
		}
		// The service's own reason survives for the caller.
		if msg := apierror.Public(err).Message; msg != "store unreachable" {
			t.Errorf("public message %q", msg)
		}
	})

	t.Run("not found is a verdict", func(t *testing.T) {
		svc := overHTTP(t, spec)
		_, err := svc.Get(ctx, listing.NewID(spec.Kind, time.Now()))
		if listingservice.IsTransport(err) || !apierror.Is(err, apierror.NotFound) {
			t.Fatalf("err = %v, want a NotFound verdict", err)
		}
		var e *apierror.Error
		if !errors.As(err, &e) || e.Message == "" {
			t.Errorf("err %v is not the service's *apierror.Error", err)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		svc := overHTTP(t, spec)
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		_, err := svc.Changes(ctx, 0, 10, 20*time.Second) // a long-poll with nothing to come
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("the call outlived its deadline by %s", took)
		}
		wantTransport(t, "changes", err, apierror.Timeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v does not wrap context.DeadlineExceeded", err)
		}
	})

	// What answers below is not the service: something in between, or an
	// instance gone wrong. No real part behaves so on demand.
	huge := strings.Repeat("x", 9<<20)
	for _, c := range []struct {
		name      string
		status    int
		body      string
		transport bool
		code      apierror.Code
	}{
		{"502 from a proxy", http.StatusBadGateway, "<html>Bad Gateway</html>", true, apierror.Unavailable},
		{"504 from a proxy", http.StatusGatewayTimeout, "", true, apierror.Timeout},
		{"500 without an error body", http.StatusInternalServerError, "oops", true, apierror.Unavailable},
		{"malformed answer", http.StatusOK, `{"id": 12`, true, apierror.Unavailable},
		{"answer over 8 MiB", http.StatusOK, `{"title":"` + huge + `"}`, true, apierror.Unavailable},
		{"500 with the service's error body", http.StatusInternalServerError, `{"error":{"code":"internal","message":"internal error"}}`, false, apierror.Internal},
		{"404 without an error body", http.StatusNotFound, "404 page not found", false, apierror.NotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			t.Cleanup(srv.Close)
			svc, err := listingservice.NewHTTPClient(srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.Get(ctx, listing.NewID(spec.Kind, time.Now()))
			if c.transport {
				wantTransport(t, "get", err, c.code)
				return
			}
			if err == nil || listingservice.IsTransport(err) || apierror.CodeOf(err) != c.code {
				t.Errorf("err = %v, want a %s verdict", err, c.code)
			}
		})
	}
}

// A balancer built on the client's endpoints retries transport failures on
// another instance and passes verdicts through after one attempt.
func TestBalancerRetriesOnlyTransportFailures(t *testing.T) {
	ctx := t.Context()
	spec := specs[2]
	base, _ := startService(t, spec, t.TempDir())
	var (
		endpoints sd.FixedEndpointer
		attempts  [2]atomic.Int32 // per instance: dead, live
	)
	for i, inst := range []string{unusedAddr(t), base} {
		set, err := listingservice.NewHTTPClientSet(inst, nil)
		if err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, func(ctx context.Context, req any) (any, error) {
			attempts[i].Add(1)
			return set.GetEndpoint(ctx, req)
		})
	}
	var failures []error
	retry := lb.RetryWithCallback(5*time.Second, lb.NewRoundRobin(endpoints), func(n int, err error) (bool, error) {
		failures = append(failures, err)
		return n < 3 && listingservice.IsTransport(err), nil
	})
	svc := listingservice.Set{GetEndpoint: retry}

	direct, err := listingservice.NewHTTPClient(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, err := direct.Create(ctx, newListing(t, spec.Kind, nil))
	if err != nil {
		t.Fatal(err)
	}
	const gets = 4
	for range gets {
		got, err := svc.Get(ctx, created.ID)
		if err != nil || got.ID != created.ID || got.Version != 1 {
			t.Fatalf("get through the balancer = %+v, %v", got, err)
		}
	}
	for range gets {
		if _, err := svc.Get(ctx, listing.NewID(spec.Kind, time.Now())); !apierror.Is(err, apierror.NotFound) {
			t.Fatalf("get unknown = %v, want NotFound", err)
		}
	}
	// Every get ended at the live instance after one attempt there; the
	// balancer saw only the dead instance's refusals, never a NotFound.
	if n := attempts[1].Load(); n != 2*gets {
		t.Errorf("%d attempts at the live instance for %d gets: a verdict was retried", n, 2*gets)
	}
	if dead := attempts[0].Load(); dead == 0 || int(dead) != len(failures) {
		t.Errorf("%d attempts at the dead instance, %d failures seen", dead, len(failures))
	}
	for _, err := range failures {
		var te *listingservice.TransportError
		if !errors.As(err, &te) || !te.Refused() {
			t.Errorf("balancer saw %v, want only refused connections", err)
		}
	}
}

// The call's span reaches the instance through the caller's traced
// transport, once: the service's server span is the child of the one
// client span.
func TestClientCarriesTraceContext(t *testing.T) {
	serverSpans := tracetest.NewInMemoryExporter()
	m := openMain(t, specs[1], t.TempDir(), telemetry.Config{Exporter: serverSpans}, io.Discard)
	base := serve(t, m)

	clientSpans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: "parkmesh-gateway", Park: "xian-hitech", Exporter: clientSpans})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	svc, err := listingservice.NewHTTPClient(base, &http.Client{Transport: tel.Transport(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, caller := tel.Tracer("test").Start(t.Context(), "caller")
	_, err = svc.Get(ctx, listing.NewID(listing.KindProject, time.Now()))
	caller.End()
	if !apierror.Is(err, apierror.NotFound) {
		t.Fatalf("get = %v, want NotFound", err)
	}

	var clients []tracetest.SpanStub
	for _, s := range clientSpans.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			clients = append(clients, s)
		}
	}
	if len(clients) != 1 {
		t.Fatalf("%d client spans for one call, want 1: %v", len(clients), names(clientSpans.GetSpans()))
	}
	var server *tracetest.SpanStub
	for _, s := range serverSpans.GetSpans() {
		if s.Name == "GET /v1/listings/{id}" {
			server = &s
		}
	}
	if server == nil {
		t.Fatalf("no server span for the get: %v", names(serverSpans.GetSpans()))
	}
	if server.SpanContext.TraceID() != caller.SpanContext().TraceID() || server.Parent.SpanID() != clients[0].SpanContext.SpanID() {
		t.Errorf("server span trace %s parent %s; want trace %s parent %s (the client span)",
			server.SpanContext.TraceID(), server.Parent.SpanID(), caller.SpanContext().TraceID(), clients[0].SpanContext.SpanID())
	}
}
