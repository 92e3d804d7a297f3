package listingservice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/parkmesh/parkmesh/pkg/cliflag"
	"github.com/parkmesh/parkmesh/pkg/httpserver"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/registration"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore/storetrace"
	"github.com/parkmesh/parkmesh/pkg/telemetry"
)

// untracedRoutes are served without spans: probes and scrapes come every few
// seconds and would bury the traces that matter.
var untracedRoutes = []string{"GET " + healthPath, "GET " + readyPath, "GET /metrics"}

// telemetryFlushTimeout bounds the flush of pending spans at Close.
const telemetryFlushTimeout = 5 * time.Second

// Version is the build version, set with -ldflags "-X ...listingservice.Version=…".
var Version = "dev"

// Spec names one of the three services.
type Spec struct {
	Name        string // "directory", "project", "talent"
	Kind        listing.Kind
	DefaultPort int
}

// SpecOf is the Spec of the service keeping kind k, its name and port taken
// from k's contract, so they cannot drift from what the gateway and the
// launchers derive from the same kind.
func SpecOf(k listing.Kind) Spec {
	return Spec{Name: k.Service(), Kind: k, DefaultPort: k.DefaultPort()}
}

// Config is a service's configuration, from flags and PARKMESH_… variables.
type Config struct {
	Listen  string
	DataDir string
	Park    string
	Consul  string
	// ConsulTokenFile holds the service's Consul ACL token (mode 0600).
	ConsulTokenFile string
	Advertise       string
	LogLevel        string
	// ChangesRetention is how long the change log (the audit trail) keeps
	// its history; 0 keeps it forever. Changes reads come from the
	// by-sequence index, which compaction never touches.
	ChangesRetention time.Duration
	// AllowEmptyStore begins with an empty store where the data directory
	// says one existed (it is missing, zero bytes or schema-less).
	AllowEmptyStore bool
}

// DefaultChangesRetention keeps a week of change history.
const DefaultChangesRetention = 7 * 24 * time.Hour

// compactEvery is how often the change log is compacted after the first
// compaction at start.
const compactEvery = time.Hour

// Main runs one service process: ParseFlags, Open, Run(ctx), Close.
type Main struct {
	Spec   Spec
	Config Config
	Logger *slog.Logger
	// Telemetry is the tracing set-up; Open fills in the service name,
	// version and park, and the OTEL_* environment does the rest. Tests set
	// its Exporter to an in-memory one.
	Telemetry telemetry.Config
	// StoreOptions are added to the store's own; tests shorten its
	// re-check with them.
	StoreOptions []sqlitestore.Option

	logOut  io.Writer
	tel     *telemetry.Telemetry
	store   *sqlitestore.Store
	ln      net.Listener
	handler http.Handler
	reg     *registration.Registrar
	// draining is closed when the HTTP server starts shutting down.
	draining chan struct{}
}

// NewMain returns a Main for spec logging JSON to w.
func NewMain(spec Spec, w io.Writer) *Main {
	return &Main{Spec: spec, logOut: w, Logger: newLogger(w, nil)}
}

// newLogger logs JSON to w with the trace and span ids of the request.
func newLogger(w io.Writer, opts *slog.HandlerOptions) *slog.Logger {
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}

