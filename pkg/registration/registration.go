// Package registration keeps a ParkMesh process registered with its park's
// Consul agent, with an HTTP health check, for as long as the process runs.
//
// A [Registrar] registers the service, then watches cheaply (one local agent
// call every second or two) that the agent still has it: a restarted -dev
// agent, or one that reaped the service after it was critical for too long,
// has forgotten it, and the Registrar registers it again. While the agent is
// unreachable it retries with capped exponential backoff and logs once per
// change of state, not once per attempt. When its context ends it
// deregisters, so the gateway stops routing to the instance before the
// process exits.
//
// The usual wiring in a main:
//
//	reg, err := registration.New(registration.AgentAddr(*consulFlag), registration.Service{
//		Name:      "project",
//		ID:        registration.InstanceID("project", park, host, port),
//		Address:   host,
//		Port:      port,
//		Meta:      map[string]string{"park": park},
//		CheckPath: "/readyz",
//	}, logger)
//	...
//	go reg.Run(ctx) // deregisters when ctx is cancelled (SIGTERM)
package registration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/pkg/retry"
)

// DefaultAgentAddr is the agent address used when neither the -consul flag
// nor CONSUL_HTTP_ADDR names one: Consul's own default.
const DefaultAgentAddr = "127.0.0.1:8500"

// AgentAddrEnv is the environment variable Consul's tools read the agent
// address from; ParkMesh follows the same convention.
const AgentAddrEnv = "CONSUL_HTTP_ADDR"

// DefaultCheckPath is the health-check path used when Service.CheckPath is
// empty: every ParkMesh process serves /readyz.
const DefaultCheckPath = "/readyz"

// AgentAddr returns the Consul agent address a process should use: the
// -consul flag value when set, else $CONSUL_HTTP_ADDR, else
// [DefaultAgentAddr]. The result may carry a scheme ("https://host:8501"),
// which the Consul client honours.
func AgentAddr(flagValue string) string {
	if v := strings.TrimSpace(flagValue); v != "" {
		return v
	}
	if v := strings.TrimSpace(os.Getenv(AgentAddrEnv)); v != "" {
		return v
	}
	return DefaultAgentAddr
}

// InstanceID builds the Consul service ID of one instance,
// "<name>-<park>-<host>-<port>", unique within a park as long as one host
// does not run two instances on the same port. Characters that are awkward
// in the agent's URL paths (anything but letters, digits, '.', '_' and '-')
// become '-'; empty parts are left out.
func InstanceID(name, park, host string, port int) string {
	parts := make([]string, 0, 4)
	for _, p := range []string{name, park, host, strconv.Itoa(port)} {
		if p = sanitizeID(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "-")
}

func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		default:
			return '-'
		}
	}, strings.TrimSpace(s))
}

// Service describes the instance to register.
type Service struct {
	// Name is the Consul service name the gateway looks up, e.g. "project".
	Name string
	// ID is the instance's service ID, unique on the agent; see
	// [InstanceID]. Empty means InstanceID(Name, Meta["park"], <host name>,
	// Port).
	ID string
	// Address is the host or IP other processes (and the agent's health
	// check) reach the instance at; it must not be empty or unspecified
	// (0.0.0.0, ::).
	Address string
	// Port is the instance's HTTP port.
	Port int
	// Tags are copied into the registration.
	Tags []string
	// Meta is copied into the registration; by convention it carries
	// "park" and "version".
	Meta map[string]string
	// CheckPath is the path the agent's HTTP health check requests on
	// Address:Port; empty means [DefaultCheckPath].
	CheckPath string
}

// State is where a Registrar stands with the agent.
type State int

// The states a Registrar moves through. It starts Unregistered, is
// Registered while the agent is known to hold the service, Unreachable while
// calls to the agent fail, and Deregistered after Deregister (or Run's
// shutdown) removed it for good.
const (
	Unregistered State = iota
	Registered
	Unreachable
	Deregistered
)

// String returns the state's lower-case name, as logged.
func (s State) String() string {
	switch s {
	case Unregistered:
		return "unregistered"
	case Registered:
		return "registered"
	case Unreachable:
		return "unreachable"
	case Deregistered:
		return "deregistered"
	default:
		return "state(" + strconv.Itoa(int(s)) + ")"
	}
}

