package listing

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// Length limits, in characters (runes).
const (
	MaxTitle    = 200
	MaxSummary  = 4000
	MaxShort    = 100 // city, tag, expertise, affiliation, size...
	MaxURL      = 300
	MaxListLen  = 20 // tags, sectors, needs, expertise, languages
	MaxShareLen = 50 // share_with, landing_preference
)

// Normalize trims strings and fills defaults (visibility club) in place.
// It never invents data the client did not send.
func (l *Listing) Normalize() {
	l.Title = strings.TrimSpace(l.Title)
	l.Summary = strings.TrimSpace(l.Summary)
	l.City = strings.TrimSpace(l.City)
	l.Country = strings.ToUpper(strings.TrimSpace(l.Country))
	l.Match = nil // search results only; never written
	if l.Visibility == "" {
		l.Visibility = Club
	}
	trimAll(l.Tags)
	trimAll(l.Attrs.Expertise)
}

func trimAll(xs []string) {
	for i := range xs {
		xs[i] = strings.TrimSpace(xs[i])
	}
}

// Validate checks a listing a client wants stored as kind k. It returns an
// *apierror.Error (code Invalid) naming the first offending field.
func (l *Listing) Validate(k Kind) error {
	if l.Kind != "" && l.Kind != k {
		return apierror.InvalidField("kind", "must be %q for this service", k)
	}
	if err := text("title", l.Title, MaxTitle, true); err != nil {
		return err
	}
	if err := text("summary", l.Summary, MaxSummary, false); err != nil {
		return err
	}
	if err := vocabList("sectors", l.Sectors, Sectors, true); err != nil {
		return err
	}
	if err := textList("tags", l.Tags, MaxListLen, MaxShort); err != nil {
		return err
	}
	if l.Country == "" {
		return apierror.InvalidField("country", "is required (ISO 3166-1 alpha-2, e.g. CN)")
	}
	if !ValidCountry(l.Country) {
		return apierror.InvalidField("country", "must be an ISO 3166-1 alpha-2 code, e.g. CN, US, IL")
	}
	if err := text("city", l.City, MaxShort, false); err != nil {
		return err
	}
	if err := vocabList("seeking", l.Seeking, Needs, false); err != nil {
		return err
	}
	if err := vocabList("offering", l.Offering, Needs, false); err != nil {
		return err
	}
	switch l.Visibility {
	case Private, Club, Peers:
	default:
		return apierror.InvalidField("visibility", "must be one of private, club, peers")
	}
	if err := parkList("share_with", l.ShareWith); err != nil {
		return err
	}
	if l.Visibility == Peers && len(l.ShareWith) == 0 {
		return apierror.InvalidField("share_with", "must name at least one park when visibility is peers")
	}
	if err := l.Match.validate(); err != nil {
		return err
	}
	return l.Attrs.validate(k)
}

// validate checks a search result's match (nil is valid: older peers send
// none), as a gateway reads a peer's answer.
func (m *Match) validate() error {
	if m == nil {
		return nil
	}
	if math.IsNaN(m.Score) || m.Score < 0 || m.Score > MaxMatchScore {
		return apierror.InvalidField("match.score", "must be a number between 0 and %d", MaxMatchScore)
	}
	n := utf8.RuneCountInString(m.Snippet)
	if n > MaxSnippet || !utf8.ValidString(m.Snippet) {
		return apierror.InvalidField("match.snippet", "must be valid text of at most %d characters", MaxSnippet)
	}
	if len(m.Highlights) > MaxMatchHighlights {
		return apierror.InvalidField("match.highlights", "must hold at most %d ranges", MaxMatchHighlights)
	}
	prev := 0
	for _, h := range m.Highlights {
		if h[0] < prev || h[1] <= h[0] || h[1] > n {
			return apierror.InvalidField("match.highlights", "must be ascending, non-overlapping [start, end) ranges within the snippet")
		}
		prev = h[1]
	}
	return nil
}

