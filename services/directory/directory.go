// Package directory is the park's directory service: it keeps the park's organization
// listings. Its layers (service, endpoints, HTTP transport, middlewares)
// are pkg/parkservice's, shared with the other two services; this package
// fixes what is its own: its name, its kind and its default port.
package directory

import (
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkservice"
)

// Spec is the directory service.
var Spec = parkservice.Spec{Name: "directory", Kind: listing.KindOrganization, DefaultPort: 7101}
