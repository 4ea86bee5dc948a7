package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-pipeline/ordo/deadletter"
	"github.com/ordo-pipeline/ordo/overview"
	"github.com/ordo-pipeline/ordo/shard"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var static embed.FS

// Server is the console's HTTP handler.
type Server struct {
	catalogURL string
	token      []byte
	log        *slog.Logger
	metrics    *metrics
	mux        *http.ServeMux
}

// NewServer returns the console for the catalog at catalogURL, whose API
// answers requests that carry token.
func NewServer(catalogURL, token string, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{catalogURL: catalogURL, token: []byte(token), log: logger, metrics: newMetrics(), mux: http.NewServeMux()}
	files, _ := fs.Sub(static, "static") // the folder is embedded: cannot fail
	s.mux.Handle("GET /", securityHeaders(http.FileServerFS(files)))
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }) //nolint:errcheck // the client may be gone
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	s.api("GET /api/overview", "overview", s.overview)
	s.api("GET /api/dead-letters", "dead-letters", s.list)
	s.api("GET /api/dead-letters/count", "dead-letters-count", s.count)
	s.api("POST /api/dead-letters/replay", "replay", s.change("replay"))
	s.api("POST /api/dead-letters/purge", "purge", s.change("purge"))
	notFound := s.authorized(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API: "+r.Method+" "+r.URL.Path)
	})
	s.mux.Handle("GET /api/", notFound)
	s.mux.Handle("POST /api/", notFound)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) api(pattern, route string, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.metrics.instrument(route, s.authorized(h)))
}

// authorized lets through requests whose Authorization header is
// "Bearer <token>".
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ordo console"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong console token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	}
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// readTimeout bounds one read of the cluster for the page.
const readTimeout = 15 * time.Second

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	o, err := overview.Read(ctx, s.catalogURL)
	if err != nil && r.Context().Err() != nil {
		return // the page went away
	}
	if err != nil {
		s.clusterError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) clusterError(w http.ResponseWriter, err error) {
	if errors.Is(err, shard.ErrNotBootstrapped) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.log.Warn("reading the cluster failed", "error", err)
	writeError(w, http.StatusBadGateway, err.Error())
}

// filterOf reads a dead-letter filter from the query string.
func filterOf(r *http.Request) (deadletter.Filter, error) {
	values := map[string]string{}
	for k, v := range r.URL.Query() {
		if k == "limit" || k == "offset" {
			continue
		}
		values[k] = strings.Join(v, "")
	}
	return deadletter.ParseFilter(values, time.Now())
}

func intParam(r *http.Request, name string, def, maxVal int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxVal {
		return 0, errors.New(name + ": must be a whole number from 0 to " + strconv.Itoa(maxVal))
	}
	return n, nil
}

func (s *Server) open(w http.ResponseWriter, r *http.Request) (*deadletter.Cluster, bool) {
	c, err := deadletter.Open(r.Context(), s.catalogURL)
	if err != nil {
		s.clusterError(w, err)
		return nil, false
	}
	return c, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	var limit, offset int
	if err == nil {
		limit, err = intParam(r, "limit", 50, 1000)
	}
	if err == nil {
		offset, err = intParam(r, "offset", 0, 1_000_000)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.read(w, r, func(ctx context.Context, c *deadletter.Cluster) any { return c.List(ctx, f, max(limit, 1), offset) })
}

func (s *Server) count(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.read(w, r, func(ctx context.Context, c *deadletter.Cluster) any { return c.Count(ctx, f) })
}

// read answers with what read returns of the cluster, given readTimeout.
func (s *Server) read(w http.ResponseWriter, r *http.Request, read func(context.Context, *deadletter.Cluster) any) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	c, ok := s.open(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, read(ctx, c))
}

// changeRequest is the body of a replay or purge.
type changeRequest struct {
	Filter map[string]string `json:"filter"`
	DryRun bool              `json:"dryRun"`
}

// changeTimeout bounds one replay or purge from the console.
const changeTimeout = 2 * time.Minute

func (s *Server) change(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req changeRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "body: want {\"filter\": {...}, \"dryRun\": true|false}: "+err.Error())
			return
		}
		f, err := deadletter.ParseFilter(req.Filter, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		// The change goes on if the page goes away: each node is one
		// transaction, and the result is logged.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), changeTimeout)
		defer cancel()
		c, ok := s.open(w, r)
		if !ok {
			return
		}
		var o *deadletter.Outcome
		log := s.log.With("from", "console", "remote", r.RemoteAddr)
		if action == "replay" {
			o = c.Replay(ctx, f, req.DryRun, log)
		} else {
			o = c.Purge(ctx, f, req.DryRun, log)
		}
		if !req.DryRun {
			s.metrics.changed.WithLabelValues(action).Add(float64(o.Done()))
		}
		writeJSON(w, http.StatusOK, o)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client may be gone
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
