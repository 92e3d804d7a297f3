// Command bench is ParkMesh's load and fault tool. It starts K parks on
// loopback (each with its Consul agent, services and gateway, M synthetic
// listings per park), peers them all, and measures federated search from
// the first park: healthy, with one peer black-holed (accepts connections,
// never answers) and with one peer killed. It prints a table and appends
// it, with the exact command, to docs/benchmarks.md.
//
//	go run ./deploy/bench -parks 10 -listings 10000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/local"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/synth"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

type config struct {
	parks       int
	listings    int
	concurrency int
	duration    time.Duration
	budgetMS    int
	root        string
	record      string
	queries     []string
	mode        string
	rate        int
}

func main() {
	var cfg config
	var queries string
	flag.IntVar(&cfg.parks, "parks", 10, "number of parks (K)")
	flag.IntVar(&cfg.listings, "listings", 10000, "listings per park (M), split over the three kinds")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent searchers")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each measured phase")
	flag.IntVar(&cfg.budgetMS, "timeout-ms", 2000, "search budget (timeout_ms)")
	flag.StringVar(&cfg.root, "root", filepath.Join(".parkmesh", "bench"), "working directory (binaries, data, logs)")
	flag.StringVar(&cfg.record, "record", filepath.Join("docs", "benchmarks.md"), "file the results are appended to (\"\" to skip)")
	flag.StringVar(&cfg.mode, "mode", "search", "search (federated search, faults) or feed (change delivery)")
	flag.IntVar(&cfg.rate, "rate", 200, "feed mode: listings created per second at the first park in the latency phase")
	flag.StringVar(&queries, "queries", "硅谷,新材料,copper,medical device,芯片 设计,innovation", "comma-separated query mix")
	flag.Parse()
	cfg.queries = strings.Split(queries, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runner := run
	if cfg.mode == "feed" {
		runner = runFeed
	} else if cfg.mode != "search" {
		fmt.Fprintf(os.Stderr, "bench: -mode %q: must be search or feed\n", cfg.mode)
		os.Exit(2)
	}
	if err := runner(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func parkID(i int) string { return fmt.Sprintf("bench-park-%02d", i+1) }

// startClub starts cfg.parks parks with the demo's launcher on the bench's
// fixed ports (a taken one is reported, naming it) and peers them all. seed,
// when set, fills each park's stores before its services start. Pass the
// cluster to stopClub whatever the error.
func startClub(ctx context.Context, cfg config, seed func(park, dataDir string) error) (*local.Cluster, error) {
	ids := make([]string, cfg.parks)
	for i := range ids {
		ids[i] = parkID(i)
	}
	c, err := local.Start(ctx, local.Config{
		Root: cfg.root, Parks: ids, GatewayBasePort: 9101, ServiceBasePort: 27200, ConsulBasePort: 29000, Seed: seed,
	}, io.Discard)
	if err == nil {
		err = c.PeerAll(ctx, io.Discard)
	}
	return c, err
}

// stopClub stops what startClub started, reporting a failure to stop in
// *err unless it already holds an error.
func stopClub(c *local.Cluster, err *error) {
	if c == nil {
		return
	}
	if serr := c.Stop(); serr != nil && *err == nil {
		*err = serr
	}
}

// seed writes m synthetic listings for park straight into its services'
// SQLite files, through the store (same index and change log as the API).
func seed(m int) func(park, dataDir string) error {
	return func(park, dataDir string) error {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(uint64(len(park)), uint64(park[len(park)-1])))
		now := time.Now().UTC()
		for ki, k := range listing.Kinds {
			path := filepath.Join(dataDir, park+"-"+k.Service()+".db")
			st, err := sqlitestore.Open(context.Background(), path)
			if err != nil {
				return err
			}
			have := 0
			if seq, _ := st.LastSeq(context.Background()); seq > 0 {
				have = int(seq)
			}
			want := m / 3
			for i := have; i < want; i++ {
				if err := st.Create(context.Background(), synth.Listing(r, ki*1_000_000/3+i, k, park, now)); err != nil {
					st.Close()
					return err
				}
			}
			st.Close()
		}
		return nil
	}
}

type sample struct {
	start   time.Time
	took    time.Duration
	ok      bool
	partial bool
	statusO map[string]string
}

// load runs concurrent club searches from p for d and returns every sample.
func load(ctx context.Context, cfg config, p local.ParkInfo, d time.Duration) []sample {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var out []sample
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += cfg.concurrency {
				q := cfg.queries[i%len(cfg.queries)]
				s := search(client, p, "scope=club&timeout_ms="+fmt.Sprint(cfg.budgetMS)+"&q="+url.QueryEscape(q))
				if ctx.Err() != nil && !s.ok {
					return
				}
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func search(client *http.Client, p local.ParkInfo, query string) sample {
	s := sample{start: time.Now()}
	req, _ := http.NewRequest("GET", p.GatewayURL+"/api/v1/search?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	res, err := client.Do(req)
	s.took = time.Since(s.start)
	if err != nil {
		return s
	}
	defer res.Body.Close()
	var body struct {
		Partial bool
		Parks   struct {
			Details []struct{ Park, Status string }
		}
	}
	s.ok = res.StatusCode == 200 && json.NewDecoder(res.Body).Decode(&body) == nil
	s.partial = body.Partial
	s.statusO = map[string]string{}
	for _, d := range body.Parks.Details {
		s.statusO[d.Park] = d.Status
	}
	return s
}

type stats struct {
	n               int
	rps             float64
	p50, p99, max   time.Duration
	partial, failed int
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
	st.p50, st.p99, st.max = durs[len(durs)/2], durs[(len(durs)*99)/100], durs[len(durs)-1]
	st.rps = float64(len(ss)) / d.Seconds()
	return st
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

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

// repoint changes the URL park p uses for peer in p's Consul KV, as an
// operator would: with the management token, and the record signed with
// the park's key (kept in root's data directory), or the gateway ignores it.
func repoint(root string, p local.ParkInfo, peer, u string) error {
	cc, err := consulapi.NewClient(&consulapi.Config{Address: p.ConsulHTTPAddr, TokenFile: p.ConsulTokenFile})
	if err != nil {
		return err
	}
	ks, err := parkkey.Load(filepath.Join(root, "data", p.ID))
	if err != nil {
		return err
	}
	pair, _, err := cc.KV().Get("parkmesh/peers/"+peer, nil)
	if err != nil || pair == nil {
		return fmt.Errorf("peer record %s at %s: %v", peer, p.ID, err)
	}
	rec, err := peering.OpenPeerRecord(ks, pair.Key, pair.Value)
	if err != nil {
		return fmt.Errorf("peer record %s at %s: %w", peer, p.ID, err)
	}
	rec.URL = u
	if _, pair.Value, err = peering.SealPeerRecord(ks, rec); err != nil {
		return err
	}
	_, err = cc.KV().Put(pair, nil)
	return err
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.parks < 2 || cfg.listings < 3 || cfg.concurrency < 1 || cfg.duration <= 0 {
		return fmt.Errorf("-parks ≥ 2, -listings ≥ 3, -concurrency ≥ 1 and -duration > 0 are required")
	}
	fmt.Fprintf(out, "starting %d parks with %d listings each (first run seeds them; later runs reuse %s)…\n", cfg.parks, cfg.listings, cfg.root)
	c, err := startClub(ctx, cfg, seed(cfg.listings))
	defer stopClub(c, &err)
	if err != nil {
		return err
	}
	first := c.Parks[0]
	client := &http.Client{Timeout: 30 * time.Second}

	// Let start-up work settle (each gateway reads its parks' change logs
	// once), and warm up connections and caches.
	time.Sleep(3 * time.Second)
	load(ctx, cfg, first, 3*time.Second)

	// Each park's own local latency, measured in the same run.
	fmt.Fprintln(out, "measuring each park's local search…")
	var slowest time.Duration
	slowestPark := ""
	for _, p := range c.Parks {
		var ss []sample
		for i := 0; i < 60; i++ {
			q := cfg.queries[i%len(cfg.queries)]
			ss = append(ss, search(client, p, "q="+url.QueryEscape(q)))
		}
		st := summarize(ss, time.Second)
		if st.p50 > slowest {
			slowest, slowestPark = st.p50, p.ID
		}
	}
	// The same queries, one at a time, federated: the overhead ratio
	// compares like with like (no queueing on this machine's two cores).
	var seq []sample
	for i := 0; i < 60; i++ {
		q := cfg.queries[i%len(cfg.queries)]
		seq = append(seq, search(client, first, "scope=club&timeout_ms="+fmt.Sprint(cfg.budgetMS)+"&q="+url.QueryEscape(q)))
	}
	seqFed := summarize(seq, time.Second)

	fmt.Fprintln(out, "phase 1/3: healthy…")
	healthy := load(ctx, cfg, first, cfg.duration)
	hs := summarize(healthy, cfg.duration)

	fmt.Fprintln(out, "phase 2/3: one peer black-holed…")
	holeURL, closeHole, err := blackHole()
	if err != nil {
		return err
	}
	victim := c.Parks[len(c.Parks)-1]
	if err := repoint(cfg.root, first, victim.ID, holeURL); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // the KV watch applies it
	holed := load(ctx, cfg, first, cfg.duration)
	closeHole()
	bs := summarize(holed, cfg.duration)
	var before, after []sample
	var opened time.Time
	for _, s := range holed {
		if s.statusO[victim.ID] == "circuit_open" && (opened.IsZero() || s.start.Before(opened)) {
			opened = s.start
		}
	}
	recovered := "never"
	if !opened.IsZero() {
		for _, s := range holed {
			if s.start.Before(opened) {
				before = append(before, s)
			} else {
				after = append(after, s)
			}
		}
		// Back to healthy: the first 1 s window after opening whose p99 is
		// within 10% of the healthy p99.
		for w := opened; w.Before(opened.Add(cfg.duration)); w = w.Add(time.Second) {
			var win []sample
			for _, s := range after {
				if !s.start.Before(w) && s.start.Before(w.Add(time.Second)) {
					win = append(win, s)
				}
			}
			if len(win) > 5 && summarize(win, time.Second).p99 <= hs.p99*11/10+5*time.Millisecond {
				recovered = fmt.Sprintf("%.1f s", w.Sub(opened).Seconds())
				break
			}
		}
	}
	bb, ba := summarize(before, cfg.duration), summarize(after, cfg.duration)
	if err := repoint(cfg.root, first, victim.ID, victim.GatewayURL); err != nil {
		return err
	}

	fmt.Fprintln(out, "phase 3/3: one peer killed…")
	killed := c.Parks[len(c.Parks)-2]
	if err := c.KillGateway(killed.ID); err != nil {
		return err
	}
	ks := summarize(load(ctx, cfg, first, cfg.duration), cfg.duration)

	var b strings.Builder
	fmt.Fprintf(&b, "\n### Federated search, %d parks × %d listings (%s)\n\n", cfg.parks, cfg.listings, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./deploy/bench -parks %d -listings %d -concurrency %d -duration %s -timeout-ms %d`\n\n",
		cfg.parks, cfg.listings, cfg.concurrency, cfg.duration, cfg.budgetMS)
	fmt.Fprintf(&b, "Club searches from %s over %d parks, %d concurrent searchers, budget %d ms, queries %q.\n\n", first.ID, cfg.parks, cfg.concurrency, cfg.budgetMS, cfg.queries)
	fmt.Fprintln(&b, "| scenario | requests | req/s | p50 ms | p99 ms | max ms | partial | failed |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|")
	row := func(name string, s stats) {
		fmt.Fprintf(&b, "| %s | %d | %.1f | %s | %s | %s | %d | %d |\n", name, s.n, s.rps, ms(s.p50), ms(s.p99), ms(s.max), s.partial, s.failed)
	}
	row("healthy", hs)
	row("one peer black-holed (whole phase)", bs)
	row("… before its breaker opened", bb)
	row("… after its breaker opened", ba)
	row("one peer killed", ks)
	fmt.Fprintf(&b, "\nOne search at a time: slowest single park's local p50 %s ms (%s), federated p50 %s ms over %d parks. "+
		"Gateway overhead, federated p50 ÷ slowest local p50: **%.2f×** (all %d parks share this machine's CPU, so a federated search also pays for every park's local work).\n",
		ms(slowest), slowestPark, ms(seqFed.p50), cfg.parks, float64(seqFed.p50)/float64(max(slowest, time.Microsecond)), cfg.parks)
	fmt.Fprintf(&b, "Black-holed peer: p99 before the breaker opened %s ms (budget %d ms); back to the healthy p99 %s after it opened.\n",
		ms(bb.p99), cfg.budgetMS, recovered)
	return report(cfg, b.String(), out)
}

// report prints a result and appends it to the record file.
func report(cfg config, text string, out io.Writer) error {
	fmt.Fprint(out, text)
	if cfg.record == "" {
		return nil
	}
	f, err := os.OpenFile(cfg.record, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nappended to %s\n", cfg.record)
	return nil
}
