package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/router"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// maxRecordedBody bounds a plain answer Middleware holds: the gateway's
// largest (a club search page) is far smaller.
const maxRecordedBody = 32 << 20

// skippedPaths are answered by handlers whose bodies the document describes
// only as opaque text: Prometheus metrics change with every release of the
// client library, so Check does not look at them at all.
var skippedPaths = []string{"/metrics"}

// Validator checks HTTP answers against the document with a real OpenAPI
// 3.1 validator (pb33f/libopenapi-validator, JSON Schema 2020-12), so tests
// and tools find where the gateway and its contract drifted apart: an
// undocumented status, a missing header, a field too many or of the wrong
// type. Its methods are safe for concurrent use.
type Validator struct {
	doc     libopenapi.Document
	model   *v3.Document
	version float32
	val     validator.Validator
	router  router.Router
	schemas schema_validation.SchemaValidator

	mu       sync.Mutex
	failures []error
	seen     map[string]map[int]int
}

// NewValidator parses the embedded document and prepares a validator for it.
// Formats (date-time, uri) are asserted, not just annotations, so a time
// that is not RFC 3339 fails as a wrong type would.
func NewValidator() (*Validator, error) {
	return newValidator(document)
}

func newValidator(spec []byte) (*Validator, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi: parsing the document: %w", err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("openapi: building the model: %w", err)
	}
	if !strings.HasPrefix(m.Model.Version, "3.1") {
		return nil, fmt.Errorf("openapi: the document is OpenAPI %s, not 3.1", m.Model.Version)
	}
	opts := []config.Option{config.WithFormatAssertions(), config.WithoutSecurityValidation()}
	return &Validator{
		doc:     doc,
		model:   &m.Model,
		version: 3.1,
		val:     validator.NewValidatorFromV3Model(&m.Model, opts...),
		router:  router.NewRouter(&m.Model, router.WithPathOnlyMatching()),
		schemas: schema_validation.NewSchemaValidator(opts...),
		seen:    map[string]map[int]int{},
	}, nil
}

// ValidateDocument checks the document itself against the OpenAPI 3.1
// specification's schema.
func (v *Validator) ValidateDocument() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ok, errs := schema_validation.ValidateOpenAPIDocument(v.doc); !ok {
		return joinValidation("the document", errs)
	}
	return nil
}

// Operations lists every operation the document describes, as
// "METHOD /path/template", sorted: what a contract test must exercise.
func (v *Validator) Operations() []string {
	var out []string
	for path, item := range v.model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// Check validates one answer to req: that the operation exists, that it
// documents status, and that the headers and body match that response (a
// text/event-stream body is not read: only its status and content type are
// checked). A request for a path or method the document does not list must
// be the gateway's JSON 404. The operation and status are counted for Seen.
func (v *Validator) Check(req *http.Request, status int, header http.Header, body []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if slices.Contains(skippedPaths, req.URL.Path) {
		v.count(req.Method+" "+req.URL.Path, status)
		return nil
	}
	route, err := v.router.FindRoute(req)
	if err != nil {
		v.count("undocumented", status)
		return v.checkUndocumented(req, status, header, body)
	}
	v.count(strings.ToUpper(req.Method)+" "+route.Path, status)
	if isEventStream(header) {
		body = nil
	}
	res := &http.Response{
		StatusCode: status, Header: header.Clone(), Request: req,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	if res.Header == nil {
		res.Header = http.Header{}
	}
	if ok, errs := v.val.GetResponseBodyValidator().ValidateResponseBodyWithPathItem(req, res, route.PathItem, route.Path); !ok {
		return joinValidation(fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), status), errs)
	}
	return nil
}

// checkUndocumented accepts only the gateway's answer to an unknown path or
// method: a 404 with a not_found error body.
func (v *Validator) checkUndocumented(req *http.Request, status int, header http.Header, body []byte) error {
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), status)
	if status != http.StatusNotFound {
		return fmt.Errorf("%s: the document has no such operation, and the answer is not a 404", what)
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%s: a 404 for an undocumented operation must be JSON, not %q", what, header.Get("Content-Type"))
	}
	if err := v.checkSchema("NotFoundError", body); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// CheckSchema validates a JSON value against one of the document's
// component schemas (components/schemas/<name>): for what travels inside a
// stream, such as a CloudEvent or a StreamError.
func (v *Validator) CheckSchema(name string, body []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checkSchema(name, body)
}

func (v *Validator) checkSchema(name string, body []byte) error {
	proxy, ok := v.model.Components.Schemas.Get(name)
	if !ok {
		return fmt.Errorf("openapi: no component schema %q", name)
	}
	schema := proxy.Schema()
	if schema == nil {
		return fmt.Errorf("openapi: component schema %q does not resolve: %v", name, proxy.GetBuildError())
	}
	if ok, errs := v.schemas.ValidateSchemaBytesWithVersion(schema, body, v.version); !ok {
		return joinValidation("schema "+name, errs)
	}
	return nil
}

