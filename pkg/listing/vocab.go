package listing

import "strings"

// Vocabulary is a controlled list of values.
type Vocabulary []string

// Has reports whether v is in the vocabulary.
func (voc Vocabulary) Has(v string) bool {
	for _, x := range voc {
		if x == v {
			return true
		}
	}
	return false
}

// The controlled vocabularies. Adding a value is compatible; removing one
// is not (peers may hold listings using it).
var (
	Sectors = Vocabulary{
		"new-materials", "biomedicine", "medical-devices", "aerospace", "ai",
		"semiconductors", "new-energy", "advanced-manufacturing",
		"information-technology", "agritech", "fintech", "environmental",
		"automotive", "other",
	}
	// Needs are used both for "seeking" and "offering".
	Needs = Vocabulary{
		"investment", "partner", "landing", "licensing", "talent",
		"mentoring", "market", "incubation", "rnd", "supply-chain",
	}
	OrgTypes = Vocabulary{
		"company", "incubator", "accelerator", "university", "lab",
		"investor", "service_provider", "park_office",
	}
	OrgSizes = Vocabulary{"1-10", "11-50", "51-200", "201-1000", "1000+"}
	Stages   = Vocabulary{"idea", "prototype", "pilot", "growth"}
	// Availabilities says how a person can take part.
	Availabilities = Vocabulary{"mentor", "advisor", "full_time", "collaboration", "returnee"}
	Currencies     = Vocabulary{"CNY", "USD", "EUR", "ILS", "GBP", "JPY", "HKD", "SGD", "KRW", "CHF", "RUB", "INR"}
)

// iso3166 holds every ISO 3166-1 alpha-2 code, two letters each.
const iso3166 = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT " +
	"MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG " +
	"UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"

// ValidCountry reports whether c is an ISO 3166-1 alpha-2 code (upper case).
func ValidCountry(c string) bool {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return false
	}
	i := strings.Index(iso3166, c)
	return i >= 0 && i%3 == 0
}

// ValidParkID reports whether p is a well-formed park id: 2–63 characters of
// lower-case letters, digits and inner hyphens, starting with a letter.
func ValidParkID(p string) bool {
	if len(p) < 2 || len(p) > 63 || p[0] < 'a' || p[0] > 'z' || p[len(p)-1] == '-' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
