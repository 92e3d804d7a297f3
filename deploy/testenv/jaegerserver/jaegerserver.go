// Package jaegerserver starts and stops a real Jaeger v2 process, the trace
// backend of the demo and of the tracing smoke tests: one process on
// loopback with in-memory storage, receiving OTLP and answering Jaeger's
// query API.
//
// The binary is not vendored: [FindBinary] takes it from the
// PARKMESH_JAEGER_BIN environment variable or builds and caches it with the
// project's deploy/tools/install-jaeger.sh. The configuration is the
// project's deploy/jaeger/config.yaml; [Launch] moves each of its listeners
// to the ports given in [Options] through the environment variables that
// file reads, and returns once Jaeger reports itself healthy and its query
// API answers; [LaunchOnFreePorts] draws the ports and draws again when one
// turns out to be taken.
package jaegerserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
)

// BinEnv names the environment variable that, when set, holds the path of
// the Jaeger binary to run; it wins over building one.
const BinEnv = "PARKMESH_JAEGER_BIN"

// Paths relative to the repository root.
const (
	installScript = "deploy/tools/install-jaeger.sh"
	// ConfigFile is the Jaeger configuration every ParkMesh Jaeger runs.
	ConfigFile = "deploy/jaeger/config.yaml"
)

// Environment variables deploy/jaeger/config.yaml reads for its listen
// addresses (host:port) and log level.
const (
	envOTLPGRPC  = "PARKMESH_JAEGER_OTLP_GRPC_ADDR"
	envOTLPHTTP  = "PARKMESH_JAEGER_OTLP_HTTP_ADDR"
	envQueryHTTP = "PARKMESH_JAEGER_QUERY_HTTP_ADDR"
	envQueryGRPC = "PARKMESH_JAEGER_QUERY_GRPC_ADDR"
	envHealth    = "PARKMESH_JAEGER_HEALTH_ADDR"
	envLogLevel  = "PARKMESH_JAEGER_LOG_LEVEL"
)

// ErrExited reports that Jaeger ended while [Launch] was waiting for it to
// become ready, typically because of its configuration. The returned error
// wraps it and carries the end of Jaeger's log.
var ErrExited = localproc.ErrExited

// ErrPortInUse reports that one of the ports was taken, before start
// (nothing was started then) or by Jaeger exiting with a bind error. It is
// [localproc.ErrAddrInUse], the error [LaunchOnFreePorts] answers by
// drawing fresh ports.
var ErrPortInUse = localproc.ErrAddrInUse

// Options describes one Jaeger process. Bin and the five ports are required.
type Options struct {
	// Bin is the path of the jaeger executable, see [FindBinary].
	Bin string
	// ConfigPath is the YAML configuration; default: deploy/jaeger/config.yaml
	// in the repository holding the working directory.
	ConfigPath string
	// Host is the loopback address every listener binds; default 127.0.0.1.
	Host string
	// OTLPGRPCPort and OTLPHTTPPort receive spans (Jaeger's defaults: 4317,
	// 4318).
	OTLPGRPCPort int
	OTLPHTTPPort int
	// QueryHTTPPort serves the query API and UI (default 16686);
	// QueryGRPCPort its gRPC twin (default 16685).
	QueryHTTPPort int
	QueryGRPCPort int
	// HealthPort serves the healthcheckv2 extension's /status (default 13133).
	HealthPort int
	// LogLevel is Jaeger's log level; default "info".
	LogLevel string
	// RunOptions: the log file, the ready timeout, killing Jaeger with
	// its launcher, the launcher's logger.
	localproc.RunOptions
}

func (o *Options) withDefaults() error {
	var ports []localproc.Port
	for _, p := range o.ports() {
		ports = append(ports, localproc.Port{Name: p.name, Number: p.port})
	}
	if err := localproc.CheckOptions(o.Bin, ports...); err != nil {
		return fmt.Errorf("jaegerserver: %w", err)
	}
	if o.ConfigPath == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("jaegerserver: working directory: %w", err)
		}
		root, err := localproc.RepoRoot(wd)
		if err != nil {
			return fmt.Errorf("jaegerserver: set Options.ConfigPath or run inside the repository: %w", err)
		}
		o.ConfigPath = filepath.Join(root, ConfigFile)
	}
	if _, err := os.Stat(o.ConfigPath); err != nil {
		return fmt.Errorf("jaegerserver: config: %w", err)
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	return nil
}

