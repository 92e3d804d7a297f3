// Package httpjson holds the few JSON-over-HTTP helpers every gateway
// handler shares: writing a JSON answer, reading a small strict JSON body
// whose errors name the field, and clipping caller input echoed in errors.
package httpjson

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// MaxSmallBody bounds the JSON bodies of the gateway's own endpoints
// (peerings, webhooks): they are a few fields each.
const MaxSmallBody = 64 << 10

// Write answers status with v as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeSmall reads one JSON object of at most MaxSmallBody bytes into v,
// refusing unknown fields; the error is Invalid and names the field.
func DecodeSmall(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxSmallBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return apierror.InvalidField(Clip(typ.Field), "has the wrong JSON type")
		}
		if name, ok := UnknownFieldName(err); ok {
			return UnknownField(name, "is not a field of this request")
		}
		return apierror.InvalidField("body", "must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apierror.InvalidField("body", "must hold exactly one JSON object")
	}
	return nil
}

// UnknownFieldName extracts the field named by encoding/json's "unknown
// field" error (the package has no typed error for it).
func UnknownFieldName(err error) (string, bool) {
	name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`)
	return strings.TrimSuffix(name, `"`), ok
}

// UnknownField names an unknown JSON field in an error, or "body" when the
// field's name is empty.
func UnknownField(name, msg string) error {
	if name == "" {
		return apierror.InvalidField("body", "has a field with an empty name")
	}
	return apierror.InvalidField(Clip(name), "%s", msg)
}

// Clip shortens caller input echoed in an error message, so an error
// never carries a caller's megabytes back.
func Clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
