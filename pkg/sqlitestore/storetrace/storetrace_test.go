package storetrace_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore/storetrace"
)

func openTraced(tb testing.TB, dir string) (*storetrace.Store, *tracetest.InMemoryExporter, trace.Tracer) {
	tb.Helper()
	s, err := sqlitestore.Open(tb.Context(), filepath.Join(dir, "listings.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return storetrace.New(s, tp), exp, tp.Tracer("test")
}

// The traced store keeps the whole contract.
func TestTracedContract(t *testing.T) {
	storetest.Run(t, func(tb testing.TB, dir string) listing.Store {
		s, _, _ := openTraced(tb, dir)
		return s
	})
}

func TestTracedSpanPerCall(t *testing.T) {
	t.Parallel()
	s, exp, tracer := openTraced(t, t.TempDir())
	now := time.Now().UTC().Truncate(time.Microsecond)
	l := storetest.NewProject("纳米超级铜 Nano copper", now)

	// Outside any recording span the store records nothing.
	if err := s.Create(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans without a parent, want 0", n)
	}

	ctx, parent := tracer.Start(t.Context(), "request")
	got, err := s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Title = "纳米超级铜研究院"
	if err := s.Update(ctx, got, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, got, 1); err == nil {
		t.Fatal("stale update succeeded")
	}
	if _, err := s.Search(ctx, listing.Query{Text: "纳米", Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Changes(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, l.ID, 0, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, l.ID); err == nil {
		t.Fatal("Get after Delete succeeded")
	}
	parent.End()

	want := []struct {
		name, errType string
		rows          int64 // -1: no db.response.returned_rows
	}{
		{"sqlitestore.Get", "", -1},
		{"sqlitestore.Update", "", -1},
		{"sqlitestore.Update", "precondition_failed", -1},
		{"sqlitestore.Search", "", 1},
		{"sqlitestore.Changes", "", 1}, // created then updated: one listing, once
		{"sqlitestore.Delete", "", -1},
		{"sqlitestore.Get", "not_found", -1},
	}
	spans := exp.GetSpans()
	if len(spans) != len(want)+1 { // + the parent
		t.Fatalf("got %d spans, want %d: %v", len(spans), len(want)+1, spans.Snapshots())
	}
	for i, w := range want {
		sp := spans[i]
		if sp.Name != w.name || sp.SpanKind != trace.SpanKindClient {
			t.Errorf("span %d = %q kind %v, want %q client", i, sp.Name, sp.SpanKind, w.name)
		}
		if sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the request span", sp.Name)
		}
		attrs := attrMap(sp.Attributes)
		if attrs["db.system.name"] != "sqlite" || attrs["db.system"] != "sqlite" || attrs["db.namespace"] != "listings.db" {
			t.Errorf("%s attributes = %v", sp.Name, attrs)
		}
		if attrs["error.type"] != w.errType {
			t.Errorf("%s error.type = %q, want %q", sp.Name, attrs["error.type"], w.errType)
		}
		if sp.Status.Code == codes.Error {
			t.Errorf("%s marked failed for an expected outcome", sp.Name)
		}
		if w.rows >= 0 {
			if got := findAttr(sp.Attributes, "db.response.returned_rows"); got.AsInt64() != w.rows {
				t.Errorf("%s returned_rows = %v, want %d", sp.Name, got.String(), w.rows)
			}
		}
	}
}

func TestTracedFaultMarksSpanFailed(t *testing.T) {
	t.Parallel()
	s, exp, tracer := openTraced(t, t.TempDir())
	s.Store.Close()
	ctx, parent := tracer.Start(t.Context(), "request")
	if _, err := s.Search(ctx, listing.Query{Limit: 10}); err == nil {
		t.Fatal("Search on a closed store succeeded")
	}
	parent.End()
	sp := exp.GetSpans()[0]
	if sp.Status.Code != codes.Error || len(sp.Events) == 0 || sp.Events[0].Name != "exception" {
		t.Fatalf("span = status %v events %v, want an error with the exception recorded", sp.Status, sp.Events)
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func findAttr(kvs []attribute.KeyValue, key attribute.Key) attribute.Value {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}