// config holds the tunables set by Options.
type config struct {
	checkInterval     time.Duration
	checkTimeout      time.Duration
	deregisterAfter   time.Duration
	pollInterval      time.Duration
	initialBackoff    time.Duration
	maxBackoff        time.Duration
	requestTimeout    time.Duration
	deregisterTimeout time.Duration
	checkURL          string
	token             string
	httpClient        *http.Client
}

// Option tunes a Registrar; the defaults suit production and tests alike.
type Option func(*config)

// WithCheckInterval sets how often the agent runs the HTTP health check
// (default 2s).
func WithCheckInterval(d time.Duration) Option { return func(c *config) { c.checkInterval = d } }

// WithCheckTimeout sets the health check's request timeout (default 1s).
func WithCheckTimeout(d time.Duration) Option { return func(c *config) { c.checkTimeout = d } }

// WithDeregisterCriticalAfter sets how long the check may stay critical
// before the agent removes the service on its own (default 1m, Consul's
// minimum). The Registrar then registers it again, so a recovered instance
// comes back.
func WithDeregisterCriticalAfter(d time.Duration) Option {
	return func(c *config) { c.deregisterAfter = d }
}

// WithPollInterval sets how often Run asks the agent whether it still has
// the service (default 1.5s). This bounds how long an agent restart goes
// unnoticed.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithBackoff sets the first and the largest wait between attempts while the
// agent is unreachable (defaults 200ms and 5s); the wait doubles in between.
func WithBackoff(initial, max time.Duration) Option {
	return func(c *config) { c.initialBackoff, c.maxBackoff = initial, max }
}

// WithRequestTimeout bounds each call to the agent (default 3s), so a hung
// agent cannot stall the loop.
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithDeregisterTimeout bounds the deregistration Run performs when its
// context ends (default 2s): shutdown must not hang on a dead agent.
func WithDeregisterTimeout(d time.Duration) Option {
	return func(c *config) { c.deregisterTimeout = d }
}

// WithCheckURL replaces the health-check URL built from Address, Port and
// CheckPath, e.g. for an https listener or a separate admin port.
func WithCheckURL(u string) Option { return func(c *config) { c.checkURL = u } }

// WithToken sets the ACL token sent to the agent (default: the
// CONSUL_HTTP_TOKEN_FILE or CONSUL_HTTP_TOKEN environment variable, read by
// the Consul client). See [ReadTokenFile].
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// TokenFileEnv is the variable Consul's tools read a token file's path
// from; ParkMesh's processes honour it when -consul-token-file is unset.
const TokenFileEnv = "CONSUL_HTTP_TOKEN_FILE"

// ReadTokenFile reads a process's Consul ACL token from path (the
// -consul-token-file flag): a token goes in a file of mode 0600, never on
// a command line, where every local user could read it. "" returns "",
// leaving the Consul client to its environment (CONSUL_HTTP_TOKEN_FILE,
// CONSUL_HTTP_TOKEN). An unreadable or empty file is an error. The token
// is read once: a rotated token takes effect when the process restarts.
func ReadTokenFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return token, nil
}

// WithHTTPClient sets the HTTP client used to talk to the agent (default:
// the Consul client's own).
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// Registrar keeps one service instance registered with one Consul agent.
// Create it with [New], drive it with [Registrar.Run]. Its methods are safe
// for concurrent use.
type Registrar struct {
	reg    *api.AgentServiceRegistration
	cfg    config
	client *api.Client
	log    *slog.Logger

	// opMu serialises calls that change the registration, so a Deregister
	// can never be overtaken by a registration Run had in flight.
	opMu sync.Mutex

	mu      sync.Mutex
	state   State
	lastErr error
	stopped bool          // Deregister was called: never register again
	everReg bool          // the agent has held the service at least once
	wake    chan struct{} // closed by Deregister to end Run's wait
}

