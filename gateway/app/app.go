// Package app is the gateway's composition root: configuration from flags
// and environment, the wiring of its packages (discovery, peering, feeds,
// club search, webhooks, the park and federation APIs), its listeners —
// the park side, the federation side and optionally metrics apart, so the
// trust boundary is a port — and graceful start and stop. gateway/cmd/gateway
// runs it.
package app

import (
	"context"
	"crypto"
	"crypto/sha256"
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
	"strconv"
	"sync"
	"syscall"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/credentials"
	"github.com/parkmesh/parkmesh/gateway/discovery"
	"github.com/parkmesh/parkmesh/gateway/fedapi"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/follower"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/openapi"
	"github.com/parkmesh/parkmesh/gateway/outbound"
	"github.com/parkmesh/parkmesh/gateway/parkapi"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/portal"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/session"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/cliflag"
	"github.com/parkmesh/parkmesh/pkg/httpserver"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/pkg/registration"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
	"github.com/parkmesh/parkmesh/pkg/telemetry"
)

// Version is the build version, set with -ldflags.
var Version = "dev"

// Config is the gateway's configuration, from flags and PARKMESH_… variables.
type Config struct {
	// Listen is the park side: staff API, portal, and (unless
	// MetricsListen is set) metrics and health.
	Listen string
	// FederationListen is the only address peers reach: the federation
	// API and the well-known documents.
	FederationListen string
	// MetricsListen, when set, serves /metrics, /healthz and /readyz
	// apart from the staff API.
	MetricsListen string
	Park          string
	DataDir       string
	Consul        string
	// ConsulTokenFile holds the gateway's Consul ACL token (mode 0600).
	ConsulTokenFile string
	PublicURL       string
	Advertise       string
	LogLevel        string
	Timeout         time.Duration
	Name            string
	Country         string
	// NameZH and NameEN are the park's display names for people (zh, en);
	// NameEN defaults to Name, Country to the older -country.
	NameZH, NameEN string
	// SessionIdle and SessionAbsolute end portal sessions unused this long
	// and this long after sign-in; SessionCookieSecure marks the cookie
	// Secure although the park side is plain HTTP (behind a TLS proxy).
	SessionIdle, SessionAbsolute time.Duration
	SessionCookieSecure          bool
	// OIDC configures sign-in through the park's OpenID Connect provider
	// (off unless OIDC.Issuer is set).
	OIDC OIDCConfig
	// BreakerOpenFor is how long a peer's open breaker refuses calls.
	BreakerOpenFor time.Duration
	// PeerSlowFloor is the least budget a peer call must have for its
	// timeout to count against the peer's breaker.
	PeerSlowFloor time.Duration
	// FeedTokenTTL is the lifetime of the tokens peers' feeds are followed
	// with: each stream ends when its token does, and is resumed.
	FeedTokenTTL time.Duration
	// FeedIdleTimeout drops a peer's feed that sends nothing, not even a
	// heartbeat, for this long: the peer's part of the club index turns
	// stale and the feed is resumed.
	FeedIdleTimeout time.Duration
	// Feed tunes the change streams.
	Feed feed.Options
	// WebhookAttempts and WebhookBackoff tune webhook retries.
	WebhookAttempts int
	WebhookBackoff  time.Duration
	// WebhookAllow are the denied ranges (loopback, private, …) webhooks
	// may target all the same.
	WebhookAllow outbound.Prefixes
	// MaxWebhooks caps the park's webhooks.
	MaxWebhooks int
	// Limits: peers' URLs (https unless loopback, unless allowed), open
	// streams per park-local token and per peer, peering handshakes in
	// progress, request bodies.
	AllowInsecurePeers  bool
	MaxStreamsPerToken  int
	MaxStreamsPerPeer   int
	MaxPendingEstablish int
	MaxBodyBytes        int64
	// AllowEmptyStore begins with an empty state file where the data
	// directory held one (missing or empty).
	AllowEmptyStore bool
	// Interests: how long an interest runs (and an accepted exchange
	// lasts), how many new interests one peer may deliver per hour, and
	// the first retry delay of a delivery to a peer.
	InterestExpiry      time.Duration
	InterestRatePerPeer int
	InterestBackoff     time.Duration
}

// Main runs the gateway process: ParseFlags, Open, Run(ctx), Close.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Telemetry is the tracing set-up; Open fills in the service name,
	// version and park (tests set an in-memory exporter here).
	Telemetry telemetry.Config
	tel       *telemetry.Telemetry
	// Listeners, when set before Open, are used instead of listening on
	// -listen, -federation-listen and -metrics-listen (tests open them on
	// port 0 first, so no port is chosen and then lost to a race).
	Listeners struct{ Park, Federation, Metrics net.Listener }

	keys           *parkkey.Reloader
	services       *discovery.Services
	ln             net.Listener // park side
	fedLn          net.Listener // federation side
	metricsLn      net.Listener // metrics and health, when apart
	handler        http.Handler // park side
	fedHandler     http.Handler
	metricsHandler http.Handler
	metrics        *httpserver.Metrics
	reg            *registration.Registrar
	peers          *peering.Store
	consulToken    string // from -consul-token-file; "" leaves the environment's
	state          *state.DB
	index          *clubindex.Index
	sessions       *session.Manager
	draining       chan struct{}
	stopBg         context.CancelFunc
	bg             sync.WaitGroup
}

