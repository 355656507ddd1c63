package checks

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Checker probes one real server once.
type Checker interface {
	// Check runs one probe. It returns by ctx's deadline or the checker's
	// own timeout, whichever comes first, and never panics on what the
	// server sends.
	Check(ctx context.Context) Result
	// String says in words what is checked, e.g.
	// `HTTP GET http://10.0.0.2:80/health (Host: www) expecting 2xx and body ~ /OK/`.
	String() string
}

// Result is the outcome of one probe.
type Result struct {
	// Up is true when the real server passed the check.
	Up bool
	// Message is a short human-readable account: the status line, the reply
	// that matched or the reason for failing.
	Message string
	// Err is the error that made the check fail, if it failed because of an
	// error (refused, timed out, protocol violation). A check can fail
	// without an error, e.g. when the body does not match.
	Err error
	// Latency is how long the probe took.
	Latency time.Duration
}

// String says up or down, how long the probe took and why.
func (r Result) String() string {
	state := "down"
	if r.Up {
		state = "up"
	}
	msg := r.Message
	if r.Err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += r.Err.Error()
	}
	if msg == "" {
		return fmt.Sprintf("%s in %v", state, r.Latency.Round(time.Microsecond))
	}
	return fmt.Sprintf("%s in %v: %s", state, r.Latency.Round(time.Microsecond), msg)
}

// ErrUnsupported is wrapped by the error New returns for a service or
// checktype that directord does not implement; such a real server must not be
// treated as up.
var ErrUnsupported = errors.New("unsupported")

// Default timeouts, as ldirectord applies them when nothing is configured.
const (
	DefaultCheckTimeout     = 5 * time.Second
	DefaultNegotiateTimeout = 30 * time.Second
)

// Config describes one real server's check, with the values of an
// ldirectord virtual section. lnoded resolves defaults that need the whole
// file (checkport, the timeouts' mutual defaults) before filling it in; the
// zero value of every other field means ldirectord's default.
type Config struct {
	// CheckType is ldirectord's checktype: connect, negotiate (default), on,
	// off, ping, external, external-perl, or a positive number N (connect
	// checks, and a negotiate check after N successful connects).
	CheckType string
	// Service is ldirectord's service for negotiate checks: http, https,
	// http_proxy, dns, ftp, smtp, submission, pop, pops, imap, imaps, nntp,
	// simpletcp, sip, none. Empty means none.
	Service string
	// Protocol is the virtual service's protocol: tcp (default), udp or fwm.
	Protocol string

	// Addr is the real server's address and the port to probe (checkport,
	// else the real server's port, else the service's well-known port).
	Addr netip.AddrPort
	// RealPort is the real server's port as configured, passed to external
	// check commands (0 when the real line has none).
	RealPort uint16
	// Virtual and VirtualPort identify the virtual service for external
	// check commands: the address (or firewall mark) and port as ldirectord
	// passes them ("0" as the port of a firewall-mark service).
	Virtual, VirtualPort string

	// Request is ldirectord's request (per real server when given there):
	// for http the path or a full URL, for dns the name to look up, for
	// simpletcp the text to send, for ftp the file to fetch. A leading "/"
	// is added when missing, as ldirectord does; empty means "/".
	Request string
	// Receive is ldirectord's receive regular expression (Perl syntax
	// where it overlaps RE2).
	Receive string
	// VirtualHost is the HTTP Host header; empty means the real server's IP.
	VirtualHost string
	// HTTPMethod is GET (default) or HEAD.
	HTTPMethod string
	// Login and Passwd authenticate ftp, pop, imap (and name the SIP URI).
	Login, Passwd string
	// Database and Secret are accepted for the sql and radius services,
	// which are unsupported; they take part in Key.
	Database, Secret string
	// CheckCommand is the program run by checktype=external (default
	// /bin/true).
	CheckCommand string

	// CheckTimeout bounds connect, ping and external checks (default 5 s).
	CheckTimeout time.Duration
	// NegotiateTimeout bounds negotiate checks (default 30 s).
	NegotiateTimeout time.Duration
	// CheckCount is how many pings a ping check sends before failing
	// (default 1).
	CheckCount int
	// InsecureTLS skips the verification of https, pops and imaps servers'
	// certificate chains, which ldirectord performs (see tlsConfig); the
	// name in the certificate is never checked.
	InsecureTLS bool
	// TLSRoots are the trusted roots for that verification; nil means the
	// system's.
	TLSRoots *x509.CertPool
	// MaxBody caps how much of an HTTP body or FTP file is read and matched
	// (default 1 MiB). ldirectord reads everything.
	MaxBody int64
	// DRPath, when valid, is the virtual service (an IPv4 VIP and TCP port)
	// to probe through this real server as IPVS direct routing reaches it,
	// before the real server's own check: directord's drpathcheck, which
	// ldirectord does not have (see DRPathChecker).
	DRPath netip.AddrPort
}

