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

type ChangeX struct {
	FirstSeq int64
	Park     string
	Kind     Kind
	Audience Audience
}
