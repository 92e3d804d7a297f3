package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/gateway/outbound"
	"github.com/parkmesh/parkmesh/gateway/session"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// OIDCConfig is sign-in through the park's OpenID Connect provider, from
// the -oidc-… flags. The client secret is read from a file, never given as
// a flag value.
type OIDCConfig struct {
	Issuer, ClientID, ClientSecretFile, RedirectURL, Name string
	Scopes                                                string
	RoleClaim, RoleMap, DefaultRole                       string
	roleMap                                               map[string]parktoken.Role
}

func (c *OIDCConfig) validate() error {
	if c.Issuer == "" {
		return nil
	}
	if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://127.0.0.1") && !strings.HasPrefix(c.Issuer, "http://localhost") && !strings.HasPrefix(c.Issuer, "http://[::1]") {
		return fmt.Errorf("-oidc-issuer %q: must be https (http only on loopback)", c.Issuer)
	}
	if c.ClientID == "" {
		return fmt.Errorf("-oidc-client-id: required with -oidc-issuer")
	}
	if c.RedirectURL == "" || !strings.HasSuffix(c.RedirectURL, "/auth/oidc/callback") {
		return fmt.Errorf("-oidc-redirect-url %q: required with -oidc-issuer, the park side's URL ending in /auth/oidc/callback", c.RedirectURL)
	}
	c.roleMap = map[string]parktoken.Role{}
	for _, kv := range strings.Split(c.RoleMap, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		r := parktoken.Role(strings.TrimSpace(v))
		if !ok || strings.TrimSpace(k) == "" || !r.Valid() {
			return fmt.Errorf("-oidc-role-map %q: each entry must be value=role with role viewer, editor or admin", kv)
		}
		c.roleMap[strings.TrimSpace(k)] = r
	}
	if c.DefaultRole != "" && !parktoken.Role(c.DefaultRole).Valid() {
		return fmt.Errorf("-oidc-default-role %q: must be viewer, editor or admin", c.DefaultRole)
	}
	if len(c.roleMap) == 0 && c.DefaultRole == "" {
		return fmt.Errorf("-oidc-role-map: required with -oidc-issuer unless -oidc-default-role is set")
	}
	if c.RoleClaim == "" {
		return fmt.Errorf("-oidc-role-claim: must not be empty")
	}
	return nil
}

// open reads the client secret and discovers the provider.
func (c *OIDCConfig) open(ctx context.Context, logger *slog.Logger, refused func(client, reason string)) (*session.OIDC, error) {
	secret := ""
	if c.ClientSecretFile != "" {
		b, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("-oidc-client-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
		if secret == "" {
			return nil, fmt.Errorf("-oidc-client-secret-file %s: empty", c.ClientSecretFile)
		}
	}
	var scopes []string
	for _, s := range strings.Split(c.Scopes, ",") {
		if s = strings.TrimSpace(s); s != "" && s != "openid" {
			scopes = append(scopes, s)
		}
	}
	// The provider is called like any other host: no redirects followed,
	// bounded in every phase.
	client := outbound.New(outbound.Options{Name: "oidc", Logger: logger, Refused: refused, Transport: &http.Transport{
		TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: 10 * time.Second, IdleConnTimeout: 90 * time.Second,
	}})
	client.Timeout = 15 * time.Second
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	o, err := session.NewOIDC(dctx, session.OIDCConfig{
		Name: c.Name, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: secret, RedirectURL: c.RedirectURL,
		Scopes: scopes, RoleClaim: c.RoleClaim, RoleMap: c.roleMap, DefaultRole: parktoken.Role(c.DefaultRole), HTTPClient: client,
	})
	if err != nil {
		return nil, fmt.Errorf("-oidc-issuer: %w", err)
	}
	return o, nil
}
