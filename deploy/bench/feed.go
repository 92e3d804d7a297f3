package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parkmesh/parkmesh/deploy/bench/internal/procstat"
	"github.com/parkmesh/parkmesh/deploy/bench/internal/seed"
	"github.com/parkmesh/parkmesh/gateway/sse"
)

// feedSub follows one park's /api/v1/stream for listings from the origin
// park and records, per listing, when it first arrived.
type feedSub struct {
	mu          sync.Mutex
	arrived     map[string]time.Time
	dups        int
	reconnects  int
	connected   chan struct{} // closed once the first stream answered 200
	connectOnce sync.Once
}

func newFeedSub() *feedSub {
	return &feedSub{arrived: map[string]time.Time{}, connected: make(chan struct{})}
}

// follow reads g's park stream, as a staff tool would: events of the
// default type are CloudEvents (the subject is the listing id); a
// "synced" marker or a heartbeat carries no listing; an "error" event ends
// the stream with the id to resume from. It reconnects with Last-Event-ID
// (the last id seen, "c1~…" positions) until ctx ends.
func follow(ctx context.Context, g *gateway, origin string, s *feedSub) {
	client := &http.Client{} // a stream has no overall deadline
	lastID := ""
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.GatewayURL+"/api/v1/stream?parks="+origin, nil)
		req.Header.Set("Authorization", "Bearer "+g.AdminToken)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := client.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if res.StatusCode != http.StatusOK { // e.g. 503 while the gateway reads its logs
			res.Body.Close()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		s.connectOnce.Do(func() { close(s.connected) })
		r := sse.NewReader(res.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				break
			}
			switch ev.Type {
			case "", "message":
			case sse.ErrorType:
				var se sse.StreamError
				if json.Unmarshal(ev.Data, &se) == nil && se.ResumeID != "" {
					lastID = se.ResumeID
				}
				continue
			default: // synced
				if ev.ID != "" {
					lastID = ev.ID
				}
				continue
			}
			now := time.Now()
			var ce struct{ Subject string }
			if json.Unmarshal(ev.Data, &ce) != nil || ce.Subject == "" {
				continue
			}
			s.mu.Lock()
			if _, ok := s.arrived[ce.Subject]; ok {
				s.dups++
			} else {
				s.arrived[ce.Subject] = now
			}
			s.mu.Unlock()
			if ev.ID != "" {
				lastID = ev.ID
			}
		}
		res.Body.Close()
		if ctx.Err() == nil {
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
		}
	}
}

type created struct {
	id string
	at time.Time
}

// create makes listings at p: at rate per second (0: as fast as workers
// go) for d, and returns them with their creation times.
func create(ctx context.Context, p *gateway, rate, workers int, d time.Duration) []created {
	var mu sync.Mutex
	var out []created
	var n atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
		// The ticker paces; enough workers that a slow answer does not
		// hold the next creation back (a tick missed is a creation lost).
		workers = 32
	}
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			for range jobs {
				i := n.Add(1)
				body := fmt.Sprintf(`{"title":"feed bench %d 新材料","sectors":["new-materials"],"country":"CN","seeking":["landing"],"attrs":{"stage":"pilot"}}`, i)
				req, _ := http.NewRequest("POST", p.GatewayURL+"/api/v1/projects", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+p.AdminToken)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					continue
				}
				// Latency counts from the moment the service created the
				// listing (its created_at, same clock), not from when this
				// client managed to send the request.
				var l struct {
					ID        string
					CreatedAt time.Time `json:"created_at"`
				}
				json.NewDecoder(res.Body).Decode(&l)
				res.Body.Close()
				if res.StatusCode == 201 {
					mu.Lock()
					out = append(out, created{l.ID, l.CreatedAt})
					mu.Unlock()
				}
			}
		}()
	}
	for ctx.Err() == nil {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return out
}

// deliveries waits until every subscriber has every created listing (or
// timeout) and returns the latencies and the missing count.
func deliveries(subs []*feedSub, made []created, timeout time.Duration) ([]time.Duration, int, int) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		all := true
		for _, s := range subs {
			s.mu.Lock()
			for _, c := range made {
				if _, ok := s.arrived[c.id]; !ok {
					all = false
					break
				}
			}
			s.mu.Unlock()
		}
		if all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var lat []time.Duration
	missing, dups := 0, 0
	for _, s := range subs {
		s.mu.Lock()
		for _, c := range made {
			if at, ok := s.arrived[c.id]; ok {
				lat = append(lat, at.Sub(c.at))
			} else {
				missing++
			}
		}
		dups += s.dups
		s.mu.Unlock()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, missing, dups
}

