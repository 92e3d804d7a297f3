package main

import (
	"bufio"
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

	"github.com/parkmesh/parkmesh/deploy/local"
)

// feedSub follows one park's /api/v1/stream for listings from the origin
// park and records, per listing, when it arrived.
type feedSub struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	dups    int
}

func follow(ctx context.Context, p local.ParkInfo, origin string, s *feedSub) {
	lastID := ""
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", p.GatewayURL+"/api/v1/stream?parks="+origin, nil)
		req.Header.Set("Authorization", "Bearer "+p.AdminToken)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var id string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				now := time.Now()
				var ev struct{ Subject string }
				json.Unmarshal([]byte(line[6:]), &ev)
				s.mu.Lock()
				if _, ok := s.arrived[ev.Subject]; ok {
					s.dups++
				} else {
					s.arrived[ev.Subject] = now
				}
				s.mu.Unlock()
				lastID = id
			}
		}
		res.Body.Close()
	}
}

type created struct {
	id string
	at time.Time
}

// create makes listings at p: at rate per second (0: as fast as workers
// go) for d, and returns them with their creation times.
func create(ctx context.Context, p local.ParkInfo, rate, workers int, d time.Duration) []created {
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
		workers = 8
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

func pct(l []time.Duration, p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, len(l)*p/100)]
}

// runFeed measures creation → delivery at a subscriber of every other park.
func runFeed(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.parks < 2 || cfg.rate < 1 || cfg.duration <= 0 {
		return fmt.Errorf("-parks ≥ 2, -rate ≥ 1 and -duration > 0 are required")
	}
	fmt.Fprintf(out, "starting %d parks…\n", cfg.parks)
	c, err := startClub(ctx, cfg, nil)
	defer stopClub(c, &err)
	if err != nil {
		return err
	}
	origin := c.Parks[0]
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var subs []*feedSub
	for _, p := range c.Parks[1:] {
		s := &feedSub{arrived: map[string]time.Time{}}
		subs = append(subs, s)
		go follow(sctx, p, origin.ID, s)
	}
	time.Sleep(2 * time.Second) // subscribers connected, followers caught up

	fmt.Fprintf(out, "phase 1/2: %d listings/s for %s…\n", cfg.rate, cfg.duration)
	made := create(ctx, origin, cfg.rate, 0, cfg.duration)
	lat, missing, dups := deliveries(subs, made, 30*time.Second)

	fmt.Fprintf(out, "phase 2/2: as fast as %d writers go for %s…\n", cfg.concurrency, cfg.duration)
	t0 := time.Now()
	burst := create(ctx, origin, 0, cfg.concurrency, cfg.duration)
	writeRate := float64(len(burst)) / time.Since(t0).Seconds()
	bl, bmissing, bdups := deliveries(subs, burst, 60*time.Second)
	var lastArrival time.Time
	for _, s := range subs {
		s.mu.Lock()
		for _, c := range burst {
			if at := s.arrived[c.id]; at.After(lastArrival) {
				lastArrival = at
			}
		}
		s.mu.Unlock()
	}
	deliverRate := float64(len(burst)) / lastArrival.Sub(t0).Seconds()

	var b strings.Builder
	fmt.Fprintf(&b, "\n### Feed delivery, %d parks (%s)\n\n", cfg.parks, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./deploy/bench -mode feed -parks %d -rate %d -concurrency %d -duration %s`\n\n", cfg.parks, cfg.rate, cfg.concurrency, cfg.duration)
	fmt.Fprintf(&b, "Listings created through %s's gateway; one park-side stream subscriber at each of the other %d parks.\n\n", origin.ID, cfg.parks-1)
	fmt.Fprintln(&b, "| phase | created | deliveries | missing | duplicates | p50 ms | p99 ms | max ms |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(&b, "| %d/s for %s | %d | %d | %d | %d | %s | %s | %s |\n", cfg.rate, cfg.duration, len(made), len(lat), missing, dups, ms(pct(lat, 50)), ms(pct(lat, 99)), ms(pct(lat, 100)))
	fmt.Fprintf(&b, "| unthrottled, %d writers | %d | %d | %d | %d | %s | %s | %s |\n", cfg.concurrency, len(burst), len(bl), bmissing, bdups, ms(pct(bl, 50)), ms(pct(bl, 99)), ms(pct(bl, 100)))
	fmt.Fprintf(&b, "\nUnthrottled: %.0f creates/s accepted through one gateway; all delivered to every subscriber at %.0f changes/s per subscriber, with %d missing.\n", writeRate, deliverRate, bmissing)
	return report(cfg, b.String(), out)
}