type namedPort struct {
	name, env string
	port      int
}

func (o Options) ports() []namedPort {
	return []namedPort{
		{"OTLPGRPCPort", envOTLPGRPC, o.OTLPGRPCPort},
		{"OTLPHTTPPort", envOTLPHTTP, o.OTLPHTTPPort},
		{"QueryHTTPPort", envQueryHTTP, o.QueryHTTPPort},
		{"QueryGRPCPort", envQueryGRPC, o.QueryGRPCPort},
		{"HealthPort", envHealth, o.HealthPort},
	}
}

func (o Options) addr(port int) string { return net.JoinHostPort(o.Host, strconv.Itoa(port)) }

// checkPorts fails with ErrPortInUse when a port cannot be bound: a stale
// Jaeger still holding the health port would otherwise answer the readiness
// probe in place of ours.
func (o Options) checkPorts() error {
	ports := make([]int, 0, 5)
	for _, p := range o.ports() {
		ports = append(ports, p.port)
	}
	return localproc.CheckPorts("tcp", o.Host, ports...)
}

// Env returns the environment variables (NAME=value) that place Jaeger's
// listeners where these options say; Launch adds them to its own
// environment.
func (o Options) Env() []string {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	env := make([]string, 0, 6)
	for _, p := range o.ports() {
		env = append(env, p.env+"="+o.addr(p.port))
	}
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	return append(env, envLogLevel+"="+level)
}

// Server is one running (or stopped) Jaeger process started by [Launch].
// Its methods are safe for concurrent use.
type Server struct {
	// Process gives PID, Done, Err, Stop, Kill and LogTail.
	*localproc.Process
	opts Options
	http *http.Client
}

// Launch starts Jaeger as opts describe and waits until it is ready: its
// health endpoint reports healthy and the query API answers. ctx (and
// Options.ReadyTimeout) bound only this wait; Jaeger runs until
// [Server.Stop] or [Server.Kill]. If a port is taken the error wraps
// [ErrPortInUse]; if Jaeger exits before it is ready, it wraps [ErrExited]
// and shows the end of its log. On any error nothing is left running.
func Launch(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	if err := opts.checkPorts(); err != nil {
		return nil, fmt.Errorf("jaegerserver: %w", err)
	}
	s := &Server{opts: opts, http: &http.Client{Timeout: 10 * time.Second}}
	proc, err := localproc.Launch(ctx, localproc.Spec{
		Name:       "jaeger on " + s.QueryURL(),
		Bin:        opts.Bin,
		Args:       opts.Args(),
		Env:        opts.Env(),
		Ready:      func(ctx context.Context, _ *localproc.Process) error { return s.ready(ctx) },
		RunOptions: opts.RunOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("jaegerserver: %w", err)
	}
	s.Process = proc
	return s, nil
}

// LaunchOnFreePorts is [Launch] on five ports drawn by choose
// ([localproc.FreePorts] when nil) in place of opts' ports, drawing fresh
// ones and launching again when a port turns out to be taken (at most
// [localproc.StartAttempts] times). logf, when set, is told of each retry.
func LaunchOnFreePorts(ctx context.Context, opts Options, choose localproc.PortChooser, logf func(format string, args ...any)) (*Server, error) {
	return localproc.OnFreePorts(choose, 5, logf, func(p []int) (*Server, error) {
		opts.OTLPGRPCPort, opts.OTLPHTTPPort, opts.QueryHTTPPort, opts.QueryGRPCPort, opts.HealthPort = p[0], p[1], p[2], p[3], p[4]
		return Launch(ctx, opts)
	})
}

// Restart stops Jaeger if it runs (killing it after 5 s) and launches it
// again with the same options: the same ports, its output appended to the
// same log file. Jaeger keeps traces in memory, so the new one starts
// empty; exporters deliver to it with their next batch. The returned
// Server replaces s. On error nothing new runs, and s may be restarted
// again.
func (s *Server) Restart(ctx context.Context) (*Server, error) {
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		return nil, err
	}
	return Launch(ctx, s.opts)
}

// Args returns the command-line arguments (without the binary) Launch
// passes to jaeger.
func (o Options) Args() []string { return []string{"--config=file:" + o.ConfigPath} }

