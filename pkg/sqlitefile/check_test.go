package sqlitefile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testSchema is the schema of the files these tests make: rows of text and
// an index over them, so quick_check has two b-trees to compare.
func testSchema(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
		CREATE INDEX notes_body ON notes(body)`)
	return err
}

// fillFile makes a file at path as Prepare does, holding n rows, closed
// and checkpointed, and returns its bytes.
func fillFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	if _, err := Prepare(t.Context(), path, testSchema, CheckOptions{}); err != nil {
		t.Fatal(err)
	}
	w, r, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := fmt.Sprintf("人才 %d copper research 硅谷 %s", i, strings.Repeat("填满 fill ", 40))
		if _, err := w.ExecContext(t.Context(), `INSERT INTO notes(body) VALUES (?)`, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(r.Close(), w.Close()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rows counts the rows of the file at path.
func rows(t *testing.T, path string) int {
	t.Helper()
	w, r, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	var n int
	if err := r.QueryRowContext(t.Context(), `SELECT count(*) FROM notes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// garble overwrites n bytes from off with a pattern that is no page of
// SQLite's.
func garble(b []byte, off, n int) []byte {
	c := append([]byte(nil), b...)
	for i := off; i < off+n && i < len(c); i++ {
		c[i] = byte(i*7 + 3)
	}
	return c
}

// Each way a file goes wrong is refused at start with a message naming the
// file and saying what to do; -allow-empty-store begins empty where the
// file was missing or empty, and never opens a damaged one.
func TestPrepareRefusesDamagedMissingOrEmptyFiles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "xian-hitech-talent.db")
	good := fillFile(t, src, 300)
	page := 4096
	cases := []struct {
		name    string
		damage  func(path string) // on a file its directory's record names
		problem string
		empty   bool // -allow-empty-store begins empty
	}{
		{"zero-length", func(p string) { os.WriteFile(p, nil, 0o600) }, "is empty (zero bytes)", true},
		{"truncated", func(p string) { os.WriteFile(p, good[:len(good)/page/2*page], 0o600) }, "is damaged: quick_check", false},
		{"truncated mid-page", func(p string) { os.WriteFile(p, good[:len(good)/2+100], 0o600) }, "not a whole number of 4096-byte pages", false},
		{"garbage in the header", func(p string) { os.WriteFile(p, garble(good, 0, 100), 0o600) }, "does not start with the SQLite header", false},
		{"garbage in the middle", func(p string) { os.WriteFile(p, garble(good, len(good)/2/page*page, 64<<10), 0o600) }, "is damaged: quick_check", false},
		{"missing beside the others", func(p string) { os.Remove(p) }, "is missing, but this data directory held it (stores.txt names it)", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "xian-hitech-talent.db")
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := record(dir, filepath.Base(path)); err != nil {
				t.Fatal(err)
			}
			c.damage(path)
			_, err := Prepare(t.Context(), path, testSchema, CheckOptions{})
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("Prepare = %v, want a *StartError", err)
			}
			msg := err.Error()
			for _, want := range []string{path, c.problem, "parkmesh restore --from DIR", "-allow-empty-store"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			res, err := Prepare(t.Context(), path, testSchema, CheckOptions{AllowEmpty: true})
			if !c.empty {
				if !errors.As(err, &se) {
					t.Fatalf("with AllowEmpty, a damaged file opened (err %v)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("with AllowEmpty: %v", err)
			}
			if n := rows(t, path); !res.Created || n != 0 {
				t.Errorf("with AllowEmpty: created %v, %d rows; want a new, empty file", res.Created, n)
			}
		})
	}
}

// A new data directory gets its file created and recorded; a second
// start keeps it; its loss is then refused.
func TestNewDirectoryCreatesAndRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p-directory.db")
	if res, err := Prepare(t.Context(), path, testSchema, CheckOptions{}); err != nil || !res.Created {
		t.Fatalf("Prepare in a new directory = %+v, %v", res, err)
	}
	w, r, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(t.Context(), `INSERT INTO notes(body) VALUES ('one')`); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	if ok, err := recorded(dir, "p-directory.db"); !ok || err != nil {
		t.Fatalf("recorded = %v, %v", ok, err)
	}
	if _, err := os.Stat(path + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file stayed: %v", err)
	}
	if res, err := Prepare(t.Context(), path, testSchema, CheckOptions{}); err != nil || res.Created {
		t.Fatalf("Prepare of the file made before = %+v, %v", res, err)
	}
	if n := rows(t, path); n != 1 {
		t.Errorf("kept file holds %d rows, want 1", n)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(f)
	}
	if _, err := Prepare(t.Context(), path, testSchema, CheckOptions{}); err == nil {
		t.Fatal("a recorded file that went missing was created again")
	}
}

// The club index is a cache: gone or empty, it is made again; damaged, it
// is refused, never served.
func TestRebuildableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "club-index.db")
	good := fillFile(t, path, 200)
	os.Remove(filepath.Join(dir, RecordName))
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cache := CheckOptions{Rebuildable: true, What: "club index"}
	if res, err := Prepare(t.Context(), path, testSchema, cache); err != nil || !res.Created {
		t.Fatalf("empty cache: %+v, %v", res, err)
	}
	if err := os.WriteFile(path, garble(good, len(good)/2/4096*4096, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
	_, err := Prepare(t.Context(), path, testSchema, cache)
	if err == nil || !strings.Contains(err.Error(), "rebuilt from the park's and its peers' feeds") || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged cache: %v", err)
	}
}
