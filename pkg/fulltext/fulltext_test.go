package fulltext

import (
	"reflect"
	"testing"
)

func TestIndexText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"硅谷", " 硅谷 谷 "},
		{"新材料 Copper", " 新材 材料 料  Copper"},
		{"AI芯片", "AI 芯片 片 "},
		{"a,b", "a b"},
	}
	for _, tt := range tests {
		if got := IndexText(tt.in); got != tt.want {
			t.Errorf("IndexText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in   string
		want []Term
	}{
		{"硅谷", []Term{{Tokens: []string{"硅谷"}}}},
		{"新材料", []Term{{Tokens: []string{"新材", "材料"}}}},
		{"芯", []Term{{Tokens: []string{"芯"}, Prefix: true}}},
		{"Nano copper", []Term{{Tokens: []string{"nano"}}, {Tokens: []string{"copper"}}}},
		{`"x" OR y*`, []Term{{Tokens: []string{"x"}}, {Tokens: []string{"or"}}, {Tokens: []string{"y"}}}},
		{"  ", nil},
	}
	for _, tt := range tests {
		if got := ParseQuery(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseQuery(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestFTS5Match(t *testing.T) {
	got := FTS5Match(ParseQuery("新材料 copper 芯"), "title", "body")
	want := `{title body} : ("新材 材料" AND "copper" AND "芯"*)`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
