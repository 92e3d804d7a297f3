package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/bench/internal/procstat"
	"github.com/parkmesh/parkmesh/deploy/bench/internal/seed"
	"github.com/parkmesh/parkmesh/deploy/local"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

// A kind of search the bench sends; an interleaved loop alternates some.
type kind int

const (
	localSearch kind = iota // scope=local: the park's own services
	indexSearch             // scope=club: one query on the club index
	liveSearch              // scope=club&mode=live: the fan-out to every peer
)

func (k kind) String() string {
	return [...]string{"local", "club (index)", "club (mode=live)"}[k]
}

// params is the search of kind k for text q.
func (k kind) params(cfg config, q string) url.Values {
	v := url.Values{"q": {q}}
	switch k {
	case indexSearch:
		v.Set("scope", "club")
	case liveSearch:
		v.Set("scope", "club")
		v.Set("mode", "live")
		v.Set("timeout_ms", fmt.Sprint(cfg.budgetMS))
	}
	return v
}

type sample struct {
	kind    kind
	query   string
	failure string // why it failed ("" when it did not)
	start   time.Time
	took    time.Duration
	ok      bool
	partial bool
	status  map[string]string // park → its status in the answer
}

// interleave runs, for d, concurrency searchers that each take the next
// query of the mix and send it as every one of kinds, the order turning
// each round, so every kind sees the same queries and the same machine
// load. A round is started only before d ends and always finished.
func interleave(ctx context.Context, cfg config, g *gateway, kinds []kind, concurrency int, d time.Duration) []sample {
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var out []sample
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil && time.Now().Before(deadline); i += concurrency {
				q := cfg.queries[i%len(cfg.queries)]
				for j := range kinds {
					k := kinds[(i+j)%len(kinds)]
					a := g.search(ctx, k.params(cfg, q))
					s := sample{kind: k, query: q, failure: a.failure, start: time.Now().Add(-a.took), took: a.took, ok: a.ok(), partial: a.Partial, status: map[string]string{}}
					for _, p := range a.Parks.Details {
						s.status[p.Park] = p.Status
					}
					mu.Lock()
					out = append(out, s)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// of returns the samples of kind k.
func of(ss []sample, k kind) []sample {
	var out []sample
	for _, s := range ss {
		if s.kind == k {
			out = append(out, s)
		}
	}
	return out
}

type stats struct {
	n                  int
	rps                float64
	p50, p90, p99, max time.Duration
	partial, failed    int
}

// pct is the p-th percentile (nearest rank) of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func summarize(ss []sample, d time.Duration) stats {
	st := stats{n: len(ss)}
	if len(ss) == 0 {
		return st
	}
	durs := make([]time.Duration, len(ss))
	for i, s := range ss {
		durs[i] = s.took
		if !s.ok {
			st.failed++
		}
		if s.partial {
			st.partial++
		}
	}
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	st.p50, st.p90, st.p99, st.max = pct(durs, 50), pct(durs, 90), pct(durs, 99), durs[len(durs)-1]
	st.rps = float64(len(ss)) / d.Seconds()
	return st
}

// statusShare says, for the parks other than the healthy ones, in how
// many of the answers they had each status ("bench-park-09 stale 100%").
func statusShare(ss []sample, healthy ...string) string {
	counts := map[string]map[string]int{}
	for _, s := range ss {
		for park, st := range s.status {
			if st == search.StatusLive || st == search.StatusOK {
				continue
			}
			if counts[park] == nil {
				counts[park] = map[string]int{}
			}
			counts[park][st]++
		}
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(counts)) {
		for _, st := range slices.Sorted(maps.Keys(counts[p])) {
			parts = append(parts, fmt.Sprintf("%s %s in %d%%", p, st, counts[p][st]*100/max(len(ss), 1)))
		}
	}
	if len(parts) == 0 {
		return "every park " + strings.Join(healthy, "/") + " in every answer"
	}
	return strings.Join(parts, ", ")
}

// searchCost is what searches of one kind cost, sent alone.
type searchCost struct {
	kind              kind
	n                 int
	p50               time.Duration
	gateway, services float64       // CPU ms per search
	rest              time.Duration // CPU of the rest of the club meanwhile, in all
}

// measureCost sends searches of kind k only, for d, and divides the CPU
// the club used meanwhile by the searches sent.
func measureCost(ctx context.Context, cfg config, c *local.Cluster, g *gateway, k kind, d time.Duration) searchCost {
	cpu0 := procstat.ReadCPU(c.PIDs())
	ss := interleave(ctx, cfg, g, []kind{k}, cfg.concurrency, d)
	t := procstat.ReadCPU(c.PIDs()).Since(cpu0)
	sc := searchCost{kind: k, n: len(ss), p50: summarize(ss, d).p50}
	if sc.n == 0 {
		return sc
	}
	per := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 / float64(sc.n) }
	gw := t[g.ID+" gateway"]
	svc := t[g.ID+" directory"] + t[g.ID+" project"] + t[g.ID+" talent"]
	sc.gateway, sc.services, sc.rest = per(gw), per(svc), t.Sum("bench-park-")-gw-svc
	return sc
}

// failures says which searches failed and why, grouped by kind, query
// and reason ("" when none did).
func failures(phases ...[]sample) string {
	counts := map[string]int{}
	for _, ss := range phases {
		for _, s := range ss {
			if !s.ok {
				counts[fmt.Sprintf("%s `%s`: %s", s.kind, s.query, s.failure)]++
			}
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s (×%d)", k, counts[k]))
	}
	return strings.Join(parts, "; ")
}

// shortfall names the parks whose hits in a differ from want.
func shortfall(a *answer, want map[string]int) string {
	var parts []string
	for _, p := range a.Parks.Details {
		if p.Hits != want[p.Park] {
			parts = append(parts, fmt.Sprintf("%s %d of %d", p.Park, p.Hits, want[p.Park]))
		}
	}
	if len(parts) == 0 {
		return "every park complete"
	}
	return "short or over: " + strings.Join(parts, ", ")
}

// blackHole accepts connections and never answers.
func blackHole() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	return "http://" + ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}, nil
}

