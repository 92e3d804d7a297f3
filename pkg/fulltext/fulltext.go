// Package fulltext turns bilingual (Chinese and English) text into the
// terms ParkMesh indexes and queries, in the manner of Elasticsearch's cjk
// analyzer: runs of CJK characters become overlapping bigrams, other words
// pass through for the store's own tokenizer to lower-case and stem.
//
// Chinese has no spaces between words, so a word-based index finds nothing
// in "西安高新区硅谷离岸创新中心"; bigrams make any two-character word (硅谷,
// 芯片) a term, and a longer word (新材料) a phrase of consecutive bigrams.
// The last character of every CJK run is also emitted on its own so that a
// one-character query can match it as a prefix term.
package fulltext

import (
	"strings"
	"unicode"
)

// IsCJK reports whether r is a Han, Hiragana, Katakana or Hangul character.
func IsCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// IndexText rewrites s for indexing: CJK runs become space-separated bigrams
// (plus the run's last character); everything else is kept with word
// boundaries preserved.
func IndexText(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		b.WriteByte(' ')
		for i := 0; i+1 < len(run); i++ {
			b.WriteString(string(run[i : i+2]))
			b.WriteByte(' ')
		}
		b.WriteRune(run[len(run)-1])
		b.WriteByte(' ')
		run = run[:0]
	}
	for _, r := range s {
		if IsCJK(r) {
			run = append(run, r)
			continue
		}
		flush()
		if isWordRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte(' ')
		}
	}
	flush()
	return b.String()
}

// Term is one element of a parsed query: a sequence of index tokens that
// must appear consecutively (a phrase), optionally as a prefix.
type Term struct {
	Tokens []string
	Prefix bool
}

// MaxTerms bounds the number of terms a query may have.
const MaxTerms = 16

// ParseQuery splits a user's query into terms that must all match. Words
// are lower-cased; a CJK run of two or more characters becomes a phrase of
// its bigrams; a lone CJK character becomes a prefix term. Punctuation and
// any query syntax are dropped, so the result is safe to quote.
func ParseQuery(q string) []Term {
	var terms []Term
	var word []rune
	var run []rune
	flushWord := func() {
		if len(word) > 0 {
			terms = append(terms, Term{Tokens: []string{strings.ToLower(string(word))}})
			word = word[:0]
		}
	}
	flushRun := func() {
		switch {
		case len(run) == 1:
			terms = append(terms, Term{Tokens: []string{string(run)}, Prefix: true})
		case len(run) > 1:
			t := Term{}
			for i := 0; i+1 < len(run); i++ {
				t.Tokens = append(t.Tokens, string(run[i:i+2]))
			}
			terms = append(terms, t)
		}
		run = run[:0]
	}
	for _, r := range q {
		switch {
		case IsCJK(r):
			flushWord()
			run = append(run, r)
		case isWordRune(r):
			flushRun()
			word = append(word, r)
		default:
			flushWord()
			flushRun()
		}
	}
	flushWord()
	flushRun()
	if len(terms) > MaxTerms {
		terms = terms[:MaxTerms]
	}
	return terms
}

// FTS5Match renders terms as an SQLite FTS5 MATCH expression restricted to
// the given columns: every term quoted (so no user text is ever read as
// query syntax) and all terms required.
func FTS5Match(terms []Term, columns ...string) string {
	if len(terms) == 0 {
		return ""
	}
	var b strings.Builder
	if len(columns) > 0 {
		b.WriteString("{" + strings.Join(columns, " ") + "} : (")
	}
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteByte('"')
		for j, tok := range t.Tokens {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strings.ReplaceAll(tok, `"`, `""`))
		}
		b.WriteByte('"')
		if t.Prefix {
			b.WriteByte('*')
		}
	}
	if len(columns) > 0 {
		b.WriteByte(')')
	}
	return b.String()
}
