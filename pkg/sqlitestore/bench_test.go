package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/synth"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore/ftsdoc"
)

// benchStore returns a store holding n synthetic listings, built once per
// process and kept in the OS temp dir across benchmark runs.
var benchStores sync.Map

func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	if s, ok := benchStores.Load(n); ok {
		return s.(*Store)
	}
	// A directory of its own: a data directory remembers its stores
	// (stores.txt), so a stale store goes with its directory.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("parkmesh-bench-%d-v6", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "bench.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	var have int
	s.read.QueryRow(`SELECT count(*) FROM listings`).Scan(&have)
	if have != n {
		s.Close()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if s, err = Open(ctx, path); err != nil {
			b.Fatal(err)
		}
		if err := bulkLoad(ctx, s, n); err != nil {
			b.Fatal(err)
		}
	}
	benchStores.Store(n, s)
	return s
}

// bulkLoad inserts n listings in batches through the same code as Create,
// but many per transaction.
func bulkLoad(ctx context.Context, s *Store, n int) error {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	const batch = 5000
	for start := 0; start < n; start += batch {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for i := start; i < start+batch && i < n; i++ {
				if err := create(ctx, tx, synth.Listing(r, i, listing.KindProject, "xian-hitech", now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// benchQueries mixes Chinese and English, rare and common terms, and
// filters, as park staff would type them.
var benchQueries = []listing.Query{
	{Text: "硅谷"},
	{Text: "新材料"},
	{Text: "芯片 设计"},
	{Text: "医疗 器械"},
	{Text: "纳米 超级铜"},
	{Text: "copper"},
	{Text: "Medical Device"},
	{Text: "heat pump"},
	{Text: "technion genome"},
	{Text: "卫星 navigation"},
	{Text: "innovation"},
	{Text: "创新"},
	{Sectors: []string{"ai"}},
	{Sectors: []string{"biomedicine"}, Country: "IL"},
	{Text: "电池", Sectors: []string{"new-energy"}},
	{},
}

// BenchmarkSearch100k reports the wall time of each query (p50-ms,
// p99-ms) and the CPU time its thread used (cpu-p50-ms, cpu-p99-ms: on a
// machine shared with other work, the wall time also counts waiting for a
// core; the query runs on the benchmark's goroutine, locked to its thread,
// since the driver is pure Go).
func BenchmarkSearch100k(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	s := benchStore(b, n)
	ctx := context.Background()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	durs := make([]time.Duration, 0, b.N)
	cpus := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := benchQueries[i%len(benchQueries)]
		c0, t0 := threadCPU(), time.Now()
		page, err := s.Search(ctx, q)
		durs = append(durs, time.Since(t0))
		cpus = append(cpus, threadCPU()-c0)
		if err != nil {
			b.Fatal(err)
		}
		_ = page
	}
	b.StopTimer()
	for _, d := range []struct {
		name string
		ds   []time.Duration
	}{{"", durs}, {"cpu-", cpus}} {
		sort.Slice(d.ds, func(i, j int) bool { return d.ds[i] < d.ds[j] })
		if len(d.ds) > 0 {
			b.ReportMetric(float64(d.ds[len(d.ds)/2].Microseconds())/1000, d.name+"p50-ms")
			b.ReportMetric(float64(d.ds[len(d.ds)*99/100].Microseconds())/1000, d.name+"p99-ms")
		}
	}
}

// BenchmarkSearchByQuery reports each query of the mix on its own, to show
// which kind of query costs what.
func BenchmarkSearchByQuery(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	s := benchStore(b, n)
	ctx := context.Background()
	for _, q := range benchQueries {
		name := q.Text
		if len(q.Sectors) > 0 {
			name += "+sectors=" + strings.Join(q.Sectors, ",")
		}
		if q.Country != "" {
			name += "+country=" + q.Country
		}
		if name == "" {
			name = "all"
		}
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Search(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIndexBackfill puts 10,000 listings of one origin into a fresh
// club index, 500 per Batch, as a gateway copies a new peer's listings
// (one op is the whole 10,000).
func BenchmarkIndexBackfill(b *testing.B) {
	const n, batch = 10_000, 500
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Now().UTC()
	all := make([]*listing.Listing, n)
	for i := range all {
		all[i] = synth.Listing(r, i, listing.KindProject, "haifa-lifescience", now)
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for start := 0; start < n; start += batch {
			err := s.Batch(ctx, func(bt *Batch) error {
				for i := start; i < start+batch && i < n; i++ {
					if _, err := bt.Put(all[i], int64(i+1)); err != nil {
						return err
					}
				}
				return bt.SetMeta("backfill/haifa-lifescience", fmt.Sprint(start+batch))
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkFacets100k runs the mix of BenchmarkSearch100k asking for every
// facet, with the scan bounded at several sizes ("all": unbounded), and
// the alternative of one FTS5 count per facet value (vocabulary facets
// only: no country), reporting per-query percentiles like
// BenchmarkSearch100k. "none" is the search without counts.
func BenchmarkFacets100k(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	s := benchStore(b, n)
	ctx := context.Background()
	run := func(b *testing.B, one func(q listing.Query) error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		durs := make([]time.Duration, 0, b.N)
		cpus := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			c0, t0 := threadCPU(), time.Now()
			err := one(benchQueries[i%len(benchQueries)])
			durs = append(durs, time.Since(t0))
			cpus = append(cpus, threadCPU()-c0)
			if err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range []struct {
			name string
			ds   []time.Duration
		}{{"", durs}, {"cpu-", cpus}} {
			sort.Slice(d.ds, func(i, j int) bool { return d.ds[i] < d.ds[j] })
			b.ReportMetric(float64(d.ds[len(d.ds)/2].Microseconds())/1000, d.name+"p50-ms")
			b.ReportMetric(float64(d.ds[len(d.ds)*99/100].Microseconds())/1000, d.name+"p99-ms")
		}
	}
	for _, scan := range []int{0, 500, DefaultFacetScan, 2000, 5000, 1 << 30} {
		name := fmt.Sprintf("scan=%d", scan)
		switch scan {
		case 0:
			name = "none"
		case 1 << 30:
			name = "scan=all"
		}
		b.Run(name, func(b *testing.B) {
			s.FacetScan = scan
			defer func() { s.FacetScan = 0 }()
			run(b, func(q listing.Query) error {
				if scan > 0 {
					q.Facets = listing.FacetNames
				}
				_, err := s.Search(ctx, q)
				return err
			})
		})
	}
	b.Run("per-value-match", func(b *testing.B) {
		vocab := []struct {
			f  ftsdoc.Facet
			vs []string
		}{{ftsdoc.FacetSector, listing.Sectors}, {ftsdoc.FacetSeeking, listing.Needs}, {ftsdoc.FacetOffering, listing.Needs},
			{ftsdoc.FacetStage, listing.Stages}, {ftsdoc.FacetAvailability, listing.Availabilities}, {ftsdoc.FacetOrgType, listing.OrgTypes},
			{ftsdoc.FacetKind, []string{"organization", "project", "talent"}}}
		run(b, func(q listing.Query) error {
			if _, err := s.Search(ctx, q); err != nil {
				return err
			}
			p := ftsdoc.PlanSearch(q, fulltext.Analyze(q.Text))
			for _, v := range vocab {
				for _, val := range v.vs {
					m := `(facets : "` + ftsdoc.Token(v.f, val) + `")`
					if p.All != "" {
						m = "(" + p.All + ") AND " + m
					}
					var c int
					if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM listings_fts WHERE listings_fts MATCH ?`, m).Scan(&c); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}
