// Package telemetry sets up OpenTelemetry tracing for a ParkMesh process: a
// tracer provider exporting over OTLP as the standard OTEL_* environment
// variables say, resource attributes naming the service and its park, W3C
// trace context and baggage propagation, and the HTTP server and client
// wrappers and slog handler that every process shares.
//
// Tracing is off unless an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and
// OTEL_SDK_DISABLED is not "true". Off costs nothing on the request path:
// [Telemetry.Handler] and [Telemetry.Transport] then return what they were
// given, unwrapped, and the tracer provider is a no-op.
//
// Each process calls [New] and, being the only one in its address space,
// [Telemetry.SetGlobal] for libraries that only know OpenTelemetry's
// globals; tests that run several ParkMesh processes in one binary call
// [New] per process and skip SetGlobal, so each keeps its own service name
// and park.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ParkKey is the resource attribute naming the park a process belongs to.
const ParkKey = attribute.Key("parkmesh.park")

// Environment variables read here; the OTLP exporters and the SDK read the
// rest of the OTEL_* family themselves (headers, TLS, timeout, compression,
// OTEL_TRACES_SAMPLER and its argument, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
)

// Config describes the process being traced.
type Config struct {
	// ServiceName is the resource's service.name: "parkmesh-gateway",
	// "parkmesh-project", … Required.
	ServiceName string
	// ServiceVersion is service.version (the build version).
	ServiceVersion string
	// Park is parkmesh.park, the id of the park the process serves.
	Park string

	// Exporter, when set, receives every span synchronously as it ends,
	// instead of the OTLP exporter, and turns tracing on whatever the
	// environment says. Tests pass a tracetest.InMemoryExporter.
	Exporter sdktrace.SpanExporter
	// SpanProcessors are added to the provider and also turn tracing on.
	SpanProcessors []sdktrace.SpanProcessor
}

// Telemetry is the tracing of one process. The zero value and a nil
// *Telemetry are valid and off.
type Telemetry struct {
	tp       trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
	prop     propagation.TextMapPropagator
	resource *resource.Resource
}

// Propagator is what every ParkMesh process speaks: W3C trace context and
// W3C baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// New sets up tracing for one process without touching OpenTelemetry's
// globals. It fails, naming the variable, when the OTEL_* environment asks
// for something it cannot do (an unknown protocol, malformed resource
// attributes). Call [Telemetry.Shutdown] at exit to flush pending spans.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.ServiceName == "" {
		return nil, errors.New("telemetry: Config.ServiceName is empty")
	}
	t := &Telemetry{tp: noop.NewTracerProvider(), prop: Propagator()}
	injected := cfg.Exporter != nil || len(cfg.SpanProcessors) > 0
	if !injected && !envEnabled() {
		return t, nil
	}

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch {
	case cfg.Exporter != nil:
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	case !injected:
		exp, err := newOTLPExporter(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	for _, p := range cfg.SpanProcessors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	// No WithSampler: the SDK then honours OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on).
	t.sdk = sdktrace.NewTracerProvider(opts...)
	t.tp, t.resource = t.sdk, res
	return t, nil
}

// envEnabled reports whether the environment asks for OTLP tracing.
func envEnabled() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvTracesExporter)), "none") {
		return false
	}
	return os.Getenv(EnvTracesEndpoint) != "" || os.Getenv(EnvEndpoint) != ""
}

// newOTLPExporter builds the exporter OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL
// names. The exporters read endpoint, headers, TLS, timeout and compression
// from the environment themselves.
func newOTLPExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	name, proto := EnvTracesProtocol, os.Getenv(EnvTracesProtocol)
	if proto == "" {
		name, proto = EnvProtocol, os.Getenv(EnvProtocol)
	}
	switch strings.TrimSpace(proto) {
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP gRPC exporter: %w", err)
		}
		return exp, nil
	case "", "http/protobuf":
		// The specification's default protocol.
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP HTTP exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("telemetry: %s=%q: want grpc or http/protobuf", name, proto)
	}
}

// newResource describes the process. OTEL_RESOURCE_ATTRIBUTES may add
// attributes (deployment.environment, …) but not rename the service or move
// its park: those come from the process's own configuration.
func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	if cfg.Park != "" {
		attrs = append(attrs, ParkKey.String(cfg.Park))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(attrs...),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource (check OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME): %w", err)
	}
	return res, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Telemetry) Enabled() bool { return t != nil && t.sdk != nil }

// TracerProvider returns the process's tracer provider (a no-op when off).
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return noop.NewTracerProvider()
	}
	return t.tp
}

// Tracer returns a tracer for the instrumentation scope name, e.g. the
// import path of the package creating the spans.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.TracerProvider().Tracer(name) }

// Propagator returns the process's propagator, [Propagator]'s.
func (t *Telemetry) Propagator() propagation.TextMapPropagator {
	if t == nil || t.prop == nil {
		return Propagator()
	}
	return t.prop
}

// Resource returns the resource spans are tagged with, nil when off.
func (t *Telemetry) Resource() *resource.Resource {
	if t == nil {
		return nil
	}
	return t.resource
}

// SetGlobal installs the tracer provider and propagator as OpenTelemetry's
// globals, for libraries that only know those.
func (t *Telemetry) SetGlobal() {
	otel.SetTracerProvider(t.TracerProvider())
	otel.SetTextMapPropagator(t.Propagator())
}

// Shutdown flushes pending spans and stops the exporter; ctx bounds the
// flush. It is a no-op when tracing is off and safe to call twice.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}

// noMeters keeps otelhttp from recording metrics of its own: ParkMesh's HTTP
// metrics are Prometheus's, in pkg/httpserver.
var noMeters = metricnoop.NewMeterProvider()

