// Package seed gives the bench's parks their services' databases, filled
// with synthetic listings (pkg/listing/synth) made once per park and size
// and copied for each run.
package seed

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/synth"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// PrivateEvery makes one seeded listing in this many private: a peer's
// club index must hold every other one and never these.
const PrivateEvery = 20

// Seeder gives every park a fresh data directory holding its services'
// databases with a fixed number of synthetic listings. The databases are
// made once per park and size under <root>/seed/<park>-<m> and copied for
// each run.
type Seeder struct {
	Root     string                // the bench's working directory
	Listings func(park string) int // how many listings park gets
}

// Prepare is the launcher's Seed: it empties dataDir and copies the park's
// seeded databases into it, seeding them first if need be.
func (s *Seeder) Prepare(park, dataDir string) error {
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	m := s.Listings(park)
	if m == 0 {
		return nil
	}
	src, err := s.seed(park, m)
	if err != nil {
		return err
	}
	for _, k := range listing.Kinds {
		// A write-ahead log left beside a database holds committed writes
		// too: it goes with it.
		for _, name := range []string{park + "-" + k.Service() + ".db", park + "-" + k.Service() + ".db-wal"} {
			err := copyFile(filepath.Join(src, name), filepath.Join(dataDir, name))
			if err != nil && !(errors.Is(err, fs.ErrNotExist) && filepath.Ext(name) == ".db-wal") {
				return err
			}
		}
	}
	return nil
}

// seed returns the directory of park's seeded databases with m listings,
// making it when missing (in a temporary directory renamed at the end, so
// an interrupted seed is made again).
func (s *Seeder) seed(park string, m int) (string, error) {
	dir := filepath.Join(s.Root, "seed", fmt.Sprintf("%s-%d", park, m))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return "", err
	}
	h := fnv.New64a()
	h.Write([]byte(park))
	r := rand.New(rand.NewPCG(h.Sum64(), uint64(m)))
	now := time.Now().UTC()
	n := 0
	for ki, k := range listing.Kinds {
		st, err := sqlitestore.Open(context.Background(), filepath.Join(tmp, park+"-"+k.Service()+".db"))
		if err != nil {
			return "", err
		}
		// m split over the kinds, the first kinds taking the remainder.
		want := m / len(listing.Kinds)
		if ki < m%len(listing.Kinds) {
			want++
		}
		for i := 0; i < want; i++ {
			l := synth.Listing(r, ki*1_000_000/3+i, k, park, now)
			if n++; n%PrivateEvery == 0 {
				l.Visibility = listing.Private
			}
			if err := st.Create(context.Background(), l); err != nil {
				st.Close()
				return "", err
			}
		}
		if err := st.Close(); err != nil {
			return "", err
		}
	}
	return dir, os.Rename(tmp, dir)
}

// Count returns how many of park's seeded listings viewer may see: all of
// them for the park itself ("" or park), those visible to viewer for a
// peer.
func (s *Seeder) Count(park, viewer string) (int, error) {
	m := s.Listings(park)
	if m == 0 {
		return 0, nil
	}
	dir, err := s.seed(park, m)
	if err != nil {
		return 0, err
	}
	if viewer == park {
		viewer = ""
	}
	total := 0
	for _, k := range listing.Kinds {
		st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, park+"-"+k.Service()+".db"))
		if err != nil {
			return 0, err
		}
		page, err := st.Search(context.Background(), listing.Query{VisibleTo: viewer, CountParks: true, Limit: 1})
		st.Close()
		if err != nil {
			return 0, err
		}
		total += page.ParkHits[park]
	}
	return total, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
