package parktoken

import (
	"errors"
	"log/slog"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// Reasons a token is refused. They are for logs and metric labels, never
// for the caller: the caller only learns the code (see Error).
const (
	ReasonMissing     = "missing"       // no bearer token
	ReasonMalformed   = "malformed"     // not a well-formed JWS compact JWT
	ReasonAlg         = "alg"           // alg is not EdDSA
	ReasonKid         = "kid"           // no kid, or not a published key of the park
	ReasonSignature   = "signature"     // signature does not verify
	ReasonExpired     = "expired"       // past exp (plus leeway)
	ReasonNotYetValid = "not_yet_valid" // before nbf or iat (minus leeway)
	ReasonIssuer      = "issuer"        // iss is not the park
	ReasonAudience    = "audience"      // aud does not name the park
	ReasonClaims      = "claims"        // a required claim (exp, iat, sub, jti) is missing
	ReasonLifetime    = "lifetime"      // exp too long after iat (366 days local, 5 minutes federation)
	ReasonRevoked     = "revoked"       // the park revoked the token's jti
	ReasonType        = "type"          // typ header is not TokenType
	ReasonRole        = "role"          // role unknown (401) or too weak (403, see Require)
	ReasonKeys        = "keys"          // the verifier has no key set (503)
)

// Error is what Verify, FromRequest and Require return. Its public face is
// an *apierror.Error with a generic message (reach it with errors.As or
// apierror.Public, or write it with apierror.Write); its reason and cause
// are for the log only. Error() returns just the public text, so an error
// that ends up in a response by mistake still tells an attacker nothing.
type Error struct {
	public *apierror.Error
	reason string
	cause  error
}

func (e *Error) Error() string { return e.public.Error() }

// Unwrap exposes the public *apierror.Error and the cause (often one of the
// jwt package's errors) to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.public}
	}
	return []error{e.public, e.cause}
}

// Reason returns the machine reason, one of the Reason constants.
func (e *Error) Reason() string { return e.reason }

// LogValue logs the code, the reason and the cause's text.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("code", string(e.public.Code)), slog.String("reason", e.reason)}
	if e.cause != nil {
		attrs = append(attrs, slog.String("detail", e.cause.Error()))
	}
	return slog.GroupValue(attrs...)
}

// Reason returns the machine reason of an error from this package, "" for
// nil and for any other error.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.reason
	}
	return ""
}

// The public messages. Deliberately the same for every reason.
const (
	unauthorizedMessage = "missing or invalid access token"
	forbiddenMessage    = "your role does not permit this"
	unavailableMessage  = "token verification is unavailable"
)

func unauthorized(reason string, cause error) *Error {
	return &Error{public: apierror.New(apierror.Unauthorized, unauthorizedMessage), reason: reason, cause: cause}
}
