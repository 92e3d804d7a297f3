package listing

import (
	"net/url"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// ParseKinds reads a comma-separated list of kinds, each a collection
// name (projects) or a kind (project); field names the parameter in errors.
func ParseKinds(s, field string) ([]Kind, error) {
	var out []Kind
	for _, p := range strings.Split(s, ",") {
		k, ok := KindOfCollection(p)
		if !ok {
			k = Kind(p)
		}
		if !k.Valid() {
			return nil, apierror.InvalidField(field, "%q is not organizations, projects or talent", clip(p))
		}
		out = append(out, k)
	}
	return out, nil
}

// ParseParks reads a comma-separated list of at most 100 park ids from
// parameter name of v (nil when absent).
func ParseParks(v url.Values, name string) ([]string, error) {
	s := v.Get(name)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 100 {
		return nil, apierror.InvalidField(name, "names more than 100 parks")
	}
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if !ValidParkID(parts[i]) {
			return nil, apierror.InvalidField(name, "%q is not a park id", clip(parts[i]))
		}
	}
	return parts, nil
}
