// Package credentials keeps the park-local tokens revocable: the record of
// every token issued (in the gateway's state), and the set of revoked token
// ids that every gateway replica refuses. A revocation is written to the
// state and to Consul KV (parkmesh/revoked/<id>), which every replica
// watches with blocking queries, as it watches the peer set: a token
// revoked through one replica is refused by all of them within a second or
// two, whether or not they share a state file.
package credentials

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/pkg/retry"
)

// KVPrefix is where revocations live in the park's Consul KV, one key per
// revoked token id.
const KVPrefix = "parkmesh/revoked/"

// revocation is a KV record's value.
type revocation struct {
	RevokedAt time.Time `json:"revoked_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Credentials is the park's record of its local tokens and the revoked
// set. Revoked is safe for concurrent use and costs one map lookup.
type Credentials struct {
	state  *state.DB
	kv     *consulapi.KV
	logger *slog.Logger
	now    func() time.Time

	mu       sync.RWMutex
	revoked  map[string]time.Time // id → when the token expires anyway
	index    uint64
	synced   chan struct{}
	syncOnce sync.Once
}

// New returns the credentials of the park whose state is db and whose
// Consul agent is cc. Load reads the revocations the state holds; Run
// keeps the set current from Consul.
func New(db *state.DB, cc *consulapi.Client, logger *slog.Logger) *Credentials {
	return &Credentials{state: db, kv: cc.KV(), logger: logger, now: time.Now,
		revoked: map[string]time.Time{}, synced: make(chan struct{})}
}

// ValidID reports whether id can be a park-local token's id: what
// parktoken.Issue makes (base64url), at most 128 characters. Only such ids
// go into KV keys.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Load adds the revocations recorded in the state, so a gateway that
// starts while Consul is unreachable still refuses what it revoked.
func (c *Credentials) Load(ctx context.Context) error {
	revs, err := c.state.Revocations(ctx, c.now())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range revs {
		c.revoked[r.ID] = r.ExpiresAt
	}
	return nil
}

// Revoked reports whether the token id is revoked: what
// parktoken.WithRevocations asks on every verification.
func (c *Credentials) Revoked(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.revoked[id]
	return ok
}

// Synced is closed after the first successful read of the revocations in
// Consul.
func (c *Credentials) Synced() <-chan struct{} { return c.synced }

// Run watches the revocations in Consul KV with blocking queries until ctx
// ends: each one seen is added to the set and recorded in the state. While
// Consul is unreachable the set stays as it is (revocations only grow), and
// revocations whose tokens have expired are removed from KV (they no longer
// matter) by whichever replica sees it first.
func (c *Credentials) Run(ctx context.Context) {
	pause := retry.New(100*time.Millisecond, 2*time.Second)
	failing := false
	for ctx.Err() == nil {
		c.mu.RLock()
		idx := c.index
		c.mu.RUnlock()
		opts := (&consulapi.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second}).WithContext(ctx)
		pairs, meta, err := c.kv.List(KVPrefix, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				c.logger.Warn("revocation watch failing; keeping the revocations known", "err", err)
				failing = true
			}
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		if failing {
			c.logger.Info("revocation watch recovered")
			failing = false
		}
		pause.Reset()
		c.apply(ctx, pairs)
		c.mu.Lock()
		if meta.LastIndex < idx {
			c.index = 0 // the index went backwards (agent restarted): start over
		} else {
			c.index = meta.LastIndex
		}
		c.mu.Unlock()
		c.syncOnce.Do(func() { close(c.synced) })
	}
}

// apply adds the revocations of pairs to the set and the state, and
// removes those past their token's expiry from KV.
func (c *Credentials) apply(ctx context.Context, pairs consulapi.KVPairs) {
	now := c.now()
	for _, kv := range pairs {
		id := strings.TrimPrefix(kv.Key, KVPrefix)
		var r revocation
		if !ValidID(id) || json.Unmarshal(kv.Value, &r) != nil {
			c.logger.Error("ignoring malformed revocation record", "key", kv.Key)
			continue
		}
		if now.After(r.ExpiresAt.Add(parktoken.Leeway)) {
			// Moot: the token is refused for its exp. CAS, so a record
			// written again meanwhile stays.
			_, _, _ = c.kv.DeleteCAS(kv, (&consulapi.WriteOptions{}).WithContext(ctx))
			continue
		}
		c.mu.Lock()
		_, known := c.revoked[id]
		c.revoked[id] = r.ExpiresAt
		c.mu.Unlock()
		if !known {
			if _, err := c.state.RevokeLocalToken(ctx, id, r.RevokedAt, r.ExpiresAt); err != nil {
				c.logger.Warn("recording a revocation in the state failed", "token_id", id, "err", err)
			}
			c.logger.Info("park-local token revoked", "token_id", id)
		}
	}
	// Forget what has expired; nothing else is ever dropped.
	c.mu.Lock()
	for id, exp := range c.revoked {
		if now.After(exp.Add(parktoken.Leeway)) {
			delete(c.revoked, id)
		}
	}
	c.mu.Unlock()
}

// Record records a token just issued, from its verified claims.
func (c *Credentials) Record(ctx context.Context, cl *parktoken.Claims) error {
	return c.state.RecordLocalToken(ctx, state.LocalToken{
		ID: cl.ID, Subject: cl.Subject, Role: string(cl.Role), KeyID: cl.KeyID, IssuedAt: cl.IssuedAt, ExpiresAt: cl.ExpiresAt,
	})
}

// List returns the recorded tokens, newest first: those not expired, or
// every one when all is set.
func (c *Credentials) List(ctx context.Context, all bool) ([]state.LocalToken, error) {
	return c.state.LocalTokens(ctx, c.now(), all)
}

// Get returns the record of token id; NotFound when it was never recorded.
func (c *Credentials) Get(ctx context.Context, id string) (state.LocalToken, error) {
	t, err := c.state.LocalTokenByID(ctx, id)
	if err == state.ErrNotFound {
		return t, apierror.New(apierror.NotFound, "no recorded token %q", id)
	}
	return t, err
}

// Revoke revokes token id at once on this replica and, through Consul, on
// every other. An id that was never recorded (a token issued where this
// gateway's state could not record it) is revoked too, for the longest a
// token can live; recorded says which it was. It returns Invalid for an id
// that cannot be a token's and Unavailable when Consul cannot be written
// (the revocation then holds on this replica and in the state only).
func (c *Credentials) Revoke(ctx context.Context, id string) (rev state.Revocation, recorded bool, err error) {
	if !ValidID(id) {
		return rev, false, apierror.InvalidField("id", "is not a token id")
	}
	now := c.now().UTC()
	expires := now.Add(parktoken.MaxTTL)
	switch t, err := c.state.LocalTokenByID(ctx, id); {
	case err == nil:
		recorded, expires = true, t.ExpiresAt
	case err != state.ErrNotFound:
		return rev, false, err
	}
	if rev, err = c.state.RevokeLocalToken(ctx, id, now, expires); err != nil {
		return rev, recorded, err
	}
	c.mu.Lock()
	c.revoked[id] = rev.ExpiresAt
	c.mu.Unlock()
	b, _ := json.Marshal(revocation{RevokedAt: rev.RevokedAt, ExpiresAt: rev.ExpiresAt})
	if _, err := c.kv.Put(&consulapi.KVPair{Key: KVPrefix + id, Value: b}, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return rev, recorded, apierror.New(apierror.Unavailable,
			"revoked on this gateway, but Consul is unreachable: other replicas learn of it only once it is retried")
	}
	return rev, recorded, nil
}
