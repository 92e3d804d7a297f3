// Package parktoken issues and verifies park-local access tokens: the
// bearer tokens a park's own staff and tools present to the park side of
// its gateway (/api/v1/…). They are JWTs signed with the park's current
// Ed25519 key (package parkkey) whose issuer and audience are both the park.
// Federation tokens, which one park's gateway presents to another, are a
// different kind: their audience is the callee, so neither kind passes for
// the other, and the typ header (TokenType) tells them apart as well.
package parktoken

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

const (
	// TokenType is the typ header of park-local tokens (RFC 8725 §3.11
	// explicit typing), so no other JWT signed by the park's key can be
	// taken for one.
	TokenType = "parkmesh-local+jwt"
	// Leeway is the clock skew Verify tolerates on exp, nbf and iat.
	Leeway = 30 * time.Second
	// MaxTTL bounds a token's lifetime.
	MaxTTL = 366 * 24 * time.Hour
	// MaxTokenSize bounds the length of a token Verify will look at.
	MaxTokenSize = 8 << 10
	// maxSubject bounds the sub claim, which ends up in logs.
	maxSubject = 256
)

// Claims is what a verified token says.
type Claims struct {
	// Park is the park that issued the token and the one it is for.
	Park string
	// Subject names who holds the token (a person or a tool).
	Subject string
	Role    Role
	// ID is the token's jti.
	ID string
	// KeyID is the kid of the key that signed it.
	KeyID     string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
}

// tokenClaims is the JWT payload as Verify reads it (aud may be a string
// or an array, RFC 7519 §4.1.3). The time claims shadow RegisteredClaims'
// (encoding/json prefers the shallower field) so they must be numbers.
type tokenClaims struct {
	Role      Role         `json:"role,omitempty"`
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	jwt.RegisteredClaims
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }

// numericDate is a NumericDate that is a JSON number (RFC 7519 §2). The
// jwt package's own reads it into a json.Number, which also takes a string
// holding digits ("exp":"1772359200").
type numericDate struct{ jwt.NumericDate }

var errNotNumeric = errors.New("time claim is not a JSON number")

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errNotNumeric
	}
	return d.NumericDate.UnmarshalJSON(b)
}

// date returns the claim as the jwt package's type, nil when absent.
func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// issuedClaims is the JWT payload as Issue writes it: aud as one string,
// without touching the jwt package's global MarshalSingleStringAsArray.
type issuedClaims struct {
	Issuer    string           `json:"iss"`
	Audience  string           `json:"aud"`
	Subject   string           `json:"sub"`
	Role      Role             `json:"role"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti"`
}