// NewMain returns a Main logging JSON to w.
func NewMain(w io.Writer) *Main {
	return &Main{Logger: slog.New(slog.NewJSONHandler(w, nil))}
}

// ParseFlags reads and validates the configuration, naming the flag at fault.
func (m *Main) ParseFlags(args []string, getenv func(string) string, logTo io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&m.Config.Listen, "listen", "127.0.0.1:8080", "address of the park side: staff API, portal, and metrics/health unless -metrics-listen is set")
	fs.StringVar(&m.Config.FederationListen, "federation-listen", "127.0.0.1:8081", "address of the federation side, the only one peers reach")
	fs.StringVar(&m.Config.MetricsListen, "metrics-listen", "", "address for /metrics, /healthz and /readyz apart from the park side (default: on -listen)")
	fs.StringVar(&m.Config.Park, "park", "xian-hitech", "id of this park")
	fs.StringVar(&m.Config.DataDir, "data-dir", filepath.Join(".parkmesh", "data", "xian-hitech"), "directory holding the park's keys (made by `parkmesh init`)")
	fs.StringVar(&m.Config.Consul, "consul", "", "Consul agent HTTP address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)")
	fs.StringVar(&m.Config.ConsulTokenFile, "consul-token-file", "", "file holding the gateway's Consul ACL token (default $CONSUL_HTTP_TOKEN_FILE, else $CONSUL_HTTP_TOKEN)")
	fs.StringVar(&m.Config.PublicURL, "public-url", "", "URL at which peers reach this gateway's federation side (default http://<federation-listen>)")
	fs.StringVar(&m.Config.Advertise, "advertise", "", "host[:port] registered in Consul (default: the -listen address)")
	fs.StringVar(&m.Config.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&m.Config.Timeout, "timeout", 10*time.Second, "deadline of a park-side request")
	fs.StringVar(&m.Config.Name, "name", "", "the park's display name (default: the park id)")
	fs.StringVar(&m.Config.Country, "country", "", "the park's ISO 3166-1 alpha-2 country (older name of -park-country)")
	fs.StringVar(&m.Config.NameZH, "park-name-zh", "", "the park's display name in Chinese (default: the English one)")
	fs.StringVar(&m.Config.NameEN, "park-name-en", "", "the park's display name in English (default: -name, else the park id)")
	var parkCountry string
	fs.StringVar(&parkCountry, "park-country", "", "the park's ISO 3166-1 alpha-2 country (default: -country)")
	fs.DurationVar(&m.Config.SessionIdle, "session-idle", session.DefaultIdle, "a portal session unused this long ends")
	fs.DurationVar(&m.Config.SessionAbsolute, "session-absolute", session.DefaultAbsolute, "a portal session ends this long after sign-in, used or not")
	fs.BoolVar(&m.Config.SessionCookieSecure, "session-cookie-secure", false, "mark the session cookie Secure although the park side is plain HTTP (it is served over HTTPS by a proxy); a request over TLS always gets a Secure cookie")
	fs.StringVar(&m.Config.OIDC.Issuer, "oidc-issuer", "", "issuer URL of the park's OpenID Connect provider; empty: no OIDC sign-in")
	fs.StringVar(&m.Config.OIDC.ClientID, "oidc-client-id", "", "the gateway's client id at the provider")
	fs.StringVar(&m.Config.OIDC.ClientSecretFile, "oidc-client-secret-file", "", "file (mode 0600) holding the gateway's client secret at the provider; empty for a public client (PKCE only)")
	fs.StringVar(&m.Config.OIDC.RedirectURL, "oidc-redirect-url", "", "the park side's /auth/oidc/callback as browsers reach it (registered at the provider)")
	fs.StringVar(&m.Config.OIDC.Name, "oidc-name", "", "what the portal's sign-in button names the provider (default: OpenID Connect)")
	fs.StringVar(&m.Config.OIDC.Scopes, "oidc-scopes", "profile,email", "scopes asked besides openid (comma-separated)")
	fs.StringVar(&m.Config.OIDC.RoleClaim, "oidc-role-claim", "groups", "ID token claim (string or array of strings) mapped to a role")
	fs.StringVar(&m.Config.OIDC.RoleMap, "oidc-role-map", "", "claim values to roles, e.g. parkmesh-admins=admin,parkmesh-editors=editor,staff=viewer; the highest role matched wins")
	fs.StringVar(&m.Config.OIDC.DefaultRole, "oidc-default-role", "", "role of a person whose claim maps to none (viewer, editor, admin); empty: such a sign-in is refused")
	fs.DurationVar(&m.Config.BreakerOpenFor, "breaker-open", 5*time.Second, "how long a peer's open circuit breaker refuses calls before probing")
	fs.DurationVar(&m.Config.FeedIdleTimeout, "feed-idle-timeout", follower.DefaultIdleTimeout, "a peer's feed that sends nothing, not even a heartbeat, for this long is dropped (its listings turn stale) and resumed")
	fs.DurationVar(&m.Config.FeedTokenTTL, "feed-token-ttl", parktoken.MaxFederationTTL, "lifetime of the token a peer's feed is followed with (at most 5m); the stream is resumed with a fresh one when it expires")
	fs.DurationVar(&m.Config.PeerSlowFloor, "peer-slow-floor", clubsearch.DefaultSlowFloor, "least budget a peer search call needs for its timeout to count against the peer's breaker")
	fs.DurationVar(&m.Config.Feed.Heartbeat, "feed-heartbeat", 15*time.Second, "interval of keep-alive comments on event streams")
	fs.DurationVar(&m.Config.Feed.WriteTimeout, "feed-write-timeout", 10*time.Second, "a stream subscriber that reads nothing for this long is cut off")
	fs.Int64Var(&m.Config.Feed.MaxLag, "feed-max-lag", 50000, "events a stream subscriber may fall behind before it is cut off (resumable)")
	fs.IntVar(&m.Config.WebhookAttempts, "webhook-attempts", 5, "failed deliveries after which a webhook event is dead-lettered")
	fs.DurationVar(&m.Config.WebhookBackoff, "webhook-backoff", time.Second, "first webhook retry delay; doubles per attempt")
	fs.Var(&m.Config.WebhookAllow, "webhook-allow-cidr", "a range webhooks may target although it is loopback, private, link-local, … (CIDR; repeat or comma-separate; a metadata address only as itself, e.g. 169.254.169.254/32)")
	fs.IntVar(&m.Config.MaxWebhooks, "max-webhooks", 50, "most webhooks a park may register")
	fs.BoolVar(&m.Config.AllowEmptyStore, "allow-empty-store", false, "begin with an empty gateway state (webhooks, token records) although the data directory held one (it is missing or empty); a damaged file is refused all the same")
	fs.BoolVar(&m.Config.AllowInsecurePeers, "allow-insecure-peers", false, "accept http peer URLs on hosts other than loopback (a lab or a compose network; never across the internet)")
	fs.IntVar(&m.Config.MaxStreamsPerToken, "max-streams-per-token", 8, "event streams one park-local token may hold open at once on /api/v1/stream")
	fs.IntVar(&m.Config.MaxStreamsPerPeer, "max-streams-per-peer", 8, "changes streams one peer may hold open at once on /federation/v1/changes")
	fs.IntVar(&m.Config.MaxPendingEstablish, "max-pending-establish", 4, "peering handshakes in progress at once (the endpoint needs no credential)")
	fs.Int64Var(&m.Config.MaxBodyBytes, "max-body-bytes", httpserver.DefaultMaxBodyBytes, "largest request body either listener reads")
	fs.DurationVar(&m.Config.InterestExpiry, "interest-expiry", interests.DefaultExpiry, "how long an expression of interest runs unanswered, and how long an accepted one keeps the contacts exchanged")
	fs.IntVar(&m.Config.InterestRatePerPeer, "interest-rate-per-peer", interests.DefaultRatePerHour, "new interests one peer may deliver per hour (more get 429 with Retry-After)")
	fs.DurationVar(&m.Config.InterestBackoff, "interest-backoff", time.Second, "first retry delay of an interest message a peer has not acknowledged; doubles per attempt up to 5m")
	if err := cliflag.Parse(fs, args, getenv); err != nil {
		return err
	}
	if !listing.ValidParkID(m.Config.Park) {
		return fmt.Errorf("-park %q: must be lower-case letters, digits and hyphens, 2-63 characters", m.Config.Park)
	}
	for _, l := range []struct{ flag, addr string }{
		{"listen", m.Config.Listen}, {"federation-listen", m.Config.FederationListen}, {"metrics-listen", m.Config.MetricsListen},
	} {
		if l.addr == "" && l.flag == "metrics-listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("-%s %q: %v", l.flag, l.addr, err)
		}
	}
	if m.Config.Consul == "" {
		m.Config.Consul = getenv("CONSUL_HTTP_ADDR")
	}
	m.Config.Consul = registration.AgentAddr(m.Config.Consul)
	if m.Config.PublicURL == "" {
		m.Config.PublicURL = "http://" + m.Config.FederationListen
	}
	// An origin, as peers require (whether they take http is theirs to say).
	origin, err := peering.Origin(m.Config.PublicURL, true)
	if err != nil {
		return fmt.Errorf("-public-url %q: %v", m.Config.PublicURL, err)
	}
	m.Config.PublicURL = origin
	for _, l := range []struct {
		flag string
		n    int64
	}{
		{"max-streams-per-token", int64(m.Config.MaxStreamsPerToken)}, {"max-streams-per-peer", int64(m.Config.MaxStreamsPerPeer)},
		{"max-pending-establish", int64(m.Config.MaxPendingEstablish)}, {"max-body-bytes", m.Config.MaxBodyBytes},
	} {
		if l.n < 1 {
			return fmt.Errorf("-%s %d: must be at least 1", l.flag, l.n)
		}
	}
	if m.Config.Timeout <= 0 || m.Config.Timeout > time.Minute {
		return fmt.Errorf("-timeout %s: must be between 0 and 1m", m.Config.Timeout)
	}
	if m.Config.Name == "" {
		m.Config.Name = m.Config.Park
	}
	if m.Config.Country != "" && !listing.ValidCountry(m.Config.Country) {
		return fmt.Errorf("-country %q: must be an ISO 3166-1 alpha-2 code", m.Config.Country)
	}
	if parkCountry != "" {
		if !listing.ValidCountry(parkCountry) {
			return fmt.Errorf("-park-country %q: must be an ISO 3166-1 alpha-2 code", parkCountry)
		}
		if m.Config.Country != "" && m.Config.Country != parkCountry {
			return fmt.Errorf("-park-country %q: -country says %q; give one of them", parkCountry, m.Config.Country)
		}
		m.Config.Country = parkCountry
	}
	if m.Config.NameEN == "" {
		m.Config.NameEN = m.Config.Name
	}
	if m.Config.NameZH == "" {
		m.Config.NameZH = m.Config.NameEN
	}
	for _, n := range []struct{ flag, v string }{{"park-name-zh", m.Config.NameZH}, {"park-name-en", m.Config.NameEN}} {
		if err := peering.ValidDisplayName(n.v); err != nil {
			return fmt.Errorf("-%s %q: %v", n.flag, n.v, err)
		}
	}
	if m.Config.SessionIdle < time.Minute || m.Config.SessionAbsolute < m.Config.SessionIdle || m.Config.SessionAbsolute > 30*24*time.Hour {
		return fmt.Errorf("-session-idle %s, -session-absolute %s: idle must be at least 1m and absolute between idle and 720h", m.Config.SessionIdle, m.Config.SessionAbsolute)
	}
	if err := m.Config.OIDC.validate(); err != nil {
		return err
	}
	if m.Config.Feed.Heartbeat <= 0 {
		return fmt.Errorf("-feed-heartbeat %s: must be positive", m.Config.Feed.Heartbeat)
	}
	if m.Config.Feed.MaxLag <= 0 {
		return fmt.Errorf("-feed-max-lag %d: must be positive", m.Config.Feed.MaxLag)
	}
	if m.Config.WebhookAttempts < 1 || m.Config.WebhookBackoff <= 0 {
		return fmt.Errorf("-webhook-attempts must be at least 1 and -webhook-backoff positive")
	}
	if m.Config.MaxWebhooks < 1 || m.Config.MaxWebhooks > 10000 {
		return fmt.Errorf("-max-webhooks %d: must be between 1 and 10000", m.Config.MaxWebhooks)
	}
	if m.Config.BreakerOpenFor <= 0 {
		return fmt.Errorf("-breaker-open %s: must be positive", m.Config.BreakerOpenFor)
	}
	if m.Config.FeedTokenTTL < time.Second || m.Config.FeedTokenTTL > parktoken.MaxFederationTTL {
		return fmt.Errorf("-feed-token-ttl %s: must be between 1s and %s", m.Config.FeedTokenTTL, parktoken.MaxFederationTTL)
	}
	if m.Config.FeedIdleTimeout < time.Second {
		return fmt.Errorf("-feed-idle-timeout %s: must be at least 1s", m.Config.FeedIdleTimeout)
	}
	if m.Config.PeerSlowFloor <= 0 || m.Config.PeerSlowFloor > search.MaxBudget {
		return fmt.Errorf("-peer-slow-floor %s: must be positive and at most %s", m.Config.PeerSlowFloor, search.MaxBudget)
	}
	if m.Config.InterestExpiry < time.Minute {
		return fmt.Errorf("-interest-expiry %s: must be at least 1m", m.Config.InterestExpiry)
	}
	if m.Config.InterestRatePerPeer < 1 {
		return fmt.Errorf("-interest-rate-per-peer %d: must be at least 1", m.Config.InterestRatePerPeer)
	}
	if m.Config.InterestBackoff <= 0 || m.Config.InterestBackoff > 5*time.Minute {
		return fmt.Errorf("-interest-backoff %s: must be positive and at most 5m", m.Config.InterestBackoff)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return fmt.Errorf("-log-level %q: %v", m.Config.LogLevel, err)
	}
	m.Logger = slog.New(slog.NewJSONHandler(logTo, &slog.HandlerOptions{Level: level}))
	return nil
}

