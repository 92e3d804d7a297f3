package fulltext

import (
	_ "embed"
	"strings"
	"unicode"
)

// Alt is one way a concept of a query can match: a sequence of index
// tokens (lower-case words, CJK bigrams, or one CJK character), or a
// controlled-vocabulary code (Field, Value) the listing carries.
type Alt struct {
	Tokens []string
	// Phrase: the tokens must be consecutive to match (words of an
	// English phrase, a synonym from the dictionary). Otherwise (a CJK
	// word as typed) any MinMatch of them match, and adjacency only ranks
	// higher, as a cjk analyzer's minimum_should_match does.
	Phrase   bool
	MinMatch int
	// Prefix: the last token matches every token it begins (the query's
	// last English word, typed ahead).
	Prefix bool
	// Weight ranks the alternative: 1 for the words as typed, less for a
	// prefix, a synonym or a vocabulary code.
	Weight float64
	// Field and Value name a controlled-vocabulary code (Field one of
	// sector, seeking, offering, org_type, stage, availability).
	Field, Value string

	text string // normalised text (units joined by spaces)
}

// Weights of alternatives.
const (
	WeightExact   = 1.0
	WeightPrefix  = 0.8
	WeightSynonym = 0.7
	WeightCode    = 0.5
)

// Concept is one thing the officer asked for: a word, a CJK word or an
// English phrase of the dictionary, with its alternatives.
type Concept struct {
	Text string
	Alts []Alt
}

// Query is an analysed query: listings matching at least MinConcepts of
// its concepts are hits.
type Query struct {
	Concepts    []Concept
	MinConcepts int

	compiled [][]compiled // per concept, per alternative (Score)
	hl       map[rune][]pattern
}

//go:embed vocab.txt
var vocabText string

// vocabEntry is one entry of a synonym group: words (a phrase, each
// lower-case) or a CJK word, or a vocabulary code.
type vocabEntry struct {
	text         string // normalised text: words joined by one space
	field, value string
}

// vocab maps the normalised text of an entry to the groups it is in.
var vocab, vocabMaxWords = loadVocab(vocabText)

// normalise folds, lower-cases and splits s into units: CJK runs and
// words, script changes and punctuation being boundaries.
func normalise(s string) []string {
	var units []string
	var cur []rune
	cjk := false
	flush := func() {
		if len(cur) > 0 {
			units = append(units, string(cur))
			cur = cur[:0]
		}
	}
	for _, r := range s {
		r = unicode.ToLower(FoldRune(r))
		switch {
		case IsCJK(r):
			if !cjk {
				flush()
			}
			cjk = true
			cur = append(cur, r)
		case isWordRune(r):
			if cjk {
				flush()
			}
			cjk = false
			cur = append(cur, r)
		default:
			flush()
		}
	}
	flush()
	return units
}

func isCJKUnit(u string) bool {
	for _, r := range u {
		return IsCJK(r)
	}
	return false
}

func loadVocab(text string) (map[string][][]vocabEntry, int) {
	m := map[string][][]vocabEntry{}
	maxWords := 1
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var group []vocabEntry
		for _, e := range strings.Split(line, "|") {
			e = strings.TrimSpace(e)
			if f, v, ok := strings.Cut(e, ":"); ok && !strings.ContainsAny(f, " ") && f != "" && isCode(f) {
				group = append(group, vocabEntry{field: f, value: v})
				continue
			}
			units := normalise(e)
			if len(units) == 0 {
				continue
			}
			maxWords = max(maxWords, len(units))
			group = append(group, vocabEntry{text: strings.Join(units, " ")})
		}
		for _, e := range group {
			if e.text != "" {
				m[e.text] = append(m[e.text], group)
			}
		}
	}
	return m, maxWords
}

func isCode(f string) bool {
	switch f {
	case "sector", "seeking", "offering", "org_type", "stage", "availability":
		return true
	}
	return false
}

// altOf is the alternative matching the normalised text t (units joined by
// spaces) as a phrase, or as typed when typed is true.
func altOf(t string, typed bool, weight float64) Alt {
	a := Alt{Weight: weight, Phrase: true, text: t}
	for _, u := range strings.Split(t, " ") {
		if isCJKUnit(u) {
			r := []rune(u)
			if len(r) == 1 {
				a.Tokens = append(a.Tokens, u)
				a.Prefix = true
				continue
			}
			for i := 0; i+1 < len(r); i++ {
				a.Tokens = append(a.Tokens, string(r[i:i+2]))
			}
			continue
		}
		a.Tokens = append(a.Tokens, u)
	}
	a.MinMatch = len(a.Tokens)
	if typed && !strings.Contains(t, " ") && isCJKUnit(t) && len(a.Tokens) > 1 {
		// A CJK word as typed: about two thirds of its bigrams suffice.
		a.Phrase = false
		a.MinMatch = (2*len(a.Tokens) + 2) / 3
	}
	return a
}