// ServerOption adjusts [Telemetry.Handler].
type ServerOption func(*serverOptions)

type serverOptions struct {
	untrusted func(*http.Request) bool
	skip      map[string]bool
}

// SkipRoutes leaves the named routes untraced: probes and scrapes arrive
// every few seconds and would bury the traces that matter.
func SkipRoutes(routes ...string) ServerOption {
	return func(o *serverOptions) {
		if o.skip == nil {
			o.skip = make(map[string]bool, len(routes))
		}
		for _, r := range routes {
			o.skip[r] = true
		}
	}
}

// Untrusted names the requests whose offered trace context must not be
// continued: for them the server span starts a new trace, with a link to the
// offered span so an operator can still follow it, and the offered baggage
// is dropped. fn runs once per request, before the span starts. A gateway
// passes a function that returns true unless the caller is an authenticated
// peer or one of the park's own processes.
func Untrusted(fn func(r *http.Request) bool) ServerOption {
	return func(o *serverOptions) { o.untrusted = fn }
}

// Handler wraps h, the handler of one route, in a server span named after
// the route pattern (e.g. "GET /v1/listings/{id}"). The span continues the
// caller's W3C trace context (see [Untrusted]) and carries the HTTP
// semantic-convention attributes; a 5xx response marks it as an error. Off,
// or for a route named in [SkipRoutes], it returns h itself.
func (t *Telemetry) Handler(route string, h http.Handler, opts ...ServerOption) http.Handler {
	if !t.Enabled() {
		return h
	}
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.skip[route] {
		return h
	}
	hopts := []otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(noMeters),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return route }),
	}
	if o.untrusted == nil {
		return otelhttp.NewHandler(h, route, hopts...)
	}
	// The caller's trust is decided once per request, before the span
	// starts (checking a peer token is not free), and read back twice: to
	// start a new trace and to drop the offered baggage.
	hopts = append(hopts, otelhttp.WithPublicEndpointFn(func(r *http.Request) bool {
		return r.Context().Value(untrustedKey{}) == true
	}))
	traced := otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(untrustedKey{}) == true {
			r = r.WithContext(baggage.ContextWithoutBaggage(r.Context()))
		}
		h.ServeHTTP(w, r)
	}), route, hopts...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.untrusted(r) {
			r = r.WithContext(context.WithValue(r.Context(), untrustedKey{}, true))
		}
		traced.ServeHTTP(w, r)
	})
}

// untrustedKey marks, in a request's context, a caller whose trace context
// is not continued.
type untrustedKey struct{}

// Middleware puts a server span (see [Handler]) around next, a per-route
// middleware such as pkg/httpserver's Metrics.Middleware, so that next's
// request log line carries the request's trace and span ids. It keeps the
// order CONVENTIONS.md asks for: tracing, then logging and metrics.
func (t *Telemetry) Middleware(next func(route string, h http.Handler) http.Handler, opts ...ServerOption) func(route string, h http.Handler) http.Handler {
	return func(route string, h http.Handler) http.Handler {
		if next != nil {
			h = next(route, h)
		}
		return t.Handler(route, h, opts...)
	}
}

// Transport wraps base (nil: http.DefaultTransport) so that each outgoing
// request gets a client span, a child of the span in its context, and
// carries the W3C trace context and baggage headers. Off, it returns base.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if !t.Enabled() {
		return base
	}
	// otelhttp records the request's URL (url.full) on the client span:
	// what it sees has every query value replaced, and the real URL is put
	// back below it, for the wire only.
	return redactQuery{otelhttp.NewTransport(restoreQuery{base},
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(noMeters),
	)}
}

// Redacted is what a query value becomes in a recorded URL (the word the
// OpenTelemetry semantic conventions use for scrubbed values).
const Redacted = "REDACTED"

// RedactQuery returns raw (a URL's query) with every value replaced by
// Redacted, keeping the names: a span says that a search had text (q=…)
// and which filters, never what was searched for, nor any token a query
// might carry.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return Redacted
	}
	for k, vs := range vals {
		for i := range vs {
			vs[i] = Redacted
		}
		vals[k] = vs
	}
	return vals.Encode()
}

// realQuery carries, below otelhttp, the query redactQuery hid from it.
type realQuery struct{}

// redactQuery hands the next round tripper (otelhttp's) a copy of the
// request whose query is redacted.
type redactQuery struct{ next http.RoundTripper }

func (rt redactQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.RawQuery == "" && !r.URL.ForceQuery {
		return rt.next.RoundTrip(r)
	}
	shown := r.Clone(context.WithValue(r.Context(), realQuery{}, r.URL.RawQuery))
	shown.URL.RawQuery = RedactQuery(r.URL.RawQuery)
	res, err := rt.next.RoundTrip(shown)
	if res != nil {
		res.Request = r // the request as the caller made it
	}
	return res, err
}

// restoreQuery puts the real query back before the request goes out.
type restoreQuery struct{ next http.RoundTripper }

func (rt restoreQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	q, ok := r.Context().Value(realQuery{}).(string)
	if !ok {
		return rt.next.RoundTrip(r)
	}
	real := r.Clone(r.Context())
	real.URL.RawQuery = q
	return rt.next.RoundTrip(real)
}

// LogHandler wraps h so that every record logged with a context holding a
// valid span context gets trace_id and span_id attributes: a log line
// written while serving a request then leads to its trace. Records without
// a span pass through untouched, so it costs one context lookup per line
// when tracing is off. Under WithGroup the two attributes land inside the
// group, like any other attribute added at log time.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
