// Package storetrace wraps a sqlitestore.Store in OpenTelemetry client
// spans. It is apart from the store so that the store itself does not
// depend on OpenTelemetry, and so that the tracing stays one optional
// layer the listing service puts on when tracing is on.
package storetrace

import (
	"context"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// scope is the instrumentation scope of the store's spans: still the
// store's package, as before the wrapper moved here, so the traces read
// the same.
const scope = "github.com/parkmesh/parkmesh/pkg/sqlitestore"

// Store is a sqlitestore.Store whose Create, Get, Update, Delete, Search
// and Changes each run in a client span ("sqlitestore.Search", …) tagged
// with the OpenTelemetry database attributes (db.system.name=sqlite, the
// file as db.namespace). Other methods are the Store's own. Close closes
// the Store.
//
// A span is started only under a span that is recording, normally the
// request's server span: a store call made outside any traced request
// (start-up, a background job) would otherwise become a trace of one span.
// Callers use the plain *sqlitestore.Store when tracing is off, so that costs nothing.
type Store struct {
	*sqlitestore.Store
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

var _ listing.Store = (*Store)(nil)

// New returns s with spans from tp around its data calls.
func New(s *sqlitestore.Store, tp trace.TracerProvider) *Store {
	return &Store{
		Store:  s,
		tracer: tp.Tracer(scope),
		attrs: []attribute.KeyValue{
			semconv.DBSystemNameSQLite,
			// The pre-1.30 name, which older backends and Jaeger's UI still key on.
			attribute.String("db.system", "sqlite"),
			semconv.DBNamespace(filepath.Base(s.Path())),
			semconv.DBCollectionName("listings"),
		},
	}
}

// start opens the span of one store call, or returns a nil span when the
// caller's span is not recording.
func (t *Store) start(ctx context.Context, op string, extra ...attribute.KeyValue) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	attrs := make([]attribute.KeyValue, 0, len(t.attrs)+1+len(extra))
	attrs = append(attrs, t.attrs...)
	attrs = append(attrs, semconv.DBOperationName(op))
	attrs = append(attrs, extra...)
	return t.tracer.Start(ctx, "sqlitestore."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// end closes span. Answers such as not found or a stale version are
// outcomes the caller handles, so they are tagged (error.type) but do not
// mark the span failed; anything else is a database fault and does.
func end(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		code := apierror.CodeOf(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(string(code)))
		if code == apierror.Internal || code == apierror.Unavailable || code == apierror.Timeout {
			span.RecordError(err)
			span.SetStatus(codes.Error, string(code))
		}
	}
	span.End()
}

// Create stores a new listing in a span.
func (t *Store) Create(ctx context.Context, l *listing.Listing) (err error) {
	ctx, span := t.start(ctx, "Create")
	defer func() { end(span, err) }()
	return t.Store.Create(ctx, l)
}

// Get reads a listing in a span.
func (t *Store) Get(ctx context.Context, id string) (_ *listing.Listing, err error) {
	ctx, span := t.start(ctx, "Get")
	defer func() { end(span, err) }()
	return t.Store.Get(ctx, id)
}

// Update replaces a listing in a span.
func (t *Store) Update(ctx context.Context, l *listing.Listing, ifVersion int64) (err error) {
	ctx, span := t.start(ctx, "Update")
	defer func() { end(span, err) }()
	return t.Store.Update(ctx, l, ifVersion)
}

// Delete removes a listing in a span.
func (t *Store) Delete(ctx context.Context, id string, ifVersion int64, at time.Time) (_ *listing.Listing, err error) {
	ctx, span := t.start(ctx, "Delete")
	defer func() { end(span, err) }()
	return t.Store.Delete(ctx, id, ifVersion, at)
}

// Search runs a query in a span that records how many listings it returned.
func (t *Store) Search(ctx context.Context, q listing.Query) (page *listing.Page, err error) {
	ctx, span := t.start(ctx, "Search", attribute.Bool("parkmesh.query.text", q.Text != ""))
	defer func() {
		if span != nil && page != nil {
			span.SetAttributes(semconv.DBResponseReturnedRows(len(page.Results)))
		}
		end(span, err)
	}()
	return t.Store.Search(ctx, q)
}

// Changes reads the change log in a span that records how many changes it
// returned.
func (t *Store) Changes(ctx context.Context, after int64, limit int) (changes []listing.Change, err error) {
	ctx, span := t.start(ctx, "Changes", attribute.Int64("parkmesh.changes.after", after))
	defer func() {
		if span != nil && err == nil {
			span.SetAttributes(semconv.DBResponseReturnedRows(len(changes)))
		}
		end(span, err)
	}()
	return t.Store.Changes(ctx, after, limit)
}