// ParseFlags reads the configuration and validates it, naming the flag at
// fault.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet(m.Spec.Name, flag.ContinueOnError)
	fs.StringVar(&m.Config.Listen, "listen", fmt.Sprintf("127.0.0.1:%d", m.Spec.DefaultPort), "address to serve HTTP on")
	fs.StringVar(&m.Config.DataDir, "data-dir", filepath.Join(".parkmesh", "data"), "directory for the service's SQLite file")
	fs.StringVar(&m.Config.Park, "park", "xian-hitech", "id of the park this node belongs to")
	fs.StringVar(&m.Config.Consul, "consul", "", "Consul agent HTTP address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500; \"off\" disables registration)")
	fs.StringVar(&m.Config.ConsulTokenFile, "consul-token-file", "", "file holding the service's Consul ACL token (default $CONSUL_HTTP_TOKEN_FILE, else $CONSUL_HTTP_TOKEN)")
	fs.StringVar(&m.Config.Advertise, "advertise", "", "host[:port] registered in Consul (default: the -listen address)")
	fs.StringVar(&m.Config.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&m.Config.ChangesRetention, "changes-retention", DefaultChangesRetention,
		"how long the change log keeps its history (an audit trail; feeds never read it), compacted at start and hourly; 0 keeps it forever")
	fs.BoolVar(&m.Config.AllowEmptyStore, "allow-empty-store", false,
		"begin with an empty store although the data directory held one (it is missing or empty); a damaged file is refused all the same")
	if err := cliflag.Parse(fs, args, getenv); err != nil {
		return err
	}
	if m.Config.Consul != "off" {
		m.Config.Consul = registration.AgentAddr(m.Config.Consul)
	}
	if !listing.ValidParkID(m.Config.Park) {
		return fmt.Errorf("-park %q: must be lower-case letters, digits and hyphens, 2-63 characters", m.Config.Park)
	}
	if _, _, err := net.SplitHostPort(m.Config.Listen); err != nil {
		return fmt.Errorf("-listen %q: %v", m.Config.Listen, err)
	}
	if m.Config.DataDir == "" {
		return errors.New("-data-dir: must not be empty")
	}
	if m.Config.ChangesRetention < 0 {
		return fmt.Errorf("-changes-retention %s: must be 0 (keep the change log forever) or a positive duration", m.Config.ChangesRetention)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return fmt.Errorf("-log-level %q: %v", m.Config.LogLevel, err)
	}
	out := m.logOut
	if out == nil {
		out = os.Stderr
	}
	m.Logger = newLogger(out, &slog.HandlerOptions{Level: level})
	return nil
}

// DBPath is the service's SQLite file: one per service and park.
func (m *Main) DBPath() string {
	return filepath.Join(m.Config.DataDir, sqlitestore.ServiceFileName(m.Config.Park, m.Spec.Kind))
}

// Open sets up tracing and opens the store and the listener; after it, Addr
// is known.
func (m *Main) Open(ctx context.Context) (err error) {
	// The kind's Consul name, not one made from Spec.Name: the gateway
	// looks instances up by kind.
	name := m.Spec.Kind.ServiceName()
	m.Logger = slog.New(telemetry.LogHandler(m.Logger.Handler())).With("service", name, "park", m.Config.Park)
	tcfg := m.Telemetry
	tcfg.ServiceName, tcfg.ServiceVersion, tcfg.Park = name, Version, m.Config.Park
	tel, err := telemetry.New(ctx, tcfg)
	if err != nil {
		return err
	}
	defer func() { // on failure, undo whatever was opened
		if err != nil {
			if m.ln != nil {
				m.ln.Close()
				m.ln = nil
			}
			if m.store != nil {
				m.store.Close()
				m.store = nil
			}
			_ = tel.Shutdown(context.Background())
		}
	}()
	if err := os.MkdirAll(m.Config.DataDir, 0o750); err != nil {
		return fmt.Errorf("-data-dir: %w", err)
	}
	metrics := httpserver.NewMetrics()
	st, err := sqlitestore.Open(ctx, m.DBPath(), append([]sqlitestore.Option{
		sqlitestore.AllowEmpty(m.Config.AllowEmptyStore),
		sqlitestore.WithLogger(m.Logger), sqlitestore.WithRegisterer(metrics.Registry)}, m.StoreOptions...)...)
	if err != nil {
		return err
	}
	m.store = st
	var store listing.Store = st
	if tel.Enabled() {
		store = storetrace.New(st, tel.TracerProvider())
	}
	m.draining = make(chan struct{})
	svc := New(m.Spec.Kind, m.Config.Park, store, WithDraining(m.draining))
	// Tracing outermost, so the request log line carries the trace ids.
	mw := tel.Middleware(metrics.Middleware(m.Logger), telemetry.SkipRoutes(untracedRoutes...))
	api := NewHTTPHandler(m.Spec.Kind, NewSet(svc), m.Logger, mw)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	mux.Handle("/", api)
	m.handler = mux
	if m.ln, err = net.Listen("tcp", m.Config.Listen); err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if m.Config.Consul != "off" {
		host, port, err := httpserver.AdvertiseAddr(m.Config.Advertise, m.ln)
		if err != nil {
			return fmt.Errorf("-advertise: %w", err)
		}
		token, err := registration.ReadTokenFile(m.Config.ConsulTokenFile)
		if err != nil {
			return fmt.Errorf("-consul-token-file: %w", err)
		}
		m.reg, err = registration.New(m.Config.Consul, registration.Service{
			Name:    name,
			ID:      registration.InstanceID(name, m.Config.Park, host, port),
			Address: host,
			Port:    port,
			Tags:    []string{"parkmesh", "park-" + m.Config.Park, "kind-" + string(m.Spec.Kind)},
			Meta:    map[string]string{"park": m.Config.Park, "version": Version, "kind": string(m.Spec.Kind)},
		}, m.Logger, registration.WithToken(token))
		if err != nil {
			return fmt.Errorf("-consul: %w", err)
		}
	}
	m.tel = tel
	return nil
}

