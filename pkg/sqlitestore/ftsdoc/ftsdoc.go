// Package ftsdoc is the listing store's full-text encoding, with no
// database: what a listing's search entry holds, column by column (Of:
// the FTS5 table listings_fts, listings.rank_text and listing_facets),
// and how a search query becomes FTS5 MATCH expressions over it
// (PlanSearch). It is apart from package sqlitestore so that the format
// both sides must agree on is in one place and is tested by pure
// functions, and so that the store keeps only what reads and writes the
// file.
//
// The store writes what Of returns as it is, so a change to Of's output
// reaches existing files only through a migration that sets the store's
// reindex mark (as migrations 0004 to 0006 do).
package ftsdoc

import (
	"fmt"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Facet is the prefix of a facet token, naming which filter it is for.
// Tokens are digits only, so the porter stemmer leaves them alone and none
// can equal a word of text. The one-digit prefixes came first; later ones
// start with "0", which no one-digit prefix does, so no token of one facet
// can equal a token of another.
type Facet string

// The facets.
const (
	FacetSector       Facet = "1"
	FacetCountry      Facet = "2"
	FacetSeeking      Facet = "3"
	FacetOffering     Facet = "4"
	FacetStage        Facet = "5"
	FacetAvailability Facet = "6"
	FacetOrgType      Facet = "7"
	FacetVisibility   Facet = "8"
	FacetShareWith    Facet = "9"
	FacetPark         Facet = "01" // origin park
	FacetKind         Facet = "02"
)

// Token encodes a filter value as a token of digits only: the prefix,
// then three decimal digits per byte of v.
func Token(f Facet, v string) string {
	var b strings.Builder
	b.WriteString(string(f))
	for i := 0; i < len(v); i++ {
		fmt.Fprintf(&b, "%03d", v[i])
	}
	return b.String()
}

// Doc is what the store keeps of a listing for search, each field the
// value of one column of the listing's rowid.
type Doc struct {
	// Title, Body and Facets are the columns of listings_fts: the title
	// and the body (Body) as fulltext.IndexText makes them, and the facet
	// tokens (Token) of every filter value, separated by spaces.
	Title, Body, Facets string
	// Rank is listings.rank_text, the text ranking reads (RankFields).
	Rank string
	// Codes is listing_facets.codes, the values facet counts read: " name:value"
	// for each value of each facet (listing.FacetNames), then a space.
	Codes string
}

// Of is l's search entry.
func Of(l *listing.Listing) Doc {
	return Doc{
		Title:  fulltext.IndexText(l.Title),
		Body:   fulltext.IndexText(strings.Join(Body(l), "\n")),
		Facets: facets(l),
		Rank:   rankText(l),
		Codes:  facetCodes(l),
	}
}

// Body is everything searchable besides the title, in parts, summary first
// (the snippet prefers it).
func Body(l *listing.Listing) []string {
	body := make([]string, 0, 3+len(l.Tags)+len(l.Attrs.Expertise))
	body = append(body, l.Summary, l.City)
	body = append(body, l.Tags...)
	body = append(body, l.Attrs.Expertise...)
	return append(body, l.Attrs.Affiliation)
}

func facets(l *listing.Listing) string {
	var toks []string
	add := func(f Facet, vs ...string) {
		for _, v := range vs {
			if v != "" {
				toks = append(toks, Token(f, v))
			}
		}
	}
	add(FacetSector, l.Sectors...)
	add(FacetCountry, l.Country)
	add(FacetSeeking, l.Seeking...)
	add(FacetOffering, l.Offering...)
	add(FacetStage, l.Attrs.Stage)
	add(FacetAvailability, l.Attrs.Availability...)
	add(FacetOrgType, l.Attrs.OrgType)
	add(FacetVisibility, string(l.Visibility))
	add(FacetShareWith, l.ShareWith...)
	add(FacetPark, l.Park)
	add(FacetKind, string(l.Kind))
	return strings.Join(toks, " ")
}

// rankText is l's text as ranking reads it: the normalised title, the
// normalised body (what the index's body column holds), and l's
// vocabulary codes, separated by \x1f.
func rankText(l *listing.Listing) string {
	var b strings.Builder
	b.WriteString(string(fulltext.Normalize(l.Title)))
	b.WriteByte(0x1f)
	b.WriteString(string(fulltext.Normalize(strings.Join(Body(l), "\n"))))
	b.WriteByte(0x1f)
	b.WriteByte(' ')
	code := func(field string, vs ...string) {
		for _, v := range vs {
			if v != "" {
				b.WriteString(field + ":" + v + " ")
			}
		}
	}
	code("sector", l.Sectors...)
	code("seeking", l.Seeking...)
	code("offering", l.Offering...)
	code("org_type", l.Attrs.OrgType)
	code("stage", l.Attrs.Stage)
	code("availability", l.Attrs.Availability...)
	return b.String()
}

// RankFields reads a Doc's Rank back as the fields a fulltext.Query
// scores.
func RankFields(rank string) fulltext.Fields {
	title, rest, _ := strings.Cut(rank, "\x1f")
	body, codes, _ := strings.Cut(rest, "\x1f")
	return fulltext.Fields{Title: fulltext.Text(title), Body: fulltext.Text(body), Has: func(field, value string) bool {
		return strings.Contains(codes, " "+field+":"+value+" ")
	}}
}

// facetCodes is l's facet values as listing_facets keeps them (Doc.Codes).
func facetCodes(l *listing.Listing) string {
	var b strings.Builder
	code := func(name string, vs ...string) {
		for _, v := range vs {
			if v != "" {
				b.WriteString(" " + name + ":" + v)
			}
		}
	}
	code(listing.FacetSector, l.Sectors...)
	code(listing.FacetCountry, l.Country)
	code(listing.FacetKind, string(l.Kind))
	code(listing.FacetSeeking, l.Seeking...)
	code(listing.FacetOffering, l.Offering...)
	code(listing.FacetStage, l.Attrs.Stage)
	code(listing.FacetAvailability, l.Attrs.Availability...)
	code(listing.FacetOrgType, l.Attrs.OrgType)
	b.WriteByte(' ')
	return b.String()
}
