package listing

// TEMPORARY until the listing-service branch lands (it owns the kind table).

// Collection is the park-side URL segment of kind k.
func (k Kind) Collection() string {
	switch k {
	case KindOrganization:
		return "organizations"
	case KindProject:
		return "projects"
	case KindTalent:
		return "talent"
	}
	return ""
}

// KindOfCollection returns the kind whose collection is s.
func KindOfCollection(s string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Collection() == s {
			return k, true
		}
	}
	return "", false
}
