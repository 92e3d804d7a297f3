package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/pkg/telemetry"
)

// clearOTELEnv makes the test independent of the environment it runs in.
func clearOTELEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		telemetry.EnvEndpoint, telemetry.EnvTracesEndpoint, telemetry.EnvProtocol,
		telemetry.EnvTracesProtocol, telemetry.EnvSDKDisabled, telemetry.EnvTracesExporter,
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	} {
		t.Setenv(k, "")
	}
}

type plainHandler struct{}

func (*plainHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

func TestOffWithoutEndpointIsANoOp(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"no OTEL environment", nil},
		{"SDK disabled", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1", telemetry.EnvSDKDisabled: "true"}},
		{"traces exporter none", map[string]string{telemetry.EnvTracesEndpoint: "http://127.0.0.1:1", telemetry.EnvTracesExporter: "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: "parkmesh-test"})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tel.Enabled() {
				t.Error("Enabled() = true, want off")
			}
			_, span := tel.Tracer("test").Start(t.Context(), "x")
			if span.IsRecording() {
				t.Error("span is recording with tracing off")
			}
			span.End()
			h := &plainHandler{}
			if got := tel.Handler("GET /x", h); got != http.Handler(h) {
				t.Errorf("Handler wrapped the handler with tracing off: %T", got)
			}
			base := &http.Transport{}
			if got := tel.Transport(base); got != http.RoundTripper(base) {
				t.Errorf("Transport wrapped the transport with tracing off: %T", got)
			}
		})
	}
}

func TestNilTelemetryIsOff(t *testing.T) {
	t.Parallel()
	var tel *telemetry.Telemetry
	h := &plainHandler{}
	if tel.Enabled() || tel.Handler("r", h) != http.Handler(h) || tel.Shutdown(t.Context()) != nil {
		t.Fatal("a nil *Telemetry is not off")
	}
	if tel.Transport(nil) != http.DefaultTransport {
		t.Fatal("Transport(nil) on a nil *Telemetry is not http.DefaultTransport")
	}
}

func TestEnvironmentChoosesTheExporter(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"grpc", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1", telemetry.EnvProtocol: "grpc"}, ""},
		{"http default", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1"}, ""},
		{"traces endpoint only", map[string]string{telemetry.EnvTracesEndpoint: "http://127.0.0.1:1/v1/traces"}, ""},
		{"traces protocol wins", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1", telemetry.EnvProtocol: "bogus", telemetry.EnvTracesProtocol: "grpc"}, ""},
		{"unknown protocol", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1", telemetry.EnvProtocol: "http/json"}, telemetry.EnvProtocol},
		{"bad resource attributes", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1", "OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: "parkmesh-project", ServiceVersion: "v1.2.3", Park: "xian-hitech"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tel.Enabled() {
				t.Fatal("Enabled() = false with an endpoint set")
			}
			attrs := map[attribute.Key]string{}
			for _, kv := range tel.Resource().Attributes() {
				attrs[kv.Key] = kv.Value.String()
			}
			for k, want := range map[attribute.Key]string{"service.name": "parkmesh-project", "service.version": "v1.2.3", telemetry.ParkKey: "xian-hitech"} {
				if attrs[k] != want {
					t.Errorf("resource %s = %q, want %q", k, attrs[k], want)
				}
			}
			// Nothing was recorded, so the flush has nothing to send to the
			// unreachable endpoint.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

func TestEnvironmentCannotRenameTheService(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=impostor,deployment.environment.name=demo")
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: "parkmesh-gateway", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	got := map[attribute.Key]string{}
	for _, kv := range tel.Resource().Attributes() {
		got[kv.Key] = kv.Value.String()
	}
	if got["service.name"] != "parkmesh-gateway" || got["deployment.environment.name"] != "demo" {
		t.Fatalf("resource = %v, want service.name from Config and the extra attribute from the environment", got)
	}
}

// newTraced returns telemetry recording into an in-memory exporter.
func newTraced(t *testing.T, service string) (*telemetry.Telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: service, Park: "xian-hitech", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, exp
}

func TestHandlerAndTransportJoinOneTrace(t *testing.T) {
	t.Parallel()
	serverTel, serverSpans := newTraced(t, "parkmesh-project")
	clientTel, clientSpans := newTraced(t, "parkmesh-gateway")

	var gotBaggage string
	mux := http.NewServeMux()
	route := "GET /v1/listings/{id}"
	mux.Handle(route, serverTel.Handler(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBaggage = baggage.FromContext(r.Context()).Member("club").Value()
		w.WriteHeader(http.StatusTeapot)
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, parent := clientTel.Tracer("test").Start(t.Context(), "club search")
	member, _ := baggage.NewMember("club", "silicon")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	client := &http.Client{Transport: clientTel.Transport(nil)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/listings/prj_1", nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	parent.End()

	server := serverSpans.GetSpans()
	if len(server) != 1 {
		t.Fatalf("server spans = %d, want 1", len(server))
	}
	s := server[0]
	if s.Name != route || s.SpanKind != trace.SpanKindServer {
		t.Errorf("server span = %q kind %v, want %q kind server", s.Name, s.SpanKind, route)
	}
	if got := spanAttr(s.Attributes, "http.route"); got != "/v1/listings/{id}" {
		t.Errorf("http.route = %q", got)
	}
	client1 := clientSpans.GetSpans()
	var httpClient tracetest.SpanStub
	for _, c := range client1 {
		if c.SpanKind == trace.SpanKindClient {
			httpClient = c
		}
	}
	if httpClient.SpanKind != trace.SpanKindClient {
		t.Fatalf("no client span among %d", len(client1))
	}
	if httpClient.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Error("client span is not a child of the caller's span")
	}
	if s.SpanContext.TraceID() != parent.SpanContext().TraceID() || s.Parent.SpanID() != httpClient.SpanContext.SpanID() {
		t.Error("server span did not continue the caller's trace under the client span")
	}
	if gotBaggage != "silicon" {
		t.Errorf("baggage club = %q, want it propagated", gotBaggage)
	}
}

func TestUntrustedCallerStartsANewLinkedTrace(t *testing.T) {
	t.Parallel()
	tel, spans := newTraced(t, "parkmesh-gateway")
	var gotBaggage string
	var decisions int
	h := tel.Handler("GET /v1/search", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBaggage = baggage.FromContext(r.Context()).String()
	}), telemetry.Untrusted(func(r *http.Request) bool {
		decisions++
		return r.Header.Get("Authorization") == ""
	}))

	offered := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	for _, trusted := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodGet, "/v1/search", nil)
		telemetry.Propagator().Inject(trace.ContextWithRemoteSpanContext(context.Background(), offered), propagation.HeaderCarrier(req.Header))
		req.Header.Set("Baggage", "tenant=evil")
		if trusted {
			req.Header.Set("Authorization", "Bearer peer")
		}
		gotBaggage, decisions = "", 0
		h.ServeHTTP(httptest.NewRecorder(), req)
		if decisions != 1 {
			t.Errorf("trusted=%v: trust decided %d times, want once", trusted, decisions)
		}
		s := spans.GetSpans()[len(spans.GetSpans())-1]
		continued := s.SpanContext.TraceID() == offered.TraceID()
		if continued != trusted {
			t.Errorf("trusted=%v: continued the offered trace = %v", trusted, continued)
		}
		if !trusted {
			if len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != offered.SpanID() {
				t.Errorf("untrusted: links = %v, want one to the offered span", s.Links)
			}
			if gotBaggage != "" {
				t.Errorf("untrusted: baggage %q reached the handler", gotBaggage)
			}
		} else if gotBaggage != "tenant=evil" {
			t.Errorf("trusted: baggage = %q, want it kept", gotBaggage)
		}
	}
}

func TestMiddlewareTracesOutsideLogging(t *testing.T) {
	t.Parallel()
	tel, _ := newTraced(t, "parkmesh-project")
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil)))
	logging := func(route string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			logger.InfoContext(r.Context(), "request", "route", route)
		})
	}
	mw := tel.Middleware(logging)
	mw("GET /x", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if line["trace_id"] == nil || line["span_id"] == nil {
		t.Fatalf("request log line %s has no trace ids: tracing must wrap logging", buf.String())
	}
}

