package fulltext

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"矽谷", "硅谷"},
		{"醫療器械", "医疗器械"},
		{"蘭州科技創新", "兰州科技创新"},
		{"硅谷 Lanzhou", "硅谷 Lanzhou"}, // Simplified and Latin unchanged
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if utf8.RuneCountInString(Fold(tt.in)) != utf8.RuneCountInString(tt.in) {
			t.Errorf("Fold(%q) changed the number of characters", tt.in)
		}
	}
}

// concepts renders an analysed query as "text[alt;alt…]" per concept.
func concepts(q Query) []string {
	var out []string
	for _, c := range q.Concepts {
		var alts []string
		for _, a := range c.Alts {
			if a.Field != "" {
				alts = append(alts, a.Field+":"+a.Value)
				continue
			}
			s := strings.Join(a.Tokens, " ")
			if a.Prefix {
				s += "*"
			}
			alts = append(alts, s)
		}
		out = append(out, c.Text+"["+strings.Join(alts, ";")+"]")
	}
	return out
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		q    string
		want []string // concept texts, in order
		has  map[int][]string
		min  int
	}{
		// Traditional folds; the dictionary adds romanisations.
		{q: "矽谷", want: []string{"硅谷"}, has: map[int][]string{0: {"silicon valley"}}, min: 1},
		// Script boundaries split a mixed query.
		{q: "AI芯片", want: []string{"ai", "芯片"}, has: map[int][]string{0: {"sector:ai"}, 1: {"sector:semiconductors", "chip"}}, min: 1},
		// A long word: dictionary words inside it, the rest kept.
		{q: "骨科植入", want: []string{"骨科", "植入"}, has: map[int][]string{1: {"implant"}}, min: 1},
		{q: "二氧化碳热泵", want: []string{"二氧化碳", "热泵"}, has: map[int][]string{0: {"co2"}, 1: {"heat pump"}}, min: 1},
		// Synonyms and vocabulary codes.
		{q: "太阳能", want: []string{"太阳能"}, has: map[int][]string{0: {"光伏", "solar", "photovoltaic"}}},
		{q: "新材料", want: []string{"新材料"}, has: map[int][]string{0: {"sector:new-materials", "new materials"}}},
		// Romanisations, with or without the apostrophe.
		{q: "Xian", want: []string{"xian"}, has: map[int][]string{0: {"西安", "xi an"}}},
		{q: "Xi'an", want: []string{"xi an"}, has: map[int][]string{0: {"西安", "xian"}}},
		// An English phrase of the dictionary is one concept.
		{q: "Silicon Valley", want: []string{"silicon valley"}, has: map[int][]string{0: {"硅谷"}}},
		// The last English word typed ahead; not when followed by a space.
		{q: "Graph", want: []string{"graph"}, has: map[int][]string{0: {"graph*"}}},
		{q: "graph ", want: []string{"graph"}},
		{q: "新能源 battery", want: []string{"新能源", "battery"}, has: map[int][]string{1: {"电池", "battery*"}}, min: 1},
		{q: "卫星 遥感 芯片", want: []string{"卫星", "遥感", "芯片"}, min: 2},
		{q: `"x" OR y*`, want: []string{"x", "or", "y"}},
		{q: "  ", want: nil},
	}
	for _, tt := range tests {
		q := Analyze(tt.q)
		var texts []string
		for _, c := range q.Concepts {
			texts = append(texts, c.Text)
		}
		if !slices.Equal(texts, tt.want) {
			t.Errorf("Analyze(%q) concepts = %v, want %v", tt.q, texts, tt.want)
			continue
		}
		got := concepts(q)
		for i, alts := range tt.has {
			for _, a := range alts {
				if !strings.Contains(got[i], "["+a+";") && !strings.Contains(got[i], ";"+a+";") && !strings.Contains(got[i], ";"+a+"]") {
					t.Errorf("Analyze(%q) concept %d = %s, want the alternative %q", tt.q, i, got[i], a)
				}
			}
		}
		if tt.min != 0 && q.MinConcepts != tt.min {
			t.Errorf("Analyze(%q).MinConcepts = %d, want %d", tt.q, q.MinConcepts, tt.min)
		}
	}
	if got := concepts(Analyze("graph ")); strings.Contains(got[0], "*") {
		t.Errorf("a word followed by a space is not typed ahead: %v", got)
	}
}

