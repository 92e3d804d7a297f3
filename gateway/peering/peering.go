// Package peering is how parks become and stay peers: the one-time peering
// token and the establish handshake (as Consul cluster peering does), the
// park's set of active peers kept in Consul KV and watched, peers' keys
// pinned and refreshed from their JWKS, and the park's public identity.
package peering

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Peering follows Consul cluster peering: park A generates a one-time,
// expiring token naming the park it is for; park B establishes with it.
// B proves possession of its key by signing the handshake; A answers with
// a token signed by the key whose thumbprint the peering token pinned, so
// each side ends up with the other's id, URL and keys, verified.

// PeeringTokenPrefix starts every peering token.
const PeeringTokenPrefix = "pmpt1."

// DefaultPeeringTTL is how long a peering token stays valid.
const DefaultPeeringTTL = 24 * time.Hour

// peeringToken is what a peering token carries (base64url JSON).
type peeringToken struct {
	Park    string    `json:"park"`
	URL     string    `json:"url"`
	KeyID   string    `json:"kid"`
	TokenID string    `json:"tid"`
	Secret  string    `json:"secret"`
	Peer    string    `json:"peer"`
	Expires time.Time `json:"exp"`
}

// pendingToken is the record of an unused peering token in KV.
type pendingToken struct {
	ID           string    `json:"id"`
	Peer         string    `json:"peer"`
	SecretSHA256 string    `json:"secret_sha256"`
	Expires      time.Time `json:"expires_at"`
	Created      time.Time `json:"created_at"`
}

func decodePeeringToken(s string) (*peeringToken, error) {
	bad := apierror.InvalidField("token", "is not a ParkMesh peering token")
	raw, ok := strings.CutPrefix(strings.TrimSpace(s), PeeringTokenPrefix)
	if !ok || len(raw) > 4096 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, bad
	}
	var t peeringToken
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || !listing.ValidParkID(t.Park) || t.TokenID == "" || t.Secret == "" || t.KeyID == "" {
		return nil, bad
	}
	return &t, nil
}

// Origin checks that raw is a peer URL as the DESIGN allows: an origin
// (scheme, host, optional port; nothing else, not even userinfo), https
// unless the host is a loopback address or allowInsecure (the operator's
// -allow-insecure-peers, for a lab or a compose network). It returns the
// origin in canonical form (lower-case scheme and host, no trailing slash)
// or why raw is not acceptable.
func Origin(raw string, allowInsecure bool) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Opaque != "":
		return "", errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("must be an http or https URL")
	case u.User != nil:
		return "", errors.New("must carry no user or password")
	case u.Host == "" || u.Hostname() == "":
		return "", errors.New("has no host")
	case u.Path != "" && u.Path != "/" || u.RawPath != "":
		return "", errors.New("must be an origin: no path")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("must be an origin: no query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", errors.New("must be an origin: no fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", errors.New("has an invalid port")
		}
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "http" && !allowInsecure && !loopback(u.Hostname()) {
		return "", errors.New("must use https (http only for loopback, or with -allow-insecure-peers)")
	}
	return u.Scheme + "://" + host, nil
}

// loopback reports whether host is localhost or a loopback IP literal.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validTokenID reports whether id is what GenerateToken makes (rand.Text:
// 26 characters of the base32 alphabet), so it is safe in a KV key.
func validTokenID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Federation is the gateway's federation state and logic: its identity,
// keys, peers and the calls between parks.
type Federation struct {
	Park    string
	Name    string
	Country string
	// DisplayName is the park's name for people, in Chinese and English.
	DisplayName DisplayName
	PublicURL   string
	Keys        func() *parkkey.KeySet
	Peers       *Store
	KV          *consulapi.KV
	Client      *http.Client
	// StreamClient follows peers' feeds: no overall timeout.
	StreamClient *http.Client
	Now          func() time.Time
	// AllowInsecurePeers lets peers' URLs be http on hosts other than
	// loopback (-allow-insecure-peers): a lab or a compose network only.
	AllowInsecurePeers bool
}

// errPeerExists is what establishing with a park that is already a peer
// returns, on either side: a peering is never replaced by establishing
// again; re-keying is deleting the peering and peering anew.
func errPeerExists(park string) error {
	return apierror.New(apierror.Conflict, "park %s is already a peer; a peering is never replaced by establishing again: delete it first to peer anew (docs/operations.md)", park)
}