// concept builds the concept for normalised text t with its dictionary
// alternatives.
func concept(t string, display string) Concept {
	c := Concept{Text: display, Alts: []Alt{altOf(t, true, WeightExact)}}
	seen := map[string]bool{t: true}
	groups := vocab[t]
	if groups == nil && !isCJKUnit(t) {
		// An English plural of an entry (drones, accelerators).
		for _, k := range []string{strings.TrimSuffix(t, "s"), strings.TrimSuffix(t, "es"), strings.TrimSuffix(t, "ies") + "y"} {
			if g := vocab[k]; g != nil && k != t {
				groups = g
				break
			}
		}
	}
	for _, g := range groups {
		for _, e := range g {
			key := e.text
			if e.field != "" {
				key = e.field + ":" + e.value
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			if e.field != "" {
				c.Alts = append(c.Alts, Alt{Field: e.field, Value: e.value, Weight: WeightCode})
			} else {
				c.Alts = append(c.Alts, altOf(e.text, false, WeightSynonym))
			}
		}
	}
	return c
}

// segmentCJK splits a CJK run into dictionary words (longest first, from
// the left) and the runs between them; a lone character left between
// dictionary words is dropped (a particle such as 的), unless the run is
// that character alone.
func segmentCJK(u string) []string {
	r := []rune(u)
	if _, ok := vocab[u]; ok || len(r) <= 2 {
		return []string{u}
	}
	var out []string
	var rest []rune
	found := false
	flush := func() {
		if len(rest) > 1 || (len(rest) == 1 && !found) {
			out = append(out, string(rest))
		}
		rest = rest[:0]
	}
	for i := 0; i < len(r); {
		n := 0
		for l := min(len(r)-i, 8); l >= 2; l-- {
			if _, ok := vocab[string(r[i:i+l])]; ok {
				n = l
				break
			}
		}
		if n == 0 {
			rest = append(rest, r[i])
			i++
			continue
		}
		found = true
		flush()
		out = append(out, string(r[i:i+n]))
		i += n
	}
	flush()
	if !found {
		return []string{u}
	}
	// A single character kept before the first word was not yet known to
	// be a leftover.
	out2 := out[:0]
	for _, s := range out {
		if len([]rune(s)) > 1 || len(out) == 1 {
			out2 = append(out2, s)
		}
	}
	return out2
}

// Analyze parses a user's query into concepts. Text is folded to
// Simplified and lower-cased; units split at spaces, punctuation and script
// changes ("AI芯片" is AI and 芯片); English phrases of the dictionary
// (up to its longest) and dictionary words inside a CJK run become one
// concept each with their synonyms and codes; a CJK run that is no
// dictionary word stays one concept matched by two thirds of its bigrams.
// The last word, when English and not followed by a space, also matches as
// a prefix. Punctuation and any query syntax are dropped, so every token
// is safe to quote.
func Analyze(q string) Query {
	units := normalise(q)
	trailingSpace := len(q) > 0 && !isWordRune(lastRune(q)) && !IsCJK(lastRune(q))
	var cs []Concept
	for i := 0; i < len(units); {
		u := units[i]
		if isCJKUnit(u) {
			for _, part := range segmentCJK(u) {
				cs = append(cs, concept(part, part))
			}
			i++
			continue
		}
		// Longest English phrase of the dictionary starting here.
		n := 1
		for l := min(vocabMaxWords, len(units)-i); l > 1; l-- {
			if _, ok := vocab[strings.Join(units[i:i+l], " ")]; ok {
				n = l
				break
			}
		}
		t := strings.Join(units[i:i+n], " ")
		c := concept(t, t)
		if i+n == len(units) && n == 1 && !trailingSpace && len(u) >= 2 {
			c.Alts = append(c.Alts, Alt{Tokens: []string{u}, Phrase: true, MinMatch: 1, Prefix: true, Weight: WeightPrefix, text: u})
		}
		cs = append(cs, c)
		i += n
	}
	if len(cs) > MaxTerms {
		cs = cs[:MaxTerms]
	}
	aq := Query{Concepts: cs, MinConcepts: minConcepts(len(cs))}
	aq.compile()
	return aq
}

// compile prepares every text alternative for Score.
func (q *Query) compile() {
	q.compiled = make([][]compiled, len(q.Concepts))
	for i, c := range q.Concepts {
		q.compiled[i] = make([]compiled, len(c.Alts))
		for j, a := range c.Alts {
			if a.Field == "" {
				q.compiled[i][j] = compile(a, a.text)
			}
		}
	}
	q.hl = q.buildPatterns()
}

// WithoutPrefix returns q without the prefix alternative of its last
// concept (a store drops it when the word typed is itself indexed: a
// prefix query costs as much as every word it begins).
func (q Query) WithoutPrefix() Query {
	if len(q.Concepts) == 0 {
		return q
	}
	cs := append([]Concept(nil), q.Concepts...)
	last := &cs[len(cs)-1]
	var alts []Alt
	for _, a := range last.Alts {
		if !a.Prefix || a.Weight != WeightPrefix {
			alts = append(alts, a)
		}
	}
	last.Alts = alts
	out := Query{Concepts: cs, MinConcepts: q.MinConcepts}
	out.compile()
	return out
}

// PrefixWord is the word the last concept matches as a prefix ("" when
// none).
func (q Query) PrefixWord() string {
	if len(q.Concepts) == 0 {
		return ""
	}
	for _, a := range q.Concepts[len(q.Concepts)-1].Alts {
		if a.Prefix && a.Weight == WeightPrefix && len(a.Tokens) == 1 {
			return a.Tokens[0]
		}
	}
	return ""
}

// minConcepts is how many of n concepts a hit must match: any one of one
// or two, all but one of three to six, all of more.
func minConcepts(n int) int {
	switch {
	case n <= 2:
		return min(n, 1)
	case n <= 6:
		return n - 1
	}
	return n
}

func lastRune(s string) rune {
	var last rune
	for _, r := range s {
		last = r
	}
	return last
}

// quote renders a token as an FTS5 string.
func quote(tok string) string { return `"` + strings.ReplaceAll(tok, `"`, `""`) + `"` }

// fts5Alt renders one text alternative as an FTS5 expression.
func fts5Alt(a Alt) string {
	if a.Phrase || a.MinMatch >= len(a.Tokens) && len(a.Tokens) == 1 {
		var b strings.Builder
		b.WriteByte('"')
		for j, tok := range a.Tokens {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strings.ReplaceAll(tok, `"`, `""`))
		}
		b.WriteByte('"')
		if a.Prefix {
			b.WriteByte('*')
		}
		return b.String()
	}
	// Any MinMatch of the tokens: the OR of every combination.
	var combos []string
	combine(len(a.Tokens), a.MinMatch, func(idx []int) {
		parts := make([]string, len(idx))
		for i, j := range idx {
			parts[i] = quote(a.Tokens[j])
		}
		combos = append(combos, "("+strings.Join(parts, " AND ")+")")
	})
	return "(" + strings.Join(combos, " OR ") + ")"
}

