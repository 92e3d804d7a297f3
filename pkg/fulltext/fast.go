package fulltext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text is a field's text normalised for ranking: folded to Simplified,
// lower-cased, every run of other characters one space, a space at each
// change of script, and a space at both ends, so a word boundary is a
// space.
type Text string

// Normalize makes the ranking form of s.
func Normalize(s string) Text {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(' ')
	const (
		space = iota
		word
		cjk
	)
	prev := space
	for _, r := range s {
		r = FoldRune(r)
		switch {
		case IsCJK(r):
			if prev == word {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			prev = cjk
		case isWordRune(r):
			if prev == cjk {
				b.WriteByte(' ')
			}
			if r < utf8.RuneSelf {
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
				b.WriteByte(byte(r))
			} else {
				b.WriteRune(unicode.ToLower(r))
			}
			prev = word
		default:
			if prev != space {
				b.WriteByte(' ')
			}
			prev = space
		}
	}
	if prev != space {
		b.WriteByte(' ')
	}
	return Text(b.String())
}

// root is the part of an English word its inflections share (battery and
// batteries: "batter"; pump and pumps: "pump"): ranking matches a word by
// its root followed by a short ending.
func root(w string) string {
	n := len(w)
	switch {
	case n > 4 && strings.HasSuffix(w, "ies"):
		return w[:n-3]
	case n > 4 && strings.HasSuffix(w, "ing"):
		return w[:n-3]
	case n > 3 && (strings.HasSuffix(w, "es") || strings.HasSuffix(w, "ed")):
		return w[:n-2]
	case n > 3 && (strings.HasSuffix(w, "s") || strings.HasSuffix(w, "y") || strings.HasSuffix(w, "e")) && !strings.HasSuffix(w, "ss"):
		return w[:n-1]
	}
	return w
}

// maxEnding is the longest ending a word may have beyond a query word's
// root and still match it (materials, batteries, pumping).
const maxEnding = 4

// unit is one compiled unit of an alternative: an English word (its root)
// or a CJK word.
type unit struct {
	s      string
	cjk    bool
	prefix bool // any ending (typed ahead)
}

// compiled is an alternative prepared for ranking.
type compiled struct {
	units   []unit
	bigrams []string // a CJK word as typed: its bigrams
	min     int      // bigrams that must be present
}

func compile(a Alt, q string) compiled {
	var c compiled
	for i, u := range strings.Split(q, " ") {
		if u == "" {
			continue
		}
		if isCJKUnit(u) {
			c.units = append(c.units, unit{s: u, cjk: true})
			continue
		}
		c.units = append(c.units, unit{s: root(u), prefix: a.Prefix && i == len(strings.Split(q, " "))-1})
	}
	if !a.Phrase && len(c.units) == 1 && c.units[0].cjk {
		c.bigrams, c.min = a.Tokens, a.MinMatch
	}
	return c
}

// wordAt reports whether a word matching u starts at t[i:] (i just past a
// space), and where it ends.
func wordAt(t string, i int, u unit) (int, bool) {
	if !strings.HasPrefix(t[i:], u.s) {
		return 0, false
	}
	end := i + len(u.s)
	if u.cjk {
		return end, true
	}
	sp := strings.IndexByte(t[end:], ' ')
	if sp < 0 {
		return 0, false
	}
	if !u.prefix && sp > maxEnding {
		return 0, false
	}
	return end + sp, true
}

// phraseIn reports whether the units appear consecutively in t: the first
// at a word boundary (anywhere, for a CJK word), each next starting the
// following word.
func phraseIn(t string, units []unit) bool {
	first := units[0]
	pat := first.s
	if !first.cjk {
		pat = " " + first.s
	}
	for off := 0; ; {
		k := strings.Index(t[off:], pat)
		if k < 0 {
			return false
		}
		start := off + k
		if !first.cjk {
			start++
		}
		off = start + 1
		end, ok := wordAt(t, start, first)
		if !ok {
			continue
		}
		matched := true
		for _, u := range units[1:] {
			// The next word starts after the space ending this one.
			if first.cjk && end < len(t) && t[end] != ' ' {
				// a CJK word inside a run: the next unit must follow a
				// script change, which Normalize marks with a space.
				matched = false
				break
			}
			if end+1 > len(t) {
				matched = false
				break
			}
			if end, ok = wordAt(t, end+1, u); !ok {
				matched = false
				break
			}
		}
		if matched {
			return true
		}
	}
}

// quality is how well alternative c matches text t: 1 adjacent, less
// scattered, 0 not enough.
func (c compiled) quality(t string, phrase bool) float64 {
	if len(c.units) == 0 {
		return 0
	}
	if phraseIn(t, c.units) {
		return 1
	}
	if c.bigrams != nil {
		n := 0
		for _, b := range c.bigrams {
			if strings.Contains(t, b) {
				n++
			}
		}
		if n < c.min || n == 0 {
			return 0
		}
		return 0.7 * float64(n) / float64(len(c.bigrams))
	}
	if len(c.units) == 1 {
		return 0
	}
	for _, u := range c.units {
		if !phraseIn(t, []unit{u}) {
			return 0
		}
	}
	if phrase {
		return 0.4
	}
	return 0.7
}

// Fields is a listing's text as Query.Score reads it.
type Fields struct {
	Title, Body Text
	Has         func(field, value string) bool
}

// Score ranks f against q: per concept the best of its alternatives
// (weight × field weight × match quality), averaged over the concepts,
// plus a bonus when every concept matched, in proportion to the weakest
// match. Query.Rank uses it too.
func (q Query) Score(f Fields) float64 {
	if len(q.Concepts) == 0 {
		return 0
	}
	sum, matched, weakest := 0.0, 0, 1.0
	for ci, c := range q.Concepts {
		best := 0.0
		for ai, a := range c.Alts {
			if a.Field != "" {
				if f.Has != nil && f.Has(a.Field, a.Value) {
					best = max(best, a.Weight*codeWeight)
				}
				continue
			}
			if a.Weight*titleWeight <= best {
				continue
			}
			cp := q.compiled[ci][ai]
			best = max(best, a.Weight*titleWeight*cp.quality(string(f.Title), a.Phrase))
			if a.Weight*bodyWeight > best {
				best = max(best, a.Weight*bodyWeight*cp.quality(string(f.Body), a.Phrase))
			}
		}
		if best > 0 {
			matched++
		}
		sum += best
		weakest = min(weakest, best)
	}
	score := sum / float64(len(q.Concepts))
	if matched == len(q.Concepts) {
		// Every concept matched: the bonus grows with the weakest match,
		// so two vocabulary codes do not outrank a title match of one.
		score += coverageBonus * weakest
	}
	return float64(int64(score*1e4+0.5)) / 1e4
}
