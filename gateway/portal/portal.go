// Package portal is the park staff's web page, served by the gateway at
// "/": sign in, search this park or the whole club with facets, read any
// listing of the club, create and edit the park's own, follow the club
// live and see its members, in Chinese or English. It is static: plain ES
// modules, a style sheet and one message catalogue (i18n/messages.json),
// embedded in the binary; everything it shows comes from the park-side
// API, called with the staff member's session cookie.
package portal

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed index.html *.js portal.css i18n/messages.json
var files embed.FS

// csp lets the page load only its own scripts, styles and data: no inline
// script or style, no other origin, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the portal: the page at "/" and its assets under
// "/portal/", with a strict Content-Security-Policy.
func Handler() http.Handler {
	static := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// A new gateway's portal is used at once: the browser asks again
		// (a 304 when nothing changed) rather than trusting a stale copy.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, files, "index.html")
		case r.URL.Path == "/favicon.ico":
			w.WriteHeader(http.StatusNoContent) // no icon; spares the log a 404
		case strings.HasPrefix(r.URL.Path, "/portal/") && asset(r.URL.Path[len("/portal/"):]):
			r2 := r.Clone(r.Context())
			r2.URL.Path = r.URL.Path[len("/portal"):]
			static.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

// asset reports whether name is one of the portal's files (not the page
// itself, and never a directory listing).
func asset(name string) bool {
	if name == "" || name == "index.html" || strings.HasSuffix(name, "/") {
		return false
	}
	st, err := fs.Stat(files, name)
	return err == nil && !st.IsDir()
}
