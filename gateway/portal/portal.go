// Package portal is the park staff's web page, served by the gateway at
// "/": search this park or the whole club and follow new listings live. It
// is static; everything it shows comes from the park-side API with the
// staff member's own token.
package portal

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html portal.js portal.css
var files embed.FS

// Handler serves the portal: the page at "/" and its assets under
// "/portal/", with a strict Content-Security-Policy (no inline script, no
// third-party origin).
func Handler() http.Handler {
	sub, _ := fs.Sub(files, ".")
	static := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch r.URL.Path {
		case "/":
			http.ServeFileFS(w, r, sub, "index.html")
		case "/favicon.ico":
			w.WriteHeader(http.StatusNoContent) // no icon; spares the log a 404
		case "/portal/portal.js", "/portal/portal.css":
			r2 := r.Clone(r.Context())
			r2.URL.Path = r.URL.Path[len("/portal"):]
			static.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}
