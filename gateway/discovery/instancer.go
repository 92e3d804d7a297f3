package discovery

import (
	"context"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/pkg/retry"
)

// Waits between failed queries of an instancer: from retryFirst, doubling,
// at most retryMax.
const (
	retryFirst = 10 * time.Millisecond
	retryMax   = 2 * time.Second
	// blockWait bounds one blocking query (Consul's default is 5 minutes).
	blockWait = time.Minute
)

// instancer is an sd.Instancer over Consul's health endpoint, as go-kit's
// sd/consul instancer is (blocking queries, passing checks only, the same
// events to the same subscribers), with one difference: after failed
// queries it waits at most retryMax before asking again. go-kit's doubles
// its wait without bound up to a minute and never resets it until a query
// succeeds, so a gateway that saw its agent fail for a few seconds (a
// restart, a loaded start) learned of the park's services up to a minute
// late, while every request for them was refused.
type instancer struct {
	health  *consulapi.Health
	service string
	logger  *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}

	mu    sync.Mutex
	state sd.Event
	subs  []chan<- sd.Event
}

// newInstancer watches service's passing instances until Stop. Like
// go-kit's, it asks once before returning, so its first subscribers get
// the instances there are (or the error) rather than an empty list.
func newInstancer(cc *consulapi.Client, service string, logger *slog.Logger) *instancer {
	ctx, cancel := context.WithCancel(context.Background())
	in := &instancer{health: cc.Health(), service: service, logger: logger, cancel: cancel, done: make(chan struct{})}
	var index uint64
	first, stop := context.WithTimeout(ctx, 5*time.Second)
	entries, meta, err := in.health.Service(service, "", true, (&consulapi.QueryOptions{}).WithContext(first))
	stop()
	if err != nil {
		in.update(sd.Event{Err: err})
	} else {
		index = max(meta.LastIndex, 1)
		in.update(sd.Event{Instances: instances(entries)})
	}
	go in.loop(ctx, index, err != nil)
	return in
}

func (in *instancer) loop(ctx context.Context, index uint64, failing bool) {
	defer close(in.done)
	pause := retry.New(retryFirst, retryMax)
	for ctx.Err() == nil {
		opts := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockWait}).WithContext(ctx)
		entries, meta, err := in.health.Service(in.service, "", true, opts)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				in.logger.Warn("consul discovery failing; the last known instances stay in use", "service", in.service, "err", err)
				failing = true
			}
			in.update(sd.Event{Err: err})
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		case meta.LastIndex < index:
			// The agent's state was reset or restored: read it afresh.
			index = 0
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		if failing {
			in.logger.Info("consul discovery recovered", "service", in.service, "instances", len(entries))
			failing = false
		}
		pause.Reset()
		index = max(meta.LastIndex, 1) // a zero index would not block
		in.update(sd.Event{Instances: instances(entries)})
	}
}

// instances are the entries' "host:port" addresses, the service's own
// address or else its node's.
func instances(entries []*consulapi.ServiceEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		host := e.Service.Address
		if host == "" {
			host = e.Node.Address
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(e.Service.Port)))
	}
	return out
}

// update tells every subscriber of ev when it differs from the last event.
func (in *instancer) update(ev sd.Event) {
	slices.Sort(ev.Instances)
	in.mu.Lock()
	defer in.mu.Unlock()
	if reflect.DeepEqual(in.state, ev) {
		return
	}
	in.state = ev
	for _, ch := range in.subs {
		ch <- ev
	}
}

// Register implements sd.Instancer: ch gets the current state at once,
// then every change.
func (in *instancer) Register(ch chan<- sd.Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.subs = append(in.subs, ch)
	ch <- in.state
}

// Deregister implements sd.Instancer.
func (in *instancer) Deregister(ch chan<- sd.Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.subs = slices.DeleteFunc(in.subs, func(c chan<- sd.Event) bool { return c == ch })
}

// Stop implements sd.Instancer: the watch ends, its query with it.
func (in *instancer) Stop() {
	in.cancel()
	<-in.done
}
