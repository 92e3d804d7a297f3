package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// cheap keeps the tests quick; the parameters travel with each hash, so
// verification does not depend on them.
var cheap = HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHash(t *testing.T) {
	h1, err := HashPassword("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse battery", cheap)
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q does not carry argon2id and its parameters", h1)
	}
	if ok, err := VerifyPassword(h1, "correct horse battery"); !ok || err != nil {
		t.Errorf("right password: %v %v", ok, err)
	}
	if ok, err := VerifyPassword(h1, "correct horse batterY"); ok || err != nil {
		t.Errorf("wrong password: %v %v", ok, err)
	}
	// A hash made with other parameters stays valid once the defaults change.
	h3, _ := HashPassword("another long one", HashParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
	if ok, _ := VerifyPassword(h3, "another long one"); !ok {
		t.Error("a hash with other parameters does not verify")
	}
	parts := strings.Split(h1, "$")
	for name, bad := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuv",
		"other version":  strings.Replace(h1, "v=19", "v=16", 1),
		"huge memory":    strings.Replace(h1, "m=64", "m=4194304", 1),
		"zero passes":    strings.Replace(h1, "t=1", "t=0", 1),
		"short salt":     strings.Join([]string{"", parts[1], parts[2], parts[3], "c2FsdA", parts[5]}, "$"),
		"salt not b64":   strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!!", parts[5]}, "$"),
		"extra section":  h1 + "$x",
		"short key":      strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "a2V5"}, "$"),
		"params garbled": strings.Replace(h1, "m=64,t=1,p=1", "m=x", 1),
	} {
		if ok, err := VerifyPassword(bad, "correct horse battery"); ok || !errors.Is(err, errMalformedHash) {
			t.Errorf("%s hash %q: %v %v, want refused as malformed", name, bad, ok, err)
		}
	}
}

func openAccounts(t *testing.T) (*Accounts, *time.Time) {
	t.Helper()
	db, err := state.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	a := New(db)
	a.Hash = cheap
	a.Now = func() time.Time { return now }
	return a, &now
}

func code(err error) (apierror.Code, string) {
	var e *apierror.Error
	if errors.As(err, &e) {
		return e.Code, e.Field
	}
	return "", ""
}

func TestAddRefusesBadInputNamingTheField(t *testing.T) {
	a, _ := openAccounts(t)
	ctx := context.Background()
	good := NewUser{Username: "li.wei", DisplayName: "李伟", Role: "editor", Password: "a long password"}
	for name, c := range map[string]struct {
		mod   func(*NewUser)
		field string
	}{
		"short password": {func(n *NewUser) { n.Password = "short" }, "password"},
		"bad username":   {func(n *NewUser) { n.Username = "Li Wei" }, "username"},
		"bad role":       {func(n *NewUser) { n.Role = "root" }, "role"},
		"bad lang":       {func(n *NewUser) { n.Lang = "fr" }, "lang"},
	} {
		n := good
		c.mod(&n)
		if _, err := a.Add(ctx, n); err == nil {
			t.Errorf("%s: accepted", name)
		} else if cd, f := code(err); cd != apierror.Invalid || f != c.field {
			t.Errorf("%s: %v (code %q field %q), want invalid naming %q", name, err, cd, f, c.field)
		}
	}
	if us, _ := a.List(ctx); len(us) != 0 {
		t.Fatalf("refused accounts were written: %+v", us)
	}
	u, err := a.Add(ctx, good)
	if err != nil || u.Role != "editor" || u.Lang != "zh" || u.DisplayName != "李伟" {
		t.Fatalf("add: %+v %v", u, err)
	}
	if _, err := a.Add(ctx, good); err == nil {
		t.Error("a second account of the same name was accepted")
	} else if cd, f := code(err); cd != apierror.Conflict || f != "username" {
		t.Errorf("second account: %v, want a conflict naming username", err)
	}
}

func TestAuthenticateThrottlesAndRecovers(t *testing.T) {
	a, now := openAccounts(t)
	ctx := context.Background()
	if _, err := a.Add(ctx, NewUser{Username: "officer", Role: "viewer", Password: "the right password"}); err != nil {
		t.Fatal(err)
	}
	const addr = "192.0.2.7"
	// Unknown user and wrong password are told apart by nothing.
	_, e1 := a.Authenticate(ctx, "nobody", "the right password", "192.0.2.99")
	_, e2 := a.Authenticate(ctx, "officer", "wrong password!!", addr)
	if c, _ := code(e1); c != apierror.Unauthenticated || e1.Error() != e2.Error() {
		t.Errorf("unknown user %q and wrong password %q answer differently", e1, e2)
	}
	for i := 2; i < a.PerUser.Max; i++ {
		if _, err := a.Authenticate(ctx, "officer", "wrong password!!", addr); err == nil {
			t.Fatal("a wrong password signed in")
		}
	}
	// The failure that reaches the limit is throttled already, and so is
	// the right password while the lock lasts.
	_, err := a.Authenticate(ctx, "officer", "wrong password!!", addr)
	var th *ThrottledError
	if !errors.As(err, &th) || th.RetryAfter <= 0 || th.RetryAfter > a.PerUser.Lockout {
		t.Fatalf("failure %d: %v, want throttled with a retry within the lockout", a.PerUser.Max, err)
	}
	if _, err := a.Authenticate(ctx, "officer", "the right password", addr); !errors.As(err, &th) {
		t.Fatalf("right password while locked: %v, want throttled", err)
	}
	*now = now.Add(a.PerUser.Lockout + time.Second)
	u, err := a.Authenticate(ctx, "officer", "the right password", addr)
	if err != nil || u.Username != "officer" || u.Role != "viewer" {
		t.Fatalf("after the lockout: %+v %v", u, err)
	}
	// A disabled account is refused even with the right password.
	if _, err := a.SetDisabled(ctx, "officer", true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "officer", "the right password", addr); err == nil {
		t.Error("a disabled account signed in")
	} else if c, _ := code(err); c != apierror.Forbidden {
		t.Errorf("disabled account: %v, want forbidden", err)
	}
}

func TestAuthenticateThrottlesAnAddressAcrossAccounts(t *testing.T) {
	a, _ := openAccounts(t)
	a.PerAddr.Max = 3
	ctx := context.Background()
	if _, err := a.Add(ctx, NewUser{Username: "officer", Role: "viewer", Password: "the right password"}); err != nil {
		t.Fatal(err)
	}
	// One host of an IPv6 /64 guessing at different accounts.
	for i, addr := range []string{"2001:db8:1:2::10", "2001:db8:1:2::11", "2001:db8:1:2:ffff::1"} {
		a.Authenticate(ctx, []string{"a", "b", "c"}[i], "some password..", addr)
	}
	var th *ThrottledError
	if _, err := a.Authenticate(ctx, "officer", "the right password", "2001:db8:1:2::99"); !errors.As(err, &th) {
		t.Errorf("right password from a locked /64: %v, want throttled", err)
	}
	if _, err := a.Authenticate(ctx, "officer", "the right password", "2001:db8:1:3::1"); err != nil {
		t.Errorf("right password from another /64: %v", err)
	}
}
