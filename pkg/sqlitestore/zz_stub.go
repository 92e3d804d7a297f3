package sqlitestore

// TEMPORARY stub of the store branch's contract; deleted at merge.

import (
	"context"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

func (s *Store) Put(ctx context.Context, l *listing.Listing, seq int64) (bool, error) { panic("stub") }
func (s *Store) Remove(ctx context.Context, park string, kind listing.Kind, id string, version, seq int64, at time.Time) (bool, error) {
	panic("stub")
}
func (s *Store) Purge(ctx context.Context, park string) (int64, error) { panic("stub") }
func (s *Store) ChangesOf(ctx context.Context, park string, kind listing.Kind, after int64, limit int) ([]listing.Change, error) {
	panic("stub")
}
func (s *Store) HeadOf(ctx context.Context, park string, kind listing.Kind) (int64, error) {
	panic("stub")
}
func (s *Store) GetOf(ctx context.Context, park, id string) (*listing.Listing, error) { panic("stub") }
func (s *Store) Batch(ctx context.Context, fn func(b *Batch) error) error       { panic("stub") }
func (s *Store) Meta(ctx context.Context, key string) (string, bool, error)    { panic("stub") }
func (s *Store) MetaPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	panic("stub")
}

type Batch struct{}

func (b *Batch) Put(l *listing.Listing, seq int64) (bool, error) { panic("stub") }
func (b *Batch) Remove(park string, kind listing.Kind, id string, version, seq int64, at time.Time) (bool, error) {
	panic("stub")
}
func (b *Batch) Purge(park string) (int64, error)    { panic("stub") }
func (b *Batch) SetMeta(key, value string) error     { panic("stub") }
func (b *Batch) DeleteMeta(key string) error         { panic("stub") }
