package credentials_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/gateway/credentials"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// replica is one gateway replica's credentials: its own state file (the
// worst case; replicas sharing a data dir share it), the park's Consul.
type replica struct {
	creds *credentials.Credentials
	db    *state.DB
	auth  *parktoken.Verifier
}

func startReplica(t *testing.T, agent *consultest.Agent, ks *parkkey.KeySet) *replica {
	t.Helper()
	db, err := state.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// With the gateway's own Consul token, as in production.
	gw := agent.ClientWithToken(t, agent.Token(t, consulacl.Gateway))
	c := credentials.New(db, gw, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-c.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("revocations never synced")
	}
	return &replica{c, db, parktoken.NewVerifier(parktoken.StaticKeys(ks), parktoken.WithRevocations(c.Revoked))}
}

func issue(t *testing.T, ks *parkkey.KeySet, sub string) (string, *parktoken.Claims) {
	t.Helper()
	tok, err := parktoken.Issue(ks, ks.Park(), sub, parktoken.Admin, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := parktoken.NewVerifier(parktoken.StaticKeys(ks)).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// TestRevocationReachesEveryReplica: a token revoked through one replica
// is refused by another (its own state file, the same Consul) within
// seconds, and the other records the revocation; a replica started later
// knows it from the start; other tokens are untouched; a malformed id is
// refused without writing anything.
func TestRevocationReachesEveryReplica(t *testing.T) {
	agent := consultest.Start(t)
	ks, err := parkkey.FromKeys("xian-hitech", ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := startReplica(t, agent, ks), startReplica(t, agent, ks)
	leaked, claims := issue(t, ks, "li.wei")
	other, _ := issue(t, ks, "ci-bot")
	if err := a.creds.Record(t.Context(), claims); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{a, b} {
		if _, err := r.auth.Verify(leaked); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
	}

	rev, recorded, err := a.creds.Revoke(t.Context(), claims.ID)
	if err != nil || !recorded || !rev.ExpiresAt.Equal(claims.ExpiresAt) {
		t.Fatalf("Revoke = %+v, %v, %v", rev, recorded, err)
	}
	revoked := time.Now()
	if _, err := a.auth.Verify(leaked); parktoken.Reason(err) != parktoken.ReasonRevoked {
		t.Errorf("revoking replica: %v (%s), want revoked at once", err, parktoken.Reason(err))
	}
	for parktoken.Reason(func() error { _, err := b.auth.Verify(leaked); return err }()) != parktoken.ReasonRevoked {
		if time.Since(revoked) > 3*time.Second {
			t.Fatal("the other replica still accepts the revoked token after 3s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revoked on the other replica after %s", time.Since(revoked).Round(time.Millisecond))
	for _, r := range []*replica{a, b} {
		if _, err := r.auth.Verify(other); err != nil {
			t.Errorf("another token after the revocation: %v", err)
		}
	}
	// The other replica wrote it down: it holds after a restart without
	// Consul.
	// (It writes the revocation down just after it starts refusing it.)
	for {
		revs, err := b.db.Revocations(t.Context(), time.Now())
		if err == nil && len(revs) == 1 && revs[0].ID == claims.ID {
			break
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatalf("the other replica's state: %+v, %v", revs, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A replica started now knows it.
	if _, err := startReplica(t, agent, ks).auth.Verify(leaked); parktoken.Reason(err) != parktoken.ReasonRevoked {
		t.Errorf("new replica: %v, want revoked", err)
	}
	// The list shows it revoked.
	toks, err := a.creds.List(t.Context(), false)
	if err != nil || len(toks) != 1 || toks[0].RevokedAt.IsZero() {
		t.Errorf("List = %+v, %v", toks, err)
	}

	// An id never recorded is revoked all the same, for the longest a
	// token lives.
	_, otherClaims := issue(t, ks, "ci-bot")
	if rev, recorded, err := b.creds.Revoke(t.Context(), otherClaims.ID); err != nil || recorded || rev.ExpiresAt.Before(time.Now().Add(parktoken.MaxTTL-time.Minute)) {
		t.Errorf("revoking an unrecorded id: %+v, %v, %v", rev, recorded, err)
	}

	// Ids that cannot be a token's never reach KV.
	before, _, _ := agent.Client().KV().List("parkmesh/", nil)
	for _, id := range []string{"", "../peers/chengdu-hitech", "a/b", "x y", string(make([]byte, 200))} {
		if _, _, err := a.creds.Revoke(t.Context(), id); !apierror.Is(err, apierror.Invalid) {
			t.Errorf("Revoke(%q) = %v, want Invalid", id, err)
		}
	}
	after, _, _ := agent.Client().KV().List("parkmesh/", nil)
	if len(after) != len(before) {
		t.Errorf("KV went from %d to %d keys", len(before), len(after))
	}
}
