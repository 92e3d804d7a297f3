// Package openapi holds the gateway's wire contract as one OpenAPI 3.1
// document (openapi.yaml, both listeners: the park side and the federation
// side), serves it, and checks real answers against it.
//
// The document is the one description other parks, the portal and tools
// rely on, so it lives beside the handlers and is tested against them: the
// Validator checks recorded request/response pairs (a contract test runs
// every route of a real gateway through Validator.Middleware), and
// `make openapi-lint` lints the document with Redocly.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"sync"

	"sigs.k8s.io/yaml"
)

//go:embed openapi.yaml
var document []byte

var (
	jsonOnce sync.Once
	jsonDoc  []byte
	jsonETag string
)

// YAML returns the document as written (the source of truth, with its
// comments and order). The slice is shared: do not modify it.
func YAML() []byte { return document }

// JSON returns the document as JSON, what GET /api/v1/openapi.json serves
// (tools and browsers read JSON without a YAML parser). It is converted
// once; the slice is shared: do not modify it.
func JSON() []byte {
	jsonOnce.Do(func() {
		b, err := yaml.YAMLToJSON(document)
		if err != nil {
			// The embedded document is parsed by this package's tests;
			// a document that does not convert never ships.
			panic("openapi: embedded openapi.yaml is not valid YAML: " + err.Error())
		}
		jsonDoc = b
		h := sha256.Sum256(b)
		jsonETag = `"` + hex.EncodeToString(h[:8]) + `"`
	})
	return jsonDoc
}

// Handler serves the document as JSON with an ETag, answering 304 to a
// caller whose If-None-Match names the current one. It answers whatever
// method reaches it: mount it on "GET /api/v1/openapi.json", so the mux
// decides which methods do.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := JSON()
		h := w.Header()
		h.Set("ETag", jsonETag)
		h.Set("Cache-Control", "no-cache")
		if match := r.Header.Get("If-None-Match"); match != "" && etagListHas(match, jsonETag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

// etagListHas reports whether an If-None-Match value ("*" or a list of
// entity tags, weak or strong) names tag (RFC 9110 §13.1.2: weak
// comparison).
func etagListHas(list, tag string) bool {
	for _, t := range bytes.Split([]byte(list), []byte(",")) {
		t = bytes.TrimSpace(t)
		t = bytes.TrimPrefix(t, []byte("W/"))
		if string(t) == "*" || string(t) == tag {
			return true
		}
	}
	return false
}
