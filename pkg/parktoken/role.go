package parktoken

import "github.com/parkmesh/parkmesh/pkg/apierror"

// Role is what a park-local token lets its holder do. Each role includes
// the ones below it: admin ⊇ editor ⊇ viewer.
type Role string

// The roles, weakest first.
const (
	// Viewer reads listings, searches and follows the stream.
	Viewer Role = "viewer"
	// Editor also creates, changes and withdraws listings.
	Editor Role = "editor"
	// Admin also manages peerings and keys.
	Admin Role = "admin"
)

// Roles lists every role, weakest first.
var Roles = []Role{Viewer, Editor, Admin}

func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Editor:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a holder of r may do what needs required. An
// unknown role allows nothing, and nothing allows an unknown requirement.
func (r Role) Allows(required Role) bool {
	return r.Valid() && required.Valid() && r.rank() >= required.rank()
}

// ParseRole returns the role named s, or an Invalid error naming field
// "role".
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", apierror.InvalidField("role", "%q is not a role (viewer, editor, admin)", s)
}
