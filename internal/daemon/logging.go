package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
	"sync"

	"github.com/directord/directord/config"
)

// logTo adds ha.cf's logfile, debugfile and logfacility to base: the same
// lines go to standard error (the journal) and where a Heartbeat operator
// looks for them. It returns the logger and what to close when done. A log
// file that cannot be opened is an error; syslog that cannot be reached is
// only logged, as Heartbeat's syslog() calls fail silently: a director must
// not stay down because syslogd is.
func logTo(base *slog.Logger, l config.Logging) (*slog.Logger, []io.Closer, error) {
	handlers := []slog.Handler{base.Handler()}
	var closers []io.Closer
	fail := func(err error) (*slog.Logger, []io.Closer, error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, nil, err
	}
	level := slog.LevelInfo
	if l.Debug > 0 {
		level = slog.LevelDebug
	}
	for _, f := range []struct {
		path  string
		level slog.Level
	}{{l.File, level}, {l.DebugFile, slog.LevelDebug}} {
		if f.path == "" {
			continue
		}
		w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fail(fmt.Errorf("log file: %w (fix logfile/debugfile in ha.cf, or make its directory writable)", err))
		}
		closers = append(closers, w)
		handlers = append(handlers, slog.NewTextHandler(w, &slog.HandlerOptions{Level: f.level}))
	}
	if l.Facility != "" && l.Facility != "none" {
		fac, ok := facility(l.Facility)
		if !ok {
			return fail(fmt.Errorf("logfacility %q: not a syslog facility (daemon, local0 … local7, user, …)", l.Facility))
		}
		w, err := syslog.New(fac|syslog.LOG_INFO, "directord")
		if err != nil {
			base.Warn("WARN: logfacility " + l.Facility + ": syslog unreachable (" + err.Error() + "): logging to standard error and logfile only")
		} else {
			closers = append(closers, w)
			handlers = append(handlers, &syslogHandler{w: w, level: level, mu: &sync.Mutex{}, buf: &bytes.Buffer{}})
		}
	}
	if len(handlers) == 1 {
		return base, nil, nil
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closers, nil
}

func facility(name string) (syslog.Priority, bool) {
	switch strings.ToLower(name) {
	case "kern":
		return syslog.LOG_KERN, true
	case "user":
		return syslog.LOG_USER, true
	case "mail":
		return syslog.LOG_MAIL, true
	case "daemon":
		return syslog.LOG_DAEMON, true
	case "auth":
		return syslog.LOG_AUTH, true
	case "syslog":
		return syslog.LOG_SYSLOG, true
	case "lpr":
		return syslog.LOG_LPR, true
	case "news":
		return syslog.LOG_NEWS, true
	case "uucp":
		return syslog.LOG_UUCP, true
	case "cron":
		return syslog.LOG_CRON, true
	case "authpriv":
		return syslog.LOG_AUTHPRIV, true
	case "ftp":
		return syslog.LOG_FTP, true
	}
	if n, ok := strings.CutPrefix(strings.ToLower(name), "local"); ok && len(n) == 1 && n[0] >= '0' && n[0] <= '7' {
		return syslog.LOG_LOCAL0 + syslog.Priority(n[0]-'0')<<3, true
	}
	return 0, false
}

// syslogHandler sends each record to syslog at the severity of its level,
// as Heartbeat's cl_log does: the message and its attributes, no time stamp
// (syslog adds one).
type syslogHandler struct {
	w     *syslog.Writer
	level slog.Level
	attrs []slog.Attr
	group string
	mu    *sync.Mutex
	buf   *bytes.Buffer
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	th := slog.Handler(slog.NewTextHandler(h.buf, &slog.HandlerOptions{
		Level: h.level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	}))
	if len(h.attrs) > 0 {
		th = th.WithAttrs(h.attrs)
	}
	if h.group != "" {
		th = th.WithGroup(h.group)
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	line := strings.TrimSpace(h.buf.String())
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(line)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(line)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(line)
	}
	return h.w.Debug(line)
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