// combine calls fn with every k-subset of 0..n-1 (at most 64 of them;
// beyond that, the first 64).
func combine(n, k int, fn func([]int)) {
	idx := make([]int, k)
	count := 0
	var rec func(start, depth int)
	rec = func(start, depth int) {
		if count >= 64 {
			return
		}
		if depth == k {
			fn(append([]int(nil), idx...))
			count++
			return
		}
		for i := start; i <= n-(k-depth); i++ {
			idx[depth] = i
			rec(i+1, depth+1)
		}
	}
	rec(0, 0)
}

// FTS5Concept renders concept c as an FTS5 expression over the text
// columns cols, or'ed with the codes code renders (code returns "" for a
// code it cannot express). Every token is quoted, so no user text is ever
// read as query syntax. An empty result means c cannot match.
func FTS5Concept(c Concept, cols []string, code func(field, value string) string) string {
	var text, other []string
	for _, a := range c.Alts {
		if a.Field != "" {
			if code != nil {
				if e := code(a.Field, a.Value); e != "" {
					other = append(other, e)
				}
			}
			continue
		}
		if len(a.Tokens) == 0 {
			continue
		}
		text = append(text, fts5Alt(a))
	}
	var parts []string
	if len(text) > 0 {
		parts = append(parts, "{"+strings.Join(cols, " ")+"} : ("+strings.Join(text, " OR ")+")")
	}
	parts = append(parts, other...)
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// FTS5AtLeast renders "at least k of the concept expressions exprs" (all
// non-empty) as an FTS5 expression.
func FTS5AtLeast(exprs []string, k int) string {
	if k >= len(exprs) {
		return "(" + strings.Join(exprs, " AND ") + ")"
	}
	if k <= 1 {
		return "(" + strings.Join(exprs, " OR ") + ")"
	}
	var combos []string
	combine(len(exprs), k, func(idx []int) {
		parts := make([]string, len(idx))
		for i, j := range idx {
			parts[i] = exprs[j]
		}
		combos = append(combos, "("+strings.Join(parts, " AND ")+")")
	})
	return "(" + strings.Join(combos, " OR ") + ")"
}
