package listing

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// MaxBody is the largest request body a listing write may have.
const MaxBody = 1 << 20

// Decode reads one listing JSON object from r, strictly: unknown fields,
// wrong types, trailing data and bodies over MaxBody are refused with an
// Invalid error naming the field ("body" when no single field is at fault).
func Decode(r io.Reader) (*Listing, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxBody+1))
	dec.DisallowUnknownFields()
	var l Listing
	if err := dec.Decode(&l); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, decodeError(err)
		}
		return nil, apierror.InvalidField("body", "must hold exactly one JSON object")
	}
	return &l, nil
}

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return apierror.InvalidField("body", "is larger than %d bytes", MaxBody)
	case errors.Is(err, io.EOF):
		return apierror.InvalidField("body", "is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierror.InvalidField("body", "is truncated or larger than %d bytes", MaxBody)
	case errors.As(err, &syntax):
		return apierror.InvalidField("body", "is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return apierror.InvalidField(field, "must be %s, not a JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		name := strings.TrimSuffix(rest, `"`)
		if name == "" {
			return apierror.InvalidField("body", "has a field with an empty name")
		}
		return apierror.InvalidField(clip(name), "is not a field of a listing")
	}
	if strings.Contains(msg, "parsing time") {
		return apierror.InvalidField("body", "has a time that is not RFC 3339")
	}
	return apierror.InvalidField("body", "could not be decoded")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "int32":
		return "an integer"
	case "slice":
		return "an array"
	case "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	}
	return fmt.Sprintf("a %s", goKind)
}
