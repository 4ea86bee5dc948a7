package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordo-pipeline/ordo/internal/jsonstrict"
)

const (
	// DefaultWebhookTimeout is the webhook timeout when the config sets none.
	DefaultWebhookTimeout = 10 * time.Second

	// MaxWebhookBatchSize is the largest maxBatchSize a webhook config may
	// set.
	MaxWebhookBatchSize = 1000

	// webhookIdleConns is how many idle keep-alive connections a webhook
	// keeps to its host: enough for a worker delivering many ordering keys
	// in parallel to reuse its connections instead of dialing anew.
	webhookIdleConns = 64

	// webhookDrainLimit is how much of a response body beyond
	// MaxResponseBody is read and discarded so the connection can be reused.
	// A longer body is cut off by closing its connection instead.
	webhookDrainLimit = 256 << 10

	// webhookUserAgent is the User-Agent sent unless the config sets one.
	webhookUserAgent = "ordo-webhook"
)

// WebhookConfig is the config of a webhook destination, the "config" object
// of a destination of type "webhook" in the workspace file:
//
//	{"url": "https://example.com/events", "headers": {"Authorization": "Bearer s3cret"},
//	 "timeout": "10s", "maxBatchSize": 1}
type WebhookConfig struct {
	// URL is where events are POSTed: an absolute http or https URL.
	// Required.
	URL string

	// Headers are sent with every request, keyed by canonical header name
	// (see [http.CanonicalHeaderKey]). They may set User-Agent, Host, and a
	// Content-Type that is application/json with parameters (such as
	// "application/json; charset=utf-8"); they may not set headers the HTTP
	// client manages (Content-Length, Transfer-Encoding, Connection and the
	// like). Defaults to none.
	Headers map[string]string

	// Timeout bounds one request, from dialing to reading the response body.
	// Defaults to DefaultWebhookTimeout (10 seconds).
	Timeout time.Duration

	// MaxBatchSize is how many events one request carries at most, from 1 to
	// MaxWebhookBatchSize. Defaults to 1.
	MaxBatchSize int
}

// rawWebhookConfig is WebhookConfig as written in JSON. Pointers tell an
// absent field (take the default) from an explicit zero value (refused).
type rawWebhookConfig struct {
	URL          *string           `json:"url"`
	Headers      map[string]string `json:"headers"`
	Timeout      *string           `json:"timeout"`
	MaxBatchSize *int              `json:"maxBatchSize"`
}

// ParseWebhookConfig parses and validates a webhook destination's config
// JSON, applying defaults. Unknown fields are refused. A nil or JSON null
// config is refused for its missing url.
func ParseWebhookConfig(config json.RawMessage) (WebhookConfig, error) {
	cfg, err := parseWebhookConfig(config)
	if err != nil {
		return WebhookConfig{}, fmt.Errorf("webhook config: %w", err)
	}
	return cfg, nil
}

func parseWebhookConfig(config json.RawMessage) (WebhookConfig, error) {
	var raw rawWebhookConfig
	if len(bytes.TrimSpace(config)) > 0 {
		if err := jsonstrict.Decode(config, &raw); err != nil {
			return WebhookConfig{}, configJSONError(err)
		}
	}

	var cfg WebhookConfig
	if raw.URL == nil {
		return WebhookConfig{}, errors.New("url is required")
	}
	cfg.URL = *raw.URL
	if len(raw.Headers) > 0 {
		cfg.Headers = make(map[string]string, len(raw.Headers))
		for name, value := range raw.Headers {
			canonical := http.CanonicalHeaderKey(name)
			if _, dup := cfg.Headers[canonical]; dup {
				return WebhookConfig{}, fmt.Errorf("header %q is set twice", canonical)
			}
			cfg.Headers[canonical] = value
		}
	}
	if raw.Timeout != nil {
		d, err := time.ParseDuration(*raw.Timeout)
		if err != nil {
			return WebhookConfig{}, fmt.Errorf("timeout: %w", err)
		}
		if d <= 0 {
			return WebhookConfig{}, fmt.Errorf("timeout %q must be positive", *raw.Timeout)
		}
		cfg.Timeout = d
	}
	if raw.MaxBatchSize != nil {
		if *raw.MaxBatchSize < 1 {
			return WebhookConfig{}, fmt.Errorf("maxBatchSize %d must be between 1 and %d", *raw.MaxBatchSize, MaxWebhookBatchSize)
		}
		cfg.MaxBatchSize = *raw.MaxBatchSize
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return WebhookConfig{}, err
	}
	return cfg, nil
}