// Open loads the park's keys, opens the gateway's state, starts discovery,
// the peer watch, the feeds and webhooks, and opens the listeners. On
// error everything opened so far is closed again.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.closeListeners()
			m.Close()
		}
	}()
	m.Logger = slog.New(telemetry.LogHandler(m.Logger.Handler())).With("service", "parkmesh-gateway", "park", m.Config.Park)
	tcfg := m.Telemetry
	tcfg.ServiceName, tcfg.ServiceVersion, tcfg.Park = "parkmesh-gateway", Version, m.Config.Park
	if m.tel, err = telemetry.New(ctx, tcfg); err != nil {
		return err
	}
	if m.keys, err = parkkey.NewReloader(m.Config.DataDir, 0); err != nil {
		return fmt.Errorf("-data-dir %s: loading park keys (run `parkmesh init`): %w", m.Config.DataDir, err)
	}
	if p := m.keys.KeySet().Park(); p != m.Config.Park {
		return fmt.Errorf("-park %q: the keys in -data-dir belong to park %q", m.Config.Park, p)
	}
	m.metrics = httpserver.NewMetrics()
	// Every call out of the gateway follows no redirect (gateway/outbound);
	// refusals are logged and counted.
	outboundRefused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parkmesh_gateway_outbound_refused_total",
		Help: "Outbound requests refused: redirects not followed and dials to denied addresses, by client and reason.",
	}, []string{"client", "reason"})
	m.metrics.Registry.MustRegister(outboundRefused)
	client := func(name string, tr *http.Transport, traced bool, policy *outbound.Policy) *http.Client {
		o := outbound.Options{Name: name, Transport: tr, Policy: policy, Logger: m.Logger,
			Refused: func(c, reason string) { outboundRefused.WithLabelValues(c, reason).Inc() }}
		if traced {
			o.Wrap = m.tel.Transport
		}
		return outbound.New(o)
	}
	// Calls to the park's own services: short dials, pooled.
	serviceClient := client("service", &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second}, true, nil)
	if m.consulToken, err = registration.ReadTokenFile(m.Config.ConsulTokenFile); err != nil {
		return fmt.Errorf("-consul-token-file: %w", err)
	}
	ccfg := consulapi.DefaultConfig() // honours CONSUL_HTTP_TOKEN(_FILE) and TLS variables
	ccfg.Address = m.Config.Consul
	if m.consulToken != "" {
		ccfg.Token = m.consulToken
	}
	cc, err := consulapi.NewClient(ccfg)
	if err != nil {
		return fmt.Errorf("-consul %q: %w", m.Config.Consul, err)
	}
	if m.services, err = discovery.New(cc, serviceClient, m.Logger); err != nil {
		return err
	}
	authFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parkmesh_gateway_auth_failures_total",
		Help: "Requests refused for their token, by reason.",
	}, []string{"side", "reason"})
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parkmesh_gateway_limited_total",
		Help: "Requests refused by a cap (open streams, handshakes in progress), by side and cap.",
	}, []string{"side", "limit"})
	m.metrics.Registry.MustRegister(authFailures, limited)
	// Calls to peers: bounded in every phase; the search budget bounds the
	// wait for an answer.
	peerClient := client("peer", &http.Transport{
		MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 3 * time.Second, ResponseHeaderTimeout: search.MaxBudget,
	}, true, nil)
	// Peers' feeds: long-lived, so no overall timeout.
	streamClient := client("stream", &http.Transport{
		TLSHandshakeTimeout: 3 * time.Second, ResponseHeaderTimeout: 10 * time.Second,
	}, false, nil)
	// Webhook subscribers: every dialled address checked against the
	// policy, whatever the name resolved to at registration.
	webhookPolicy := outbound.NewPolicy(m.Config.WebhookAllow)
	webhookClient := client("webhook", &http.Transport{
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 3 * time.Second, ResponseHeaderTimeout: 10 * time.Second,
	}, true, webhookPolicy)
	m.peers = peering.NewStore(cc, peerClient, m.Logger, peering.StoreConfig{
		Keys: m.keys.KeySet, Metrics: m.metrics.Registry, DataDir: m.Config.DataDir,
	})
	fed := &peering.Federation{
		Park: m.Config.Park, Name: m.Config.Name, Country: m.Config.Country, PublicURL: m.Config.PublicURL,
		DisplayName: peering.DisplayName{ZH: m.Config.NameZH, EN: m.Config.NameEN},
		Keys:        m.keys.KeySet, Peers: m.peers, KV: cc.KV(), Client: peerClient,
		AllowInsecurePeers: m.Config.AllowInsecurePeers,
	}
	if m.state, err = state.Open(ctx, m.Config.DataDir, sqlitefile.AllowEmpty(m.Config.AllowEmptyStore), sqlitefile.WithLogger(m.Logger)); err != nil {
		return fmt.Errorf("-data-dir: %w", err)
	}
	creds := credentials.New(m.state, cc, m.Logger)
	if err := creds.Load(ctx); err != nil {
		return fmt.Errorf("-data-dir: reading token revocations: %w", err)
	}
	m.draining = make(chan struct{})
	m.Config.Feed.Draining = m.draining
	local := feed.NewLocal(m.Config.Park, m.services, m.Logger)
	// Positions a restore made void (parkmesh restore records them).
	restarts, err := m.state.FeedRestarts(ctx)
	if err != nil {
		return fmt.Errorf("-data-dir: reading restores: %w", err)
	}
	for k, rs := range restarts {
		gaps := make([]feed.Gap, 0, len(rs))
		for _, r := range rs {
			gaps = append(gaps, feed.Gap{After: r.After, Through: r.Base})
		}
		local.SetGaps(k, gaps)
	}
	if m.index, err = clubindex.Open(ctx, m.Config.DataDir, m.Config.Park, m.Logger, m.metrics.Registry); err != nil {
		return fmt.Errorf("-data-dir: %w", err)
	}
	index := m.index
	cursors := search.NewSigner(cursorKey(m.keys.KeySet()))
	localSearch := &localsearch.Searcher{Services: m.services, Cursors: cursors}

	fol := follower.New(index, m.Logger, m.metrics.Registry)
	fol.Peers, fol.Keys, fol.Client, fol.TokenTTL = m.peers, m.keys.KeySet, streamClient, m.Config.FeedTokenTTL
	fol.IdleTimeout = m.Config.FeedIdleTimeout
	club := clubsearch.New(m.Logger, m.metrics.Registry)
	club.Park, club.Local, club.Peers, club.Keys, club.Client, club.Cursors = m.Config.Park, localSearch, m.peers, m.keys.KeySet, peerClient, cursors
	club.BreakerOpenFor, club.SlowFloor = m.Config.BreakerOpenFor, m.Config.PeerSlowFloor
	club.FeedHealth, club.Index = fol.Health, index
	club.Tracer = m.tel.Tracer("github.com/parkmesh/parkmesh/gateway/clubsearch")
	m.peers.OnChange(club.SyncPeers)
	m.peers.OnChange(fol.Sync)
	// A peering deleted (here or on another replica) purges its listings.
	m.peers.OnChange(func() {
		var active []string
		for _, p := range m.peers.List() {
			active = append(active, p.ID)
		}
		index.SyncPeers(context.Background(), active)
	})
	hooks := &webhook.Webhooks{State: m.state, Index: index, Client: webhookClient, Logger: m.Logger,
		Policy: webhookPolicy, MaxWebhooks: m.Config.MaxWebhooks,
		MaxAttempts: m.Config.WebhookAttempts, Backoff: m.Config.WebhookBackoff}

	ints := &interests.Service{
		Park: m.Config.Park, State: m.state, Index: index, Listings: m.services, Keys: m.keys.KeySet,
		PeerURL: func(p string) (string, bool) {
			if peer, ok := m.peers.Get(p); ok {
				return peer.URL, true
			}
			return "", false
		},
		Client: peerClient, Logger: m.Logger, Expiry: m.Config.InterestExpiry,
		RatePerHour: m.Config.InterestRatePerPeer, Backoff: m.Config.InterestBackoff,
		Metrics: interests.NewMetrics(m.metrics.Registry, m.state),
	}

	accts := accounts.New(m.state)
	sessions := &session.Manager{Park: m.Config.Park, State: m.state, Accounts: accts, Logger: m.Logger,
		Idle: m.Config.SessionIdle, Absolute: m.Config.SessionAbsolute, SecureCookie: m.Config.SessionCookieSecure}
	if m.Config.OIDC.Issuer != "" {
		if sessions.OIDC, err = m.Config.OIDC.open(ctx, m.Logger, func(c, reason string) { outboundRefused.WithLabelValues(c, reason).Inc() }); err != nil {
			return err
		}
	}
	m.sessions = sessions
	park := &parkapi.API{
		Park: m.Config.Park, Services: m.services, Logger: m.Logger, Sessions: sessions,
		DisplayName: map[string]string{"zh": m.Config.NameZH, "en": m.Config.NameEN}, Country: m.Config.Country,
		Auth:         parktoken.NewVerifier(m.keys.KeySet, parktoken.WithRevocations(creds.Revoked)),
		Timeout:      m.Config.Timeout,
		AuthFailures: func(reason string) { authFailures.WithLabelValues("park", reason).Inc() },
		Local:        localSearch, Club: club, Peering: fed, Peers: m.peers,
		Index: index, FeedOptions: m.Config.Feed, Webhooks: hooks,
		Credentials: creds, StreamCaps: sse.Caps{Max: m.Config.MaxStreamsPerToken},
		Limited:   func(limit string) { limited.WithLabelValues("park", limit).Inc() },
		Interests: ints,
	}
	federation := &fedapi.API{
		Peering: fed, Local: localSearch, Listings: m.services, Logger: m.Logger,
		Verifier: &parktoken.FederationVerifier{Self: m.Config.Park, Peers: m.peers,
			Replay: parktoken.NewReplayCache(parktoken.DefaultReplayPerIssuer)},
		AuthFailures: func(reason string) { authFailures.WithLabelValues("federation", reason).Inc() },
		Feed:         local, FeedOptions: m.Config.Feed,
		StreamCaps: sse.Caps{Max: m.Config.MaxStreamsPerPeer}, MaxPendingEstablish: m.Config.MaxPendingEstablish,
		Limited:   func(limit string) { limited.WithLabelValues("federation", limit).Inc() },
		Interests: ints,
	}
	// A peering deleted (here or on another replica) ends its open streams.
	m.peers.OnChange(federation.PeersChanged)
	m.routes(park, federation)

	bctx, bcancel := context.WithCancel(context.Background())
	m.stopBg = bcancel
	followLocal := func(ctx context.Context) { index.FollowLocal(ctx, local) }
	sweep := func(ctx context.Context) { sessions.Sweep(ctx, 10*time.Minute) }
	identities := func(ctx context.Context) {
		select { // the peer set first
		case <-m.peers.Synced():
		case <-ctx.Done():
			return
		}
		m.peers.LearnIdentities(ctx, time.Hour)
	}
	for _, run := range []func(context.Context){m.peers.Run, creds.Run, local.Run, followLocal, fol.Run, hooks.Run, sweep, identities, ints.Run} {
		m.bg.Add(1)
		go func() { defer m.bg.Done(); run(bctx) }()
	}
	// Start with the peers Consul holds, if it answers soon.
	select {
	case <-m.peers.Synced():
	case <-time.After(3 * time.Second):
		m.Logger.Warn("peer set not read from Consul yet; starting without peers")
	}
	select {
	case <-creds.Synced():
	case <-time.After(time.Second):
		m.Logger.Warn("token revocations not read from Consul yet; starting with those the state holds")
	}
	return m.listen()
}