func TestLogHandlerAddsIDsOnlyWithASpan(t *testing.T) {
	t.Parallel()
	tel, _ := newTraced(t, "parkmesh-project")
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "parkmesh-project")
	ctx, span := tel.Tracer("test").Start(t.Context(), "op")
	logger.InfoContext(ctx, "in span")
	span.End()
	logger.InfoContext(t.Context(), "no span")
	logger.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if first["trace_id"] != sc.TraceID().String() || first["span_id"] != sc.SpanID().String() {
		t.Errorf("in-span line = %s, want trace_id %s span_id %s", lines[0], sc.TraceID(), sc.SpanID())
	}
	if first["service"] != "parkmesh-project" {
		t.Errorf("With attributes lost: %s", lines[0])
	}
	for _, l := range lines[1:] {
		if strings.Contains(l, "trace_id") {
			t.Errorf("line without a span has ids: %s", l)
		}
	}
	if h := telemetry.LogHandler(slog.NewJSONHandler(io.Discard, nil)); telemetry.LogHandler(h) != h {
		t.Error("LogHandler wraps twice")
	}
}

func spanAttr(attrs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range attrs {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestClientSpansHideQueryText: the text of a search (and any other query
// value) never reaches a client span's attributes, while the request on
// the wire keeps its query intact; names stay, so a span still says that
// the search had text.
func TestClientSpansHideQueryText(t *testing.T) {
	t.Parallel()
	tel, spans := newTraced(t, "parkmesh-gateway")
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
	}))
	defer srv.Close()
	client := &http.Client{Transport: tel.Transport(nil)}
	const secret = "新材料 secret-merger-target"
	q := url.Values{"q": {secret}, "sectors": {"new-materials"}, "limit": {"20"}}.Encode()
	for _, u := range []string{srv.URL + "/v1/listings?" + q, srv.URL + "/v1/listings?%zz=" + url.QueryEscape(secret)} {
		res, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := u[strings.Index(u, "?")+1:]; gotQuery != want {
			t.Errorf("server got query %q, want %q (untouched on the wire)", gotQuery, want)
		}
		if res.Request.URL.String() != u {
			t.Errorf("response's request URL %q, want the caller's %q", res.Request.URL, u)
		}
	}
	got := spans.GetSpans()
	if len(got) != 2 {
		t.Fatalf("%d spans, want 2", len(got))
	}
	for _, s := range got {
		for _, kv := range s.Attributes {
			v := kv.Value.String()
			if strings.Contains(v, "secret") || strings.Contains(v, "新材料") || strings.Contains(v, url.QueryEscape(secret)) {
				t.Errorf("span %q attribute %s = %q carries the query text", s.Name, kv.Key, v)
			}
		}
		for _, ev := range s.Events {
			for _, kv := range ev.Attributes {
				if strings.Contains(kv.Value.String(), "secret") {
					t.Errorf("span event %s carries the query text", ev.Name)
				}
			}
		}
	}
	if full := spanAttr(got[0].Attributes, "url.full"); full != srv.URL+"/v1/listings?limit=REDACTED&q=REDACTED&sectors=REDACTED" {
		t.Errorf("url.full = %q, want the names with redacted values", full)
	}
}