func (c *issuedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *issuedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *issuedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *issuedClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *issuedClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *issuedClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

var (
	errNoRole       = errors.New("role claim missing or unknown")
	errNoClaims     = errors.New("sub, jti, iat or exp claim missing")
	errNoIssuer     = errors.New("iss claim missing")
	errNoAudience   = errors.New("aud claim missing")
	errAudienceList = errors.New("aud names more than one audience")
	errLongLived    = errors.New("exp more than 366 days after iat")
	errTimeRange    = errors.New("a time claim is before 1970 or out of range")
)

// outOfRange reports whether a time claim present is before the Unix
// epoch: no honest token has one, and a number too large for the jwt
// package's conversion lands there too (1e300 becomes year -292277022657),
// which would otherwise pass for "long ago" in nbf.
func outOfRange(dates ...*numericDate) bool {
	for _, d := range dates {
		if d != nil && d.Unix() < 0 {
			return true
		}
	}
	return false
}

// Validate implements jwt.ClaimsValidator: the checks the jwt package does
// not do for us, and a reason of their own for a missing iss or aud (the
// jwt package reports those as a missing claim). The jwt package calls it
// even when its own checks failed, so it must cope with any claim missing.
func (c *tokenClaims) Validate() error {
	switch {
	case c.Issuer == "":
		return errNoIssuer
	case len(c.Audience) == 0:
		return errNoAudience
	case len(c.Audience) != 1:
		// RFC 7519 lets aud be a list; a token for the park and someone
		// else too is a token someone else may replay here.
		return errAudienceList
	case c.Subject == "" || c.ID == "" || c.IssuedAt == nil || c.ExpiresAt == nil:
		return errNoClaims
	case outOfRange(c.ExpiresAt, c.IssuedAt, c.NotBefore):
		return errTimeRange
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxTTL:
		// Issue never signs one; a token that lives longer was made by
		// hand with the park's key and is refused however it was made.
		return errLongLived
	case !c.Role.Valid():
		return errNoRole
	}
	return nil
}

// Issue signs a token for sub with role, valid from now for ttl, with the
// current key of ks. park must be the key set's park. It returns Invalid
// errors naming the offending argument.
func Issue(ks *parkkey.KeySet, park, sub string, role Role, ttl time.Duration, now time.Time) (string, error) {
	if ks == nil || ks.Current() == nil {
		return "", apierror.New(apierror.Internal, "no signing key")
	}
	switch {
	case park != ks.Park():
		return "", apierror.InvalidField("park", "%q is not the key set's park %q", park, ks.Park())
	case !validSubject(sub):
		return "", apierror.InvalidField("sub", "must be 1 to %d printable characters", maxSubject)
	case !role.Valid():
		return "", apierror.InvalidField("role", "%q is not a role (viewer, editor, admin)", role)
	case ttl <= 0 || ttl > MaxTTL:
		return "", apierror.InvalidField("ttl", "must be more than 0 and at most %s", MaxTTL)
	}
	jti, err := newJTI()
	if err != nil {
		return "", fmt.Errorf("parktoken: %w", err)
	}
	key := ks.Current()
	claims := &issuedClaims{
		Issuer:    park,
		Audience:  park,
		Subject:   sub,
		Role:      role,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        jti,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.ID
	t.Header["typ"] = TokenType
	s, err := t.SignedString(key.Signer())
	if err != nil {
		return "", fmt.Errorf("parktoken: sign: %w", err)
	}
	return s, nil
}

func validSubject(s string) bool {
	if s == "" || len(s) > maxSubject || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func newJTI() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// KeySource returns the park's key set as it is now. A Verifier asks for it
// on every Verify, so a rotation is picked up: pass a
// (*parkkey.Reloader).KeySet in a long-running process, StaticKeys in tests
// and one-shot tools.
type KeySource func() *parkkey.KeySet

// StaticKeys returns a KeySource that always returns ks.
func StaticKeys(ks *parkkey.KeySet) KeySource { return func() *parkkey.KeySet { return ks } }

// Verifier checks park-local tokens against the park's published keys.
// It is safe for concurrent use.
type Verifier struct {
	keys    KeySource
	now     func() time.Time
	revoked func(jti string) bool
}

// VerifierOption changes a Verifier.
type VerifierOption func(*Verifier)

// WithClock sets the verifier's clock (default time.Now).
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// WithRevocations makes the verifier refuse, with reason "revoked", every
// token whose jti revoked reports (the gateway passes its revocation set,
// which every replica keeps current).
func WithRevocations(revoked func(jti string) bool) VerifierOption {
	return func(v *Verifier) { v.revoked = revoked }
}

// NewVerifier returns a Verifier of the tokens of the park whose keys keys
// returns.
func NewVerifier(keys KeySource, opts ...VerifierOption) *Verifier {
	v := &Verifier{keys: keys, now: time.Now}
	for _, opt := range opts {
		opt(v)
	}
	return v
}

// Verify checks a token as RFC 8725 asks: a JWS compact JWT with canonical
// base64url, alg EdDSA only, typ TokenType, a kid naming one of the park's
// published keys, a valid signature, iss and aud both the park, exp, iat,
// sub and jti present, exp, nbf and iat respected within Leeway, exp at most
// MaxTTL after iat, a known role, and a jti not revoked. Any failure is an *Error whose public face is Unauthorized with a
// generic message, its Reason saying why (Unavailable, reason "keys", when
// the verifier has no key set).
func (v *Verifier) Verify(token string) (*Claims, error) {
	ks := v.keys()
	if ks == nil || ks.Current() == nil {
		return nil, &Error{public: apierror.New(apierror.Unavailable, unavailableMessage), reason: ReasonKeys}
	}
	if token == "" {
		return nil, unauthorized(ReasonMissing, nil)
	}
	if len(token) > MaxTokenSize {
		return nil, unauthorized(ReasonMalformed, errors.New("token too long"))
	}
	hdr, err := readHeader(token)
	if err != nil {
		return nil, err
	}
	park := ks.Park()
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(park),
		jwt.WithAudience(park),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	var claims tokenClaims
	_, err = parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		pub, ok := ks.Lookup(hdr.Kid)
		if !ok {
			return nil, errUnknownKid
		}
		return pub, nil
	})
	if err != nil {
		return nil, unauthorized(reasonOf(err), err)
	}
	// Checked after the claims so that a hand-made token with the wrong
	// issuer or audience is reported as such.
	if hdr.Typ != TokenType {
		return nil, unauthorized(ReasonType, fmt.Errorf("typ %q", clip(hdr.Typ)))
	}
	if v.revoked != nil && v.revoked(claims.ID) {
		return nil, unauthorized(ReasonRevoked, fmt.Errorf("jti %q revoked", clip(claims.ID)))
	}
	return &Claims{
		Park:      park,
		Subject:   claims.Subject,
		Role:      claims.Role,
		ID:        claims.ID,
		KeyID:     hdr.Kid,
		IssuedAt:  claims.IssuedAt.Time,
		NotBefore: timeOf(claims.NotBefore.date()),
		ExpiresAt: claims.ExpiresAt.Time,
	}, nil
}

var errUnknownKid = errors.New("kid is not a published key of the park")

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// header is the part of the JOSE header Verify reads before the jwt
// package does, so that a wrong alg or kid gets its own reason (the jwt
// package reports a refused alg as a bad signature).
type header struct {
	Alg  *string `json:"alg"`
	Kid  *string `json:"kid"`
	Typ  string  `json:"typ"`
	Crit []any   `json:"crit"`
}

type parsedHeader struct{ Kid, Typ string }

func readHeader(token string) (parsedHeader, error) {
	// Go's base64 decoders skip CR and LF, so a token with line breaks
	// inside would verify: refuse anything outside the JWS compact alphabet.
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return parsedHeader{}, unauthorized(ReasonMalformed, errors.New("character outside base64url"))
		}
	}
	seg, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return parsedHeader{}, unauthorized(ReasonMalformed, errors.New("not three segments"))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return parsedHeader{}, unauthorized(ReasonMalformed, errors.New("header is not base64url"))
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return parsedHeader{}, unauthorized(ReasonMalformed, errors.New("header is not a JSON object"))
	}
	if h.Alg == nil || *h.Alg != jwt.SigningMethodEdDSA.Alg() {
		alg := "<none>"
		if h.Alg != nil {
			alg = *h.Alg
		}
		return parsedHeader{}, unauthorized(ReasonAlg, fmt.Errorf("alg %q", clip(alg)))
	}
	if h.Kid == nil || *h.Kid == "" {
		return parsedHeader{}, unauthorized(ReasonKid, errors.New("no kid"))
	}
	// RFC 7515 §4.1.11: extensions we do not understand must be refused,
	// and we understand none.
	if h.Crit != nil {
		return parsedHeader{}, unauthorized(ReasonMalformed, errors.New("crit header"))
	}
	return parsedHeader{Kid: *h.Kid, Typ: h.Typ}, nil
}