func TestFTS5ConceptQuotesEverything(t *testing.T) {
	q := Analyze(`新材料 "copper" OR x*`)
	for _, c := range q.Concepts {
		e := FTS5Concept(c, []string{"title", "body"}, func(f, v string) string { return "CODE" })
		if strings.Contains(e, `""`) || strings.Contains(e, " OR x") {
			t.Errorf("unquoted user text in %s", e)
		}
	}
	// A CJK word as typed: two of its three bigrams suffice.
	c := Analyze("光子芯片封装测试").Concepts
	if len(c) == 0 {
		t.Fatal("no concept")
	}
	if got := FTS5AtLeast([]string{"a", "b", "c"}, 2); got != "((a AND b) OR (a AND c) OR (b AND c))" {
		t.Errorf("FTS5AtLeast = %s", got)
	}
	w := Analyze("可降解").Concepts[0]
	if got := FTS5Concept(w, []string{"body"}, nil); got != `({body} : ((("可降" AND "降解"))))` {
		t.Errorf("FTS5Concept(可降解) = %s", got)
	}
}

func TestScore(t *testing.T) {
	q := Analyze("二氧化碳热泵")
	title := Fields{Title: Normalize("二氧化碳空气源热泵"), Body: Normalize("")}
	body := Fields{Title: Normalize("清洁供暖"), Body: Normalize("以二氧化碳为冷媒的空气源热泵")}
	one := Fields{Title: Normalize("热泵"), Body: Normalize("")}
	none := Fields{Title: Normalize("碳纤维"), Body: Normalize("风电叶片")}
	st, sb, so, sn := q.Score(title), q.Score(body), q.Score(one), q.Score(none)
	if !(st > sb && sb > so && so > sn && sn == 0) {
		t.Errorf("scores title %v, body %v, one concept %v, none %v: want strictly decreasing to 0", st, sb, so, sn)
	}
	// As typed ranks above a synonym; adjacency above scattered bigrams.
	q = Analyze("太阳能")
	if a, b := q.Score(Fields{Title: Normalize("太阳能电站")}), q.Score(Fields{Title: Normalize("光伏电站")}); !(a > b && b > 0) {
		t.Errorf("太阳能: as typed %v, synonym %v", a, b)
	}
	q = Analyze("光子芯片封装")
	if a, b := q.Score(Fields{Title: Normalize("光子芯片封装中试线")}), q.Score(Fields{Title: Normalize("光子芯片设计"), Body: Normalize("封装")}); !(a > b) {
		t.Errorf("adjacent %v, scattered %v", a, b)
	}
	// English: plurals and prefixes.
	q = Analyze("heat pumps")
	if s := q.Score(Fields{Title: Normalize("CO2 Heat Pump")}); s < 1 {
		t.Errorf("heat pumps vs Heat Pump: %v, want a full title match", s)
	}
	q = Analyze("Graph")
	if s := q.Score(Fields{Title: Normalize("Graphene–copper Composite")}); s == 0 {
		t.Error("Graph does not match Graphene as a prefix")
	}
	// Codes count, below text.
	q = Analyze("新材料")
	code := q.Score(Fields{Title: Normalize("铜铬锆合金"), Has: func(f, v string) bool { return f == "sector" && v == "new-materials" }})
	text := q.Score(Fields{Title: Normalize("碳纤维新材料")})
	if !(text > code && code > 0) {
		t.Errorf("新材料: in the title %v, by sector code %v", text, code)
	}
}

func TestSnippet(t *testing.T) {
	q := Analyze("heat pump 熱泵")
	d := Doc{Title: "Yide", Body: []string{"位于白银南部高新区，研发以二氧化碳为冷媒的空气源热泵。Its heat pumps run stably at minus 30 °C and replace coal-fired boilers without emissions.", "Baiyin"}}
	s, hl := q.Snippet(d)
	if len(hl) == 0 || utf8.RuneCountInString(s) > SnippetRunes+2 {
		t.Fatalf("snippet %q %v", s, hl)
	}
	r := []rune(s)
	var got []string
	prev := 0
	for _, h := range hl {
		if h[0] < prev || h[1] <= h[0] || h[1] > len(r) {
			t.Fatalf("bad highlight %v in %q", h, s)
		}
		prev = h[1]
		got = append(got, string(r[h[0]:h[1]]))
	}
	for _, want := range []string{"热泵", "heat", "pumps"} {
		if !slices.Contains(got, want) {
			t.Errorf("highlights %q miss %q", got, want)
		}
	}
	// No body match: the start of the summary, no highlights.
	s, hl = Analyze("Yide").Snippet(d)
	if hl != nil || !strings.HasPrefix(s, "位于白银") {
		t.Errorf("title-only match: %q %v", s, hl)
	}
}
