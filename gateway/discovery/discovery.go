// Package discovery finds the park's service instances in Consul (blocking
// queries, passing checks only, as go-kit's sd/consul does, with a bounded
// retry: instancer.go) and calls them round robin with retries through
// go-kit's sd endpointer and balancer, the way go-kit's apigateway example
// does.
package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	kitlog "github.com/go-kit/log"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// Limits of calls to park services.
const (
	attemptTimeout = 3 * time.Second
	maxAttempts    = 3
)

// Services finds the healthy instances of the park's three services in
// Consul (blocking queries, passing checks only) and balances calls over
// them round robin with retries. When Consul is unreachable the last known
// instances keep serving.
type Services struct {
	logger     *slog.Logger
	client     *http.Client
	instancers map[listing.Kind]*instancer
	endpointer map[listing.Kind]*sd.DefaultEndpointer
	balancers  map[listing.Kind]lb.Balancer

	mu        sync.RWMutex
	instances map[listing.Kind][]string
	stop      chan struct{}
	wg        sync.WaitGroup
}

// New starts watching the agent cc talks to, with cc's ACL token (which
// must read the park's services and the nodes they run on); client calls
// the instances.
func New(cc *consulapi.Client, client *http.Client, logger *slog.Logger) (*Services, error) {
	d := &Services{
		logger:     logger,
		client:     client,
		instancers: map[listing.Kind]*instancer{},
		endpointer: map[listing.Kind]*sd.DefaultEndpointer{},
		balancers:  map[listing.Kind]lb.Balancer{},
		instances:  map[listing.Kind][]string{},
		stop:       make(chan struct{}),
	}
	kl := kitLogger(logger)
	for _, k := range listing.Kinds {
		inst := newInstancer(cc, k.ServiceName(), logger)
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
func (d *Services) track(k listing.Kind, inst *instancer, events chan sd.Event) {
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

// Close stops watching Consul. The watches stop first: one may be telling
// its subscribers of a change, which they must still take.
func (d *Services) Close() {
	for _, k := range listing.Kinds {
		d.instancers[k].Stop()
	}
	close(d.stop)
	d.wg.Wait()
	for _, k := range listing.Kinds {
		d.endpointer[k].Close()
	}
}

// op is one call of the listing service's API, made on whichever instance
// the balancer picks.
type op struct {
	timeout time.Duration // bounds one attempt
	call    func(context.Context, listingservice.Service) (any, error)
}

// result is an instance's answer, a business error included: only
// transport failures are endpoint errors, so only they are retried (as
// go-kit's Failer convention has it).
type result struct {
	v   any
	err error
}

// factory turns an instance address into an endpoint running ops on that
// instance's client half.
func (d *Services) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	svc, err := listingservice.NewHTTPClient(instance, d.client)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, req any) (any, error) {
		o := req.(op)
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		v, err := o.call(ctx, svc)
		if listingservice.IsTransport(err) {
			return nil, err
		}
		return result{v, err}, nil
	}, nil, nil
}

// do runs o on a healthy instance of kind k, retrying on another instance
// when an attempt fails in transport. Writes are retried only when the
// connection was refused, so a write is never applied twice. When no
// instance answers, the error is Unavailable and names the kind.
func (d *Services) do(ctx context.Context, k listing.Kind, idempotent bool, o op) (any, error) {
	if o.timeout <= 0 {
		o.timeout = attemptTimeout
	}
	retry := lb.RetryWithCallback(requestBudget(ctx), d.balancers[k], func(n int, err error) (bool, error) {
		if n >= maxAttempts || errors.Is(err, lb.ErrNoEndpoints) {
			return false, nil
		}
		var te *listingservice.TransportError
		return idempotent || (errors.As(err, &te) && te.Refused()), nil
	})
	resp, err := retry(ctx, o)
	if err != nil {
		// The caller reports the failure (a 503, or its own log line).
		d.logger.DebugContext(ctx, "service call failed", "kind", k, "err", err)
		return nil, apierror.New(apierror.Unavailable, "no healthy %s service instance answered", serviceLabel(k))
	}
	r := resp.(result)
	return r.v, r.err
}

// For returns kind k's service as one listingservice.Service: each call
// goes to a healthy instance found in Consul, round robin, retried on
// another instance when it fails in transport.
func (d *Services) For(k listing.Kind) listingservice.Service { return balanced{d: d, k: k} }

// balanced is one kind's service spread over its instances.
type balanced struct {
	d *Services
	k listing.Kind
}

// call runs f through the balancer and types its answer.
func call[T any](ctx context.Context, b balanced, idempotent bool, timeout time.Duration, f func(context.Context, listingservice.Service) (T, error)) (T, error) {
	v, err := b.d.do(ctx, b.k, idempotent, op{timeout: timeout, call: func(ctx context.Context, s listingservice.Service) (any, error) { return f(ctx, s) }})
	t, _ := v.(T)
	return t, err
}

func (b balanced) Create(ctx context.Context, l *listing.Listing) (*listing.Listing, error) {
	return call(ctx, b, false, 0, func(ctx context.Context, s listingservice.Service) (*listing.Listing, error) { return s.Create(ctx, l) })
}

func (b balanced) Get(ctx context.Context, id string) (*listing.Listing, error) {
	return call(ctx, b, true, 0, func(ctx context.Context, s listingservice.Service) (*listing.Listing, error) { return s.Get(ctx, id) })
}

func (b balanced) Update(ctx context.Context, id string, l *listing.Listing, ifVersion int64) (*listing.Listing, error) {
	return call(ctx, b, false, 0, func(ctx context.Context, s listingservice.Service) (*listing.Listing, error) {
		return s.Update(ctx, id, l, ifVersion)
	})
}

func (b balanced) Delete(ctx context.Context, id string, ifVersion int64) error {
	_, err := call(ctx, b, false, 0, func(ctx context.Context, s listingservice.Service) (struct{}, error) {
		return struct{}{}, s.Delete(ctx, id, ifVersion)
	})
	return err
}

func (b balanced) Search(ctx context.Context, q listing.Query) (*listing.Page, error) {
	return call(ctx, b, true, 0, func(ctx context.Context, s listingservice.Service) (*listing.Page, error) { return s.Search(ctx, q) })
}

func (b balanced) Changes(ctx context.Context, after int64, limit int, wait time.Duration) (*listingservice.ChangesPage, error) {
	// One attempt must outlast the long-poll's wait.
	return call(ctx, b, true, wait+9*time.Second, func(ctx context.Context, s listingservice.Service) (*listingservice.ChangesPage, error) {
		return s.Changes(ctx, after, limit, wait)
	})
}

func (b balanced) SeqBefore(ctx context.Context, t time.Time) (int64, error) {
	return call(ctx, b, true, 0, func(ctx context.Context, s listingservice.Service) (int64, error) { return s.SeqBefore(ctx, t) })
}

func (b balanced) Ready(ctx context.Context) error {
	_, err := call(ctx, b, true, 0, func(ctx context.Context, s listingservice.Service) (struct{}, error) { return struct{}{}, s.Ready(ctx) })
	return err
}

func serviceLabel(k listing.Kind) string {
	return k.Service() + " (" + string(k) + ")"
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
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	page, err := d.For(k).Changes(ctx, after, limit, wait)
	if err != nil {
		return nil, err
	}
	return page.Changes, nil
}

// SeqBefore implements feed.ChangeLogs.
func (d *Services) SeqBefore(ctx context.Context, k listing.Kind, t time.Time) (int64, error) {
	return d.For(k).SeqBefore(ctx, t)
}

// Search implements localsearch.Services: one page of q from kind k's
// service.
func (d *Services) Search(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error) {
	return d.For(k).Search(ctx, q)
}

// Get implements fedapi.Listings: listing id of kind k.
func (d *Services) Get(ctx context.Context, k listing.Kind, id string) (*listing.Listing, error) {
	return d.For(k).Get(ctx, id)
}
