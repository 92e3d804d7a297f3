// Package project is the park's project service: it keeps the park's project
// listings. Its layers (service, endpoints, HTTP transport, middlewares)
// are pkg/parkservice's, shared with the other two services; this package
// fixes what is its own: its name, its kind and its default port.
package project

import (
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkservice"
)

// Spec is the project service.
var Spec = parkservice.Spec{Name: "project", Kind: listing.KindProject, DefaultPort: 7102}
