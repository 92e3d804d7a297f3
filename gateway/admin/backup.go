package admin

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/parkmesh/parkmesh/gateway/backup"
	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func (c *CLI) backup(args []string) int {
	f := c.newFlags("backup", "--out DIR [--include-private-keys] --data-dir DIR")
	out := f.fs.String("out", "", "a new (or empty) directory for the backup")
	private := f.fs.Bool("include-private-keys", false, "also copy the park's private signing key (keep such a backup as safe as the key itself)")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("out", "data-dir"); code >= 0 {
		return code
	}
	if *private {
		fmt.Fprintln(c.Stderr, "WARNING: this backup holds the park's private signing key: whoever reads it can act as the park. Store it encrypted, apart from ordinary backups.")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := backup.Backup(ctx, *dataDir, *out, backup.Options{IncludePrivateKeys: *private, Now: c.Now})
	if err != nil {
		return c.fail("backup", err)
	}
	for _, f := range m.Files {
		if f.Role == backup.RoleStore {
			fmt.Fprintf(c.Stderr, "%s: %d bytes, feed at %d\n", f.Path, f.Size, f.LastSeq)
		}
	}
	fmt.Fprintf(c.Stderr, "backed up park %s (%d files) into %s; the club index is not in it: the gateway rebuilds it from the feeds (%s)\n",
		m.Park, len(m.Files), *out, clubindex.FileName)
	fmt.Fprintln(c.Stdout, *out)
	return ExitOK
}

func (c *CLI) restore(args []string) int {
	f := c.newFlags("restore", "--from DIR --data-dir DIR")
	from := f.fs.String("from", "", "a directory written by parkmesh backup")
	dataDir := f.dataDir()
	if code := f.parse(args); code >= 0 {
		return code
	}
	if code := f.require("from", "data-dir"); code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := backup.Restore(ctx, *from, *dataDir, backup.Options{Now: c.Now})
	if err != nil {
		return c.fail("restore", err)
	}
	for _, k := range listing.Kinds {
		r := res.Restarts[k]
		fmt.Fprintf(c.Stderr, "%s: restored up to %d; new changes are numbered after %d, so peers that read past %d copy the park afresh\n",
			k.Service(), r.After, r.Base, r.After)
	}
	if res.KeysKept {
		fmt.Fprintf(c.Stderr, "kept the keys already in %s\n", *dataDir)
	}
	fmt.Fprintf(c.Stderr, "restored park %s from the backup of %s; the club index was removed and is rebuilt when the gateway starts\n",
		res.Manifest.Park, res.Manifest.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
	return ExitOK
}