// configJSONError says a header value of the wrong type and trailing
// data in the config's terms; jsonstrict says the rest.
func configJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "headers" && typeErr.Type.Kind() == reflect.String:
		return fmt.Errorf("header values must be strings, not JSON %s", typeErr.Value)
	case errors.Is(err, jsonstrict.ErrTrailingData):
		return errors.New("unexpected data after the config object")
	}
	return err
}

// WithDefaults returns c with every zero field but URL set to its default.
func (c WebhookConfig) WithDefaults() WebhookConfig {
	if c.Timeout == 0 {
		c.Timeout = DefaultWebhookTimeout
	}
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = 1
	}
	return c
}

// clientHeaders are headers the HTTP client writes itself; a config may not
// set them.
var clientHeaders = map[string]bool{
	"Connection":        true,
	"Content-Length":    true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Te":                true,
	"Trailer":           true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
}

func (c WebhookConfig) validate() error {
	if c.URL == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an absolute http or https URL", c.URL)
	}
	for name, value := range c.Headers {
		switch {
		case !validHeaderName(name):
			return fmt.Errorf("header name %q is not a valid HTTP header name", name)
		case name != http.CanonicalHeaderKey(name):
			return fmt.Errorf("header name %q is not canonical (want %q)", name, http.CanonicalHeaderKey(name))
		case clientHeaders[name]:
			return fmt.Errorf("header %q is set by the HTTP client and cannot be configured", name)
		case !validHeaderValue(value):
			return fmt.Errorf("header %q: value holds control characters", name)
		case name == "Content-Type":
			mediaType, _, err := mime.ParseMediaType(value)
			if err != nil || mediaType != "application/json" {
				return fmt.Errorf("header %q is %q, want application/json", name, value)
			}
		case name == "Host" && value == "":
			return fmt.Errorf("header %q is empty", name)
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %s must be positive", c.Timeout)
	}
	if c.MaxBatchSize < 1 || c.MaxBatchSize > MaxWebhookBatchSize {
		return fmt.Errorf("maxBatchSize %d must be between 1 and %d", c.MaxBatchSize, MaxWebhookBatchSize)
	}
	return nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110, 5.6.2).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether value holds no control characters but
// horizontal tab.
func validHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Webhook is a destination that POSTs events to a URL.
//
// Every request has Content-Type: application/json, the configured headers,
// and as body:
//
//   - with MaxBatchSize 1, the one event's payload exactly as stored;
//   - with MaxBatchSize > 1, {"batch": [event, ...]} holding the events'
//     payloads exactly as stored, in order. The wrapper is used even when a
//     request carries a single event, so that a receiver configured for
//     batches always gets the same shape.
//
// A 2xx response is success. 408, 429, 5xx, timeouts and connection errors
// are retryable; any other status, 3xx included, is not. Redirects are not
// followed. At most MaxResponseBody bytes of the response body are kept in
// the Result; a body of moderate length is read to its end so that the
// keep-alive connection is reused.
//
// Requests are marked idempotent, so the HTTP client may replay one on a
// fresh connection when a reused keep-alive connection turns out to have
// been closed by the server before it answered. Delivery is at least once
// anyway, and every copy carries the same messageId.
type Webhook struct {
	url      string
	host     string
	header   http.Header
	maxBatch int
	client   *http.Client
}