// peerExists reports whether park is a peer, by this replica's view and by
// Consul itself (another replica may have stored it a moment ago).
func (f *Federation) peerExists(ctx context.Context, park string) (bool, error) {
	if _, ok := f.Peers.Get(park); ok {
		return true, nil
	}
	pair, _, err := f.KV.Get(kvPeers+park, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil || pair == nil {
		return false, err
	}
	// A record the park's key did not sign is no peering: the store
	// ignores it, and establishing replaces it.
	_, _, err = openPeer(f.Keys(), pair.Key, pair.Value)
	return err == nil, nil
}

func (f *Federation) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// GenerateToken makes a one-time peering token for the park peer.
func (f *Federation) GenerateToken(ctx context.Context, peer string, ttl time.Duration) (string, time.Time, error) {
	if !listing.ValidParkID(peer) {
		return "", time.Time{}, apierror.InvalidField("peer", "must be the other park's id")
	}
	if peer == f.Park {
		return "", time.Time{}, apierror.InvalidField("peer", "a park cannot peer with itself")
	}
	switch exists, err := f.peerExists(ctx, peer); {
	case err != nil:
		return "", time.Time{}, apierror.New(apierror.Unavailable, "cannot read the peer set: Consul unreachable")
	case exists:
		return "", time.Time{}, errPeerExists(peer)
	}
	if ttl <= 0 {
		ttl = DefaultPeeringTTL
	}
	if ttl > 7*24*time.Hour {
		return "", time.Time{}, apierror.InvalidField("ttl", "must be at most 168h")
	}
	now := f.now().UTC()
	t := peeringToken{
		Park: f.Park, URL: f.PublicURL, KeyID: f.Keys().Current().ID,
		TokenID: rand.Text(), Secret: rand.Text() + rand.Text(), Peer: peer, Expires: now.Add(ttl).Truncate(time.Second),
	}
	rec := pendingToken{ID: t.TokenID, Peer: peer, SecretSHA256: sha256Hex(t.Secret), Expires: t.Expires, Created: now}
	b, _ := json.Marshal(rec)
	// Signed like a peer record: a KV write alone must not plant a token.
	b, err := seal(f.Keys(), kvTokens+t.TokenID, b)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := f.KV.Put(&consulapi.KVPair{Key: kvTokens + t.TokenID, Value: b}, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", time.Time{}, apierror.New(apierror.Unavailable, "cannot store the peering token: Consul unreachable")
	}
	tb, _ := json.Marshal(t)
	return PeeringTokenPrefix + base64.RawURLEncoding.EncodeToString(tb), t.Expires, nil
}

// EstablishRequest is B's half of the handshake, sent to A.
type EstablishRequest struct {
	TokenID string          `json:"token_id"`
	Secret  string          `json:"secret"`
	Park    string          `json:"park"`
	URL     string          `json:"url"`
	JWKS    json.RawMessage `json:"jwks"`
}

// EstablishResponse is A's answer: its keys and a token signed by the key
// the peering token pinned, proving A holds it.
type EstablishResponse struct {
	Park  string          `json:"park"`
	URL   string          `json:"url"`
	JWKS  json.RawMessage `json:"jwks"`
	Proof string          `json:"proof"`
}

// Establish completes a peering on this park (B) with a token generated by
// the other park (A). Everything this park can check is checked before A
// is called, since the call uses the one-time token up: the token is for
// this park and not from it, unexpired, its URL an acceptable origin, and
// its park not a peer already (Conflict: re-keying is its own step).
func (f *Federation) Establish(ctx context.Context, raw string) (*Peer, error) {
	t, err := decodePeeringToken(raw)
	if err != nil {
		return nil, err
	}
	if t.Park == f.Park {
		return nil, apierror.InvalidField("token", "names this park itself as the other park: a park never peers with itself")
	}
	if t.Peer != f.Park {
		return nil, apierror.InvalidField("token", "was generated for park %q, not %q", t.Peer, f.Park)
	}
	if f.now().After(t.Expires) {
		return nil, apierror.InvalidField("token", "expired at %s", t.Expires.Format(time.RFC3339))
	}
	origin, err := Origin(t.URL, f.AllowInsecurePeers)
	if err != nil {
		return nil, apierror.InvalidField("token", "carries a gateway URL that %s", err.Error())
	}
	switch exists, err := f.peerExists(ctx, t.Park); {
	case err != nil:
		return nil, apierror.New(apierror.Unavailable, "cannot read the peer set: Consul unreachable")
	case exists:
		return nil, errPeerExists(t.Park)
	}
	ks := f.Keys()
	jwks, _ := json.Marshal(ks.JWKS())
	req := EstablishRequest{TokenID: t.TokenID, Secret: t.Secret, Park: f.Park, URL: f.PublicURL, JWKS: jwks}
	body, _ := json.Marshal(req)
	proof, err := parktoken.IssueFederation(ks, t.Park, parktoken.ScopePeering, time.Minute, f.now())
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, origin+"/federation/v1/peering/establish", bytes.NewReader(body))
	if err != nil {
		return nil, apierror.InvalidField("token", "carries an unusable URL")
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+proof)
	res, err := f.Client.Do(hreq)
	if err != nil {
		return nil, apierror.New(apierror.Unavailable, "cannot reach park %s at %s", t.Park, t.URL)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(res.Body, 256<<10))
	if res.StatusCode != http.StatusOK {
		switch res.StatusCode {
		case http.StatusUnauthorized:
			return nil, apierror.New(apierror.Unauthorized, "park %s refused the peering: the token was already used, expired or revoked", t.Park)
		case http.StatusConflict:
			return nil, apierror.New(apierror.Conflict, "park %s already has this park as a peer; it must delete that peering before peering anew", t.Park)
		case http.StatusBadRequest:
			return nil, apierror.New(apierror.Invalid, "park %s refused this park's -public-url %s as a peer URL", t.Park, f.PublicURL)
		case http.StatusTooManyRequests:
			return nil, apierror.New(apierror.Unavailable, "park %s is busy with other peering handshakes; try again shortly", t.Park)
		}
		return nil, apierror.New(apierror.Unavailable, "park %s answered %d to the peering", t.Park, res.StatusCode)
	}
	var er EstablishResponse
	if err := json.Unmarshal(rb, &er); err != nil || er.Park != t.Park {
		return nil, apierror.New(apierror.Unavailable, "park %s answered the peering with a malformed response", t.Park)
	}
	keys, err := parkkey.ParseJWKS(er.JWKS)
	if err != nil {
		return nil, apierror.New(apierror.Unavailable, "park %s published unusable keys", t.Park)
	}
	if _, ok := keys[t.KeyID]; !ok {
		return nil, apierror.New(apierror.Unauthorized, "park %s did not present the key the token pinned", t.Park)
	}
	pinned := map[string]ed25519.PublicKey{t.KeyID: keys[t.KeyID]}
	if _, err := parktoken.VerifyWithKey(er.Proof, f.Park, t.Park, parktoken.ScopePeering, pinned, f.now()); err != nil {
		return nil, apierror.New(apierror.Unauthorized, "park %s did not prove it holds the pinned key", t.Park)
	}
	p := &Peer{ID: t.Park, URL: origin, Keys: pinKeys(keys), EstablishedAt: f.now().UTC()}
	if err := f.Peers.Put(ctx, p); err != nil {
		return nil, apierror.New(apierror.Unavailable, "cannot store the peering: Consul unreachable")
	}
	f.learnIdentity(t.Park)
	return p, nil
}

