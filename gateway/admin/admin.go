// Package admin is the parkmesh admin command: creating a park's signing
// keys, issuing park-local tokens to its staff (recorded in the gateway's
// state), rotating and listing keys, backing up and restoring the node;
// these work on the gateway's data directory directly, so they run where
// the gateway's data lives and need no running gateway. Listing and revoking tokens and the peering commands
// go through the gateway's park-side API.
package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Exit statuses of Run.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // the command line is wrong
)

// Environment variables that stand in for flags that are not given.
const (
	EnvDataDir = "PARKMESH_DATA_DIR"
	EnvPark    = "PARKMESH_PARK"
)

// CLI runs admin commands. Output meant for scripts (a kid, a token, the key
// list) goes to Stdout; messages for the operator go to Stderr. Nothing it
// prints contains private key material.
type CLI struct {
	Stdout, Stderr io.Writer
	// Stdin is where "-" reads a token file from (os.Stdin in the real
	// command; may be nil).
	Stdin io.Reader
	// Getenv reads the environment (os.Getenv in the real command).
	Getenv func(string) string
	// Now is the clock (time.Now in the real command).
	Now func() time.Time
	// HTTPClient talks to the gateway in the peering commands (nil:
	// http.DefaultClient).
	HTTPClient *http.Client
}

const usage = `parkmesh administers a ParkMesh park node.

Usage:
  parkmesh init --park ID [--admin-user admin] [--no-admin] --data-dir DIR
        create the park's first signing key (prints its kid) and its first
        admin account, whose password goes to DIR/initial-admin-password
        (mode 0600, never printed): sign in, then reset it
  parkmesh user add --username NAME --role viewer|editor|admin
        [--display-name TEXT] [--lang zh|en] --password-file FILE|- --data-dir DIR
        add a staff account that signs in to the portal with a password
  parkmesh user list --data-dir DIR
        the park's staff accounts
  parkmesh user disable --username NAME [--enable] --data-dir DIR
        disable an account (its sessions end at once) or enable it again
  parkmesh user reset-password --username NAME --password-file FILE|- --data-dir DIR
        set a new password; the account's sessions end
  parkmesh token create --sub NAME --role viewer|editor|admin [--ttl 24h] --data-dir DIR
        issue a park-local access token, recorded in the gateway's state
        under DIR; prints the token (and its id on stderr)
  parkmesh token list [--all]
        the park's recorded tokens: id, holder, role, expiry, revocation
  parkmesh token revoke --id TOKEN_ID
        revoke a token; every gateway replica refuses it within seconds
  parkmesh keys rotate [--grace 10m] --data-dir DIR
        make a new signing key, keep the previous one published; prints the new kid
  parkmesh keys list --data-dir DIR
        list the published keys
  parkmesh backup --out DIR [--include-private-keys] --data-dir DIR
        copy the park's stores, the gateway's state and the park's public
        identity while the node serves (private keys only when asked)
  parkmesh restore --from DIR --data-dir DIR
        put a backup back, with the node stopped; peers that read past the
        backup copy the park afresh (docs/operations.md)
  parkmesh peering generate-token --peer PARK [--ttl 24h]
        one-time token another park uses to peer with this one; prints it
  parkmesh peering establish --token-file FILE
        complete a peering with a token another park generated (FILE "-"
        reads it from stdin; --token works too, but shows it to every
        local user in the process list)
  parkmesh peering list
        the park's peers, their health and breaker state
  parkmesh peering delete --peer PARK
        end a peering; every gateway replica refuses that park at once

The peering and token list/revoke commands talk to the park's gateway
(--gateway, default http://127.0.0.1:8080, env PARKMESH_GATEWAY) with an
admin token from PARKMESH_ADMIN_TOKEN or --admin-token-file, or mint a
short one from --data-dir. (--admin-token also works, but a token on the
command line is visible to every local user.)

--data-dir falls back to $PARKMESH_DATA_DIR and --park to $PARKMESH_PARK.
Run "parkmesh COMMAND -h" for a command's flags.
`

type command struct {
	path string
	run  func(c *CLI, args []string) int
}

func commands() []command {
	return []command{
		{"init", (*CLI).init},
		{"token create", (*CLI).tokenCreate},
		{"token list", (*CLI).tokenList},
		{"token revoke", (*CLI).tokenRevoke},
		{"user add", (*CLI).userAdd},
		{"user list", (*CLI).userList},
		{"user disable", (*CLI).userDisable},
		{"user reset-password", (*CLI).userResetPassword},
		{"keys rotate", (*CLI).keysRotate},
		{"keys list", (*CLI).keysList},
		{"backup", (*CLI).backup},
		{"restore", (*CLI).restore},
		{"peering generate-token", (*CLI).peeringGenerate},
		{"peering establish", (*CLI).peeringEstablish},
		{"peering list", (*CLI).peeringList},
		{"peering delete", (*CLI).peeringDelete},
	}
}

