package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// openStore opens the store kept in dir, closed when the test ends.
func openStore(tb testing.TB, dir string) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.Open(tb.Context(), filepath.Join(dir, "listings.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func open(tb testing.TB, dir string) listing.Store { return openStore(tb, dir) }

func TestContract(t *testing.T) { storetest.Run(t, open) }
