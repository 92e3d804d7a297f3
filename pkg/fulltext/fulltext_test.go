package fulltext

import "testing"

func TestIndexText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"硅谷", " 硅谷 谷 "},
		{"新材料 Copper", " 新材 材料 料  Copper"},
		{"AI芯片", "AI 芯片 片 "},
		{"a,b", "a b"},
		{"矽谷", " 硅谷 谷 "},
		{"蘭州醫療", " 兰州 州医 医疗 疗 "},
	}
	for _, tt := range tests {
		if got := IndexText(tt.in); got != tt.want {
			t.Errorf("IndexText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
