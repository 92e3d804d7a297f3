package listing

// TEMPORARY stub of the store branch's contract; deleted at merge.

type Audience struct {
	Club  bool     `json:"club,omitempty"`
	Parks []string `json:"parks,omitempty"`
}

func (a Audience) Includes(peer string) bool {
	if a.Club {
		return true
	}
	for _, p := range a.Parks {
		if p == peer {
			return true
		}
	}
	return false
}



func (a Audience) With(l *Listing) Audience {
	switch l.Visibility {
	case Club:
		a.Club = true
	case Peers:
		a.Parks = append(append([]string(nil), a.Parks...), l.ShareWith...)
	}
	return a
}