// repoint changes the URL park g uses for peer in g's Consul KV, as a
// network fault would make the peer unreachable at its address — as an
// operator would: with the management token, and the record signed with
// the park's key (kept in root's data directory), or the gateway ignores it.
func repoint(root string, g *gateway, peer, u string) error {
	cc, err := consulapi.NewClient(&consulapi.Config{Address: g.ConsulHTTPAddr, TokenFile: g.ConsulTokenFile})
	if err != nil {
		return err
	}
	ks, err := parkkey.Load(filepath.Join(root, "data", g.ID))
	if err != nil {
		return err
	}
	pair, _, err := cc.KV().Get("parkmesh/peers/"+peer, nil)
	if err != nil || pair == nil {
		return fmt.Errorf("peer record %s at %s: %v", peer, g.ID, err)
	}
	rec, err := peering.OpenPeerRecord(ks, pair.Key, pair.Value)
	if err != nil {
		return fmt.Errorf("peer record %s at %s: %w", peer, g.ID, err)
	}
	rec.URL = u
	if _, pair.Value, err = peering.SealPeerRecord(ks, rec); err != nil {
		return err
	}
	_, err = cc.KV().Put(pair, nil)
	return err
}

// runSearch measures club search from the first park's club index against
// its local search, interleaved in one loop, then the old fan-out
// (mode=live), then both with one peer black-holed and with one killed.
func runSearch(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.parks < 3 || cfg.listings < 3 || cfg.concurrency < 1 || cfg.duration <= 0 || cfg.phase <= 0 {
		return fmt.Errorf("-parks ≥ 3, -listings ≥ 3, -concurrency ≥ 1, -duration > 0 and -phase > 0 are required")
	}
	pr := progress{out: out, start: time.Now()}
	loadBefore := loadAvg()
	ids := parkIDs(cfg.parks)
	sd := &seed.Seeder{Root: cfg.root, Listings: func(string) int { return cfg.listings }}
	pr.say("starting %d parks with %d listings each (load average %s)…", cfg.parks, cfg.listings, loadBefore)
	c, err := startParks(ctx, cfg, ids, sd)
	defer stopClub(c, &err)
	if err != nil {
		return err
	}
	gws := newGateways(c.Parks)
	first := gws[0]
	startTook := time.Since(pr.start)
	pr.say("peering (%s)…", cfg.peering)
	t0 := time.Now()
	peerings, err := peerAll(ctx, gws, cfg.star())
	if err != nil {
		return err
	}
	peerTook := time.Since(t0)
	pr.say("waiting for %s's club index to be live for all %d parks…", first.ID, cfg.parks)
	t0 = time.Now()
	held, err := first.waitLive(ctx, cfg.parks, cfg.syncTimeout)
	if err != nil {
		return err
	}
	firstLive := time.Since(t0)
	// Every other gateway copies the club too; measuring while they do
	// would measure their copying.
	pr.say("waiting for every other park's club index to be live…")
	for i, g := range gws[1:] {
		if _, err := g.waitLive(ctx, clubSize(cfg, i+1), cfg.syncTimeout); err != nil {
			return err
		}
	}
	allLive := time.Since(t0)
	want := map[string]int{}
	for _, id := range ids {
		if want[id], err = sd.Count(id, first.ID); err != nil {
			return err
		}
	}
	// Live means the park's part is complete: checked when the index first
	// answered live for every park, and again before measuring.
	heldLate := first.search(ctx, url.Values{"scope": {"club"}, "limit": {"1"}})
	if !heldLate.ok() {
		return fmt.Errorf("%s: club search answered %d", first.ID, heldLate.code)
	}
	total := 0
	for _, n := range want {
		total += n
	}
	pr.say("measuring the club's idle CPU…")
	idle, idleBusy := procstat.IdleCPU(c.PIDs(), 3*time.Second)
	rss := procstat.ResidentMB(c.PIDs())
	pr.say("warming up…")
	interleave(ctx, cfg, first, []kind{localSearch, indexSearch}, cfg.concurrency, 3*time.Second)
	loadAt := loadAvg()
	pr.say("interleaved loop, local vs club (index), %d searchers, %s…", cfg.concurrency, cfg.duration)
	cpu0, busy0 := procstat.ReadCPU(c.PIDs()), procstat.MachineBusy()
	loop := interleave(ctx, cfg, first, []kind{localSearch, indexSearch}, cfg.concurrency, cfg.duration)
	loopCPU, loopBusy := procstat.ReadCPU(c.PIDs()).Since(cpu0), procstat.MachineBusy()-busy0
	// What one search costs, and where: each kind alone for a while, with
	// the CPU of the searching park's gateway and services.
	var costs []searchCost
	for _, k := range []kind{localSearch, indexSearch} {
		pr.say("%s alone, %d searchers, %s, for its CPU…", k, cfg.concurrency, cfg.phase/2)
		costs = append(costs, measureCost(ctx, cfg, c, first, k, cfg.phase/2))
	}
	pr.say("interleaved loop, one at a time, %s…", cfg.phase)
	single := interleave(ctx, cfg, first, []kind{localSearch, indexSearch}, 1, cfg.phase)
	pr.say("interleaved loop, local vs club (mode=live), %s…", cfg.phase)
	fanout := interleave(ctx, cfg, first, []kind{localSearch, liveSearch}, cfg.concurrency, cfg.phase)

	victim := gws[len(gws)-1]
	pr.say("black-holing %s at %s, club (index) and (mode=live), %s…", victim.ID, first.ID, cfg.phase)
	holeURL, closeHole, err := blackHole()
	if err != nil {
		return err
	}
	if err := repoint(cfg.root, first, victim.ID, holeURL); err != nil {
		closeHole()
		return err
	}
	time.Sleep(500 * time.Millisecond) // the KV watch applies it
	holed := interleave(ctx, cfg, first, []kind{indexSearch, liveSearch}, cfg.concurrency, cfg.phase)
	closeHole()
	if err := repoint(cfg.root, first, victim.ID, victim.FederationURL); err != nil {
		return err
	}
	holedLive := of(holed, liveSearch)
	var opened time.Time
	for _, s := range holedLive {
		if s.status[victim.ID] == search.StatusCircuitOpen && (opened.IsZero() || s.start.Before(opened)) {
			opened = s.start
		}
	}
	fs := summarize(of(fanout, liveSearch), cfg.phase)
	var before, after []sample
	recovered := "never"
	if !opened.IsZero() {
		for _, s := range holedLive {
			if s.start.Before(opened) {
				before = append(before, s)
			} else {
				after = append(after, s)
			}
		}
		// Back to healthy: the first 1 s window after opening whose p99 is
		// within 10% of the healthy mode=live p99.
		for w := opened; w.Before(opened.Add(cfg.phase)); w = w.Add(time.Second) {
			var win []sample
			for _, s := range after {
				if !s.start.Before(w) && s.start.Before(w.Add(time.Second)) {
					win = append(win, s)
				}
			}
			if len(win) > 5 && summarize(win, time.Second).p99 <= fs.p99*11/10+5*time.Millisecond {
				recovered = fmt.Sprintf("%.1f s", w.Sub(opened).Seconds())
				break
			}
		}
	}

	killed := gws[len(gws)-2]
	pr.say("killing %s's gateway; local, club (index) and (mode=live), %s…", killed.ID, cfg.phase)
	if err := c.KillGateway(killed.ID); err != nil {
		return err
	}
	dead := interleave(ctx, cfg, first, []kind{localSearch, indexSearch, liveSearch}, cfg.concurrency, cfg.phase)
	loadAfter := loadAvg()

	var b strings.Builder
	fmt.Fprintf(&b, "\n### Club search, %d parks × %d listings (%s)\n\n", cfg.parks, cfg.listings, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./deploy/bench -parks %d -listings %d -concurrency %d -duration %s -phase %s -timeout-ms %d%s`\n\n",
		cfg.parks, cfg.listings, cfg.concurrency, cfg.duration, cfg.phase, cfg.budgetMS, extraFlags())
	fmt.Fprintf(&b, "Searches at %s, queries %q; one park in %d of the seeded listings is private. "+
		"Start-up %.0f s, %d peerings (%s) %.1f s; %s's club index live for all %d parks %.1f s after the last peering, every park's %.1f s after. "+
		"It then held %d listings (%d expected: its own and every peer's visible ones; %s), %.1f s later %d (%s). "+
		"Load average (1, 5, 15 min) before start %s, before measuring %s, at the end %s (2 cores, shared).\n\n",
		first.ID, cfg.queries, seed.PrivateEvery, startTook.Seconds(), peerings, cfg.peering, peerTook.Seconds(),
		first.ID, cfg.parks, firstLive.Seconds(), allLive.Seconds(), held.hits(), total, shortfall(held, want), allLive.Seconds()-firstLive.Seconds(), heldLate.hits(), shortfall(heldLate, want),
		loadBefore, loadAt, loadAfter)
	fmt.Fprintln(&b, "| phase | search | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | partial | failed |")
	fmt.Fprintln(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	row := func(phase string, k kind, ss []sample, d time.Duration) stats {
		s := summarize(ss, d)
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %s | %s | %s | %s | %d | %d |\n", phase, k, s.n, s.rps, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), s.partial, s.failed)
		return s
	}
	conc := fmt.Sprintf("interleaved, %d searchers", cfg.concurrency)
	ml, mi := row(conc, localSearch, of(loop, localSearch), cfg.duration), row(conc, indexSearch, of(loop, indexSearch), cfg.duration)
	sl, si := row("interleaved, one at a time", localSearch, of(single, localSearch), cfg.phase), row("interleaved, one at a time", indexSearch, of(single, indexSearch), cfg.phase)
	fl, _ := row("mode=live, "+conc, localSearch, of(fanout, localSearch), cfg.phase), row("mode=live, "+conc, liveSearch, of(fanout, liveSearch), cfg.phase)
	hi := row("one peer black-holed", indexSearch, of(holed, indexSearch), cfg.phase)
	row("one peer black-holed", liveSearch, holedLive, cfg.phase)
	bb := row("… mode=live before its breaker opened", liveSearch, before, cfg.phase)
	row("… mode=live after its breaker opened", liveSearch, after, cfg.phase)
	kl, ki := row("one peer killed", localSearch, of(dead, localSearch), cfg.phase), row("one peer killed", indexSearch, of(dead, indexSearch), cfg.phase)
	row("one peer killed", liveSearch, of(dead, liveSearch), cfg.phase)

	if f := failures(loop, single, fanout, holed, dead); f != "" {
		fmt.Fprintf(&b, "\nFailed searches: %s.\n", f)
	}
	fmt.Fprintf(&b, "\nClub (index) ÷ local, interleaved with %d searchers: p50 **%s**, p90 %s, p99 **%s** (aim at 10 parks × 2,000: p50 ≤ 1.3×, p99 ≤ 2×). "+
		"One at a time: p50 %s, p99 %s. Club (mode=live) ÷ local in its own interleaved loop: p50 %s, p99 %s.\n",
		cfg.concurrency, ratio(mi.p50, ml.p50), ratio(mi.p90, ml.p90), ratio(mi.p99, ml.p99), ratio(si.p50, sl.p50), ratio(si.p99, sl.p99), ratio(fs.p50, fl.p50), ratio(fs.p99, fl.p99))
	gw := loopCPU[first.ID+" gateway"]
	svc := loopCPU[first.ID+" directory"] + loopCPU[first.ID+" project"] + loopCPU[first.ID+" talent"]
	fmt.Fprintf(&b, "CPU during the interleaved loop (%s, %d CPUs): %s's gateway %.1f s, its services %.1f s, every other process of the %d parks %.1f s, the bench %.1f s, the whole machine %.1f s (other work on it: %.1f s).\n",
		cfg.duration, runtime.NumCPU(), first.ID, gw.Seconds(), svc.Seconds(), cfg.parks, (loopCPU.Sum("bench-park-") - gw - svc).Seconds(), loopCPU["bench"].Seconds(),
		loopBusy.Seconds(), (loopBusy - loopCPU.Sum("")).Seconds())
	for _, sc := range costs {
		fmt.Fprintf(&b, "%s alone (%d searchers, %s): %d searches, p50 %s ms; CPU per search: %s's gateway %.1f ms, its services %.1f ms (the rest of the club used %.1f CPU-s meanwhile).\n",
			sc.kind, cfg.concurrency, cfg.phase/2, sc.n, ms(sc.p50), first.ID, sc.gateway, sc.services, sc.rest.Seconds())
	}
	fmt.Fprintf(&b, "Idle for 3 s before (everything live, no searches), the %d parks' processes (%d, %d MiB resident) used %.1f CPU-s, the whole machine %.1f.\n",
		cfg.parks, len(c.PIDs()), rss, idle.Seconds(), idleBusy.Seconds())
	fmt.Fprintf(&b, "Black-holed peer (%s): club (index) p50 %s ms, p99 %s ms, %s; mode=live p99 before its breaker opened %s ms (budget %d ms), back to the healthy mode=live p99 %s after it opened.\n",
		victim.ID, ms(hi.p50), ms(hi.p99), statusShare(of(holed, indexSearch), "live"), ms(bb.p99), cfg.budgetMS, recovered)
	fmt.Fprintf(&b, "Killed peer (%s): club (index) p50 %s ms, p99 %s ms (local p50 %s ms, p99 %s ms), %s; mode=live: %s.\n",
		killed.ID, ms(ki.p50), ms(ki.p99), ms(kl.p50), ms(kl.p99), statusShare(of(dead, indexSearch), "live"), statusShare(of(dead, liveSearch), "ok"))
	return report(cfg, b.String(), out)
}
