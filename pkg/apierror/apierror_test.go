package apierror_test

import (
	"net/http/httptest"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// What Write puts on the wire, Parse reads back whole.
func TestParseReadsWhatWriteWrote(t *testing.T) {
	for _, want := range []*apierror.Error{
		apierror.InvalidField("attrs.trl", "must be between 1 and 9"),
		apierror.New(apierror.NotFound, "no project listing %q", "prj_x"),
		apierror.New(apierror.Unavailable, "store unreachable"),
	} {
		rec := httptest.NewRecorder()
		apierror.Write(rec, want)
		if rec.Code != apierror.HTTPStatus(want.Code) {
			t.Errorf("%v: status %d, want %d", want, rec.Code, apierror.HTTPStatus(want.Code))
		}
		got, ok := apierror.Parse(rec.Body.Bytes())
		if !ok || *got != *want {
			t.Errorf("Parse(%s) = %+v, %v; want %+v", rec.Body, got, ok, want)
		}
	}
}

func TestParseRefusesWhatIsNotAnErrorBody(t *testing.T) {
	for _, body := range []string{
		"",
		"<html><body>502 Bad Gateway</body></html>",
		`{"error":{}}`,                // no code
		`{"error":"nope"}`,            // another shape
		`{"results":[]}`,              // a success body
		`{"error":{"code":"invalid"}`, // truncated
	} {
		if e, ok := apierror.Parse([]byte(body)); ok {
			t.Errorf("Parse(%q) = %+v, true; want false", body, e)
		}
	}
}
