// Package directory is the park's directory service: it keeps the park's organization
// listings. Its layers (service, endpoints, HTTP transport, middlewares)
// are services/listingservice's, shared with the other two services; this
// package fixes what is its own: its kind, from which its name and default
// port follow (listing.Kind's contract).
package directory

import (
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// Spec is the directory service.
var Spec = listingservice.SpecOf(listing.KindOrganization)
