// Package sample embeds the ParkMesh local sample data: one JSON file per
// park, named <park-id>.json, holding the park's identity and the listings
// (organizations, projects and talent) a local demo seeds into that park's
// services. Listings carry no server-set fields (id, park, version,
// timestamps); the loader of each park assigns them on creation.
//
// The data is fictional but drawn from Chinese press coverage of hi-tech
// zones, offshore innovation centres, science enclaves (飞地) and the TSPPP
// science-park partnership. People in talent listings are invented.
package sample

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

//go:embed *.json
var files embed.FS

// Park identifies one sample park.
type Park struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	NameZH  string `json:"name_zh"`
	Country string `json:"country"`
	City    string `json:"city"`
}

// File is the content of one sample file: a park and its listings.
type File struct {
	Park     Park              `json:"park"`
	Listings []listing.Listing `json:"listings"`
}

// Parks returns every sample file, sorted by park id.
func Parks() ([]File, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(names))
	for _, name := range names {
		f, err := decodeFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Park.ID < out[j].Park.ID })
	return out, nil
}

// Load returns the sample file of the park parkID.
func Load(parkID string) (*File, error) {
	if !listing.ValidParkID(parkID) {
		return nil, fmt.Errorf("sample: unknown park %q", parkID)
	}
	f, err := decodeFile(parkID + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sample: unknown park %q", parkID)
	}
	return f, err
}

// decodeFile strictly decodes the embedded file name and checks that the
// park id inside matches the file name.
func decodeFile(name string) (*File, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("sample: %s: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("sample: %s: unexpected data after the top-level object", name)
	}
	if want := strings.TrimSuffix(path.Base(name), ".json"); f.Park.ID != want {
		return nil, fmt.Errorf("sample: %s: park id %q does not match the file name", name, f.Park.ID)
	}
	return &f, nil
}
