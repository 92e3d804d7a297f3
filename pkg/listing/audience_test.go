package listing

import (
	"fmt"
	"testing"
)

func TestAudienceOnlyGrows(t *testing.T) {
	private := &Listing{Visibility: Private, ShareWith: []string{"ignored"}}
	club := &Listing{Visibility: Club}
	peers := func(parks ...string) *Listing { return &Listing{Visibility: Peers, ShareWith: parks} }
	cases := []struct {
		name     string
		versions []*Listing
		want     string
		in, out  []string
	}{
		{"never shared", []*Listing{private}, "{Club:false Parks:[]}", nil, []string{"haifa"}},
		{"made private after club", []*Listing{club, private}, "{Club:true Parks:[]}", []string{"haifa", "any"}, nil},
		{"re-shared", []*Listing{peers("xian", "haifa"), peers("chengdu", "haifa"), private},
			"{Club:false Parks:[chengdu haifa xian]}", []string{"chengdu", "haifa", "xian"}, []string{"lanzhou"}},
		{"peers then club", []*Listing{peers("haifa"), club}, "{Club:true Parks:[haifa]}", []string{"lanzhou"}, nil},
	}
	for _, c := range cases {
		var a Audience
		for _, v := range c.versions {
			before := fmt.Sprintf("%+v", a)
			next := a.With(v)
			if fmt.Sprintf("%+v", a) != before {
				t.Errorf("%s: With modified its receiver", c.name)
			}
			a = next
		}
		if got := fmt.Sprintf("%+v", a); got != c.want {
			t.Errorf("%s: audience %s, want %s", c.name, got, c.want)
		}
		for _, p := range c.in {
			if !a.Includes(p) {
				t.Errorf("%s: %s not included", c.name, p)
			}
		}
		for _, p := range c.out {
			if a.Includes(p) {
				t.Errorf("%s: %s included", c.name, p)
			}
		}
	}
}
