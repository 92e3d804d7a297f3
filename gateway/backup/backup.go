// Package backup copies a park node's data directory while it serves and
// puts such a copy back with the node stopped (parkmesh backup, parkmesh
// restore). A backup holds the three services' stores, the gateway's state
// and the park's public identity (its key set's manifest, retired public
// keys and the JWKS), and the private keys only when asked; not the club
// index, which the gateway rebuilds from the feeds. A restore moves every
// store's sequence past anything it may have issued since the backup and
// records the skipped range in the gateway's state, so that a peer whose
// position came from the undone history is refused (409) and copies the
// park afresh, while one behind the backup point resumes where it was.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// ManifestName is the manifest's file in a backup directory; it is
// written last, so a directory without it is not a finished backup.
const ManifestName = "manifest.json"

// manifestVersion is the manifest format this package writes and reads.
const manifestVersion = 1

// File roles in a manifest.
const (
	RoleStore      = "store"       // a service's listing store
	RoleState      = "state"       // the gateway's state (webhooks, tokens)
	RoleIdentity   = "identity"    // public: key set manifest, public keys, JWKS
	RolePrivateKey = "private-key" // the park's current signing key
)

// Manifest describes a backup: what it holds and how to check it.
type Manifest struct {
	Version     int       `json:"version"`
	Park        string    `json:"park"`
	CreatedAt   time.Time `json:"created_at"`
	PrivateKeys bool      `json:"private_keys"`
	Files       []File    `json:"files"`
}

// File is one file of a backup, at the same relative path as in the data
// directory.
type File struct {
	Path   string       `json:"path"`
	Role   string       `json:"role"`
	Kind   listing.Kind `json:"kind,omitempty"`
	Size   int64        `json:"size"`
	SHA256 string       `json:"sha256"`
	// LastSeq is a store's newest sequence in the copy: the backup point
	// of its feed.
	LastSeq int64 `json:"last_seq,omitempty"`
}

// JWKSName is the park's public key set in a backup, as its gateway
// publishes it at /.well-known/jwks.json.
const JWKSName = "jwks.json"