// routes builds the handlers of the listeners. Tracing is outermost (the
// request log line carries the trace ids), then logging and metrics. A
// trace offered by a caller is continued only for the park's own token
// holders (park side) and authenticated peers (federation side).
func (m *Main) routes(park *parkapi.API, federation *fedapi.API) {
	skip := telemetry.SkipRoutes("GET /healthz", "GET /readyz", "GET /metrics")
	parkMW := m.tel.Middleware(m.metrics.Middleware(m.Logger), skip,
		telemetry.Untrusted(func(r *http.Request) bool { return !park.Trusted(r) }))
	fedMW := m.tel.Middleware(m.metrics.Middleware(m.Logger), skip,
		telemetry.Untrusted(func(r *http.Request) bool { return !federation.Trusted(r) }))

	// The trust boundary is a port: the federation side is the only one
	// peers reach and answers nothing else; the park side holds the staff
	// API and portal; metrics and health go with the park side unless
	// they have a listener of their own.
	parkMux, fedMux := http.NewServeMux(), http.NewServeMux()
	park.Routes(parkMux, parkMW)
	m.sessions.Routes(parkMux, parkMW)
	federation.Routes(fedMux, fedMW)
	opsMux := parkMux
	if m.Config.MetricsListen != "" || m.Listeners.Metrics != nil {
		opsMux = http.NewServeMux()
		opsMux.Handle("/", parkMW("other", http.HandlerFunc(notFound)))
		m.metricsHandler = opsMux
	}
	opsMux.Handle("GET /metrics", m.metrics.Handler())
	opsMux.Handle("GET /healthz", parkMW("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	opsMux.Handle("GET /readyz", parkMW("GET /readyz", http.HandlerFunc(m.ready)))
	// The wire contract, for anyone who can reach the park side.
	parkMux.Handle("GET /api/v1/openapi.json", parkMW("GET /api/v1/openapi.json", openapi.Handler()))
	// The portal for park staff; everything else unknown is a JSON 404.
	page := portal.Handler()
	parkMux.Handle("GET /{$}", parkMW("GET /", page))
	parkMux.Handle("GET /portal/", parkMW("GET /portal/", page))
	parkMux.Handle("GET /favicon.ico", parkMW("GET /favicon.ico", page))
	parkMux.Handle("/", parkMW("other", http.HandlerFunc(notFound)))
	fedMux.Handle("/", fedMW("other", http.HandlerFunc(notFound)))
	m.handler = httpserver.LimitBody(parkMux, m.Config.MaxBodyBytes)
	m.fedHandler = httpserver.LimitBody(fedMux, m.Config.MaxBodyBytes)
}

// listen opens the listeners and registers the gateway in Consul.
func (m *Main) listen() error {
	var err error
	listen := func(given net.Listener, addr, flag string) (net.Listener, error) {
		if given != nil {
			return given, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("-%s: %w", flag, err)
		}
		return ln, nil
	}
	if m.ln, err = listen(m.Listeners.Park, m.Config.Listen, "listen"); err != nil {
		return err
	}
	if m.fedLn, err = listen(m.Listeners.Federation, m.Config.FederationListen, "federation-listen"); err != nil {
		return err
	}
	var regOpts []registration.Option
	if m.Config.MetricsListen != "" || m.Listeners.Metrics != nil {
		if m.metricsLn, err = listen(m.Listeners.Metrics, m.Config.MetricsListen, "metrics-listen"); err != nil {
			return err
		}
	}
	host, port, err := httpserver.AdvertiseAddr(m.Config.Advertise, m.ln)
	if err != nil {
		return fmt.Errorf("-advertise: %w", err)
	}
	if m.metricsLn != nil {
		// The agent checks readiness where it is served: the advertised
		// host (what the agent can reach), on the metrics port.
		_, mp, err := httpserver.AdvertiseAddr("", m.metricsLn)
		if err != nil {
			return fmt.Errorf("-metrics-listen: %w", err)
		}
		regOpts = append(regOpts, registration.WithCheckURL("http://"+net.JoinHostPort(host, strconv.Itoa(mp))+registration.DefaultCheckPath))
	}
	m.reg, err = registration.New(m.Config.Consul, registration.Service{
		Name:    "parkmesh-gateway",
		ID:      registration.InstanceID("parkmesh-gateway", m.Config.Park, host, port),
		Address: host,
		Port:    port,
		Tags:    []string{"parkmesh", "park-" + m.Config.Park},
		Meta:    map[string]string{"park": m.Config.Park, "version": Version, "public_url": m.Config.PublicURL},
	}, m.Logger, append(regOpts, registration.WithToken(m.consulToken))...)
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	return nil
}

// ready reports the instances known per kind; the gateway is ready when its
// keys are loaded (it answers 503 per request for a kind with no instance).
func (m *Main) ready(w http.ResponseWriter, r *http.Request) {
	inst := map[string]int{}
	for _, k := range listing.Kinds {
		inst[string(k)] = len(m.services.Instances(k))
	}
	if m.keys.KeySet().Current() == nil {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]any{"status": "no signing key", "instances": inst})
		return
	}
	if err := m.index.Healthy(r.Context()); err != nil {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]any{"status": apierror.Public(err).Message, "instances": inst})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"status": "ready", "instances": inst})
}