// CheckWebhook validates a request the gateway sent to a webhook receiver
// against the document's top-level webhook name: its required headers and
// their values, its content type and its body.
func (v *Validator) CheckWebhook(name string, header http.Header, body []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	item, ok := v.model.Webhooks.Get(name)
	if !ok || item.Post == nil {
		return fmt.Errorf("openapi: no webhook %q with a POST operation", name)
	}
	op := item.Post
	var problems []string
	for _, p := range op.Parameters {
		if p.In != "header" {
			continue
		}
		val := header.Get(p.Name)
		if val == "" {
			if p.Required != nil && *p.Required {
				problems = append(problems, "header "+p.Name+" is missing")
			}
			continue
		}
		if p.Schema == nil {
			continue
		}
		if ok, errs := v.schemas.ValidateSchemaObjectWithVersion(p.Schema.Schema(), val, v.version); !ok {
			problems = append(problems, "header "+p.Name+": "+describe(errs))
		}
	}
	ct := header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	media, ok := op.RequestBody.Content.Get(mt)
	switch {
	case !ok:
		problems = append(problems, fmt.Sprintf("content type %q is not documented", ct))
	case media.Schema != nil:
		if ok, errs := v.schemas.ValidateSchemaBytesWithVersion(media.Schema.Schema(), body, v.version); !ok {
			problems = append(problems, "body: "+describe(errs))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("webhook %s: %s", name, strings.Join(problems, "; "))
	}
	return nil
}

// Seen returns, per operation ("METHOD /path/template", or "undocumented"),
// how many answers of each status Check has seen.
func (v *Validator) Seen() map[string]map[int]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]map[int]int, len(v.seen))
	for op, st := range v.seen {
		out[op] = make(map[int]int, len(st))
		for s, n := range st {
			out[op][s] = n
		}
	}
	return out
}

func (v *Validator) count(op string, status int) {
	if v.seen[op] == nil {
		v.seen[op] = map[int]int{}
	}
	v.seen[op][status]++
}

// Failures returns every answer Middleware found not to match the
// document, in the order they happened.
func (v *Validator) Failures() []error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.failures)
}

// Middleware checks every answer next gives with Check and records the
// failures for Failures; it never changes what the client receives. An
// answer reaches the client only after its check is recorded (it is held
// until the handler returns), so a test that has its answer can read
// Failures and Seen at once. Event streams are the exception: they pass
// through as they are written, and are checked as soon as their header is
// (their bodies do not end while the subscriber stays).
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, v: v, req: r}
		next.ServeHTTP(rec, r)
		if !rec.wroteHeader {
			rec.WriteHeader(http.StatusOK)
		}
		if rec.stream {
			return
		}
		rec.check()
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	})
}

func (v *Validator) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.failures = append(v.failures, err)
}

// recorder keeps what a handler answers, for the check. It holds a plain
// answer until the check is done, and passes an event stream through (with
// the writer underneath exposed by Unwrap, so streams flush and set write
// deadlines as they would without it).
type recorder struct {
	http.ResponseWriter
	v           *Validator
	req         *http.Request
	status      int
	header      http.Header
	body        bytes.Buffer
	wroteHeader bool
	stream      bool
}

func (rec *recorder) WriteHeader(status int) {
	if rec.wroteHeader {
		return
	}
	rec.wroteHeader = true
	rec.status = status
	rec.header = rec.ResponseWriter.Header().Clone()
	rec.stream = isEventStream(rec.header)
	if rec.stream {
		rec.check()
		rec.ResponseWriter.WriteHeader(status)
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		if rec.ResponseWriter.Header().Get("Content-Type") == "" {
			// What net/http would do on the first write.
			rec.ResponseWriter.Header().Set("Content-Type", http.DetectContentType(b))
		}
		rec.WriteHeader(http.StatusOK)
	}
	if rec.stream {
		return rec.ResponseWriter.Write(b)
	}
	if rec.body.Len()+len(b) > maxRecordedBody {
		return 0, errors.New("openapi: answer larger than the validator records")
	}
	return rec.body.Write(b)
}

// Flush sends what is buffered, for an event stream; a plain answer is sent
// whole when its handler returns.
func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.stream {
		http.NewResponseController(rec.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *recorder) check() {
	if err := rec.v.Check(rec.req, rec.status, rec.header, rec.body.Bytes()); err != nil {
		rec.v.fail(err)
	}
}

func isEventStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}

// joinValidation turns the validator's findings into one error that says
// what was checked and each reason, with the JSON location of each schema
// failure.
func joinValidation(what string, errs []*verrors.ValidationError) error {
	if len(errs) == 0 {
		return errors.New(what + ": invalid")
	}
	return fmt.Errorf("%s: %s", what, describe(errs))
}

func describe(errs []*verrors.ValidationError) string {
	var parts []string
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			s += " (" + e.Reason + ")"
		}
		for _, f := range e.SchemaValidationErrors {
			if f.Reason == "false schema" && len(e.SchemaValidationErrors) > 1 {
				// unevaluatedProperties' echo of another failure: noise.
				continue
			}
			loc := f.FieldPath
			if loc == "" {
				loc = "/" + strings.Join(f.InstancePath, "/")
			}
			s += fmt.Sprintf("\n    at %s: %s", loc, f.Reason)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "\n  ")
}
