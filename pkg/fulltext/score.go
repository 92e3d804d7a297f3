package fulltext

import (
	"strings"
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
	// coverageBonus is added when every concept matches.
	coverageBonus = 0.25
)

// SnippetRunes bounds a snippet's length.
const SnippetRunes = 100

// tokMatches reports whether doc token t matches query token q.
func tokMatches(t token, q string, prefix bool) bool {
	if t.word == "" {
		return t.text == q || prefix && strings.HasPrefix(t.text, q)
	}
	return t.word == q || t.text == stem(q) || prefix && strings.HasPrefix(t.word, q)
}

// altQuality is how well alternative a matches the tokens of one field:
// 1 when its tokens are adjacent, less when scattered, 0 when fewer than
// MinMatch are present. mark is called with every token index that
// matched.
func altQuality(a Alt, toks []token, mark func(int)) float64 {
	last := len(a.Tokens) - 1
	present := 0
	for j, q := range a.Tokens {
		for _, t := range toks {
			if tokMatches(t, q, a.Prefix && j == last) {
				present++
				break
			}
		}
	}
	if present < a.MinMatch || present == 0 {
		return 0
	}
	adjacent := -1
	for i := 0; i+len(a.Tokens) <= len(toks) && adjacent < 0; i++ {
		ok := true
		for j, q := range a.Tokens {
			if !tokMatches(toks[i+j], q, a.Prefix && j == last) {
				ok = false
				break
			}
		}
		if ok {
			adjacent = i
		}
	}
	if mark != nil {
		for i, t := range toks {
			for j, q := range a.Tokens {
				if tokMatches(t, q, a.Prefix && j == last) {
					mark(i)
					break
				}
			}
		}
	}
	switch {
	case adjacent >= 0:
		return 1
	case a.Phrase:
		return 0.4
	}
	return 0.7 * float64(present) / float64(len(a.Tokens))
}

// FieldsOf is d as Score reads it.
func FieldsOf(d Doc) Fields {
	return Fields{Title: Normalize(d.Title), Body: Normalize(strings.Join(d.Body, "\n")), Has: d.Has}
}

// Rank scores d against q (Score) and cuts its snippet.
func (q Query) Rank(d Doc) Ranked {
	if len(q.Concepts) == 0 {
		return Ranked{}
	}
	r := Ranked{Score: q.Score(FieldsOf(d))}
	body := make([][]token, len(d.Body))
	for i, p := range d.Body {
		body[i] = tokens(p)
	}
	marks := make([]map[int]bool, len(d.Body))
	for _, c := range q.Concepts {
		for _, a := range c.Alts {
			if a.Field != "" || len(a.Tokens) == 0 {
				continue
			}
			for i, toks := range body {
				altQuality(a, toks, func(k int) {
					if marks[i] == nil {
						marks[i] = map[int]bool{}
					}
					marks[i][k] = true
				})
			}
		}
	}
	// The snippet: the body part with the most matched words.
	part, most := -1, 0
	for i, m := range marks {
		if len(m) > most {
			part, most = i, len(m)
		}
	}
	if part < 0 {
		for _, p := range d.Body {
			if strings.TrimSpace(p) != "" {
				r.Snippet, _ = cut([]rune(p), 0, nil)
				break
			}
		}
		return r
	}
	var ranges [][2]int
	for k, t := range body[part] {
		if marks[part][k] {
			if n := len(ranges); n > 0 && t.start <= ranges[n-1][1] {
				ranges[n-1][1] = max(ranges[n-1][1], t.end)
			} else {
				ranges = append(ranges, [2]int{t.start, t.end})
			}
		}
	}
	r.Snippet, r.Highlights = cut([]rune(d.Body[part]), ranges[0][0], ranges)
	return r
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