// cursorKey derives the key that signs search cursors from the park's
// signing key (Ed25519 signatures are deterministic), so every replica of
// the gateway accepts the others' cursors without sharing another secret.
func cursorKey(ks *parkkey.KeySet) []byte {
	sig, err := ks.Current().Signer().Sign(nil, []byte("parkmesh search cursor key v1"), crypto.Hash(0))
	if err != nil {
		panic("gateway: cannot derive cursor key: " + err.Error())
	}
	h := sha256.Sum256(sig)
	return h[:]
}

// Addr is the address the gateway listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Handler is the park side's HTTP handler (with metrics and health unless
// they listen apart).
func (m *Main) Handler() http.Handler { return m.handler }

// Services is the gateway's view of the park's service instances.
func (m *Main) Services() *discovery.Services { return m.services }

// closeListeners closes what Open opened before Run took them over.
func (m *Main) closeListeners() {
	for _, ln := range []net.Listener{m.ln, m.fedLn, m.metricsLn} {
		if ln != nil {
			ln.Close() // net.ErrClosed when already closed: nothing to report
		}
	}
}

// FederationAddr is the address of the federation side.
func (m *Main) FederationAddr() string { return m.fedLn.Addr().String() }

// FederationHandler is the federation side's HTTP handler.
func (m *Main) FederationHandler() http.Handler { return m.fedHandler }

