package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Vocabularies for synthetic listings. Word frequencies follow a Zipf-like
// curve (earlier words are more common), as real text does.
var (
	zhWords = strings.Fields(`新材料 硅谷 芯片 医疗 器械 人工智能 新能源 电池 航空 航天 孵化器 加速器 投资 创新 中心
		研究院 大学 实验室 高新区 离岸 飞地 人才 专家 项目 落地 合作 孵化 技术 转移 产业 园区 生物 医药 制造 智能 汽车
		半导体 光电 激光 机器人 无人机 材料 纳米 超级 铜 热泵 二氧化碳 骨科 植入 打印 栓塞 保护 飞行 背包 农业 环保 金融
		科技 软件 数据 云计算 网络 安全 储能 氢能 光伏 风电 医院 诊断 基因 疫苗 传感器 精密 装备 卫星 火箭 遥感 导航`)
	enWords = strings.Fields(`innovation center park project talent investment partner copper nano material
		semiconductor chip medical device battery energy aerospace incubator accelerator university lab research
		startup venture capital landing licensing mentoring market supply chain robot drone laser photonics sensor
		implant printing heat pump carbon dioxide emission hydrogen solar wind satellite rocket navigation genome
		vaccine diagnostic hospital software data cloud network security agriculture fintech automotive precision
		manufacturing equipment offshore enclave silicon valley xian chengdu lanzhou haifa nantong technion`)
)

func zipf(r *rand.Rand, n int) int {
	// inverse-power sample over [0, n)
	x := r.Float64()
	return int(float64(n) * x * x)
}

func synthText(r *rand.Rand, words int) string {
	var b strings.Builder
	for i := 0; i < words; i++ {
		if r.IntN(2) == 0 {
			b.WriteString(zhWords[zipf(r, len(zhWords))])
			if r.IntN(3) == 0 {
				b.WriteString("，")
			}
		} else {
			b.WriteByte(' ')
			b.WriteString(enWords[zipf(r, len(enWords))])
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func synthListing(r *rand.Rand, i int, now time.Time) *listing.Listing {
	l := &listing.Listing{
		ID: listing.NewID(listing.KindProject, now), Park: "xian-hitech", Kind: listing.KindProject,
		Title:   synthText(r, 3+r.IntN(4)),
		Summary: synthText(r, 20+r.IntN(30)),
		Sectors: []string{listing.Sectors[zipf(r, len(listing.Sectors))]},
		Country: []string{"CN", "US", "IL", "FR", "DE"}[zipf(r, 5)],
		Seeking: []string{listing.Needs[r.IntN(len(listing.Needs))]},
		Version: 1, CreatedAt: now, UpdatedAt: now,
		Visibility: listing.Club,
		Attrs:      listing.Attrs{Stage: listing.Stages[r.IntN(4)], TRL: 1 + r.IntN(9)},
	}
	l.ID = fmt.Sprintf("%s%06d", l.ID[:len(l.ID)-6], i) // unique even within one millisecond
	return l
}

// benchStore returns a store holding n synthetic listings, built once per
// process and kept in the OS temp dir across benchmark runs.
var benchStores sync.Map

func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	if s, ok := benchStores.Load(n); ok {
		return s.(*Store)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("parkmesh-bench-%d-v2.db", n))
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	var have int
	s.read.QueryRow(`SELECT count(*) FROM listings`).Scan(&have)
	if have != n {
		s.Close()
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
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

// bulkLoad inserts n listings in batches through the same index and
// change-log code as Create, but many per transaction.
func bulkLoad(ctx context.Context, s *Store, n int) error {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	const batch = 5000
	for start := 0; start < n; start += batch {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for i := start; i < start+batch && i < n; i++ {
				l := synthListing(r, i, now)
				doc, _ := json.Marshal(l)
				res, err := tx.ExecContext(ctx, `INSERT INTO listings(id, version, updated_at, doc) VALUES (?, ?, ?, ?)`, l.ID, 1, micros(now), string(doc))
				if err != nil {
					return err
				}
				seq, _ := res.LastInsertId()
				if err := index(ctx, tx, seq, l); err != nil {
					return err
				}
				if err := appendChange(ctx, tx, listing.OpCreated, l, now, doc); err != nil {
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

func BenchmarkSearch100k(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	s := benchStore(b, n)
	ctx := context.Background()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := benchQueries[i%len(benchQueries)]
		t0 := time.Now()
		page, err := s.Search(ctx, q)
		durs = append(durs, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		_ = page
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
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
