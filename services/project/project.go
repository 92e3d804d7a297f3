// Package project is the park's project service: it keeps the park's project
// listings. Its layers (service, endpoints, HTTP transport, middlewares)
// are services/listingservice's, shared with the other two services; this
// package fixes what is its own: its kind, from which its name and default
// port follow (listing.Kind's contract).
package project

import (
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// Spec is the project service.
var Spec = listingservice.SpecOf(listing.KindProject)
