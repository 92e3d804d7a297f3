package listing

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// FuzzDecodeValidate drives the request decoding and validation path with
// arbitrary bodies: it must never panic, must refuse with an Invalid error
// that names a field, and whatever it accepts must survive a round trip
// through JSON and be accepted again unchanged.
func FuzzDecodeValidate(f *testing.F) {
	seeds := []string{
		`{"title":"纳米超级铜 Nano copper","sectors":["new-materials"],"country":"CN","attrs":{"stage":"pilot","trl":6}}`,
		`{"title":"硅谷离岸创新中心","sectors":["ai"],"country":"US","visibility":"peers","share_with":["xian-hitech"],"attrs":{"org_type":"incubator"}}`,
		`{"title":"Dr. Li","sectors":["biomedicine"],"country":"IL","attrs":{"languages":["zh","en"],"availability":["mentor"],"contact":{"email":"a@b.c"}}}`,
		`{"title":5}`, `{"title":"x","colour":1}`, `[]`, `{`, ``, `{"attrs":{"trl":"six"}}`, `{"title":"a"} x`,
		`{"title":"t","sectors":["ai","ai"],"country":"cn","attrs":{"stage":"idea","funding_ask":{"amount":-1,"currency":"CNY"}}}`,
	}
	for _, s := range seeds {
		for _, k := range Kinds {
			f.Add([]byte(s), string(k))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, kind string) {
		k := Kind(kind)
		if !k.Valid() {
			k = KindProject
		}
		l, err := Decode(bytes.NewReader(body))
		if err == nil {
			l.Normalize()
			err = l.Validate(k)
		}
		if err != nil {
			e := apierror.Public(err)
			if e.Code != apierror.Invalid || e.Field == "" || e.Message == "" {
				t.Fatalf("refusal %#v does not name a field", e)
			}
			return
		}
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("accepted listing does not decode again: %v\n%s", err, out)
		}
		l2.Normalize()
		if err := l2.Validate(k); err != nil {
			t.Fatalf("accepted listing refused after round trip: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(l2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the listing:\n%s\n%s", out, out2)
		}
		if strings.TrimSpace(l.Title) == "" {
			t.Fatal("accepted a listing without a title")
		}
	})
}
