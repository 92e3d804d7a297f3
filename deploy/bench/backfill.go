package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/deploy/bench/internal/procstat"
	"github.com/parkmesh/parkmesh/deploy/bench/internal/seed"
	"github.com/parkmesh/parkmesh/deploy/local"
	"github.com/parkmesh/parkmesh/gateway/search"
)

// backfillRound is what one new peering's backfill took, measured at the
// following park from the moment its establish request was answered.
type backfillRound struct {
	known    time.Duration  // the park first answered as a target (syncing)
	live     time.Duration  // its part first answered live
	complete time.Duration  // live with every visible listing: the backfill time
	hits     int            // hits when complete (or at the timeout)
	cpu      procstat.Times // CPU used by each process until complete
	machine  time.Duration  // CPU used on the whole machine meanwhile
	err      error
}

// until calls f every interval until it reports done, fails, or timeout
// (or ctx) ends.
func until(ctx context.Context, timeout, interval time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done within %s", timeout)
		case <-time.After(interval):
		}
	}
}

// metric reads one unlabelled counter or gauge from g's /metrics.
func (g *gateway) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.GatewayURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, sc.Err()
}

// noMatch is a search term no listing holds: a status poll that costs the
// index next to nothing (counting every listing of a park at every poll
// would be measurable work for the gateway being measured).
const noMatch = "zzbenchnomatch"

// measureBackfill peers from with to (to establishes with from's token)
// and polls to's club search every 100 ms for the status of from's part;
// once it is live, it counts from's listings there until they are want.
func measureBackfill(ctx context.Context, cfg config, c *local.Cluster, from, to *gateway, want int) (r backfillRound) {
	if r.err = from.peerWith(ctx, to); r.err != nil {
		return r
	}
	t0 := time.Now()
	cpu0, busy0 := procstat.ReadCPU(c.PIDs()), procstat.MachineBusy()
	defer func() { r.cpu, r.machine = procstat.ReadCPU(c.PIDs()).Since(cpu0), procstat.MachineBusy()-busy0 }()
	status := url.Values{"scope": {"club"}, "parks": {from.ID}, "limit": {"1"}, "q": {noMatch}}
	count := url.Values{"scope": {"club"}, "parks": {from.ID}, "limit": {"1"}}
	r.err = until(ctx, cfg.syncTimeout, 100*time.Millisecond, func() (bool, error) {
		a := to.search(ctx, status)
		p := a.park(from.ID)
		if !a.ok() || p == nil { // 400 until it is a peer there
			return false, nil
		}
		now := time.Since(t0)
		if r.known == 0 {
			r.known = now
		}
		if p.Status != search.StatusLive {
			return false, nil
		}
		if r.live == 0 {
			r.live = now
		}
		a = to.search(ctx, count)
		if p = a.park(from.ID); !a.ok() || p == nil {
			return false, nil
		}
		r.hits = p.Hits
		if p.Hits > want {
			return false, fmt.Errorf("%s's index holds %d of %s's listings, more than the %d it may see", to.ID, p.Hits, from.ID, want)
		}
		if p.Hits == want {
			r.complete = time.Since(t0)
			return true, nil
		}
		return false, nil
	})
	return r
}

// unpeerBoth deletes the peering on both sides and waits until to's club
// index has purged from's listings (its purge counter grew by purged).
func unpeerBoth(ctx context.Context, from, to *gateway, purged int) error {
	before, err := to.metric(ctx, "parkmesh_club_index_purged_total")
	if err != nil {
		return err
	}
	if err := to.unpeer(ctx, from.ID); err != nil {
		return err
	}
	if err := from.unpeer(ctx, to.ID); err != nil {
		return err
	}
	err = until(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, error) {
		n, err := to.metric(ctx, "parkmesh_club_index_purged_total")
		return err == nil && n >= before+float64(purged), nil
	})
	if err != nil {
		return fmt.Errorf("%s did not purge %s's %d listings: %w", to.ID, from.ID, purged, err)
	}
	return nil
}

