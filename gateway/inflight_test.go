package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// boundedReader is a gateway whose only route reads the body as ingest
// does, under an in-flight limit of limit weighted bytes; hold, when not
// nil, keeps each request in its handler until it is closed.
func boundedReader(t *testing.T, limit int64, hold chan struct{}) (*Gateway, http.Handler) {
	t.Helper()
	g := &Gateway{inflight: newInflight(limit, prometheus.NewRegistry())}
	return g, g.bounded(func(w http.ResponseWriter, r *http.Request) {
		data, herr := readBody(w, r)
		if herr != nil {
			writeError(w, herr)
			return
		}
		if hold != nil {
			<-hold
		}
		writeJSON(w, http.StatusOK, map[string]int{"read": len(data)})
	})
}

func serveOnce(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestInflightRefusesOverTheLimit(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	// Room for 3 bodies of 1000 bytes, weighted.
	g, h := boundedReader(t, 3000*inflightWeight, hold)
	body := strings.Repeat("x", 1000)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			rec := serveOnce(h, httptest.NewRequest("POST", "/v1/track", strings.NewReader(body)))
			if rec.Code != http.StatusOK {
				t.Errorf("held request: status %d %s", rec.Code, rec.Body)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.inflight.used.Load() != 3000*inflightWeight && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	// A fourth with a Content-Length is refused before it is read.
	rec := serveOnce(h, httptest.NewRequest("POST", "/v1/track", strings.NewReader(body)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("fourth request: status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	var e errorBody
	if json.Unmarshal(rec.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "retry later") {
		t.Errorf("fourth request's body %s", rec.Body)
	}
	// So is one without (chunked), once it has read past the room left.
	req := httptest.NewRequest("POST", "/v1/track", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	if rec := serveOnce(h, req); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("chunked request: status %d, want 503", rec.Code)
	}
	// And a gzipped one, counted decompressed.
	req = httptest.NewRequest("POST", "/v1/track", bytes.NewReader(gzipped(t, []byte(body))))
	req.Header.Set("Content-Encoding", "gzip")
	if rec := serveOnce(h, req); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("gzipped request: status %d, want 503", rec.Code)
	}

	close(hold)
	wg.Wait()
	if used := g.inflight.used.Load(); used != 0 {
		t.Errorf("%d bytes still reserved once every request was answered", used)
	}
	// With room again, the same requests go through.
	req = httptest.NewRequest("POST", "/v1/track", bytes.NewReader(gzipped(t, []byte(body))))
	req.Header.Set("Content-Encoding", "gzip")
	if rec := serveOnce(h, req); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"read":1000`) {
		t.Errorf("gzipped request after the others: status %d %s", rec.Code, rec.Body)
	}
	if used := g.inflight.used.Load(); used != 0 {
		t.Errorf("%d bytes still reserved", used)
	}
}

func TestInflightReservesAsTheBodyArrives(t *testing.T) {
	t.Parallel()
	// A chunked body of 1 MiB under a limit of 2 MiB weighted: it is read
	// in small pieces, and reserves ahead by heldChunk, never past the
	// limit.
	g, h := boundedReader(t, 2<<20*inflightWeight, nil)
	req := httptest.NewRequest("POST", "/v1/batch", io.MultiReader(strings.NewReader(strings.Repeat("y", 1<<20))))
	req.ContentLength = -1
	if rec := serveOnce(h, req); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"read":1048576`) {
		t.Errorf("status %d %s", rec.Code, rec.Body)
	}
	if used := g.inflight.used.Load(); used != 0 {
		t.Errorf("%d bytes still reserved", used)
	}
	// A Content-Length over MaxBodyBytes reserves nothing: it is refused
	// with 413 before it is read.
	req = httptest.NewRequest("POST", "/v1/batch", strings.NewReader("{}"))
	req.ContentLength = MaxBodyBytes + 1
	if rec := serveOnce(h, req); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("Content-Length over 4 MiB: status %d, want 413", rec.Code)
	}
}

// TestSlowBodyIs408 is the regression test of a body cut by the server's
// read timeout: it was answered 400 "reading the body: read tcp
// 127.0.0.1:…->127.0.0.1:…: i/o timeout", naming the sockets.
func TestSlowBodyIs408(t *testing.T) {
	t.Parallel()
	_, h := boundedReader(t, 1<<30, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"userId\""); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a body cut by the read timeout: %v", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || strings.Contains(string(msg), "127.0.0.1") {
		t.Errorf("status %d, body %s; want 408 naming no socket", resp.StatusCode, msg)
	}
}

// TestInflightCountsBatchEvents is the regression test of batches of tiny
// events: a 4 MiB body of 90,000 of them made a gateway hold 40 times its
// size (150 MiB) while it reserved only its bytes. Each event now
// reserves eventWeight: 503 while there is no room, 413 when the limit
// could never hold them.
func TestInflightCountsBatchEvents(t *testing.T) {
	t.Parallel()
	g := &Gateway{inflight: newInflight(1<<20, prometheus.NewRegistry())}
	h := g.bounded(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("events"))
		if herr := g.holdEvents(r, n); herr != nil {
			writeError(w, herr)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"used": g.inflight.used.Load()})
	})
	rec := serveOnce(h, httptest.NewRequest("POST", "/v1/batch?events=100", strings.NewReader("{}")))
	if want := fmt.Sprintf(`"used":%d`, 2*inflightWeight+100*eventWeight); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
		t.Errorf("100 events: status %d %s, want 200 with %s", rec.Code, rec.Body, want)
	}
	rec = serveOnce(h, httptest.NewRequest("POST", "/v1/batch?events=1000", strings.NewReader("{}")))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "fewer events") {
		t.Errorf("1000 events under a 1 MiB limit: status %d %s, want 413", rec.Code, rec.Body)
	}
	g.inflight.used.Store(1<<20 - 1000)
	rec = serveOnce(h, httptest.NewRequest("POST", "/v1/batch?events=100", strings.NewReader("{}")))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("100 events with no room: status %d, want 503 with Retry-After", rec.Code)
	}
	if used := g.inflight.used.Load(); used != 1<<20-1000 {
		t.Errorf("refused requests left %d bytes reserved", used-(1<<20-1000))
	}
}
