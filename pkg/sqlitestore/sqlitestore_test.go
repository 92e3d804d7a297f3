package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

func open(tb testing.TB, dir string) listing.Store {
	tb.Helper()
	s, err := sqlitestore.Open(tb.Context(), filepath.Join(dir, "listings.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) { storetest.Run(t, open) }