// Registrar is the process's Consul registration (nil with -consul off).
func (m *Main) Registrar() *registration.Registrar { return m.reg }

// Store is the service's store (open between Open and Close).
func (m *Main) Store() *sqlitestore.Store { return m.store }

// Addr is the address the service listens on (useful with port 0).
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Handler is the service's whole HTTP handler.
func (m *Main) Handler() http.Handler { return m.handler }

// Run serves until ctx is done, then shuts down gracefully: stop accepting,
// finish in-flight requests, close the store.
func (m *Main) Run(ctx context.Context) error {
	m.Logger.Info("serving", "addr", m.Addr(), "db", m.DBPath(), "version", Version, "tracing", m.tel.Enabled())
	srv := httpserver.New(m.handler, m.Logger)
	// Long-polls of the changes read end when shutdown starts.
	srv.RegisterOnShutdown(func() { close(m.draining) })
	var reg httpserver.Registrar
	if m.reg != nil {
		reg = m.reg
	}
	compactCtx, stopCompacting := context.WithCancel(ctx)
	compacted := make(chan struct{})
	go func() {
		defer close(compacted)
		m.compactLoop(compactCtx)
	}()
	err := httpserver.ServeRegistered(ctx, srv, m.ln, reg, m.Logger)
	stopCompacting()
	<-compacted // before the store closes
	m.Logger.Info("stopped")
	return errors.Join(err, m.Close())
}

// compactLoop compacts the change log at start and then every
// compactEvery until ctx ends; with -changes-retention 0 it does nothing.
func (m *Main) compactLoop(ctx context.Context) {
	if m.Config.ChangesRetention <= 0 {
		return
	}
	tick := time.NewTicker(compactEvery)
	defer tick.Stop()
	for {
		m.compact(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// compact deletes the change log's history older than the retention and
// logs how much went.
func (m *Main) compact(ctx context.Context) {
	before := time.Now().Add(-m.Config.ChangesRetention).UTC()
	n, err := m.store.Compact(ctx, before)
	if err != nil {
		if ctx.Err() == nil {
			m.Logger.Error("compacting the change log", "err", err, "before", before)
		}
		return
	}
	m.Logger.Info("compacted the change log", "deleted", n, "before", before, "retention", m.Config.ChangesRetention.String())
}

// Close closes the store and flushes pending spans. It is idempotent.
func (m *Main) Close() error {
	var err error
	if m.store != nil {
		err = m.store.Close()
		m.store = nil
	}
	if m.tel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), telemetryFlushTimeout)
		defer cancel()
		err = errors.Join(err, m.tel.Shutdown(ctx))
		m.tel = nil
	}
	return err
}

// Run is a whole service process: it is what services/*/cmd/* call.
func Run(spec Spec, args []string) int {
	m := NewMain(spec, os.Stderr)
	if err := m.ParseFlags(args, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Open(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, strings.TrimSpace(err.Error()))
		return 1
	}
	// One process, one provider: libraries that only know OpenTelemetry's
	// globals trace into it too.
	m.tel.SetGlobal()
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("exit", "err", err)
		return 1
	}
	return 0
}