// learnIdentity reads a new peer's display names and country in the
// background (the handshake does not wait on it).
func (f *Federation) learnIdentity(park string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The peer's store may still be storing its side: try a few times.
		for range 5 {
			if _, err := f.Peers.LearnIdentity(ctx, park); err == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

// AcceptEstablish is A's side: it checks the caller's proof of key
// possession and the one-time token, then that the caller may become a
// peer (its URL an acceptable origin, not a peer already), and only then
// consumes the token (compare-and-set, so a token works once even with
// several replicas) and pins the caller. A refusal before the token's
// secret is proven is the same Unauthorized error whatever the reason
// (the reason is returned for the log); after it, a bad URL is Invalid
// (field url) and an existing peer a Conflict, and the token stays unused.
func (f *Federation) AcceptEstablish(ctx context.Context, bearer string, req EstablishRequest) (*EstablishResponse, string, error) {
	refuse := func(reason string) (*EstablishResponse, string, error) {
		return nil, reason, apierror.New(apierror.Unauthorized, "missing or invalid access token")
	}
	if req.Park == f.Park {
		return refuse("peering_self")
	}
	if !listing.ValidParkID(req.Park) {
		return refuse("peering_park")
	}
	keys, err := parkkey.ParseJWKS(req.JWKS)
	if err != nil {
		return refuse("peering_jwks")
	}
	if _, err := parktoken.VerifyWithKey(bearer, f.Park, req.Park, parktoken.ScopePeering, keys, f.now()); err != nil {
		return refuse("peering_proof_" + parktoken.Reason(err))
	}
	// Checked before the id goes into a KV key: "../peers/x" must never
	// reach another record (one read as an expired token would be deleted).
	if !validTokenID(req.TokenID) {
		return refuse("peering_token_unknown")
	}
	pair, _, err := f.KV.Get(kvTokens+req.TokenID, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, "consul", apierror.New(apierror.Unavailable, "peering state unavailable")
	}
	if pair == nil || pair.Key != kvTokens+req.TokenID {
		return refuse("peering_token_unknown")
	}
	raw, _, err := open(f.Keys(), pair.Key, pair.Value)
	if err != nil {
		return refuse("peering_token_" + reason(err))
	}
	var rec pendingToken
	if json.Unmarshal(raw, &rec) != nil {
		return refuse("peering_token_corrupt")
	}
	if f.now().After(rec.Expires) {
		f.KV.Delete(pair.Key, nil)
		return refuse("peering_token_expired")
	}
	if rec.Peer != req.Park || subtle.ConstantTimeCompare([]byte(rec.SecretSHA256), []byte(sha256Hex(req.Secret))) != 1 {
		return refuse("peering_token_mismatch")
	}
	// The caller holds the token: what is left to refuse is told plainly,
	// and leaves the token for a corrected attempt.
	origin, err := Origin(req.URL, f.AllowInsecurePeers)
	if err != nil {
		return nil, "peering_url", apierror.InvalidField("url", "%s", err.Error())
	}
	switch exists, err := f.peerExists(ctx, req.Park); {
	case err != nil:
		return nil, "consul", apierror.New(apierror.Unavailable, "peering state unavailable")
	case exists:
		return nil, "peering_exists", errPeerExists(req.Park)
	}
	ok, _, err := f.KV.DeleteCAS(pair, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return nil, "consul", apierror.New(apierror.Unavailable, "peering state unavailable")
	}
	if !ok {
		return refuse("peering_token_reused")
	}
	p := &Peer{ID: req.Park, URL: origin, Keys: pinKeys(keys), EstablishedAt: f.now().UTC()}
	if err := f.Peers.Put(ctx, p); err != nil {
		return nil, "consul", apierror.New(apierror.Unavailable, "peering state unavailable")
	}
	f.learnIdentity(req.Park)
	ks := f.Keys()
	jwks, _ := json.Marshal(ks.JWKS())
	proof, err := parktoken.IssueFederation(ks, req.Park, parktoken.ScopePeering, time.Minute, f.now())
	if err != nil {
		return nil, "sign", err
	}
	return &EstablishResponse{Park: f.Park, URL: f.PublicURL, JWKS: jwks, Proof: proof}, "", nil
}

// Identity is the body of /.well-known/parkmesh.json.
type Identity struct {
	Park string `json:"park"`
	Name string `json:"name"`
	// DisplayName is the park's name for people (zh, en).
	DisplayName DisplayName       `json:"display_name"`
	Country     string            `json:"country,omitempty"`
	URL         string            `json:"url"`
	JWKSURI     string            `json:"jwks_uri"`
	Endpoints   map[string]string `json:"endpoints"`
}

// DisplayName is a park's name for people, in Chinese and English.
type DisplayName struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// ValidDisplayName checks one display name: 1 to 100 printable
// characters.
func ValidDisplayName(s string) error {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > 100 {
		return errors.New("must be 1 to 100 characters")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return errors.New("must be printable characters only")
		}
	}
	return nil
}

// valid reports whether both names are acceptable (what a peer sends is
// checked before it is kept).
func (d DisplayName) valid() bool {
	return ValidDisplayName(d.ZH) == nil && ValidDisplayName(d.EN) == nil
}

func (f *Federation) displayName() DisplayName {
	d := f.DisplayName
	if d.EN == "" {
		d.EN = f.Name
	}
	if d.EN == "" {
		d.EN = f.Park
	}
	if d.ZH == "" {
		d.ZH = d.EN
	}
	return d
}

// Identity returns the park's public description.
func (f *Federation) Identity() Identity {
	base := strings.TrimRight(f.PublicURL, "/")
	return Identity{
		Park: f.Park, Name: f.Name, DisplayName: f.displayName(), Country: f.Country, URL: base, JWKSURI: base + "/.well-known/jwks.json",
		Endpoints: map[string]string{
			"search":   base + "/federation/v1/search",
			"listings": base + "/federation/v1/listings/{kind}/{id}",
			"changes":  base + "/federation/v1/changes",
			"peering":  base + "/federation/v1/peering/establish",
		},
	}
}
