// Package fulltext turns bilingual (Chinese and English) text into the
// terms ParkMesh indexes and queries, in the manner of Elasticsearch's cjk
// analyzer: runs of CJK characters become overlapping bigrams, other words
// pass through for the store's own tokenizer to lower-case and stem.
//
// Chinese has no spaces between words, so a word-based index finds nothing
// in "西安高新区硅谷离岸创新中心"; bigrams make any two-character word (硅谷,
// 芯片) a term, and a longer word (新材料) a set of consecutive bigrams.
// The last character of every CJK run is also emitted on its own so that a
// one-character query can match it as a prefix term.
//
// Traditional characters are folded to Simplified ones (Fold) in indexed
// text and in queries alike, so either script finds both. A query is
// analysed (Analyze) into concepts, each with alternatives: the words as
// typed, their synonyms from a small bilingual dictionary (vocab.txt) and
// the controlled-vocabulary codes they name; Query.Score ranks a listing's
// text against them with one formula every store shares.
package fulltext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// IsCJK reports whether r is a Han, Hiragana, Katakana or Hangul character.
func IsCJK(r rune) bool {
	if r < 0x2E80 {
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// t2s maps a Traditional character to its Simplified form (t2s_table.go,
// generated from OpenCC's data).
var t2s = func() map[rune]rune {
	m := make(map[rune]rune, utf8.RuneCountInString(t2sPairs)/2)
	var k rune
	first := true
	for _, r := range t2sPairs {
		if first {
			k = r
		} else {
			m[k] = r
		}
		first = !first
	}
	return m
}()

// FoldRune maps a Traditional character to its Simplified form; any other
// rune is returned as is.
func FoldRune(r rune) rune {
	if r < 0x3400 {
		return r
	}
	if s, ok := t2s[r]; ok {
		return s
	}
	return r
}

// Fold maps every Traditional character of s to its Simplified form,
// character by character (OpenCC's TSCharacters table), so the result has
// as many runes as s, each at the same rune offset.
func Fold(s string) string {
	needs := false
	for _, r := range s {
		if FoldRune(r) != r {
			needs = true
			break
		}
	}
	if !needs {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(FoldRune(r))
	}
	return b.String()
}

// IndexText rewrites s for indexing: Traditional folded to Simplified, CJK
// runs become space-separated bigrams (plus the run's last character);
// everything else is kept with word boundaries preserved (a change of
// script is a boundary: "AI芯片" is "AI" and "芯片").
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
		r = FoldRune(r)
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

// MaxTerms bounds the number of concepts a query may have.
const MaxTerms = 16