// DefaultMaxBody is the default for Config.MaxBody.
const DefaultMaxBody = 1 << 20

func (c Config) checkTimeout() time.Duration {
	if c.CheckTimeout > 0 {
		return c.CheckTimeout
	}
	if c.NegotiateTimeout > 0 {
		return c.NegotiateTimeout
	}
	return DefaultCheckTimeout
}

func (c Config) negotiateTimeout() time.Duration {
	if c.NegotiateTimeout > 0 {
		return c.NegotiateTimeout
	}
	if c.CheckTimeout > 0 {
		return c.CheckTimeout
	}
	return DefaultNegotiateTimeout
}

func (c Config) request() string {
	if c.Request == "" {
		return "/"
	}
	if !strings.HasPrefix(c.Request, "/") && !strings.Contains(c.Request, "://") {
		return "/" + c.Request
	}
	return c.Request
}

func (c Config) maxBody() int64 {
	if c.MaxBody > 0 {
		return c.MaxBody
	}
	return DefaultMaxBody
}

func (c Config) protocol() string {
	if c.Protocol == "" {
		return "tcp"
	}
	return c.Protocol
}

func (c Config) service() string {
	if c.Service == "" {
		return "none"
	}
	return c.Service
}

// Key identifies the probe a Config describes: two Configs with equal Keys
// probe the same target in the same way, so the scheduler runs one probe for
// both. Like ldirectord's real-server id it covers the check type, service,
// protocol, target, request, receive and everything else that changes what
// is sent or accepted, but not the weight, the forwarding method or (except
// for external commands, which are told) the virtual service.
func (c Config) Key() string {
	ct := c.CheckType
	if ct == "" {
		ct = "negotiate"
	}
	// Only an external command sees which virtual service asks; every
	// other check of a real server is the same for all the virtual
	// services that share it.
	var virtual, vport, rport, command string
	if ct == "external" {
		virtual, vport, rport, command = c.Virtual, c.VirtualPort, strconv.Itoa(int(c.RealPort)), c.CheckCommand
	}
	fields := []string{
		ct, c.service(), c.protocol(), c.Addr.String(),
		rport, virtual, vport,
		c.request(), c.Receive, c.VirtualHost, strings.ToUpper(c.HTTPMethod),
		c.Login, c.Passwd, c.Database, c.Secret, command,
		c.checkTimeout().String(), c.negotiateTimeout().String(),
		strconv.Itoa(c.CheckCount), strconv.FormatInt(c.maxBody(), 10),
		strconv.FormatBool(c.InsecureTLS), fmt.Sprintf("%p", c.TLSRoots),
	}
	if c.DRPath.IsValid() {
		fields = append(fields, "drpath "+c.DRPath.String())
	}
	for i, f := range fields {
		fields[i] = strconv.Quote(f)
	}
	return strings.Join(fields, ",")
}

// timed runs probe under a deadline of timeout (or ctx's, if sooner) and
// stamps the latency.
func timed(ctx context.Context, timeout time.Duration, probe func(ctx context.Context) Result) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	r := probe(ctx)
	r.Latency = time.Since(start)
	return r
}

func up(msg string) Result { return Result{Up: true, Message: msg} }

func down(msg string, err error) Result { return Result{Message: msg, Err: err} }