// Run runs the command named by args (without the program name) and
// returns its exit status.
func (c *CLI) Run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.Stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.Stdout, usage)
		return ExitOK
	}
	for _, cmd := range commands() {
		words := strings.Fields(cmd.path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.path {
			return cmd.run(c, args[len(words):])
		}
	}
	fmt.Fprintf(c.Stderr, "parkmesh: unknown command %q\n\n%s", strings.Join(args[:min(len(args), 2)], " "), usage)
	return ExitUsage
}

// flags is one command's flag set with environment fallbacks.
type flags struct {
	cli  *CLI
	name string
	fs   *flag.FlagSet
	env  map[string]string // flag name → environment variable
}

func (c *CLI) newFlags(name, synopsis string) *flags {
	fs := flag.NewFlagSet("parkmesh "+name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	f := &flags{cli: c, name: name, fs: fs, env: map[string]string{}}
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: parkmesh %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return f
}

func (f *flags) dataDir() *string {
	f.env["data-dir"] = EnvDataDir
	return f.fs.String("data-dir", "", "the gateway's data directory; keys live in its keys/ folder (env "+EnvDataDir+")")
}

func (f *flags) park(usage string) *string {
	f.env["park"] = EnvPark
	return f.fs.String("park", "", usage+" (env "+EnvPark+")")
}

// parse parses args, then fills every flag not given from its environment
// variable. It returns the exit status to stop with, or -1 to go on.
func (f *flags) parse(args []string) int {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if f.fs.NArg() > 0 {
		return f.usageError("unexpected argument %q", f.fs.Arg(0))
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for name, env := range f.env {
		if set[name] {
			continue
		}
		if v := f.cli.Getenv(env); v != "" {
			if err := f.fs.Set(name, v); err != nil {
				return f.usageError("$%s: %v", env, err)
			}
		}
	}
	return -1
}

// require returns a usage error for the first flag among names that is
// empty, naming the flag and its environment variable.
func (f *flags) require(names ...string) int {
	for _, name := range names {
		if f.fs.Lookup(name).Value.String() != "" {
			continue
		}
		if env := f.env[name]; env != "" {
			return f.usageError("--%s is required (or set %s)", name, env)
		}
		return f.usageError("--%s is required", name)
	}
	return -1
}

func (f *flags) usageError(format string, args ...any) int {
	fmt.Fprintf(f.cli.Stderr, "parkmesh %s: %s\n", f.name, fmt.Sprintf(format, args...))
	f.fs.Usage()
	return ExitUsage
}

func (c *CLI) fail(name string, err error) int {
	fmt.Fprintf(c.Stderr, "parkmesh %s: %v\n", name, err)
	return ExitError
}

func (c *CLI) init(args []string) int {
	f := c.newFlags("init", "--park ID [--admin-user NAME] [--no-admin] --data-dir DIR")
	park := f.park("id of this park (lower-case letters, digits, hyphens)")
	adminUser := f.fs.String("admin-user", "admin", "name of the first admin account")
	noAdmin := f.fs.Bool("no-admin", false, "create no admin account (add accounts with parkmesh user add)")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("park", "data-dir"); code >= 0 {
		return code
	}
	if !*noAdmin {
		if err := accounts.ValidateUsername("admin-user", *adminUser); err != nil {
			return f.usageError("--admin-user: %v", err)
		}
	}
	ks, err := parkkey.Init(*dataDir, *park, parkkey.WithClock(c.Now))
	if err != nil {
		return c.fail("init", err)
	}
	fmt.Fprintf(c.Stderr, "created the signing key of park %s in %s\n", ks.Park(), parkkey.Dir(*dataDir))
	if !*noAdmin {
		path, err := c.initAdmin(*dataDir, *adminUser)
		if err != nil {
			return c.fail("init", err)
		}
		fmt.Fprintf(c.Stderr, "created the admin account %q; its one-time password is in %s (mode 0600): sign in, reset it with parkmesh user reset-password, then delete the file\n", *adminUser, path)
	}
	fmt.Fprintln(c.Stdout, ks.Current().ID)
	return ExitOK
}

func (c *CLI) tokenCreate(args []string) int {
	f := c.newFlags("token create", "--sub NAME --role ROLE [--ttl DURATION] --data-dir DIR")
	sub := f.fs.String("sub", "", "who the token is for: a person or a tool")
	role := f.fs.String("role", "", "viewer, editor or admin")
	ttl := f.fs.Duration("ttl", 24*time.Hour, fmt.Sprintf("how long the token is valid (at most %s)", parktoken.MaxTTL))
	park := f.park("the park the token is for; must be the key set's park when given")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("sub", "role", "data-dir"); code >= 0 {
		return code
	}
	r, err := parktoken.ParseRole(*role)
	if err != nil {
		return f.usageError("--role: %q is not a role (viewer, editor, admin)", *role)
	}
	if *ttl <= 0 || *ttl > parktoken.MaxTTL {
		return f.usageError("--ttl: %s is not between 0 and %s", *ttl, parktoken.MaxTTL)
	}
	now := c.Now()
	ks, err := parkkey.Load(*dataDir, parkkey.WithClock(func() time.Time { return now }))
	if err != nil {
		return c.fail("token create", err)
	}
	if *park != "" && *park != ks.Park() {
		return c.fail("token create", fmt.Errorf("--park %q: the keys in %s belong to park %q", *park, *dataDir, ks.Park()))
	}
	// Keep the signing key published for as long as the token may be
	// presented, even across rotations, before handing the token out.
	kid := ks.Current().ID
	if err := parkkey.RetainUntil(*dataDir, kid, now.Add(*ttl+parktoken.Leeway+time.Second)); err != nil {
		return c.fail("token create", err)
	}
	tok, err := parktoken.Issue(ks, ks.Park(), *sub, r, *ttl, now)
	if err != nil {
		return c.fail("token create", err)
	}
	// Check what we hand out with the verifier the gateway uses.
	claims, err := parktoken.NewVerifier(parktoken.StaticKeys(ks), parktoken.WithClock(func() time.Time { return now })).Verify(tok)
	if err != nil {
		return c.fail("token create", fmt.Errorf("the new token does not verify (%s): %w", parktoken.Reason(err), err))
	}
	// Record it where the gateway lists and revokes tokens from; a token
	// that could not be recorded is not handed out.
	if err := recordToken(*dataDir, claims); err != nil {
		return c.fail("token create", fmt.Errorf("recording the token in %s: %w", filepath.Join(*dataDir, state.FileName), err))
	}
	fmt.Fprintf(c.Stderr, "token for %q, role %s, park %s, expires %s (id %s, kid %s); revoke it with: parkmesh token revoke --id %s\n",
		claims.Subject, claims.Role, claims.Park, claims.ExpiresAt.UTC().Format(time.RFC3339), claims.ID, claims.KeyID, claims.ID)
	fmt.Fprintln(c.Stdout, tok)
	return ExitOK
}

// recordToken records an issued token in the gateway's state in dataDir.
func recordToken(dataDir string, cl *parktoken.Claims) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := state.Open(ctx, dataDir)
	if err != nil {
		return err
	}
	err = db.RecordLocalToken(ctx, state.LocalToken{
		ID: cl.ID, Subject: cl.Subject, Role: string(cl.Role), KeyID: cl.KeyID, IssuedAt: cl.IssuedAt, ExpiresAt: cl.ExpiresAt,
	})
	return errors.Join(err, db.Close())
}

func (c *CLI) keysRotate(args []string) int {
	f := c.newFlags("keys rotate", "[--grace DURATION] --data-dir DIR")
	grace := f.fs.Duration("grace", parkkey.DefaultGrace, "keep the previous key published at least this long (longer if it signed tokens that live longer)")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("data-dir"); code >= 0 {
		return code
	}
	if *grace < 0 {
		return f.usageError("--grace: %s is negative", *grace)
	}
	ks, err := parkkey.Rotate(*dataDir, c.Now(), parkkey.WithGrace(*grace))
	if err != nil {
		return c.fail("keys rotate", err)
	}
	for _, k := range ks.Public()[1:] {
		fmt.Fprintf(c.Stderr, "previous key %s stays published until %s\n", k.ID, k.PublishedUntil.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(c.Stderr, "new signing key of park %s; running gateways pick it up within seconds\n", ks.Park())
	fmt.Fprintln(c.Stdout, ks.Current().ID)
	return ExitOK
}

func (c *CLI) keysList(args []string) int {
	f := c.newFlags("keys list", "--data-dir DIR")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("data-dir"); code >= 0 {
		return code
	}
	ks, err := parkkey.Load(*dataDir, parkkey.WithClock(c.Now))
	if err != nil {
		return c.fail("keys list", err)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tSTATUS\tCREATED\tRETIRED\tPUBLISHED UNTIL")
	for _, k := range ks.Public() {
		status := "current"
		if k.Retired {
			status = "retired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, status, stamp(k.CreatedAt), stamp(k.RetiredAt), stamp(k.PublishedUntil))
	}
	if err := tw.Flush(); err != nil {
		return c.fail("keys list", err)
	}
	return ExitOK
}

// stamp formats a time for a listing's column: RFC 3339 in UTC, "-" for
// none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