// reasonOf maps a jwt parse error to a reason. Claim errors can come
// joined; the order below picks one stably.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errUnknownKid):
		return ReasonKid
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, errTimeRange), errors.Is(err, errNotNumeric):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonSignature
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, errNoIssuer):
		return ReasonIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, errNoAudience), errors.Is(err, errAudienceList):
		return ReasonAudience
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	case errors.Is(err, errLongLived), errors.Is(err, errLifetime):
		return ReasonLifetime
	case errors.Is(err, errNoRole):
		return ReasonRole
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, errNoClaims):
		return ReasonClaims
	}
	return ReasonMalformed
}

// clip keeps attacker-chosen text in a log line short.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Require returns nil when c's role allows required, and otherwise an
// *Error whose public face is Forbidden (the caller is authenticated, so
// 401 would wrongly suggest that a new token helps), with reason "role".
func Require(c *Claims, required Role) error {
	if c != nil && c.Role.Allows(required) {
		return nil
	}
	have := Role("")
	if c != nil {
		have = c.Role
	}
	return &Error{
		public: apierror.New(apierror.Forbidden, forbiddenMessage),
		reason: ReasonRole,
		cause:  fmt.Errorf("role %q does not allow %q", have, required),
	}
}

// FromRequest returns the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1; the scheme is case-insensitive). No header, or an
// empty token, is reason "missing"; another scheme, several Authorization
// headers or a token with spaces is reason "malformed".
func FromRequest(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", unauthorized(ReasonMissing, nil)
	case 1:
	default:
		return "", unauthorized(ReasonMalformed, errors.New("several Authorization headers"))
	}
	value := strings.TrimSpace(values[0])
	if value == "" {
		return "", unauthorized(ReasonMissing, nil)
	}
	scheme, token, _ := strings.Cut(value, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", unauthorized(ReasonMalformed, fmt.Errorf("scheme %q", clip(scheme)))
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", unauthorized(ReasonMissing, nil)
	}
	if strings.ContainsAny(token, " \t") {
		return "", unauthorized(ReasonMalformed, errors.New("token contains spaces"))
	}
	return token, nil
}
