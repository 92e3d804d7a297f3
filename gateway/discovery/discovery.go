// Package discovery finds the park's service instances in Consul (go-kit's
// sd/consul: blocking queries, passing checks only) and calls them round
// robin with retries, the way go-kit's apigateway example does.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	sdconsul "github.com/go-kit/kit/sd/consul"
	"github.com/go-kit/kit/sd/lb"
	kitlog "github.com/go-kit/log"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// ServiceName is the Consul service name of the service keeping kind k.
func ServiceName(k listing.Kind) string {
	switch k {
	case listing.KindOrganization:
		return "parkmesh-directory"
	case listing.KindProject:
		return "parkmesh-project"
	case listing.KindTalent:
		return "parkmesh-talent"
	}
	return ""
}

// Call is one HTTP request the gateway makes to a park service instance.
type Call struct {
	Method string
	Path   string // e.g. /v1/listings/prj_…
	Query  string
	Header http.Header
	Body   []byte
	// Timeout bounds one attempt (default 3 s); long-polls set more.
	Timeout time.Duration
}

// Reply is a park service's answer to a Call.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Limits of calls to park services.
const (
	maxReplyBody   = 8 << 20
	attemptTimeout = 3 * time.Second
	maxAttempts    = 3
)

// Services finds the healthy instances of the park's three services in
// Consul (go-kit's sd/consul instancer: blocking queries, passing checks
// only) and balances calls over them round robin with retries. When Consul
// is unreachable the last known instances keep serving.
type Services struct {
	logger     *slog.Logger
	client     *http.Client
	instancers map[listing.Kind]*sdconsul.Instancer
	endpointer map[listing.Kind]*sd.DefaultEndpointer
	balancers  map[listing.Kind]lb.Balancer

	mu        sync.RWMutex
	instances map[listing.Kind][]string
	stop      chan struct{}
	wg        sync.WaitGroup
}

// New starts watching the agent at consulAddr.
func New(consulAddr string, client *http.Client, logger *slog.Logger) (*Services, error) {
	cfg := consulapi.DefaultConfig()
	cfg.Address = consulAddr
	cc, err := consulapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("-consul %q: %w", consulAddr, err)
	}
	d := &Services{
		logger:     logger,
		client:     client,
		instancers: map[listing.Kind]*sdconsul.Instancer{},
		endpointer: map[listing.Kind]*sd.DefaultEndpointer{},
		balancers:  map[listing.Kind]lb.Balancer{},
		instances:  map[listing.Kind][]string{},
		stop:       make(chan struct{}),
	}
	kl := kitLogger(logger)
	for _, k := range listing.Kinds {
		inst := sdconsul.NewInstancer(sdconsul.NewClient(cc), kl, ServiceName(k), nil, true)
		d.instancers[k] = inst
		d.endpointer[k] = sd.NewEndpointer(inst, d.factory, kl)
		d.balancers[k] = lb.NewRoundRobin(d.endpointer[k])
		events := make(chan sd.Event, 4)
		inst.Register(events)
		d.wg.Add(1)
		go d.track(k, inst, events)
	}
	return d, nil
}

// track keeps the instance list of kind k for status pages and feeds;
// errors keep the previous list, as the endpointer does.
func (d *Services) track(k listing.Kind, inst *sdconsul.Instancer, events chan sd.Event) {
	defer d.wg.Done()
	defer inst.Deregister(events)
	for {
		select {
		case <-d.stop:
			return
		case ev := <-events:
			if ev.Err != nil {
				continue
			}
			list := slices.Clone(ev.Instances)
			slices.Sort(list)
			d.mu.Lock()
			d.instances[k] = list
			d.mu.Unlock()
		}
	}
}

// Instances returns the last known healthy instances ("host:port") of kind k.
func (d *Services) Instances(k listing.Kind) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.instances[k])
}

// Close stops watching Consul.
func (d *Services) Close() {
	close(d.stop)
	d.wg.Wait()
	for _, k := range listing.Kinds {
		d.endpointer[k].Close()
		d.instancers[k].Stop()
	}
}

// factory turns an instance address into an endpoint that performs a Call.
func (d *Services) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	base := "http://" + instance
	return func(ctx context.Context, req any) (any, error) {
		return d.do(ctx, base, req.(Call))
	}, nil, nil
}