// New validates svc and returns a Registrar for the agent at agentAddr
// (host:port, optionally with a scheme; empty means [AgentAddr]("")). It
// does not contact the agent: that is Run's job, so a process can start
// before its agent. A nil logger discards log output.
func New(agentAddr string, svc Service, logger *slog.Logger, opts ...Option) (*Registrar, error) {
	if agentAddr == "" {
		agentAddr = AgentAddr("")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := config{
		checkInterval:     2 * time.Second,
		checkTimeout:      time.Second,
		deregisterAfter:   time.Minute,
		pollInterval:      1500 * time.Millisecond,
		initialBackoff:    200 * time.Millisecond,
		maxBackoff:        5 * time.Second,
		requestTimeout:    3 * time.Second,
		deregisterTimeout: 2 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	reg, err := buildRegistration(svc, cfg)
	if err != nil {
		return nil, err
	}

	ac := api.DefaultConfig()
	ac.Address = agentAddr
	if cfg.token != "" {
		ac.Token = cfg.token
	}
	if cfg.httpClient != nil {
		ac.HttpClient = cfg.httpClient
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("registration: Consul client for %q: %w", agentAddr, err)
	}

	return &Registrar{
		reg:    reg,
		cfg:    cfg,
		client: client,
		log: logger.With("component", "registration", "service", reg.Name,
			"service_id", reg.ID, "consul", agentAddr),
		wake: make(chan struct{}),
	}, nil
}

func (c config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"check interval", c.checkInterval},
		{"check timeout", c.checkTimeout},
		{"deregister-critical-after", c.deregisterAfter},
		{"poll interval", c.pollInterval},
		{"initial backoff", c.initialBackoff},
		{"max backoff", c.maxBackoff},
		{"request timeout", c.requestTimeout},
		{"deregister timeout", c.deregisterTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("registration: %s must be positive, got %v", d.name, d.v)
		}
	}
	if c.maxBackoff < c.initialBackoff {
		return fmt.Errorf("registration: max backoff %v is below initial backoff %v", c.maxBackoff, c.initialBackoff)
	}
	if c.checkURL != "" {
		u, err := url.Parse(c.checkURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("registration: check URL %q is not an absolute http(s) URL", c.checkURL)
		}
	}
	return nil
}

// buildRegistration validates svc and turns it into the agent's
// registration payload, health check included.
func buildRegistration(svc Service, cfg config) (*api.AgentServiceRegistration, error) {
	if strings.TrimSpace(svc.Name) == "" {
		return nil, errors.New("registration: Service.Name is empty")
	}
	if svc.Port <= 0 || svc.Port > 65535 {
		return nil, fmt.Errorf("registration: Service.Port %d is not a TCP port", svc.Port)
	}
	addr := strings.TrimSpace(svc.Address)
	if addr == "" {
		return nil, errors.New("registration: Service.Address is empty; give the address peers reach this instance at")
	}
	if ip := net.ParseIP(addr); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("registration: Service.Address %q is unspecified; give the address peers reach this instance at", addr)
	}
	id := svc.ID
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			host = addr
		}
		id = InstanceID(svc.Name, svc.Meta["park"], host, svc.Port)
	}
	if strings.ContainsAny(id, "/?#% ") {
		return nil, fmt.Errorf("registration: Service.ID %q contains characters not allowed in the agent's URL paths", id)
	}
	checkURL := cfg.checkURL
	if checkURL == "" {
		path := svc.CheckPath
		if path == "" {
			path = DefaultCheckPath
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		checkURL = "http://" + net.JoinHostPort(addr, strconv.Itoa(svc.Port)) + path
	}
	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    svc.Name,
		Address: addr,
		Port:    svc.Port,
		Tags:    slices.Clone(svc.Tags),
		Meta:    maps.Clone(svc.Meta),
		Check: &api.AgentServiceCheck{
			CheckID:                        "service:" + id,
			Name:                           svc.Name + " readiness",
			HTTP:                           checkURL,
			Method:                         http.MethodGet,
			Interval:                       cfg.checkInterval.String(),
			Timeout:                        cfg.checkTimeout.String(),
			DeregisterCriticalServiceAfter: cfg.deregisterAfter.String(),
		},
	}, nil
}

// ServiceID returns the instance's service ID on the agent.
func (r *Registrar) ServiceID() string { return r.reg.ID }

// ServiceName returns the registered service name.
func (r *Registrar) ServiceName() string { return r.reg.Name }

// State returns where the Registrar stands with the agent and the error of
// the last failed agent call (nil once a call succeeds again).
func (r *Registrar) State() (State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.lastErr
}

// Registered reports whether the agent held the service at the last look.
// A readiness handler can use it, though registration lagging behind is no
// reason for an instance to refuse requests.
func (r *Registrar) Registered() bool {
	s, _ := r.State()
	return s == Registered
}

