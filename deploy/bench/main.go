// Command bench is ParkMesh's load and fault tool. It starts parks on
// loopback with the demo's launcher (each with its Consul agent, services
// and gateway), loads synthetic listings, peers the parks through the
// gateways' peering API and measures. Each mode prints a table and appends
// it, with the exact command, to docs/benchmarks.md.
//
//	go run ./deploy/bench -parks 10 -listings 2000        # club search: index vs local, interleaved; mode=live; faults
//	go run ./deploy/bench -mode backfill -listings 10000  # a new peering's full copy into the club index
//	go run ./deploy/bench -mode feed -parks 3 -rate 200   # create → remote subscriber latency and throughput
//	go run ./deploy/bench -mode relevance -v              # P@5 and nDCG@10 of local and club search on the judged set
//
// Every run starts each park from a fresh data directory: the services'
// databases are copied from a seed made once per park and size under
// <root>/seed; keys, gateway state and club index are new (the Consul dev
// agents forget every peering when they stop, so an index of an earlier
// run would hold peers that no longer exist).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/parkmesh/parkmesh/deploy/bench/internal/seed"
	"github.com/parkmesh/parkmesh/deploy/bench/relevance"
	"github.com/parkmesh/parkmesh/deploy/local"
)

type config struct {
	parks       int
	listings    int
	concurrency int
	duration    time.Duration
	phase       time.Duration
	budgetMS    int
	root        string
	record      string
	queries     []string
	mode        string
	rate        int
	rounds      int
	syncTimeout time.Duration
	peering     string
	judgments   string
	verbose     bool
}

// star reports whether only the first park peers with the others.
func (c config) star() bool { return c.peering == "star" }

func main() {
	var cfg config
	var queries string
	flag.StringVar(&cfg.mode, "mode", "search", "search (club search from the index vs local, mode=live, faults), backfill (a new peering's full copy), feed (change delivery) or relevance (P@5 and nDCG@10 on the judged query set)")
	flag.IntVar(&cfg.parks, "parks", 10, "number of parks (K); backfill mode always runs two")
	flag.IntVar(&cfg.listings, "listings", 2000, "listings per park (M; in backfill mode, the listings of the park being copied), split over the three kinds")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent searchers (search mode) or writers (feed mode's unthrottled phase)")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "search mode: length of the interleaved index-vs-local loop; feed mode: length of each phase")
	flag.DurationVar(&cfg.phase, "phase", 10*time.Second, "search mode: length of each other phase (one at a time, mode=live, black-holed peer, killed peer)")
	flag.IntVar(&cfg.budgetMS, "timeout-ms", 2000, "budget (timeout_ms) of mode=live searches")
	flag.IntVar(&cfg.rate, "rate", 200, "feed mode: listings created per second at the first park in the latency phase")
	flag.IntVar(&cfg.rounds, "rounds", 3, "backfill mode: peerings measured (the peering is deleted and established again between rounds)")
	flag.StringVar(&cfg.peering, "peering", "mesh", "search and feed modes: mesh (every pair of parks peers) or star (the first park peers with each other park: "+
		"its club is the same, but the other gateways copy one park instead of all, which on one machine saves K-fold backfill work)")
	flag.DurationVar(&cfg.syncTimeout, "sync-timeout", 10*time.Minute, "longest wait for club indexes to be live")
	flag.StringVar(&cfg.root, "root", filepath.Join(".parkmesh", "bench"), "working directory (binaries, seeds, data, logs)")
	flag.StringVar(&cfg.record, "record", filepath.Join("docs", "benchmarks.md"), "file the results are appended to (\"\" to skip)")
	flag.StringVar(&queries, "queries", "硅谷,新材料,copper,medical device,芯片 设计,innovation", "comma-separated query mix")
	flag.StringVar(&cfg.judgments, "judgments", relevance.JudgmentsFile, "relevance mode: the judged query set")
	flag.BoolVar(&cfg.verbose, "v", false, "relevance mode: print each query's scores")
	flag.Parse()
	cfg.queries = strings.Split(queries, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runners := map[string]func(context.Context, config, io.Writer) error{"search": runSearch, "backfill": runBackfill, "feed": runFeed, "relevance": runRelevance}
	runner, ok := runners[cfg.mode]
	if cfg.peering != "mesh" && cfg.peering != "star" {
		fmt.Fprintf(os.Stderr, "bench: -peering %q: must be mesh or star\n", cfg.peering)
		os.Exit(2)
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: -mode %q: must be search, backfill, feed or relevance\n", cfg.mode)
		os.Exit(2)
	}
	if err := runner(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func parkID(i int) string { return fmt.Sprintf("bench-park-%02d", i+1) }

// parkIDs are the ids of the first n parks.
func parkIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = parkID(i)
	}
	return ids
}

// startParks starts the parks ids on the bench's fixed ports (a taken one
// is reported, naming it), each from a fresh data directory holding
// s's seed for it and with fresh logs; it does not peer them. Pass the cluster to stopClub
// whatever the error.
func startParks(ctx context.Context, cfg config, ids []string, s *seed.Seeder) (*local.Cluster, error) {
	// The launcher appends to log files; a run's logs are its own.
	if err := os.RemoveAll(filepath.Join(cfg.root, "logs")); err != nil {
		return nil, err
	}
	return local.Start(ctx, local.Config{
		Root: cfg.root, Parks: ids, GatewayBasePort: 9101, ServiceBasePort: 27200, ConsulBasePort: 29000, Seed: s.Prepare,
		Unsupervised: true, // the killed peer stays dead for its phase
	}, io.Discard)
}

// stopClub stops what startParks started, reporting a failure to stop in
// *err unless it already holds an error.
func stopClub(c *local.Cluster, err *error) {
	if c == nil {
		return
	}
	if serr := c.Stop(); serr != nil && *err == nil {
		*err = serr
	}
}

// extraFlags are the flags of a recorded command that its fixed format
// leaves out, when they were given: the command must make the same run.
func extraFlags() string {
	var b strings.Builder
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "peering", "sync-timeout", "queries":
			fmt.Fprintf(&b, " -%s %s", f.Name, shellQuote(f.Value.String()))
		}
	})
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// progress prints a step with the time since start.
type progress struct {
	out   io.Writer
	start time.Time
}

func (p progress) say(format string, args ...any) {
	fmt.Fprintf(p.out, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// loadAvg is the machine's load average line (1, 5, 15 minutes), the
// bench's own processes included.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// ratio is a÷b as text ("–" when b is zero).
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
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
