// Package oidctest runs a real OpenID Connect provider for a test on a
// loopback port: zitadel's op package with its example storage and login
// page (github.com/zitadel/oidc/v3/example/server), knowing one web client.
// Tests of the gateway's sign-in through a park's provider use it rather
// than a hand-written fake; each test gets a provider of its own (its own
// clients, keys and users), stopped when the test ends.
//
// The example storage knows two people, both with the password Password:
// "id1" (username UserID1's, test-user@<issuer host>) and "id2"
// (test-user2). A person's groups (Options.Groups) are released in the ID
// token's "groups" claim, with their name ("Test User <id>") and a
// preferred username ("sso.<id>"), when the client asks the storage's
// custom scope (Scope) — the only extra scope its clients may ask.
package oidctest

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Password is every example person's password.
const Password = "verysecure"

// Scope is the scope a client asks to get the groups claim, the person's
// name and preferred username.
const Scope = storage.CustomScope

// Options describe the provider's one client and its people's groups.
type Options struct {
	// ClientID and ClientSecret identify the web client (the gateway).
	ClientID, ClientSecret string
	// RedirectURI is the client's one registered redirect URI (the
	// gateway's /auth/oidc/callback as browsers reach it).
	RedirectURI string
	// Groups are the "groups" claim's values per person id ("id1", "id2").
	Groups map[string][]string
}

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL (http://127.0.0.1:port).
	Issuer string
}

// Username is the username person id ("id1", "id2") signs in with on the
// provider's login page.
func (p *Provider) Username(id string) string {
	if id == "id1" {
		host, _, _ := strings.Cut(strings.TrimPrefix(p.Issuer, "http://"), ":")
		return "test-user@" + host
	}
	return "test-user2"
}

// Start starts a provider on a free loopback port, stopped when tb ends.
func Start(tb testing.TB, o Options) *Provider {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	clients := map[string]*storage.Client{}
	c := storage.WebClient(o.ClientID, o.ClientSecret, o.RedirectURI)
	clients[c.GetID()] = c
	st := &groupsStorage{Storage: storage.NewStorageWithClients(storage.NewUserStore(issuer), clients), groups: o.Groups}
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, st, nil, false), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return &Provider{Issuer: issuer}
}

// groupsStorage is the example storage releasing the groups claim (and
// the person's name) in the ID token when the client asks Scope.
type groupsStorage struct {
	*storage.Storage
	groups map[string][]string // person id → groups
}

// SetUserinfoFromRequest implements op.Storage.
func (s *groupsStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if slices.Contains(scopes, Scope) {
		groups := make([]any, 0, len(s.groups[req.GetSubject()]))
		for _, g := range s.groups[req.GetSubject()] {
			groups = append(groups, g)
		}
		info.AppendClaims("groups", groups)
		info.AppendClaims("name", "Test User "+req.GetSubject())
		info.PreferredUsername = "sso." + req.GetSubject()
	}
	return nil
}