// Run registers the service and keeps it registered until ctx ends, then
// deregisters it (bounded by the deregister timeout, even though ctx is
// already done) and returns. It returns nil after a clean deregistration,
// the deregistration error when the agent could not be told, and nil at
// once if [Registrar.Deregister] was called. Call Run once.
func (r *Registrar) Run(ctx context.Context) error {
	r.log.Debug("registration starting", "check", r.reg.Check.HTTP)
	pause := retry.New(r.cfg.initialBackoff, r.cfg.maxBackoff)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return r.shutdown(ctx)
		case <-r.wake:
			return nil
		case <-timer.C:
		}

		wait := r.cfg.pollInterval
		if err := r.ensure(ctx); err != nil {
			if ctx.Err() != nil {
				continue // shutting down: not an agent failure
			}
			if errors.Is(err, errStopped) {
				return nil
			}
			wait = pause.NextBackOff()
		} else {
			pause.Reset()
		}
		timer.Reset(wait)
	}
}

// errStopped reports that Deregister ran, so there is nothing to keep.
var errStopped = errors.New("registration: deregistered")

// ensure makes sure the agent holds the service, registering it when it
// does not, and records the resulting state.
func (r *Registrar) ensure(ctx context.Context) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.isStopped() {
		return errStopped
	}

	reqCtx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()

	svc, _, err := r.client.Agent().Service(r.reg.ID, (&api.QueryOptions{}).WithContext(reqCtx))
	missing := isNotFound(err)
	if err != nil && !missing {
		return r.fail(ctx, fmt.Errorf("look up service: %w", err))
	}
	if !missing && svc.Service == r.reg.Name && svc.Address == r.reg.Address && svc.Port == r.reg.Port {
		r.succeed("")
		return nil
	}

	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(reqCtx)
	if err := r.client.Agent().ServiceRegisterOpts(r.reg, opts); err != nil {
		return r.fail(ctx, fmt.Errorf("register: %w", err))
	}
	switch {
	case !missing:
		r.succeed("agent held a different definition; registered again")
	case r.everRegistered():
		r.succeed("agent had lost the service; registered again")
	default:
		r.succeed("registered with Consul")
	}
	return nil
}

func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// fail records a failed agent call. It logs on the transition into
// Unreachable only; repeated failures go to debug level. A call cut short
// because Run's own context ended is no agent failure and is not recorded.
func (r *Registrar) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	r.mu.Lock()
	prev := r.state
	r.state, r.lastErr = Unreachable, err
	r.mu.Unlock()
	if prev != Unreachable {
		r.log.Warn("Consul agent unreachable; retrying with backoff", "previous_state", prev.String(), "err", err)
	} else {
		r.log.Debug("Consul agent still unreachable", "err", err)
	}
	return err
}

// succeed records that the agent holds the service; msg, when set, says
// that this call registered it and is logged at info level. A plain
// confirmation logs only when it ends an Unreachable spell.
func (r *Registrar) succeed(msg string) {
	r.mu.Lock()
	prev := r.state
	r.state, r.lastErr, r.everReg = Registered, nil, true
	r.mu.Unlock()
	switch {
	case msg != "":
		r.log.Info(msg, "previous_state", prev.String(), "check", r.reg.Check.HTTP)
	case prev != Registered:
		r.log.Info("Consul agent reachable again; service still registered", "previous_state", prev.String())
	}
}

// everRegistered reports whether the agent has held the service before,
// to tell a first registration from a repair.
func (r *Registrar) everRegistered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.everReg
}

func (r *Registrar) isStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// shutdown deregisters when Run's context has ended, on a fresh deadline.
func (r *Registrar) shutdown(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.deregisterTimeout)
	defer cancel()
	return r.Deregister(dctx)
}

// Deregister removes the service from the agent and stops Run from
// registering it again (Run then returns). Call it first in a graceful
// shutdown, before draining the HTTP server, so the gateway stops sending
// new requests. An agent that no longer knows the service counts as
// success; an unreachable agent is an error (the agent, once back, reaps
// the critical service after the deregister-critical-after period).
// Calling it again does nothing.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	close(r.wake)
	r.mu.Unlock()

	r.opMu.Lock()
	defer r.opMu.Unlock()
	err := r.client.Agent().ServiceDeregisterOpts(r.reg.ID, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil && !isNotFound(err) {
		r.mu.Lock()
		r.lastErr = err
		r.state = Deregistered
		r.mu.Unlock()
		r.log.Warn("could not deregister from Consul; the agent will reap the service once its check stays critical",
			"err", err, "reap_after", r.cfg.deregisterAfter.String())
		return fmt.Errorf("registration: deregister %s: %w", r.reg.ID, err)
	}
	r.mu.Lock()
	r.state, r.lastErr = Deregistered, nil
	r.mu.Unlock()
	r.log.Info("deregistered from Consul")
	return nil
}
