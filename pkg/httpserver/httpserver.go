// Package httpserver holds what every ParkMesh HTTP server shares: timeouts
// and limits, graceful shutdown, and the per-route middleware that logs
// each request once and records Prometheus metrics named after the
// OpenTelemetry HTTP semantic conventions.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of every server. WriteTimeout leaves room for a 30 s long-poll.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 45 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
	ShutdownTimeout   = 20 * time.Second
)

// New returns a server for h with ParkMesh's timeouts and header limit.
func New(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
}

type connKey struct{}

// DefaultMaxBodyBytes bounds a request body unless the process says
// otherwise: far above any JSON body ParkMesh takes (a listing is at most a
// few tens of kilobytes), far below what would hurt.
const DefaultMaxBodyBytes = 1 << 20

// LimitBody refuses request bodies longer than max bytes: 413 with the
// standard error JSON (field "body") when the Content-Length says so, and a
// read error for the handler (which answers 400) when a body without one
// runs past it.
func LimitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"error":{"code":"invalid","message":"request body larger than %d bytes","field":"body"}}`+"\n", max)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		h.ServeHTTP(w, r)
	})
}

// Conn returns the connection a request arrived on (servers made by New).
// Streaming handlers use it to bound the kernel's send buffer.
func Conn(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// Serve serves srv on ln until ctx is done, then stops accepting, lets
// in-flight requests finish (up to ShutdownTimeout) and returns.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Metrics holds the HTTP server metrics of one process.
type Metrics struct {
	Registry *prometheus.Registry
	duration *prometheus.HistogramVec
	active   *prometheus.GaugeVec
}

// NewMetrics returns metrics registered in a new registry (no globals, so
// several servers can live in one test process), with Go and process
// collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP server requests (OpenTelemetry http.server.request.duration).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"http_request_method", "http_route", "http_response_status_code"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "http_server_active_requests",
			Help: "In-flight HTTP server requests (OpenTelemetry http.server.active_requests).",
		}, []string{"http_route"}),
	}
	reg.MustRegister(m.duration, m.active)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// quietRoutes are logged at debug level: probes and scrapes are frequent.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// Middleware returns the per-route wrapper: one log line per request and
// the duration/active metrics under the route's pattern.
func (m *Metrics) Middleware(logger *slog.Logger) func(route string, h http.Handler) http.Handler {
	return func(route string, h http.Handler) http.Handler {
		active := m.active.WithLabelValues(route)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			active.Inc()
			rec := &Recorder{ResponseWriter: w, Status: http.StatusOK}
			defer func() {
				active.Dec()
				d := time.Since(start)
				m.duration.WithLabelValues(r.Method, route, strconv.Itoa(rec.Status)).Observe(d.Seconds())
				level := slog.LevelInfo
				switch {
				case rec.Status >= 500:
					level = slog.LevelError
				case quietRoutes[route]:
					level = slog.LevelDebug
				}
				logger.Log(r.Context(), level, "request", "method", r.Method, "route", route,
					"path", r.URL.Path, "status", rec.Status, "duration_ms", float64(d.Microseconds())/1000, "bytes", rec.Bytes)
			}()
			h.ServeHTTP(rec, r)
		})
	}
}

// Recorder captures the status and size of a response. It passes Flush
// through so streaming handlers keep working.
type Recorder struct {
	http.ResponseWriter
	Status int
	Bytes  int
	wrote  bool
}

// WriteHeader records the status.
func (r *Recorder) WriteHeader(code int) {
	if !r.wrote {
		r.Status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records the size.
func (r *Recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.Bytes += n
	return n, err
}

// Flush flushes the underlying writer when it can.
func (r *Recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Registrar keeps a process registered in service discovery until its
// context ends, then deregisters (pkg/registration.Registrar).
type Registrar interface {
	Run(ctx context.Context) error
}

// ServeRegistered is Serve with service registration around it: reg runs
// while the server serves; at shutdown reg deregisters first, so no new
// traffic is routed here, and only then does the server stop accepting and
// drain. reg may be nil.
func ServeRegistered(ctx context.Context, srv *http.Server, ln net.Listener, reg Registrar, logger *slog.Logger) error {
	if reg == nil {
		return Serve(ctx, srv, ln)
	}
	regCtx, regCancel := context.WithCancel(context.Background())
	regDone := make(chan struct{})
	go func() {
		defer close(regDone)
		if err := reg.Run(regCtx); err != nil {
			logger.Warn("deregistration failed", "err", err)
		}
	}()
	serveCtx, serveCancel := context.WithCancel(context.Background())
	defer serveCancel()
	go func() {
		select {
		case <-ctx.Done():
		case <-serveCtx.Done():
		}
		regCancel()
		<-regDone
		serveCancel()
	}()
	err := Serve(serveCtx, srv, ln)
	regCancel()
	<-regDone
	return err
}

// AdvertiseAddr returns the host and port to register for a listener:
// advertise when set ("host:port" or "host"), else the listener's address,
// with an unspecified host (0.0.0.0, ::) replaced by 127.0.0.1.
func AdvertiseAddr(advertise string, ln net.Listener) (string, int, error) {
	_, lport, _ := net.SplitHostPort(ln.Addr().String())
	addr := advertise
	if addr == "" {
		addr = ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, lport
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("advertise address %q: bad port", addr)
	}
	return host, p, nil
}
