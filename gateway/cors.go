package gateway

import (
	"net/http"

	"github.com/rs/cors"
)

// allowedMethods are the methods whose answers carry CORS headers. Only
// GET, HEAD and POST do anything; the others are allowed so that a browser
// sees their 405 rather than a CORS failure.
var allowedMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions,
	http.MethodPut, http.MethodPatch, http.MethodDelete,
}

// withCORS lets browser SDKs on any origin call every endpoint, as
// RudderStack and Segment do: every answer, errors and 404s included,
// allows the request's Origin (with credentials), and a preflight to any
// path is answered 204 allowing the method it asks for with whatever headers
// it asks for (SDKs send Authorization, Content-Type and headers of their
// own). Retry-After is exposed so SDKs can honour it. An OPTIONS request
// that is not a preflight is answered 204 with Allow.
//
// github.com/rs/cors does the header work: it is what rudder-server uses,
// and it gets the details right that a hand-written version tends to miss
// (Vary for caches, header-list matching, Private Network Access
// preflights for gateways on a private address).
func withCORS(h http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowOriginFunc:     func(string) bool { return true },
		AllowedMethods:      allowedMethods,
		AllowedHeaders:      []string{"*"},
		ExposedHeaders:      []string{"Retry-After", pixelErrorHeader},
		AllowCredentials:    true,
		AllowPrivateNetwork: true,
		MaxAge:              86400,
	})
	return c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	}))
}