// do performs c against one instance. Transport failures are errors (so the
// balancer retries elsewhere); any HTTP answer, even an error status, is a
// Reply.
func (d *Services) do(ctx context.Context, base string, c Call) (Reply, error) {
	timeout := attemptTimeout
	if c.Timeout > 0 {
		timeout = c.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := base + c.Path
	if c.Query != "" {
		u += "?" + c.Query
	}
	var body io.Reader
	if c.Body != nil {
		body = strings.NewReader(string(c.Body))
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, u, body)
	if err != nil {
		return Reply{}, err
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	res, err := d.client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxReplyBody+1))
	if err != nil {
		return Reply{}, err
	}
	if len(b) > maxReplyBody {
		return Reply{}, errors.New("service reply too large")
	}
	if res.StatusCode == http.StatusServiceUnavailable {
		// The instance is up but cannot serve (e.g. its store): try another.
		return Reply{}, errors.New("instance unavailable")
	}
	return Reply{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// Do sends c to a healthy instance of kind k, retrying on another instance
// when an attempt fails in transport. Writes are retried only when the
// connection was refused, so a write is never applied twice. When no
// instance answers, the error is Unavailable and names the kind.
func (d *Services) Do(ctx context.Context, k listing.Kind, c Call) (Reply, error) {
	idempotent := c.Method == http.MethodGet || c.Method == http.MethodHead
	retry := lb.RetryWithCallback(requestBudget(ctx), d.balancers[k], func(n int, err error) (bool, error) {
		if n >= maxAttempts || errors.Is(err, lb.ErrNoEndpoints) {
			return false, nil
		}
		return idempotent || refused(err), nil
	})
	resp, err := retry(ctx, c)
	if err != nil {
		// The caller reports the failure (a 503, or its own log line).
		d.logger.DebugContext(ctx, "service call failed", "kind", k, "err", err)
		return Reply{}, apierror.New(apierror.Unavailable, "no healthy %s service instance answered", serviceLabel(k))
	}
	return resp.(Reply), nil
}

func serviceLabel(k listing.Kind) string {
	return strings.TrimPrefix(ServiceName(k), "parkmesh-") + " (" + string(k) + ")"
}

// requestBudget is what remains of ctx's deadline (or a default).
func requestBudget(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return 10 * time.Second
}

// refused reports whether err means the request never reached a server.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// kitLogger adapts slog to go-kit's logger for the sd package, at debug
// level except errors.
func kitLogger(l *slog.Logger) kitlog.Logger {
	return kitlog.LoggerFunc(func(kv ...any) error {
		level := slog.LevelDebug
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == "err" {
				level = slog.LevelWarn
			}
		}
		l.Log(context.Background(), level, "consul discovery", kv...)
		return nil
	})
}

// Changes implements feed.ChangeLogs: up to limit changes of kind k after
// seq, waiting up to wait for one.
func (d *Services) Changes(ctx context.Context, k listing.Kind, after int64, limit int, wait time.Duration) ([]listing.Change, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}, "wait": {wait.String()}}
	// The budget must outlast the long-poll's wait.
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	rep, err := d.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/changes", Query: q.Encode(), Timeout: wait + 9*time.Second})
	if err != nil {
		return nil, err
	}
	if rep.Status != http.StatusOK {
		return nil, fmt.Errorf("%s change log answered %d", k, rep.Status)
	}
	var page struct {
		Changes []listing.Change `json:"changes"`
	}
	if err := json.Unmarshal(rep.Body, &page); err != nil {
		return nil, err
	}
	return page.Changes, nil
}

// SeqBefore implements feed.ChangeLogs.
func (d *Services) SeqBefore(ctx context.Context, k listing.Kind, t time.Time) (int64, error) {
	q := url.Values{"since": {t.UTC().Format(time.RFC3339Nano)}, "limit": {"1"}, "wait": {"0s"}}
	rep, err := d.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/changes", Query: q.Encode()})
	if err != nil {
		return 0, err
	}
	var page struct {
		From int64 `json:"from"`
	}
	if rep.Status != http.StatusOK || json.Unmarshal(rep.Body, &page) != nil {
		return 0, fmt.Errorf("%s change log answered %d", k, rep.Status)
	}
	return page.From, nil
}

// Search implements localsearch.Services: one page of q from kind k's
// service.
func (d *Services) Search(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error) {
	rep, err := d.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/listings", Query: q.Values().Encode()})
	if err != nil {
		return nil, err
	}
	if rep.Status != http.StatusOK {
		e := apierror.Read(rep.Status, strings.NewReader(string(rep.Body)))
		if e.Code == apierror.Invalid {
			return nil, e
		}
		return nil, apierror.New(apierror.Unavailable, "%s service answered %d", k, rep.Status)
	}
	var page listing.Page
	if err := json.Unmarshal(rep.Body, &page); err != nil {
		return nil, apierror.New(apierror.Unavailable, "%s service answered malformed JSON", k)
	}
	return &page, nil
}

// Get returns listing id of kind k from its service: NotFound when the
// service has none, Unavailable when no instance answers.
func (d *Services) Get(ctx context.Context, k listing.Kind, id string) (*listing.Listing, error) {
	rep, err := d.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/listings/" + url.PathEscape(id)})
	if err != nil {
		return nil, err
	}
	if rep.Status != http.StatusOK {
		return nil, apierror.Read(rep.Status, strings.NewReader(string(rep.Body)))
	}
	var l listing.Listing
	if err := json.Unmarshal(rep.Body, &l); err != nil {
		return nil, apierror.New(apierror.Unavailable, "%s service answered malformed JSON", k)
	}
	return &l, nil
}