// runFeed measures creation → delivery at a park-side stream subscriber
// of every other park.
func runFeed(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.parks < 2 || cfg.rate < 1 || cfg.duration <= 0 || cfg.concurrency < 1 {
		return fmt.Errorf("-parks ≥ 2, -rate ≥ 1, -concurrency ≥ 1 and -duration > 0 are required")
	}
	pr := progress{out: out, start: time.Now()}
	loadBefore := loadAvg()
	ids := parkIDs(cfg.parks)
	pr.say("starting %d parks (load average %s)…", cfg.parks, loadBefore)
	c, err := startParks(ctx, cfg, ids, &seed.Seeder{Root: cfg.root, Listings: func(string) int { return 0 }})
	defer stopClub(c, &err)
	if err != nil {
		return err
	}
	gws := newGateways(c.Parks)
	if _, err := peerAll(ctx, gws, cfg.star()); err != nil {
		return err
	}
	// Each park's club index follows the origin: its stream carries the
	// origin's changes once that part is live.
	for i, g := range gws {
		if _, err := g.waitLive(ctx, clubSize(cfg, i), cfg.syncTimeout); err != nil {
			return err
		}
	}
	origin := gws[0]
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var subs []*feedSub
	for _, g := range gws[1:] {
		s := newFeedSub()
		subs = append(subs, s)
		go follow(sctx, g, origin.ID, s)
	}
	for _, s := range subs {
		select {
		case <-s.connected:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("a stream subscriber could not connect within 30 s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	idle, idleBusy := procstat.IdleCPU(c.PIDs(), 3*time.Second)
	loadAt := loadAvg()

	pr.say("phase 1/2: %d listings/s for %s…", cfg.rate, cfg.duration)
	cpu0, busy0 := procstat.ReadCPU(c.PIDs()), procstat.MachineBusy()
	made := create(ctx, origin, cfg.rate, 0, cfg.duration)
	lat, missing, dups := deliveries(subs, made, 30*time.Second)
	rateCPU, rateBusy := procstat.ReadCPU(c.PIDs()).Since(cpu0), procstat.MachineBusy()-busy0

	pr.say("phase 2/2: as fast as %d writers go for %s…", cfg.concurrency, cfg.duration)
	t0 := time.Now()
	cpu0, busy0 = procstat.ReadCPU(c.PIDs()), procstat.MachineBusy()
	burst := create(ctx, origin, 0, cfg.concurrency, cfg.duration)
	writeRate := float64(len(burst)) / time.Since(t0).Seconds()
	bl, bmissing, bdups := deliveries(subs, burst, 60*time.Second)
	burstCPU, burstBusy := procstat.ReadCPU(c.PIDs()).Since(cpu0), procstat.MachineBusy()-busy0
	bdups -= dups // the subscribers count duplicates over both phases
	var lastArrival time.Time
	reconnects := 0
	for _, s := range subs {
		s.mu.Lock()
		for _, c := range burst {
			if at := s.arrived[c.id]; at.After(lastArrival) {
				lastArrival = at
			}
		}
		reconnects += s.reconnects
		s.mu.Unlock()
	}
	deliverRate := float64(len(burst)-bmissing/len(subs)) / lastArrival.Sub(t0).Seconds()
	loadAfter := loadAvg()

	var b strings.Builder
	fmt.Fprintf(&b, "\n### Feed delivery, %d parks (%s)\n\n", cfg.parks, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./deploy/bench -mode feed -parks %d -rate %d -concurrency %d -duration %s%s`\n\n", cfg.parks, cfg.rate, cfg.concurrency, cfg.duration, extraFlags())
	fmt.Fprintf(&b, "Listings created through %s's gateway; one park-side stream subscriber (`/api/v1/stream?parks=%s`) at each of the other %d parks, "+
		"latency from the listing's `created_at` (the service's clock, same machine) to the event's arrival; each subscriber dedupes by listing id. "+
		"Load average (1, 5, 15 min) before start %s, before measuring %s, at the end %s (2 cores, shared).\n\n", origin.ID, origin.ID, cfg.parks-1, loadBefore, loadAt, loadAfter)
	fmt.Fprintln(&b, "| phase | created | deliveries | missing | duplicates | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(&b, "| %d/s asked (%.0f/s done) for %s | %d | %d | %d | %d | %s | %s | %s | %s |\n", cfg.rate, float64(len(made))/cfg.duration.Seconds(), cfg.duration, len(made), len(lat), missing, dups, ms(pct(lat, 50)), ms(pct(lat, 90)), ms(pct(lat, 99)), ms(pct(lat, 100)))
	fmt.Fprintf(&b, "| unthrottled, %d writers | %d | %d | %d | %d | %s | %s | %s | %s |\n", cfg.concurrency, len(burst), len(bl), bmissing, bdups, ms(pct(bl, 50)), ms(pct(bl, 90)), ms(pct(bl, 99)), ms(pct(bl, 100)))
	fmt.Fprintf(&b, "\nAt %d/s: p99 **%s ms** (aim ≤ 20 ms), %d missing, %d duplicated (aim 0 and 0). "+
		"Unthrottled: %.0f creates/s accepted through one gateway; delivered to every subscriber at %.0f changes/s per subscriber, %d missing, %d duplicated; the subscribers reconnected %d times.\n",
		cfg.rate, ms(pct(lat, 99)), missing, dups, writeRate, deliverRate, bmissing, bdups, reconnects)
	cpuLine := func(name string, t procstat.Times, busy time.Duration) {
		gw := t[origin.ID+" gateway"]
		svc := t[origin.ID+" directory"] + t[origin.ID+" project"] + t[origin.ID+" talent"]
		fmt.Fprintf(&b, "CPU in the %s phase (until the last delivery): %s's gateway %.1f s, its services %.1f s, the other gateways %.1f s, the bench %.1f s, the whole machine %.1f s (other work on it: %.1f s).\n",
			name, origin.ID, gw.Seconds(), svc.Seconds(), t.Gateways(origin.ID).Seconds(),
			t["bench"].Seconds(), busy.Seconds(), (busy - t.Sum("")).Seconds())
	}
	fmt.Fprintf(&b, "Idle for 3 s before measuring (subscribers connected, nothing created), the %d parks' processes used %.1f CPU-s, the whole machine %.1f.\n", cfg.parks, idle.Seconds(), idleBusy.Seconds())
	cpuLine(fmt.Sprintf("%d/s", cfg.rate), rateCPU, rateBusy)
	cpuLine("unthrottled", burstCPU, burstBusy)
	return report(cfg, b.String(), out)
}
