package listing

// The service contract of each kind: which service keeps it, under which
// names it is found, where it listens by default. It used to be spelled out
// by hand wherever a kind had to be turned into a path, a Consul query or a
// binary; a renamed collection then broke only the copies nobody updated.
// This table is the one place; everything else asks a Kind.
type kindContract struct {
	collection  string // the park-side URL segment: /api/v1/{collection}
	service     string // the service's short name: folder, binary, database file
	defaultPort int    // the service's -listen port when none is given
}

var contracts = map[Kind]kindContract{
	KindOrganization: {collection: "organizations", service: "directory", defaultPort: 7101},
	KindProject:      {collection: "projects", service: "project", defaultPort: 7102},
	KindTalent:       {collection: "talent", service: "talent", defaultPort: 7103},
}

// servicePrefix makes a service's short name its Consul service name. The
// prefix keeps ParkMesh's services apart from whatever else shares the
// Consul datacenter.
const servicePrefix = "parkmesh-"

// Collection is the park-side URL segment of kind k's listings
// ("organizations", "projects", "talent"), "" for an unknown kind.
func (k Kind) Collection() string { return contracts[k].collection }

// Service is the short name of the service keeping kind k's listings
// ("directory", "project", "talent"): its folder under services/, its
// binary, and part of its database file name. "" for an unknown kind.
func (k Kind) Service() string { return contracts[k].service }

// ServiceName is the name the service keeping kind k registers in Consul
// and reports as its OpenTelemetry service.name ("parkmesh-directory", …);
// the gateway discovers instances by it. "" for an unknown kind.
func (k Kind) ServiceName() string {
	if s := k.Service(); s != "" {
		return servicePrefix + s
	}
	return ""
}

// DefaultPort is the port the service keeping kind k listens on when no
// -listen is given (7101, 7102, 7103), so the three run side by side on a
// laptop. 0 for an unknown kind.
func (k Kind) DefaultPort() int { return contracts[k].defaultPort }

// KindOfCollection returns the kind whose collection is s, the inverse of
// Collection. Matching is exact: URL segments are case-sensitive.
func KindOfCollection(s string) (Kind, bool) {
	for _, k := range Kinds {
		if contracts[k].collection == s {
			return k, true
		}
	}
	return "", false
}
