package gateway

import (
	"net/http"

	"github.com/ordo-pipeline/ordo/workspace"
)

// authenticate returns the source whose write key is the user name of r's
// HTTP Basic credentials; the password is ignored.
func (g *Gateway) authenticate(r *http.Request) (*workspace.Source, *httpError) {
	key, _, ok := r.BasicAuth()
	if !ok || key == "" {
		return nil, errorf(http.StatusUnauthorized, "missing write key: send it as the user name of HTTP Basic authentication")
	}
	src, ok := g.ws.SourceByWriteKey(key)
	if !ok {
		return nil, errorf(http.StatusUnauthorized, "unknown write key")
	}
	return src, nil
}