func (a *Attrs) validate(k Kind) error {
	// Fields of the other kinds must be empty.
	foreign := map[Kind][]struct {
		name string
		set  bool
	}{
		KindOrganization: {{"org_type", a.OrgType != ""}, {"website", a.Website != ""}, {"founded", a.Founded != 0}, {"size", a.Size != ""}},
		KindProject: {{"stage", a.Stage != ""}, {"trl", a.TRL != 0}, {"funding_ask", a.FundingAsk != nil},
			{"owner_org", a.OwnerOrg != ""}, {"landing_preference", a.LandingPreference != nil}},
		KindTalent: {{"expertise", a.Expertise != nil}, {"languages", a.Languages != nil}, {"availability", a.Availability != nil},
			{"affiliation", a.Affiliation != ""}, {"years_experience", a.YearsExperience != 0}, {"contact", a.Contact != nil}, {"consent", a.Consent != nil}},
	}
	for _, other := range Kinds {
		if other == k {
			continue
		}
		for _, f := range foreign[other] {
			if f.set {
				return apierror.InvalidField("attrs."+f.name, "is a %s attribute, not allowed on a %s", other, k)
			}
		}
	}
	switch k {
	case KindOrganization:
		if a.OrgType == "" {
			return apierror.InvalidField("attrs.org_type", "is required, one of %s", strings.Join(OrgTypes, ", "))
		}
		if !OrgTypes.Has(a.OrgType) {
			return apierror.InvalidField("attrs.org_type", "must be one of %s", strings.Join(OrgTypes, ", "))
		}
		if a.Website != "" {
			u, err := url.Parse(a.Website)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || utf8.RuneCountInString(a.Website) > MaxURL {
				return apierror.InvalidField("attrs.website", "must be an http(s) URL of at most %d characters", MaxURL)
			}
		}
		if a.Founded != 0 && (a.Founded < 1800 || a.Founded > 2100) {
			return apierror.InvalidField("attrs.founded", "must be a year between 1800 and 2100")
		}
		if a.Size != "" && !OrgSizes.Has(a.Size) {
			return apierror.InvalidField("attrs.size", "must be one of %s", strings.Join(OrgSizes, ", "))
		}
	case KindProject:
		if a.Stage == "" {
			return apierror.InvalidField("attrs.stage", "is required, one of %s", strings.Join(Stages, ", "))
		}
		if !Stages.Has(a.Stage) {
			return apierror.InvalidField("attrs.stage", "must be one of %s", strings.Join(Stages, ", "))
		}
		if a.TRL != 0 && (a.TRL < 1 || a.TRL > 9) {
			return apierror.InvalidField("attrs.trl", "must be between 1 and 9")
		}
		if f := a.FundingAsk; f != nil {
			if f.Amount <= 0 || f.Amount > 1e13 {
				return apierror.InvalidField("attrs.funding_ask.amount", "must be a positive amount")
			}
			if !Currencies.Has(f.Currency) {
				return apierror.InvalidField("attrs.funding_ask.currency", "must be one of %s", strings.Join(Currencies, ", "))
			}
		}
		if a.OwnerOrg != "" && !ValidID(KindOrganization, a.OwnerOrg) {
			return apierror.InvalidField("attrs.owner_org", "must be an organization id (org_…)")
		}
		if err := parkList("attrs.landing_preference", a.LandingPreference); err != nil {
			return err
		}
	case KindTalent:
		if err := textList("attrs.expertise", a.Expertise, MaxListLen, MaxShort); err != nil {
			return err
		}
		for i, lang := range a.Languages {
			if len(lang) < 2 || len(lang) > 8 || strings.ToLower(lang) != lang || strings.ContainsAny(lang, " _") {
				return apierror.InvalidField(fmt.Sprintf("attrs.languages[%d]", i), "must be a language tag such as zh, en, he")
			}
		}
		if len(a.Languages) > MaxListLen {
			return apierror.InvalidField("attrs.languages", "has more than %d entries", MaxListLen)
		}
		if err := vocabList("attrs.availability", a.Availability, Availabilities, false); err != nil {
			return err
		}
		if err := text("attrs.affiliation", a.Affiliation, MaxShort, false); err != nil {
			return err
		}
		if a.YearsExperience < 0 || a.YearsExperience > 80 {
			return apierror.InvalidField("attrs.years_experience", "must be between 0 and 80")
		}
		if c := a.Contact; c != nil {
			if c.Email != "" && (!strings.Contains(c.Email, "@") || len(c.Email) > MaxShort) {
				return apierror.InvalidField("attrs.contact.email", "must be an e-mail address")
			}
			if len(c.Phone) > 40 {
				return apierror.InvalidField("attrs.contact.phone", "must be at most 40 characters")
			}
		}
	}
	return nil
}

func text(field, s string, max int, required bool) error {
	if required && s == "" {
		return apierror.InvalidField(field, "is required")
	}
	if !utf8.ValidString(s) {
		return apierror.InvalidField(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return apierror.InvalidField(field, "is %d characters long, the limit is %d", n, max)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' {
			return apierror.InvalidField(field, "must not contain control characters")
		}
	}
	return nil
}

func textList(field string, xs []string, maxLen, maxItem int) error {
	if len(xs) > maxLen {
		return apierror.InvalidField(field, "has %d entries, the limit is %d", len(xs), maxLen)
	}
	for i, x := range xs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if x == "" {
			return apierror.InvalidField(f, "must not be empty")
		}
		if err := text(f, x, maxItem, true); err != nil {
			return err
		}
	}
	return nil
}

func vocabList(field string, xs []string, voc Vocabulary, required bool) error {
	if required && len(xs) == 0 {
		return apierror.InvalidField(field, "needs at least one of %s", strings.Join(voc, ", "))
	}
	if len(xs) > MaxListLen {
		return apierror.InvalidField(field, "has %d entries, the limit is %d", len(xs), MaxListLen)
	}
	seen := map[string]bool{}
	for i, x := range xs {
		if !voc.Has(x) {
			return apierror.InvalidField(fmt.Sprintf("%s[%d]", field, i), "%q is not one of %s", clip(x), strings.Join(voc, ", "))
		}
		if seen[x] {
			return apierror.InvalidField(fmt.Sprintf("%s[%d]", field, i), "%q is repeated", x)
		}
		seen[x] = true
	}
	return nil
}

func parkList(field string, xs []string) error {
	if len(xs) > MaxShareLen {
		return apierror.InvalidField(field, "has %d entries, the limit is %d", len(xs), MaxShareLen)
	}
	for i, p := range xs {
		if !ValidParkID(p) {
			return apierror.InvalidField(fmt.Sprintf("%s[%d]", field, i), "%q is not a park id (lower-case letters, digits, hyphens)", clip(p))
		}
	}
	return nil
}

// clip shortens a client value before it is echoed in an error message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}