// ready is one readiness check: healthy, and the query API answers.
func (s *Server) ready(ctx context.Context) error {
	var health struct {
		Healthy bool `json:"healthy"`
	}
	if err := s.getJSON(ctx, "http://"+s.opts.addr(s.opts.HealthPort)+"/status", &health); err != nil {
		return err
	}
	if !health.Healthy {
		return errors.New("not healthy yet")
	}
	var services struct{}
	return s.getJSON(ctx, s.QueryURL()+"/api/services", &services)
}

func (s *Server) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.200s", u, res.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// Options returns the options Jaeger was launched with, defaults applied.
func (s *Server) Options() Options { return s.opts }

// QueryURL is the base URL of the query API and UI, "http://127.0.0.1:16686".
func (s *Server) QueryURL() string { return "http://" + s.opts.addr(s.opts.QueryHTTPPort) }

// OTLPGRPCAddr is the OTLP/gRPC receiver, host:port.
func (s *Server) OTLPGRPCAddr() string { return s.opts.addr(s.opts.OTLPGRPCPort) }

// OTLPHTTPAddr is the OTLP/HTTP receiver, host:port.
func (s *Server) OTLPHTTPAddr() string { return s.opts.addr(s.opts.OTLPHTTPPort) }

// ExporterEnv returns the OTEL_* variables (NAME=value) that point a
// ParkMesh process's exporter at this Jaeger with protocol "grpc" or
// "http/protobuf" (empty: grpc).
func (s *Server) ExporterEnv(protocol string) []string { return s.opts.ExporterEnv(protocol) }

// ExporterEnv returns the OTEL_* variables (NAME=value) that point a
// ParkMesh process's exporter at a Jaeger launched with these options,
// before it runs: a launcher can start the processes first and Jaeger
// later, their exporters retrying until it answers.
func (o Options) ExporterEnv(protocol string) []string {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	switch protocol {
	case "", "grpc":
		return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + o.addr(o.OTLPGRPCPort), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}
	default:
		return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + o.addr(o.OTLPHTTPPort), "OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol}
	}
}

// Services lists the service names Jaeger has received spans from.
func (s *Server) Services(ctx context.Context) ([]string, error) {
	var resp struct {
		Data []string `json:"data"`
	}
	if err := s.getJSON(ctx, s.QueryURL()+"/api/services", &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// Trace is one trace as Jaeger's query API (/api/traces) returns it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
}

// Span is one span of a [Trace].
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the epoch
	Duration      int64       `json:"duration"`  // µs
	Tags          []KeyValue  `json:"tags"`
	ProcessID     string      `json:"processID"`
}

// Reference links a span to another (CHILD_OF its parent, FOLLOWS_FROM a link).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Process is the resource a span came from: the service name and the other
// resource attributes as tags (parkmesh.park, service.version, …).
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// KeyValue is a tag.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Tag returns the value of the tag key as a string, "" when absent.
func Tag(tags []KeyValue, key string) string {
	for _, kv := range tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

// Traces returns the recent traces (at most limit; 0 means 20) holding a
// span of service.
func (s *Server) Traces(ctx context.Context, service string, limit int) ([]Trace, error) {
	if limit <= 0 {
		limit = 20
	}
	q := url.Values{"service": {service}, "limit": {strconv.Itoa(limit)}, "lookback": {"1h"}}
	var resp struct {
		Data []Trace `json:"data"`
	}
	if err := s.getJSON(ctx, s.QueryURL()+"/api/traces?"+q.Encode(), &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// Trace returns the trace with the given hex id, or an error when Jaeger
// does not have it (yet).
func (s *Server) Trace(ctx context.Context, traceID string) (Trace, error) {
	var resp struct {
		Data []Trace `json:"data"`
	}
	if err := s.getJSON(ctx, s.QueryURL()+"/api/traces/"+url.PathEscape(traceID), &resp); err != nil {
		return Trace{}, err
	}
	if len(resp.Data) == 0 {
		return Trace{}, fmt.Errorf("jaegerserver: no trace %s", traceID)
	}
	return resp.Data[0], nil
}

// FindBinary returns the path of the Jaeger binary to run: the value of
// PARKMESH_JAEGER_BIN when set (it must be an executable file), otherwise
// what deploy/tools/install-jaeger.sh prints (the first time it builds and
// caches the pinned Jaeger, several minutes and about 2 GB of memory). Its
// progress messages go to progress (nil discards them).
func FindBinary(ctx context.Context, progress io.Writer) (string, error) {
	return localproc.FindBinary(ctx, BinEnv, installScript, progress)
}