// runBackfill measures how long a new peering takes to copy a park with
// cfg.listings listings into the other park's club index: from the
// establish request's answer until the follower's index answers that park
// live with every listing it may see.
func runBackfill(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.listings < 3 || cfg.rounds < 1 {
		return fmt.Errorf("-listings ≥ 3 and -rounds ≥ 1 are required")
	}
	pr := progress{out: out, start: time.Now()}
	loadBefore := loadAvg()
	x, y := parkID(0), parkID(1)
	sd := &seed.Seeder{Root: cfg.root, Listings: func(park string) int {
		if park == x {
			return cfg.listings
		}
		return 0
	}}
	pr.say("starting %s with %d listings and %s with none (load average %s)…", x, cfg.listings, y, loadBefore)
	c, err := startParks(ctx, cfg, []string{x, y}, sd)
	defer stopClub(c, &err)
	if err != nil {
		return err
	}
	gws := newGateways(c.Parks)
	from, to := gws[0], gws[1]
	all, err := sd.Count(x, x)
	if err != nil {
		return err
	}
	want, err := sd.Count(x, y)
	if err != nil {
		return err
	}
	// The park being copied first indexes its own listings; that work is
	// not the peering's.
	pr.say("waiting for %s to index its own %d listings…", x, all)
	err = until(ctx, cfg.syncTimeout, 100*time.Millisecond, func() (bool, error) {
		a := from.search(ctx, url.Values{"scope": {"club"}, "limit": {"1"}})
		p := a.park(x)
		return a.ok() && p != nil && p.Status == search.StatusLive && p.Hits == all, nil
	})
	if err != nil {
		return fmt.Errorf("%s's own index: %w", x, err)
	}
	if _, err := to.waitLive(ctx, 1, cfg.syncTimeout); err != nil {
		return err
	}
	loadAt := loadAvg()
	var rounds []backfillRound
	for i := 0; i < cfg.rounds; i++ {
		if i > 0 {
			pr.say("deleting the peering, waiting for the purge…")
			if err := unpeerBoth(ctx, from, to, want); err != nil {
				return err
			}
		}
		pr.say("round %d/%d: peering, following %s's club index…", i+1, cfg.rounds, y)
		r := measureBackfill(ctx, cfg, c, from, to, want)
		if r.err != nil {
			return fmt.Errorf("round %d: %w (%d of %d listings after %s)", i+1, r.err, r.hits, want, cfg.syncTimeout)
		}
		pr.say("round %d: %.2f s", i+1, r.complete.Seconds())
		rounds = append(rounds, r)
	}
	loadAfter := loadAvg()

	var b strings.Builder
	fmt.Fprintf(&b, "\n### Backfill of a new peering, %d listings (%s)\n\n", cfg.listings, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./deploy/bench -mode backfill -listings %d -rounds %d%s`\n\n", cfg.listings, cfg.rounds, extraFlags())
	fmt.Fprintf(&b, "%s holds %d listings (%d visible to peers: one in %d is private); %s holds none. %s generates a peering token, %s establishes with it; "+
		"times run from %s's answer to the establish request to its club search (`parks=%s`) answering that park `live` (status polled every 100 ms with a term nothing matches) with all %d (counted once live). "+
		"Between rounds the peering is deleted on both sides and the bench waits for %s's purge. "+
		"Load average (1, 5, 15 min) before start %s, before the first round %s, at the end %s (2 cores, shared).\n\n",
		x, all, want, seed.PrivateEvery, y, x, y, y, x, want, y, loadBefore, loadAt, loadAfter)
	fmt.Fprintf(&b, "| round | park known (syncing) s | live s | live with all listings s | listings/s | CPU s: %s gateway (follows, indexes) | %s gateway (serves the feed) | %s services | whole machine |\n", y, x, x)
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	var totals []time.Duration
	for i, r := range rounds {
		fmt.Fprintf(&b, "| %d | %.2f | %.2f | **%.2f** | %.0f | %.1f | %.1f | %.1f | %.1f |\n", i+1, r.known.Seconds(), r.live.Seconds(), r.complete.Seconds(), float64(want)/r.complete.Seconds(),
			r.cpu[y+" gateway"].Seconds(), r.cpu[x+" gateway"].Seconds(), (r.cpu[x+" directory"] + r.cpu[x+" project"] + r.cpu[x+" talent"]).Seconds(), r.machine.Seconds())
		totals = append(totals, r.complete)
	}
	sort.Slice(totals, func(i, j int) bool { return totals[i] < totals[j] })
	fmt.Fprintf(&b, "\nMedian backfill of %d listings: **%.2f s** (aim ≤ 10 s). The whole machine has %d CPUs (%.0f CPU-s per round at most); CPU by process in the last round: %s.\n",
		want, pct(totals, 50).Seconds(), runtime.NumCPU(), float64(runtime.NumCPU())*rounds[len(rounds)-1].complete.Seconds(), rounds[len(rounds)-1].cpu.Top(6))
	return report(cfg, b.String(), out)
}
