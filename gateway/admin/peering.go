package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Environment variables of the peering commands.
const (
	EnvGateway = "PARKMESH_GATEWAY"
	EnvToken   = "PARKMESH_ADMIN_TOKEN"
)

// peeringFlags are the flags every command that calls the gateway shares:
// which gateway, and the admin credential (a token from the environment or
// a file, or the data dir to mint one).
type peeringFlags struct {
	*flags
	gateway, token, tokenFile, dir *string
}

func (c *CLI) newPeeringFlags(name, synopsis string) *peeringFlags {
	f := &peeringFlags{flags: c.newFlags(name, synopsis)}
	f.env["gateway"] = EnvGateway
	f.gateway = f.fs.String("gateway", "http://127.0.0.1:8080", "the park's own gateway (env "+EnvGateway+")")
	f.env["admin-token"] = EnvToken
	f.token = f.fs.String("admin-token", "", "a park-local admin token (env "+EnvToken+", which unlike the flag no other local user can see); or give --admin-token-file or --data-dir")
	f.tokenFile = f.fs.String("admin-token-file", "", "a file holding a park-local admin token (- for stdin)")
	f.dir = f.flags.dataDir()
	return f
}

// parse parses args like flags.parse, and warns when a token was given on
// the command line, where every local user can read it.
func (f *peeringFlags) parse(args []string) int {
	if code := f.flags.parse(args); code >= 0 {
		return code
	}
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "admin-token" || fl.Name == "token" {
			fmt.Fprintf(f.cli.Stderr, "parkmesh %s: warning: --%s on the command line is visible to every local user; use %s or a file instead\n",
				f.name, fl.Name, map[string]string{"admin-token": EnvToken + " or --admin-token-file", "token": "--token-file"}[fl.Name])
		}
	})
	return -1
}

// readSecret reads a token from path ("-": stdin), trimmed.
func (f *peeringFlags) readSecret(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		if f.cli.Stdin == nil {
			return "", errors.New("no standard input")
		}
		b, err = io.ReadAll(io.LimitReader(f.cli.Stdin, 64<<10))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s holds no token", path)
	}
	return s, nil
}

// bearer returns the admin token: from the environment, the flag or its
// file, or minted for five minutes from the park's key in --data-dir (the
// CLI runs where the gateway's data is).
func (f *peeringFlags) bearer() (string, error) {
	if *f.tokenFile != "" {
		return f.readSecret(*f.tokenFile)
	}
	if *f.token != "" {
		return *f.token, nil
	}
	if *f.dir == "" {
		return "", fmt.Errorf("--admin-token or --data-dir is required (or set %s / %s)", EnvToken, EnvDataDir)
	}
	ks, err := parkkey.Load(*f.dir)
	if err != nil {
		return "", err
	}
	return parktoken.Issue(ks, ks.Park(), "parkmesh-cli", parktoken.Admin, 5*time.Minute, f.cli.Now())
}

func (f *peeringFlags) call(method, path string, body any, out any) error {
	tok, err := f.bearer()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(*f.gateway, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("--gateway: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := f.cli.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", *f.gateway, err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return apierror.Read(res.StatusCode, res.Body)
	}
	if out != nil {
		return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(out)
	}
	return nil
}

func (c *CLI) peeringGenerate(args []string) int {
	f := c.newPeeringFlags("peering generate-token", "--peer PARK [--ttl 24h] [--gateway URL] (--admin-token T | --data-dir DIR)")
	peer := f.fs.String("peer", "", "id of the park the token is for")
	ttl := f.fs.Duration("ttl", 24*time.Hour, "how long the token stays valid")
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("peer"); code >= 0 {
		return code
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := f.call(http.MethodPost, "/api/v1/peerings/tokens", map[string]string{"peer": *peer, "ttl": ttl.String()}, &out); err != nil {
		return c.fail("peering generate-token", err)
	}
	fmt.Fprintf(c.Stderr, "peering token for %s, valid once until %s; give it to that park's IT team\n", *peer, out.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(c.Stdout, out.Token)
	return ExitOK
}

func (c *CLI) peeringEstablish(args []string) int {
	f := c.newPeeringFlags("peering establish", "--token PEERING_TOKEN [--gateway URL] (--admin-token T | --data-dir DIR)")
	token := f.fs.String("token", "", "the peering token the other park generated (visible to every local user: prefer --token-file)")
	tokenFile := f.fs.String("token-file", "", "a file holding the peering token (- for stdin)")
	if code := f.parse(args); code >= 0 {
		return code
	}
	if *tokenFile != "" {
		t, err := f.readSecret(*tokenFile)
		if err != nil {
			return c.fail("peering establish", fmt.Errorf("--token-file: %w", err))
		}
		*token = t
	}
	if *token == "" {
		return f.usageError("--token-file or --token is required")
	}
	var out struct {
		Park string `json:"park"`
		URL  string `json:"url"`
	}
	if err := f.call(http.MethodPost, "/api/v1/peerings", map[string]string{"token": *token}, &out); err != nil {
		return c.fail("peering establish", err)
	}
	fmt.Fprintf(c.Stderr, "peered with %s at %s\n", out.Park, out.URL)
	fmt.Fprintln(c.Stdout, out.Park)
	return ExitOK
}

func (c *CLI) peeringList(args []string) int {
	f := c.newPeeringFlags("peering list", "[--gateway URL] (--admin-token T | --data-dir DIR)")
	if code := f.parse(args); code >= 0 {
		return code
	}
	var out struct {
		Peers []struct {
			Park, URL, Health, Breaker string
			LastSuccess                time.Time `json:"last_success"`
		} `json:"peers"`
	}
	if err := f.call(http.MethodGet, "/api/v1/peers", nil, &out); err != nil {
		return c.fail("peering list", err)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARK\tURL\tHEALTH\tBREAKER\tLAST SUCCESS")
	for _, p := range out.Peers {
		last := "-"
		if !p.LastSuccess.IsZero() {
			last = p.LastSuccess.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Park, p.URL, p.Health, p.Breaker, last)
	}
	tw.Flush()
	return ExitOK
}

func (c *CLI) peeringDelete(args []string) int {
	f := c.newPeeringFlags("peering delete", "--peer PARK [--gateway URL] (--admin-token T | --data-dir DIR)")
	peer := f.fs.String("peer", "", "id of the park to stop peering with")
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("peer"); code >= 0 {
		return code
	}
	if err := f.call(http.MethodDelete, "/api/v1/peerings/"+*peer, nil, nil); err != nil {
		return c.fail("peering delete", err)
	}
	fmt.Fprintf(c.Stderr, "peering with %s deleted; its requests are refused from now on\n", *peer)
	return ExitOK
}
