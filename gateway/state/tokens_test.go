package state

import (
	"testing"
	"time"
)

func TestLocalTokensAndRevocations(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	a := LocalToken{ID: "tokA", Subject: "li.wei", Role: "admin", KeyID: "k1", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	b := LocalToken{ID: "tokB", Subject: "ci-bot", Role: "viewer", KeyID: "k1", IssuedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(48 * time.Hour)}
	for _, tok := range []LocalToken{a, b, a} { // recording again is a no-op
		if err := db.RecordLocalToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.LocalTokens(ctx, t0, false)
	if err != nil || len(got) != 2 || got[0] != b || got[1] != a {
		t.Fatalf("LocalTokens = %+v, %v; want b then a", got, err)
	}
	// Expired ones only with all.
	if got, _ := db.LocalTokens(ctx, t0.Add(2*time.Hour), false); len(got) != 1 || got[0].ID != "tokB" {
		t.Errorf("unexpired at t0+2h = %+v", got)
	}
	if got, _ := db.LocalTokens(ctx, t0.Add(2*time.Hour), true); len(got) != 2 {
		t.Errorf("all at t0+2h = %+v", got)
	}

	// Revoking keeps the first revocation; the record shows it.
	r, err := db.RevokeLocalToken(ctx, "tokA", t0.Add(time.Minute), a.ExpiresAt)
	if err != nil || r.ID != "tokA" || !r.RevokedAt.Equal(t0.Add(time.Minute)) || !r.ExpiresAt.Equal(a.ExpiresAt) {
		t.Fatalf("revoke = %+v, %v", r, err)
	}
	if again, _ := db.RevokeLocalToken(ctx, "tokA", t0.Add(time.Hour), a.ExpiresAt); !again.RevokedAt.Equal(r.RevokedAt) {
		t.Errorf("second revocation moved revoked_at to %v", again.RevokedAt)
	}
	rec, err := db.LocalTokenByID(ctx, "tokA")
	if err != nil || !rec.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("record after revocation = %+v, %v", rec, err)
	}
	if _, err := db.LocalTokenByID(ctx, "nope"); err != ErrNotFound {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	// An id never recorded can be revoked too.
	if _, err := db.RevokeLocalToken(ctx, "leaked", t0, t0.Add(366*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	revs, err := db.Revocations(ctx, t0)
	if err != nil || len(revs) != 2 || revs[0].ID != "leaked" || revs[1].ID != "tokA" {
		t.Errorf("revocations at t0 = %+v, %v", revs, err)
	}
	// Past its token's expiry a revocation no longer matters.
	if revs, _ := db.Revocations(ctx, t0.Add(2*time.Hour)); len(revs) != 1 || revs[0].ID != "leaked" {
		t.Errorf("revocations at t0+2h = %+v", revs)
	}
}
