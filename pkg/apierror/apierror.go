// Package apierror holds the one error type ParkMesh services and gateways
// return, its small set of codes, and the single table that maps those codes
// to HTTP statuses for servers and clients alike.
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Code classifies an error. The set is deliberately small: callers branch on
// it, humans read Message.
type Code string

// The codes. Each maps to exactly one HTTP status in statusOf.
const (
	Invalid            Code = "invalid"
	NotFound           Code = "not_found"
	Conflict           Code = "conflict"
	PreconditionFailed Code = "precondition_failed"
	Unauthorized       Code = "unauthorized"
	Forbidden          Code = "forbidden"
	Unavailable        Code = "unavailable"
	Timeout            Code = "timeout"
	Internal           Code = "internal"
	// TooManyRequests: a cap was reached (open streams, handshakes in
	// progress); the answer says when to retry (Retry-After).
	TooManyRequests Code = "too_many_requests"
	// InsufficientStorage: the store is out of disk space (or quota); the
	// write was not made, reads go on, and the same write succeeds once
	// space is freed.
	InsufficientStorage Code = "insufficient_storage"
	// Unauthenticated: a staff sign-in failed (unknown user or wrong
	// password, told apart from neither) or the portal session is missing
	// or expired; sign in again. (A refused bearer token stays
	// Unauthorized.)
	Unauthenticated Code = "unauthenticated"
	// CSRF: a state-changing request authenticated by the session cookie
	// carried no valid X-CSRF-Token header.
	CSRF Code = "csrf"
)

var statusOf = map[Code]int{
	Invalid:             http.StatusBadRequest,
	NotFound:            http.StatusNotFound,
	Conflict:            http.StatusConflict,
	PreconditionFailed:  http.StatusPreconditionFailed,
	Unauthorized:        http.StatusUnauthorized,
	Forbidden:           http.StatusForbidden,
	Unavailable:         http.StatusServiceUnavailable,
	Timeout:             http.StatusGatewayTimeout,
	Internal:            http.StatusInternalServerError,
	TooManyRequests:     http.StatusTooManyRequests,
	InsufficientStorage: http.StatusInsufficientStorage,
	Unauthenticated:     http.StatusUnauthorized,
	CSRF:                http.StatusForbidden,
}

// canonical is the code a status maps back to where several codes share it.
var canonical = map[int]Code{
	http.StatusUnauthorized: Unauthorized,
	http.StatusForbidden:    Forbidden,
}

// Error is the error every ParkMesh API returns. Field names the offending
// input (a JSON field, a query parameter or a header) when there is one.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// New returns an error with the given code and message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an Invalid error naming field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, Internal for errors that are not *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// HTTPStatus maps a code to its HTTP status.
func HTTPStatus(code Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus maps an HTTP status back to a code, for clients reading a
// response that carries no JSON error body.
func CodeForStatus(status int) Code {
	if c, ok := canonical[status]; ok {
		return c
	}
	for c, s := range statusOf {
		if s == status {
			return c
		}
	}
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return Invalid
	case status >= 500:
		return Unavailable
	case status >= 400:
		return Invalid
	}
	return Internal
}

// Public returns the error as it may be shown to a caller: errors that are
// not *Error become a generic internal error so details never leak.
func Public(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error"}
}

type envelope struct {
	Error *Error `json:"error"`
}

// Write writes err as a JSON error response with the status of its code.
func Write(w http.ResponseWriter, err error) {
	pub := Public(err)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(HTTPStatus(pub.Code))
	_ = json.NewEncoder(w).Encode(envelope{Error: pub})
}

// Parse decodes a JSON error response body. ok is false when body is not
// one (an empty body, a proxy's HTML page, JSON of another shape): a client
// then knows the answer did not come from a ParkMesh handler, which tells a
// failure on the way (worth retrying elsewhere) from the service's verdict.
func Parse(body []byte) (e *Error, ok bool) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil || env.Error.Code == "" {
		return nil, false
	}
	return env.Error, true
}

// Read decodes an error response body (at most 64 KiB are read). A body that
// is not a JSON error still yields an *Error derived from the status.
func Read(status int, body io.Reader) *Error {
	var env envelope
	if err := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&env); err == nil && env.Error != nil && env.Error.Code != "" {
		return env.Error
	}
	return &Error{Code: CodeForStatus(status), Message: http.StatusText(status)}
}
