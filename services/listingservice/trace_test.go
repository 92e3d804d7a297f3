package listingservice_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
	"github.com/parkmesh/parkmesh/pkg/httpserver"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/synth"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
	"github.com/parkmesh/parkmesh/pkg/telemetry"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// openMain opens the real Main of spec on a loopback port, with the given
// telemetry test hooks, logging at info to logs.
func openMain(tb testing.TB, spec listingservice.Spec, dir string, tcfg telemetry.Config, logs io.Writer) *listingservice.Main {
	tb.Helper()
	m := listingservice.NewMain(spec, logs)
	if err := m.ParseFlags([]string{"-listen", "127.0.0.1:0", "-data-dir", dir, "-park", "xian-hitech", "-consul", "off"}, func(string) string { return "" }); err != nil {
		tb.Fatal(err)
	}
	m.Telemetry = tcfg
	if err := m.Open(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// serve runs m until the test ends and returns its base URL.
func serve(t *testing.T, m *listingservice.Main) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return "http://" + m.Addr()
}

func TestRequestSpanHasStoreChildAndLogsCarryIDs(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	logs := &logbuf.Buffer{}
	spec := specs[1] // project
	m := openMain(t, spec, t.TempDir(), telemetry.Config{Exporter: exp}, logs)
	base := serve(t, m)

	if r := do(t, "POST", base+"/v1/listings", validBody(spec.Kind)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// The caller (a gateway) sends its trace context; the service continues it.
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xa1, 0xb2}, SpanID: trace.SpanID{0xc3}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	hdr := http.Header{}
	telemetry.Propagator().Inject(trace.ContextWithRemoteSpanContext(context.Background(), caller), propagation.HeaderCarrier(hdr))
	if r := do(t, "GET", base+"/v1/listings?q=纳米", nil, "traceparent", hdr.Get("traceparent")); r.status != 200 {
		t.Fatalf("search: %d %s", r.status, r.body)
	}
	do(t, "GET", base+"/healthz", nil)
	do(t, "GET", base+"/readyz", nil)

	spans := exp.GetSpans()
	var search, store *tracetest.SpanStub
	for i := range spans {
		s := &spans[i]
		switch {
		case s.Name == "GET /v1/listings":
			search = s
		case s.Name == "sqlitestore.Search":
			store = s
		case strings.Contains(s.Name, "z"): // healthz, readyz
			t.Errorf("probe traced: %s", s.Name)
		}
	}
	if search == nil || store == nil {
		t.Fatalf("want a server span GET /v1/listings and a store span, got %v", names(spans))
	}
	if search.SpanKind != trace.SpanKindServer || search.SpanContext.TraceID() != caller.TraceID() || search.Parent.SpanID() != caller.SpanID() {
		t.Errorf("server span kind %v trace %s parent %s: want a server span continuing the caller's trace",
			search.SpanKind, search.SpanContext.TraceID(), search.Parent.SpanID())
	}
	if store.Parent.SpanID() != search.SpanContext.SpanID() || store.SpanContext.TraceID() != caller.TraceID() {
		t.Error("store span is not a child of the request's server span")
	}
	res := map[attribute.Key]string{}
	for _, kv := range search.Resource.Attributes() {
		res[kv.Key] = kv.Value.String()
	}
	if res["service.name"] != "parkmesh-project" || res[telemetry.ParkKey] != "xian-hitech" || res["service.version"] != listingservice.Version {
		t.Errorf("resource = %v", res)
	}

	var found bool
	for _, l := range logs.JSONLines(t) {
		if l["msg"] == "request" && l["route"] == "GET /v1/listings" {
			found = true
			if l["trace_id"] != caller.TraceID().String() || l["span_id"] != search.SpanContext.SpanID().String() {
				t.Errorf("request log line %v: want trace_id %s span_id %s", l, caller.TraceID(), search.SpanContext.SpanID())
			}
		}
		if l["msg"] == "serving" && l["trace_id"] != nil {
			t.Errorf("a line outside any request has trace ids: %v", l)
		}
	}
	if !found {
		t.Fatal("no request log line for the search")
	}
}

func TestTracingOffByDefault(t *testing.T) {
	// No parallel: it asserts on the process environment.
	for _, k := range []string{telemetry.EnvEndpoint, telemetry.EnvTracesEndpoint} {
		t.Setenv(k, "")
	}
	logs := &logbuf.Buffer{}
	m := openMain(t, specs[0], t.TempDir(), telemetry.Config{}, logs)
	base := serve(t, m)
	do(t, "GET", base+"/v1/listings", nil)
	for _, l := range logs.JSONLines(t) {
		if l["msg"] == "serving" && l["tracing"] != false {
			t.Errorf("serving line %v: want tracing false", l)
		}
		if l["trace_id"] != nil {
			t.Errorf("trace ids logged with tracing off: %v", l)
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// BenchmarkLocalSearchTracing measures one local search through the
// service's whole handler (routing, logging, metrics, go-kit, store):
// "baseline" is the handler assembled without any telemetry code, as before
// tracing existed; "off" is the real Main with no OTEL endpoint set; "on" is
// the real Main with every span recorded and batched to an exporter that
// drops them. Report the ratios in docs/benchmarks.md:
//
//	go test -run='^$' -bench=LocalSearchTracing -benchtime=3000x -count=5 ./services/listingservice/
func BenchmarkLocalSearchTracing(b *testing.B) {
	dir := b.TempDir()
	spec := specs[1]
	loadListings(b, filepath.Join(dir, "xian-hitech-project.db"), 5000)
	queries := []struct{ name, path string }{
		{"text", "/v1/listings?q=" + url.QueryEscape("纳米 copper") + "&limit=20"},
		{"newest", "/v1/listings?limit=20"},
	}
	onCfg := telemetry.Config{SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())}}
	modes := []struct {
		name    string
		handler func(b *testing.B) http.Handler
	}{
		{"baseline", func(b *testing.B) http.Handler {
			st, err := sqlitestore.Open(b.Context(), filepath.Join(dir, "xian-hitech-project.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			// Assembled as Main assembles it, less the telemetry.
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("service", "parkmesh-project", "park", "xian-hitech")
			metrics := httpserver.NewMetrics()
			svc := listingservice.New(spec.Kind, "xian-hitech", st)
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", metrics.Handler())
			mux.Handle("/", listingservice.NewHTTPHandler(spec.Kind, listingservice.NewSet(svc), logger, metrics.Middleware(logger)))
			return mux
		}},
		{"off", func(b *testing.B) http.Handler {
			b.Setenv(telemetry.EnvEndpoint, "")
			b.Setenv(telemetry.EnvTracesEndpoint, "")
			return openMain(b, spec, dir, telemetry.Config{}, io.Discard).Handler()
		}},
		{"on", func(b *testing.B) http.Handler {
			return openMain(b, spec, dir, onCfg, io.Discard).Handler()
		}},
	}
	for _, q := range queries {
		for _, mode := range modes {
			b.Run(q.name+"/"+mode.name, func(b *testing.B) {
				h := mode.handler(b)
				req := httptest.NewRequest(http.MethodGet, q.path, nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"id"`)) {
					b.Fatalf("search: %d %.200s", rec.Code, rec.Body)
				}
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		}
	}
}

// loadListings writes n synthetic project listings into the store at path.
func loadListings(b *testing.B, path string, n int) {
	b.Helper()
	st, err := sqlitestore.Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	for i := range n {
		l := synth.Listing(r, i, listing.KindProject, "xian-hitech", now)
		if err := st.Create(b.Context(), l); err != nil {
			b.Fatal(fmt.Errorf("listing %d: %w", i, err))
		}
	}
}