// Run serves every listener until ctx is done, then shuts down gracefully:
// the gateway deregisters from Consul first, then every server drains.
func (m *Main) Run(ctx context.Context) error {
	m.Logger.Info("serving", "addr", m.Addr(), "federation_addr", m.FederationAddr(), "public_url", m.Config.PublicURL, "consul", m.Config.Consul, "version", Version)
	// Streams never end on their own: end them when shutdown starts, and
	// stop following peers, so the drain does not wait on them.
	var drainOnce sync.Once
	drain := func() {
		drainOnce.Do(func() {
			close(m.draining)
			if m.stopBg != nil {
				m.stopBg()
			}
		})
	}
	park := httpserver.New(m.handler, m.Logger)
	park.RegisterOnShutdown(drain)
	fed := httpserver.New(m.fedHandler, m.Logger)
	fed.RegisterOnShutdown(drain)
	errs := make(chan error, 3)
	n := 2
	go func() { errs <- httpserver.ServeRegistered(ctx, park, m.ln, m.reg, m.Logger) }()
	go func() { errs <- httpserver.Serve(ctx, fed, m.fedLn) }()
	if m.metricsLn != nil {
		n++
		ops := httpserver.New(m.metricsHandler, m.Logger)
		go func() { errs <- httpserver.Serve(ctx, ops, m.metricsLn) }()
	}
	var err error
	for range n {
		err = errors.Join(err, <-errs)
	}
	m.Close()
	m.Logger.Info("stopped")
	return err
}

