// Package synth makes synthetic bilingual listings for benchmarks and load
// tests: Chinese and English words drawn with a skewed (Zipf-like)
// frequency, as real text is, from the park domain's vocabulary.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Vocabularies of the synthetic text.
var (
	ZH = strings.Fields(`新材料 硅谷 芯片 医疗 器械 人工智能 新能源 电池 航空 航天 孵化器 加速器 投资 创新 中心
		研究院 大学 实验室 高新区 离岸 飞地 人才 专家 项目 落地 合作 孵化 技术 转移 产业 园区 生物 医药 制造 智能 汽车
		半导体 光电 激光 机器人 无人机 材料 纳米 超级 铜 热泵 二氧化碳 骨科 植入 打印 栓塞 保护 飞行 背包 农业 环保 金融
		科技 软件 数据 云计算 网络 安全 储能 氢能 光伏 风电 医院 诊断 基因 疫苗 传感器 精密 装备 卫星 火箭 遥感 导航`)
	EN = strings.Fields(`innovation center park project talent investment partner copper nano material
		semiconductor chip medical device battery energy aerospace incubator accelerator university lab research
		startup venture capital landing licensing mentoring market supply chain robot drone laser photonics sensor
		implant printing heat pump carbon dioxide emission hydrogen solar wind satellite rocket navigation genome
		vaccine diagnostic hospital software data cloud network security agriculture fintech automotive precision
		manufacturing equipment offshore enclave silicon valley xian chengdu lanzhou haifa nantong technion`)
)

// zipf samples an index in [0, n), small indexes far more often.
func zipf(r *rand.Rand, n int) int {
	x := r.Float64()
	return int(float64(n) * x * x)
}

// Text returns words words of mixed Chinese and English.
func Text(r *rand.Rand, words int) string {
	var b strings.Builder
	for i := 0; i < words; i++ {
		if r.IntN(2) == 0 {
			b.WriteString(ZH[zipf(r, len(ZH))])
			if r.IntN(3) == 0 {
				b.WriteString("，")
			}
		} else {
			b.WriteByte(' ')
			b.WriteString(EN[zipf(r, len(EN))])
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// Listing returns the i-th synthetic listing of kind k in park, valid and
// ready to store (id unique even within one millisecond).
func Listing(r *rand.Rand, i int, k listing.Kind, park string, now time.Time) *listing.Listing {
	l := &listing.Listing{
		ID: listing.NewID(k, now), Park: park, Kind: k,
		Title:      strings.TrimSpace(Text(r, 3+r.IntN(4))),
		Summary:    strings.TrimSpace(Text(r, 20+r.IntN(30))),
		Sectors:    []string{listing.Sectors[zipf(r, len(listing.Sectors))]},
		Country:    []string{"CN", "US", "IL", "FR", "DE"}[zipf(r, 5)],
		Seeking:    []string{listing.Needs[r.IntN(len(listing.Needs))]},
		Version:    1,
		CreatedAt:  now,
		UpdatedAt:  now,
		Visibility: listing.Club,
	}
	if l.Title == "" {
		l.Title = "项目"
	}
	switch k {
	case listing.KindProject:
		l.Attrs = listing.Attrs{Stage: listing.Stages[r.IntN(len(listing.Stages))], TRL: 1 + r.IntN(9)}
	case listing.KindOrganization:
		l.Attrs = listing.Attrs{OrgType: listing.OrgTypes[r.IntN(len(listing.OrgTypes))]}
	case listing.KindTalent:
		l.Attrs = listing.Attrs{Availability: []string{listing.Availabilities[r.IntN(len(listing.Availabilities))]}, Languages: []string{"zh", "en"}}
	}
	l.ID = fmt.Sprintf("%s%06d", l.ID[:len(l.ID)-6], i%1_000_000)
	return l
}
