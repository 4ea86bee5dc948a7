package keepalive

import (
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Default is the keepalive interval of ordo's programs: a silent peer is
// dropped after about 6 seconds.
const Default = 2 * time.Second

// Options say how a connection is configured. Zero timeouts leave the
// server's settings alone.
type Options struct {
	// Interval is the keepalive idle time and probe interval; a peer
	// silent for about three times as long is dropped. Defaults to
	// Default.
	Interval time.Duration
	// App is the application_name the server shows for the session,
	// unless the URL names one.
	App string
	// LockTimeout bounds each wait for a lock (lock_timeout).
	LockTimeout time.Duration
	// StatementTimeout bounds each statement (statement_timeout).
	StatementTimeout time.Duration
	// IdleInTransactionTimeout ends a session that stays idle inside a
	// transaction that long (idle_in_transaction_session_timeout).
	IdleInTransactionTimeout time.Duration
}

// Dialer returns a dialer with TCP keepalives (probes after interval of
// silence, two more interval apart) and, on Linux, TCP_USER_TIMEOUT of
// three intervals: data left unacknowledged that long ends the connection.
func Dialer(interval time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: 10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     interval,
			Interval: interval,
			Count:    2,
		},
		Control: userTimeout(3 * interval),
	}
}

// Configure sets o on cfg: the dialer for our end, the server's tcp_*
// settings for its end, the timeouts and the application name.
func Configure(cfg *pgconn.Config, o Options) {
	if o.Interval <= 0 {
		o.Interval = Default
	}
	cfg.DialFunc = Dialer(o.Interval).DialContext
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 10*time.Second {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	p := cfg.RuntimeParams
	secs := strconv.Itoa(max(1, int(o.Interval.Seconds())))
	p["tcp_keepalives_idle"] = secs
	p["tcp_keepalives_interval"] = secs
	p["tcp_keepalives_count"] = "2"
	p["tcp_user_timeout"] = ms(3 * o.Interval)
	if o.LockTimeout > 0 {
		p["lock_timeout"] = ms(o.LockTimeout)
	}
	if o.StatementTimeout > 0 {
		p["statement_timeout"] = ms(o.StatementTimeout)
	}
	if o.IdleInTransactionTimeout > 0 {
		p["idle_in_transaction_session_timeout"] = ms(o.IdleInTransactionTimeout)
	}
	if _, ok := p["application_name"]; !ok && o.App != "" {
		p["application_name"] = o.App
	}
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
