package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/state"
)

// InitialPasswordFile is where `parkmesh init` writes the first admin's
// password (mode 0600), in the data directory.
const InitialPasswordFile = "initial-admin-password"

// withAccounts opens the gateway's state in dataDir for fn. The accounts
// are the gateway's own (a running gateway sees every change at once:
// they share the file).
func withAccounts(dataDir string, now func() time.Time, fn func(context.Context, *accounts.Accounts) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := state.Open(ctx, dataDir)
	if err != nil {
		return err
	}
	a := accounts.New(db)
	a.Now = now
	return errors.Join(fn(ctx, a), db.Close())
}

// readPassword reads a password from file ("-": stdin): its first line,
// without the line ending. A password is never a flag value (it would show
// in the process list and the shell's history).
func (c *CLI) readPassword(file string) (string, error) {
	var r io.Reader
	if file == "-" {
		if c.Stdin == nil {
			return "", errors.New("--password-file -: no standard input")
		}
		r = c.Stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, accounts.MaxPasswordLen+2))
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(pw, "\r"), nil
}

func (c *CLI) userAdd(args []string) int {
	f := c.newFlags("user add", "--username NAME --role ROLE [--display-name TEXT] [--lang zh|en] --password-file FILE|- --data-dir DIR")
	name := f.fs.String("username", "", "the account's name: lower-case letters, digits and . _ - @")
	role := f.fs.String("role", "", "viewer, editor or admin")
	display := f.fs.String("display-name", "", "the person's name as the portal shows it (default: the username)")
	lang := f.fs.String("lang", "zh", "the portal's language for this person: zh or en")
	pwFile := f.fs.String("password-file", "", "file whose first line is the password (at least 12 bytes); - reads standard input")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("username", "role", "password-file", "data-dir"); code >= 0 {
		return code
	}
	pw, err := c.readPassword(*pwFile)
	if err != nil {
		return c.fail("user add", err)
	}
	var u accounts.User
	err = withAccounts(*dataDir, c.Now, func(ctx context.Context, a *accounts.Accounts) error {
		u, err = a.Add(ctx, accounts.NewUser{Username: *name, DisplayName: *display, Role: *role, Password: pw, Lang: *lang})
		return err
	})
	if err != nil {
		return c.fail("user add", err)
	}
	fmt.Fprintf(c.Stderr, "account %s (%s) added with role %s\n", u.Username, u.DisplayName, u.Role)
	return ExitOK
}

func (c *CLI) userList(args []string) int {
	f := c.newFlags("user list", "--data-dir DIR")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("data-dir"); code >= 0 {
		return code
	}
	var us []accounts.User
	err := withAccounts(*dataDir, c.Now, func(ctx context.Context, a *accounts.Accounts) (err error) {
		us, err = a.List(ctx)
		return err
	})
	if err != nil {
		return c.fail("user list", err)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tROLE\tSTATUS\tSIGN-IN\tLANG\tDISPLAY NAME\tCREATED")
	for _, u := range us {
		status, via := "active", "password"
		if u.Disabled {
			status = "disabled"
		}
		if u.OIDC {
			via = "oidc"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, u.Role, status, via, u.Lang, u.DisplayName, stamp(u.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return c.fail("user list", err)
	}
	return ExitOK
}

func (c *CLI) userDisable(args []string) int {
	f := c.newFlags("user disable", "--username NAME [--enable] --data-dir DIR")
	name := f.fs.String("username", "", "the account to disable")
	enable := f.fs.Bool("enable", false, "enable the account again instead")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("username", "data-dir"); code >= 0 {
		return code
	}
	err := withAccounts(*dataDir, c.Now, func(ctx context.Context, a *accounts.Accounts) error {
		_, err := a.SetDisabled(ctx, *name, !*enable)
		return err
	})
	if err != nil {
		return c.fail("user disable", err)
	}
	if *enable {
		fmt.Fprintf(c.Stderr, "account %s enabled\n", *name)
	} else {
		fmt.Fprintf(c.Stderr, "account %s disabled; its sessions are ended\n", *name)
	}
	return ExitOK
}

func (c *CLI) userResetPassword(args []string) int {
	f := c.newFlags("user reset-password", "--username NAME --password-file FILE|- --data-dir DIR")
	name := f.fs.String("username", "", "the account")
	pwFile := f.fs.String("password-file", "", "file whose first line is the new password (at least 12 bytes); - reads standard input")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("username", "password-file", "data-dir"); code >= 0 {
		return code
	}
	pw, err := c.readPassword(*pwFile)
	if err != nil {
		return c.fail("user reset-password", err)
	}
	err = withAccounts(*dataDir, c.Now, func(ctx context.Context, a *accounts.Accounts) error {
		_, err := a.ResetPassword(ctx, *name, pw)
		return err
	})
	if err != nil {
		return c.fail("user reset-password", err)
	}
	fmt.Fprintf(c.Stderr, "password of %s reset; its sessions are ended\n", *name)
	return ExitOK
}

// initAdmin creates the park's first admin account with a random password
// written to <dataDir>/initial-admin-password (0600); the password is
// never printed.
func (c *CLI) initAdmin(dataDir, username string) (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	path := filepath.Join(dataDir, InitialPasswordFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing the first admin's password: %w", err)
	}
	_, werr := fmt.Fprintln(f, pw)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return "", err
	}
	err = withAccounts(dataDir, c.Now, func(ctx context.Context, a *accounts.Accounts) error {
		_, err := a.Add(ctx, accounts.NewUser{Username: username, DisplayName: username, Role: "admin", Password: pw})
		return err
	})
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}