// Close stops the background work and closes what Open opened; it returns
// every error met on the way. It is safe to call more than once.
func (m *Main) Close() error {
	var errs []error
	m.closeListeners() // those Run has not served (it closes its own)
	if m.stopBg != nil {
		m.stopBg()
		m.bg.Wait()
		m.stopBg = nil
	}
	if m.tel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.tel.Shutdown(ctx))
		cancel()
		m.tel = nil
	}
	if m.index != nil {
		errs = append(errs, m.index.Close())
		m.index = nil
	}
	if m.state != nil {
		errs = append(errs, m.state.Close())
		m.state = nil
	}
	if m.services != nil {
		m.services.Close()
		m.services = nil
	}
	return errors.Join(errs...)
}

// Run is the whole gateway process, what gateway/cmd/gateway calls.
func Run(args []string) int {
	m := NewMain(os.Stderr)
	if err := m.ParseFlags(args, os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Open(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		return 1
	}
	// One process, one provider: libraries that only know the global
	// OpenTelemetry API use it too.
	m.tel.SetGlobal()
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("exit", "err", err)
		return 1
	}
	return 0
}

func notFound(w http.ResponseWriter, r *http.Request) {
	apierror.Write(w, apierror.New(apierror.NotFound, "no route %s %s", r.Method, httpjson.Clip(r.URL.Path)))
}
