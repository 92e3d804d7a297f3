package fulltext

import (
	"strings"
	"unicode"
)

// Doc is a listing's text as ranking reads it.
type Doc struct {
	Title string
	// Body is the rest of the searchable text, in parts (summary first);
	// the snippet is cut from one part.
	Body []string
	// Has reports whether the listing carries a vocabulary code.
	Has func(field, value string) bool
}

// Ranked is how well a listing matches a query, and why.
type Ranked struct {
	// Score grows with the concepts matched and how (title over body,
	// adjacent over scattered, as typed over synonym or code). It uses no
	// statistics of the collection, so scores of the same query compare
	// across stores: services and parks merge by it.
	Score float64
	// Snippet is a short excerpt of the body showing the match, and
	// Highlights the [start, end) rune offsets of the matched words in it.
	Snippet    string
	Highlights [][2]int
}

// Field weights: a match in the title counts more than one in the body.
const (
	titleWeight = 1.0
	bodyWeight  = 0.45
	codeWeight  = 0.8
	// coverageBonus is added when every concept matches (times the
	// weakest concept's score).
	coverageBonus = 0.25
)

// SnippetRunes bounds a snippet's length.
const SnippetRunes = 100

// FieldsOf is d as Score reads it.
func FieldsOf(d Doc) Fields {
	return Fields{Title: Normalize(d.Title), Body: Normalize(strings.Join(d.Body, "\n")), Has: d.Has}
}

// Rank scores d against q (Score) and cuts its snippet (Snippet).
func (q Query) Rank(d Doc) Ranked {
	if len(q.Concepts) == 0 {
		return Ranked{}
	}
	r := Ranked{Score: q.Score(FieldsOf(d))}
	r.Snippet, r.Highlights = q.Snippet(d)
	return r
}

// Snippet cuts a short excerpt of d's body showing why it matched q: the
// body part with the most matched words, around the first, and the
// matched words' rune ranges in it. Without a match in the body, the
// start of its first non-empty part, without highlights.
func (q Query) Snippet(d Doc) (string, [][2]int) {
	best, most := -1, 0
	var bestText []rune
	var bestRanges [][2]int
	for i, p := range d.Body {
		if p == "" {
			continue
		}
		text := []rune(p)
		ranges := q.highlights(text)
		if len(ranges) > most {
			best, most, bestText, bestRanges = i, len(ranges), text, ranges
		}
	}
	if best < 0 {
		for _, p := range d.Body {
			if strings.TrimSpace(p) != "" {
				s, _ := cut([]rune(p), 0, nil)
				return s, nil
			}
		}
		return "", nil
	}
	return cut(bestText, bestRanges[0][0], bestRanges)
}

// pattern is something Snippet highlights: a CJK word or bigram, or an
// English word's root (at a word start, with a short ending unless typed
// ahead).
type pattern struct {
	runes  []rune
	word   bool
	prefix bool
}

// buildPatterns indexes the query's highlightable forms by first rune.
func (q *Query) buildPatterns() map[rune][]pattern {
	m := map[rune][]pattern{}
	add := func(p pattern) {
		if len(p.runes) > 0 {
			m[p.runes[0]] = append(m[p.runes[0]], p)
		}
	}
	for i := range q.Concepts {
		for j, a := range q.Concepts[i].Alts {
			if a.Field != "" {
				continue
			}
			cp := q.compiled[i][j]
			for _, u := range cp.units {
				add(pattern{runes: []rune(u.s), word: !u.cjk, prefix: u.prefix})
			}
			for _, b := range cp.bigrams {
				add(pattern{runes: []rune(b)})
			}
		}
	}
	return m
}

// highlights finds the query's patterns in text (folded and lower-cased
// rune by rune, so offsets are text's), merged into ascending ranges.
func (q Query) highlights(text []rune) [][2]int {
	pats := q.hl
	low := make([]rune, len(text))
	for i, r := range text {
		low[i] = unicode.ToLower(FoldRune(r))
	}
	var out [][2]int
	for i := 0; i < len(low); i++ {
		end := -1
		for _, p := range pats[low[i]] {
			if i+len(p.runes) > len(low) || !runesEqual(low[i:i+len(p.runes)], p.runes) {
				continue
			}
			e := i + len(p.runes)
			if p.word {
				if i > 0 && isWordRune(low[i-1]) && !IsCJK(low[i-1]) {
					continue
				}
				k := e
				for k < len(low) && isWordRune(low[k]) && !IsCJK(low[k]) {
					k++
				}
				if !p.prefix && k-e > maxEnding {
					continue
				}
				e = k
			}
			end = max(end, e)
		}
		if end < 0 {
			continue
		}
		if n := len(out); n > 0 && i <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], end)
		} else {
			out = append(out, [2]int{i, end})
		}
	}
	return out
}

func runesEqual(a, b []rune) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cut takes up to SnippetRunes runes of text around rune offset at, with
// "…" where text was cut, and the highlight ranges that fall inside,
// moved to the snippet's offsets.
func cut(text []rune, at int, ranges [][2]int) (string, [][2]int) {
	start := max(0, at-20)
	end := min(len(text), start+SnippetRunes)
	if end-start < SnippetRunes {
		start = max(0, end-SnippetRunes)
	}
	var b strings.Builder
	shift := -start
	if start > 0 {
		b.WriteRune('…')
		shift++
	}
	b.WriteString(strings.TrimRight(string(text[start:end]), "\n"))
	if end < len(text) {
		b.WriteRune('…')
	}
	var hs [][2]int
	for _, rg := range ranges {
		if rg[0] >= start && rg[1] <= end {
			hs = append(hs, [2]int{rg[0] + shift, rg[1] + shift})
		}
	}
	return strings.ReplaceAll(b.String(), "\n", " "), hs
}
