// Package talent is the park's talent service: it keeps the park's talent
// listings. Its layers (service, endpoints, HTTP transport, middlewares)
// are pkg/parkservice's, shared with the other two services; this package
// fixes what is its own: its name, its kind and its default port.
package talent

import (
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkservice"
)

// Spec is the talent service.
var Spec = parkservice.Spec{Name: "talent", Kind: listing.KindTalent, DefaultPort: 7103}
