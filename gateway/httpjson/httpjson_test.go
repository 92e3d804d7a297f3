package httpjson

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

type webhookRequest struct {
	URL    string   `json:"url"`
	Kinds  []string `json:"kinds"`
	Secret string   `json:"secret"`
}

func decode(body string) (webhookRequest, error) {
	var v webhookRequest
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	return v, DecodeSmall(r, &v)
}

func TestDecodeSmall(t *testing.T) {
	got, err := decode(`{"url":"http://crm.local/hook","kinds":["project"]}`)
	if err != nil || got.URL != "http://crm.local/hook" || len(got.Kinds) != 1 {
		t.Errorf("DecodeSmall = %+v, %v", got, err)
	}
	long := strings.Repeat("k", 100)
	tests := []struct {
		name, body, field string
	}{
		{"unknown field", `{"url":"x","colour":"red"}`, "colour"},
		{"unknown field, long name clipped", `{"` + long + `":1}`, long[:64] + "…"},
		{"field with an empty name", `{"":1}`, "body"},
		{"not an object", `[1,2]`, "body"},
		{"not JSON", `url=x`, "body"},
		{"empty", ``, "body"},
		{"over 64 KiB", `{"url":"` + strings.Repeat("x", MaxSmallBody) + `"}`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(tt.body)
			var e *apierror.Error
			if !errors.As(err, &e) || e.Code != apierror.Invalid || e.Field != tt.field {
				t.Errorf("DecodeSmall = %v, want Invalid naming %q", err, tt.field)
			}
		})
	}
}

// A value of the wrong JSON type is refused naming its field, as the
// package promises ("errors name the field") and as the federation search
// decoder does.
func TestDecodeSmallNamesAWronglyTypedField(t *testing.T) {
	_, err := decode(`{"url":5}`)
	var e *apierror.Error
	if !errors.As(err, &e) || e.Field != "url" {
		t.Errorf("DecodeSmall = %v, want Invalid naming \"url\"", err)
	}
}

// A strict body is one JSON object: trailing data is refused, as the
// federation search decoder refuses it.
func TestDecodeSmallRefusesTrailingData(t *testing.T) {
	for _, body := range []string{`{"url":"a"}{"url":"b"}`, `{"url":"a"} trailing`} {
		if v, err := decode(body); err == nil {
			t.Errorf("DecodeSmall(%q) = %+v, want refused", body, v)
		}
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusCreated, map[string]string{"id": "wh_1"})
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got["id"] != "wh_1" {
		t.Errorf("body %q: %v", rec.Body, err)
	}
}

func TestUnknownFieldName(t *testing.T) {
	var v webhookRequest
	dec := json.NewDecoder(strings.NewReader(`{"colour":1}`))
	dec.DisallowUnknownFields()
	name, ok := UnknownFieldName(dec.Decode(&v))
	if !ok || name != "colour" {
		t.Errorf("UnknownFieldName = %q, %v; want colour", name, ok)
	}
	if _, ok := UnknownFieldName(errors.New("unexpected EOF")); ok {
		t.Error("UnknownFieldName took another error for an unknown field")
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "…"},
	} {
		if got := Clip(tt.in); got != tt.want {
			t.Errorf("Clip(%d bytes) = %q", len(tt.in), got)
		}
	}
}