// NewWebhook returns a webhook destination for cfg, applying defaults to its
// zero fields. Each webhook has its own HTTP client and connection pool.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}

	header := http.Header{
		"Content-Type": {"application/json"},
		"User-Agent":   {webhookUserAgent},
		// A present but empty Idempotency-Key marks the request as
		// replayable without sending the header (see net/http.Transport).
		"Idempotency-Key": nil,
	}
	var host string
	for name, value := range cfg.Headers {
		if name == "Host" {
			host = value
			continue
		}
		header[name] = []string{value}
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = webhookIdleConns
	transport.MaxIdleConnsPerHost = webhookIdleConns

	return &Webhook{
		url:      cfg.URL,
		host:     host,
		header:   header,
		maxBatch: cfg.MaxBatchSize,
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// MaxBatchSize returns the configured maxBatchSize.
func (w *Webhook) MaxBatchSize() int { return w.maxBatch }

// CloseIdleConnections closes the webhook's idle keep-alive connections.
// The webhook remains usable.
func (w *Webhook) CloseIdleConnections() { w.client.CloseIdleConnections() }

// Send POSTs events as one request. ctx and the configured timeout both
// bound the whole request, response body included; whichever ends first
// makes a retryable Result.
func (w *Webhook) Send(ctx context.Context, events []Event) Result {
	body, err := w.body(events)
	if err != nil {
		return Result{Err: fmt.Errorf("webhook: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("webhook: %w", err)}
	}
	req.Header = w.header.Clone()
	if w.host != "" {
		req.Host = w.host
	}

	resp, err := w.client.Do(req) //nolint:bodyclose // readBody closes it
	if err != nil {
		// Nothing is known to have arrived: no response, a timeout, a
		// connection error or a canceled ctx. All may go better later.
		return Result{Err: fmt.Errorf("webhook: %w", err), Retryable: true}
	}
	res := Result{Status: resp.StatusCode, Body: readBody(resp.Body)}

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500 && code < 600:
		res.Err = fmt.Errorf("webhook: status %d %s", code, http.StatusText(code))
		res.Retryable = true
	default:
		res.Err = fmt.Errorf("webhook: status %d %s", code, http.StatusText(code))
	}
	return res
}

// body returns the request body for events.
func (w *Webhook) body(events []Event) ([]byte, error) {
	if len(events) == 0 {
		return nil, errors.New("no events to send")
	}
	if len(events) > w.maxBatch {
		return nil, fmt.Errorf("%d events exceed maxBatchSize %d", len(events), w.maxBatch)
	}
	size := len(`{"batch":[]}`) + len(events)
	for _, e := range events {
		if len(bytes.TrimSpace(e.Payload)) == 0 {
			return nil, fmt.Errorf("event %q has an empty payload", e.MessageID)
		}
		size += len(e.Payload)
	}
	if w.maxBatch == 1 {
		return events[0].Payload, nil
	}
	buf := make([]byte, 0, size)
	buf = append(buf, `{"batch":[`...)
	for i, e := range events {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, e.Payload...)
	}
	buf = append(buf, "]}"...)
	return buf, nil
}

// readBody reads up to MaxResponseBody bytes of body as text, drains a
// moderate remainder so the connection can be reused, and closes body. Read
// errors end the text where they happen: the status alone decides the
// Result.
func readBody(body io.ReadCloser) string {
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, MaxResponseBody+1))
	if len(b) > MaxResponseBody {
		b = trimPartialRune(b[:MaxResponseBody])
		_, _ = io.Copy(io.Discard, io.LimitReader(body, webhookDrainLimit))
	}
	return responseText(b)
}

// trimPartialRune drops an incomplete UTF-8 sequence that truncation left at
// the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// responseText makes b storable as Postgres text: see Storable.
func responseText(b []byte) string { return Storable(string(b)) }

// Storable makes s storable as Postgres text, as a dead letter's last
// response: valid UTF-8 (invalid sequences become U+FFFD), no NUL bytes,
// at most MaxResponseBody bytes, cut at a character boundary.
func Storable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) > MaxResponseBody {
		s = s[:MaxResponseBody]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
