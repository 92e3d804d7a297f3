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
		apierror.New(apierror.InsufficientStorage, "out of disk space"),
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

// A 507 without a body still reads as insufficient_storage: the one table
// maps both ways.
func TestInsufficientStorageIs507BothWays(t *testing.T) {
	if got := apierror.HTTPStatus(apierror.InsufficientStorage); got != 507 {
		t.Errorf("HTTPStatus(insufficient_storage) = %d, want 507", got)
	}
	if got := apierror.CodeForStatus(507); got != apierror.InsufficientStorage {
		t.Errorf("CodeForStatus(507) = %s, want insufficient_storage", got)
	}
}
