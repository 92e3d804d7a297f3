package jaegertest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegertest"
	"github.com/parkmesh/parkmesh/pkg/telemetry"
)

// Spans of two processes in two parks, exported with each OTLP protocol
// through pkg/telemetry's environment handling, come back from Jaeger's
// query API as one trace, each process tagged with its park.
func TestTwoParksOneTraceInJaeger(t *testing.T) {
	// No parallel: the exporters read the process environment.
	j := jaegertest.Start(t)
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) {
			for _, k := range []string{telemetry.EnvTracesEndpoint, telemetry.EnvTracesProtocol, telemetry.EnvSDKDisabled, "OTEL_TRACES_SAMPLER"} {
				t.Setenv(k, "")
			}
			for _, kv := range j.ExporterEnv(protocol) {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			peer := newTelemetry(t, "parkmesh-gateway", "haifa")
			caller := newTelemetry(t, "parkmesh-gateway", "xian-hitech")

			srv := httptest.NewServer(peer.Handler("GET /v1/federation/search", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			defer srv.Close()
			ctx, span := caller.Tracer("test").Start(t.Context(), "club search "+protocol)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/federation/search", nil)
			res, err := (&http.Client{Transport: caller.Transport(nil)}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			span.End()
			for _, tel := range []*telemetry.Telemetry{peer, caller} {
				flush(t, tel)
			}

			traceID := span.SpanContext().TraceID().String()
			tr := j.WaitTrace(t, traceID, 15*time.Second, func(tr jaegerserver.Trace) error {
				if len(tr.Spans) < 3 {
					return fmt.Errorf("%d spans so far", len(tr.Spans))
				}
				return nil
			})
			parks, err := jaegertest.Parks(tr)
			if err != nil {
				t.Fatal(err)
			}
			if !parks["xian-hitech"] || !parks["haifa"] {
				t.Errorf("parks in the trace = %v, want xian-hitech and haifa", parks)
			}
			var server bool
			for _, s := range tr.Spans {
				if s.OperationName == "GET /v1/federation/search" && jaegerserver.Tag(s.Tags, "span.kind") == "server" {
					server = true
				}
			}
			if !server {
				t.Errorf("no server span named after the route in %+v", tr.Spans)
			}
		})
	}
	services, err := j.Services(t.Context())
	if err != nil || !strings.Contains(strings.Join(services, ","), "parkmesh-gateway") {
		t.Errorf("Services() = %v, %v; want parkmesh-gateway", services, err)
	}
}

func newTelemetry(t *testing.T, service, park string) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: service, ServiceVersion: "test", Park: park})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Enabled() {
		t.Fatal("tracing is off with an OTLP endpoint set")
	}
	return tel
}

func flush(t *testing.T, tel *telemetry.Telemetry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// Two Jaegers run side by side on distinct ports, as three parks' demos or
// parallel test packages need.
func TestSideBySide(t *testing.T) {
	t.Parallel()
	a, b := jaegertest.Start(t), jaegertest.Start(t)
	if a.QueryURL() == b.QueryURL() {
		t.Fatalf("two Jaegers share %s", a.QueryURL())
	}
	for _, j := range []*jaegertest.Jaeger{a, b} {
		if _, err := j.Services(t.Context()); err != nil {
			t.Errorf("%s: %v", j.QueryURL(), err)
		}
	}
	a.Kill()
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("killed Jaeger still running")
	}
	if _, err := b.Services(t.Context()); err != nil {
		t.Errorf("the other Jaeger died too: %v", err)
	}
}