// Options tune Backup and Restore.
type Options struct {
	// IncludePrivateKeys copies the park's private signing key too.
	IncludePrivateKeys bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// now is the clock's time as the stores keep it (microseconds).
func (o Options) now() time.Time {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

// Backup copies the node whose data directory is dataDir into out (new or
// empty), while the node serves: each SQLite file through one read
// transaction (sqlitefile.CopyTo), the gateway's state first, so the feed
// positions it keeps (the webhooks') are not ahead of the stores' copies.
func Backup(ctx context.Context, dataDir, out string, o Options) (*Manifest, error) {
	ks, err := parkkey.Load(dataDir)
	if err != nil {
		return nil, fmt.Errorf("reading the park's identity: %w", err)
	}
	if err := emptyDir(out); err != nil {
		return nil, err
	}
	m := &Manifest{Version: manifestVersion, Park: ks.Park(), CreatedAt: o.now(), PrivateKeys: o.IncludePrivateKeys}
	add := func(rel, role string, kind listing.Kind, seq int64) error {
		size, sum, err := digest(filepath.Join(out, rel))
		if err != nil {
			return err
		}
		m.Files = append(m.Files, File{Path: rel, Role: role, Kind: kind, Size: size, SHA256: sum, LastSeq: seq})
		return nil
	}
	if err := sqlitefile.CopyTo(ctx, filepath.Join(dataDir, state.FileName), filepath.Join(out, state.FileName)); err != nil {
		return nil, err
	}
	if err := add(state.FileName, RoleState, "", 0); err != nil {
		return nil, err
	}
	for _, k := range listing.Kinds {
		name := sqlitestore.ServiceFileName(ks.Park(), k)
		dst := filepath.Join(out, name)
		if err := sqlitefile.CopyTo(ctx, filepath.Join(dataDir, name), dst); err != nil {
			return nil, err
		}
		seq, err := sqlitestore.FileSeq(ctx, dst)
		if err != nil {
			return nil, err
		}
		if err := add(name, RoleStore, k, seq); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(filepath.Join(out, parkkey.KeysDir), 0o700); err != nil {
		return nil, err
	}
	keys, err := os.ReadDir(parkkey.Dir(dataDir))
	if err != nil {
		return nil, err
	}
	for _, e := range keys {
		name := e.Name()
		role := RoleIdentity
		switch {
		case !e.Type().IsRegular() || strings.HasPrefix(name, "."):
			continue // the lock, temporary files
		case strings.HasSuffix(name, ".key"):
			if !o.IncludePrivateKeys {
				continue
			}
			role = RolePrivateKey
		}
		rel := filepath.Join(parkkey.KeysDir, name)
		if err := copyFile(filepath.Join(dataDir, rel), filepath.Join(out, rel)); err != nil {
			return nil, err
		}
		if err := add(rel, role, "", 0); err != nil {
			return nil, err
		}
	}
	jwks, err := json.MarshalIndent(ks.JWKS(), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(out, JWKSName), jwks); err != nil {
		return nil, err
	}
	if err := add(JWKSName, RoleIdentity, "", 0); err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(out, ManifestName), raw); err != nil {
		return nil, err
	}
	return m, syncDir(out)
}

// ReadManifest reads from's manifest and checks every file it names
// against it (size and SHA-256): a backup with a changed, missing or
// unlisted file is refused.
func ReadManifest(from string) (*Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(from, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%s is not a finished backup: %w", from, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: unreadable manifest: %w", from, err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("%s: manifest version %d, this parkmesh reads %d", from, m.Version, manifestVersion)
	}
	seen := map[string]bool{}
	stores := map[listing.Kind]bool{}
	for _, f := range m.Files {
		if !filepath.IsLocal(f.Path) || seen[f.Path] {
			return nil, fmt.Errorf("%s: manifest names %q twice or outside the backup", from, f.Path)
		}
		seen[f.Path] = true
		size, sum, err := digest(filepath.Join(from, f.Path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		if size != f.Size || sum != f.SHA256 {
			return nil, fmt.Errorf("%s: %s does not match the manifest (size %d, want %d; sha256 %s, want %s): the backup was changed or damaged",
				from, f.Path, size, f.Size, sum, f.SHA256)
		}
		switch f.Role {
		case RoleStore:
			if f.Path != sqlitestore.ServiceFileName(m.Park, f.Kind) || stores[f.Kind] {
				return nil, fmt.Errorf("%s: store %s does not belong to park %s", from, f.Path, m.Park)
			}
			stores[f.Kind] = true
		case RolePrivateKey:
			if !m.PrivateKeys {
				return nil, fmt.Errorf("%s: a private key the manifest says it does not hold", from)
			}
		}
	}
	for _, k := range listing.Kinds {
		if !stores[k] {
			return nil, fmt.Errorf("%s: the %s store is missing", from, k.Service())
		}
	}
	if !seen[state.FileName] {
		return nil, fmt.Errorf("%s: the gateway's state is missing", from)
	}
	return &m, nil
}

// Restored is what Restore did.
type Restored struct {
	Manifest *Manifest
	// Restarts per kind: the backup point and the new base of each log.
	Restarts map[listing.Kind]sqlitestore.Restart
	// KeysKept is true when dataDir's own keys were kept (they are the
	// park's newest identity); false when the backup's were put in place.
	KeysKept bool
}

// ErrRunning is returned by Restore when a process of the node has one of
// its databases open.
var ErrRunning = errors.New("the node is running")

// Restore puts the backup in from into dataDir, which no process of the
// node may have open (checked on every database's WAL lock). It checks the
// backup against its manifest, stages every file beside its place, moves
// each store's sequence to sqlitestore.RestartBase (above the backup and
// above what the replaced file had issued), records the skipped ranges in
// the gateway's state (merged with the ones already recorded there), then
// renames each file into place and deletes the club index, which the
// gateway rebuilds from the feeds. The data directory's own keys, when it
// has some, are kept and must be the same park's.
func Restore(ctx context.Context, from, dataDir string, o Options) (*Restored, error) {
	m, err := ReadManifest(from)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	dbs := []string{state.FileName, clubindex.FileName}
	for _, k := range listing.Kinds {
		dbs = append(dbs, sqlitestore.ServiceFileName(m.Park, k))
	}
	for _, name := range dbs {
		used, err := sqlitefile.InUse(filepath.Join(dataDir, name))
		if err != nil {
			return nil, err
		}
		if used {
			return nil, fmt.Errorf("%w: a process has %s open; stop the gateway and the services first", ErrRunning, filepath.Join(dataDir, name))
		}
	}
	res := &Restored{Manifest: m, Restarts: map[listing.Kind]sqlitestore.Restart{}}
	if ks, err := parkkey.Load(dataDir); err == nil {
		if ks.Park() != m.Park {
			return nil, fmt.Errorf("%s holds park %s's keys; the backup is park %s's", dataDir, ks.Park(), m.Park)
		}
		res.KeysKept = true
	} else if _, statErr := os.Stat(parkkey.Dir(dataDir)); statErr == nil {
		return nil, fmt.Errorf("%s: the keys there cannot be read (%v); move them away or repair them first", dataDir, err)
	} else if !m.PrivateKeys {
		return nil, fmt.Errorf("%s has no keys and the backup holds no private key: copy the keys/ folder from the old node, or restore a backup made with --include-private-keys", dataDir)
	}

	stage, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	now := o.now()
	// The restarts already recorded in the live state stay void too.
	recorded := map[listing.Kind][]sqlitestore.Restart{}
	if _, err := os.Stat(filepath.Join(dataDir, state.FileName)); err == nil {
		if db, err := state.Open(ctx, dataDir); err == nil {
			recorded, err = db.FeedRestarts(ctx)
			db.Close()
			if err != nil {
				return nil, fmt.Errorf("reading the restores recorded in %s: %w", dataDir, err)
			}
		}
	}
	for _, f := range m.Files {
		if f.Role != RoleStore {
			continue
		}
		var replaced int64
		if seq, err := sqlitestore.FileSeq(ctx, filepath.Join(dataDir, f.Path)); err == nil {
			replaced = seq
		}
		base, err := sqlitestore.RestartBase(f.LastSeq, replaced)
		if err != nil {
			return nil, err
		}
		staged := filepath.Join(stage, f.Path)
		if err := copyFile(filepath.Join(from, f.Path), staged); err != nil {
			return nil, err
		}
		rs, err := sqlitestore.MarkRestart(ctx, staged, base, now)
		if err != nil {
			return nil, err
		}
		if rs.After != f.LastSeq {
			return nil, fmt.Errorf("%s: the copy's sequence is %d, the manifest says %d", f.Path, rs.After, f.LastSeq)
		}
		res.Restarts[f.Kind] = rs
	}
	if err := copyFile(filepath.Join(from, state.FileName), filepath.Join(stage, state.FileName)); err != nil {
		return nil, err
	}
	db, err := state.Open(ctx, stage)
	if err != nil {
		return nil, err
	}
	for k, rs := range recorded {
		for _, r := range rs {
			if err := db.RecordFeedRestart(ctx, k, r); err != nil {
				db.Close()
				return nil, err
			}
		}
	}
	for k, r := range res.Restarts {
		if err := db.RecordFeedRestart(ctx, k, r); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	if !res.KeysKept {
		if err := os.MkdirAll(filepath.Join(stage, parkkey.KeysDir), 0o700); err != nil {
			return nil, err
		}
		for _, f := range m.Files {
			if f.Role == RoleIdentity && strings.HasPrefix(f.Path, parkkey.KeysDir+string(filepath.Separator)) || f.Role == RolePrivateKey {
				if err := copyFile(filepath.Join(from, f.Path), filepath.Join(stage, f.Path)); err != nil {
					return nil, err
				}
			}
		}
		if _, err := parkkey.Load(stage); err != nil {
			return nil, fmt.Errorf("the backup's keys do not load: %w", err)
		}
	}

	// Everything is staged and checked: put it in place. The databases'
	// WAL and shared-memory files belong to the files being replaced.
	place := []string{state.FileName}
	for _, f := range m.Files {
		if f.Role == RoleStore {
			place = append(place, f.Path)
		}
	}
	for _, name := range place {
		if err := removeDB(filepath.Join(stage, name), true); err != nil {
			return nil, err
		}
		if err := removeDB(filepath.Join(dataDir, name), true); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(dataDir, name)); err != nil {
			return nil, err
		}
	}
	if !res.KeysKept {
		if err := os.Rename(filepath.Join(stage, parkkey.KeysDir), parkkey.Dir(dataDir)); err != nil {
			return nil, err
		}
	}
	if err := removeDB(filepath.Join(dataDir, clubindex.FileName), false); err != nil {
		return nil, err
	}
	return res, syncDir(dataDir)
}

// removeDB removes a SQLite file's WAL and shared memory, and the file
// itself unless sidecarsOnly.
func removeDB(path string, sidecarsOnly bool) error {
	names := []string{path + "-wal", path + "-shm", path + "-journal"}
	if !sidecarsOnly {
		names = append(names, path)
	}
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// emptyDir makes dir, or checks that it is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; back up into a new directory", dir)
	}
	return nil
}

func digest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile copies src to the new file dst (0600), synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not every file system syncs a directory
	return nil
}
