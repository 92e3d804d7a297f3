package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/parkmesh/parkmesh/gateway/state"
)

func (c *CLI) tokenList(args []string) int {
	f := c.newPeeringFlags("token list", "[--all] [--gateway URL] (--admin-token-file F | --data-dir DIR)")
	all := f.fs.Bool("all", false, "expired tokens too")
	if code := f.parse(args); code >= 0 {
		return code
	}
	var out struct {
		Tokens []state.LocalToken `json:"tokens"`
	}
	path := "/api/v1/tokens"
	if *all {
		path += "?all=true"
	}
	if err := f.call(http.MethodGet, path, nil, &out); err != nil {
		return c.fail("token list", err)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUB\tROLE\tISSUED\tEXPIRES\tREVOKED")
	for _, t := range out.Tokens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Subject, t.Role, stamp(t.IssuedAt), stamp(t.ExpiresAt), stamp(t.RevokedAt))
	}
	if err := tw.Flush(); err != nil {
		return c.fail("token list", err)
	}
	return ExitOK
}

func (c *CLI) tokenRevoke(args []string) int {
	f := c.newPeeringFlags("token revoke", "--id TOKEN_ID [--gateway URL] (--admin-token-file F | --data-dir DIR)")
	id := f.fs.String("id", "", "the token's id (its jti, as token create and token list print it)")
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("id"); code >= 0 {
		return code
	}
	var out struct {
		ID        string    `json:"id"`
		RevokedAt time.Time `json:"revoked_at"`
		Recorded  bool      `json:"recorded"`
	}
	if err := f.call(http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(*id), nil, &out); err != nil {
		return c.fail("token revoke", err)
	}
	if !out.Recorded {
		fmt.Fprintf(c.Stderr, "warning: no token %s was recorded here; it is revoked all the same (check the id)\n", out.ID)
	}
	fmt.Fprintf(c.Stderr, "token %s revoked at %s; every gateway replica refuses it within seconds\n", out.ID, out.RevokedAt.UTC().Format(time.RFC3339))
	return ExitOK
}
