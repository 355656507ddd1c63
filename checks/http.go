package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxRedirects is LWP::UserAgent's max_redirect: ldirectord follows up to 7
// redirects and judges the 8th 3xx response as it is (not 2xx, so down).
const maxRedirects = 7

// HTTPChecker is ldirectord's negotiate check for service=http, https and
// http_proxy. It sends one request (GET, or HEAD with httpmethod=HEAD) on a
// new connection, follows redirects as LWP does (301, 302, 303, 307 and 308,
// up to 7, dropping the Host header on each), and is up when the final status
// is 2xx and, if receive is set, the body contains a match for it. A HEAD
// response has no body, so HEAD with a receive pattern is up only if the
// pattern matches the empty string, exactly as in ldirectord.
//
// HTTPS verifies the server's certificate chain but not the name in it, as
// ldirectord does (see Config.InsecureTLS).
type HTTPChecker struct {
	url     string
	host    string // Host header; empty for http_proxy (taken from the URL)
	method  string
	proxy   string // http_proxy: the real server acting as the proxy
	receive *receiveRE
	maxBody int64
	timeout time.Duration
	client  *http.Client
}

// NewHTTP builds the check for service=http, https or http_proxy.
func NewHTTP(cfg Config) (*HTTPChecker, error) {
	svc := cfg.service()
	if svc != "http" && svc != "https" && svc != "http_proxy" {
		return nil, fmt.Errorf("http check: service %q is not http, https or http_proxy", svc)
	}
	if !cfg.Addr.IsValid() {
		return nil, errors.New("http check: no real server address")
	}
	method := strings.ToUpper(cfg.HTTPMethod)
	switch method {
	case "":
		method = http.MethodGet
	case http.MethodGet, http.MethodHead:
	default:
		return nil, fmt.Errorf("http check: httpmethod %q is neither GET nor HEAD", cfg.HTTPMethod)
	}
	c := &HTTPChecker{method: method, maxBody: cfg.maxBody(), timeout: cfg.negotiateTimeout()}
	if cfg.Receive != "" {
		re, err := compileReceive(cfg.Receive)
		if err != nil {
			return nil, fmt.Errorf("http check: %w", err)
		}
		c.receive = re
	}
	scheme := svc
	if svc == "http_proxy" {
		scheme = "http"
	}
	req := cfg.request()
	switch {
	case svc == "http_proxy":
		// The request is the absolute URL fetched through the proxy.
		c.url = strings.TrimPrefix(req, "/")
		c.proxy = "http://" + cfg.Addr.String() + "/"
	case strings.Contains(req, scheme+"://"):
		// A per-real request that is already a URL is used as is.
		c.url = strings.TrimPrefix(req, "/")
	default:
		c.url = scheme + "://" + cfg.Addr.String() + req
	}
	if _, err := url.Parse(c.url); err != nil {
		return nil, fmt.Errorf("http check: request %q: %w", cfg.Request, err)
	}
	if svc != "http_proxy" {
		c.host = cfg.VirtualHost
		if c.host == "" {
			c.host = hostLiteral(cfg.Addr)
		}
	}
	tr := &http.Transport{
		// One connection per check, as ldirectord opens: a real server
		// that stops accepting connections must fail its check.
		DisableKeepAlives: true,
		// LWP sends no Accept-Encoding and matches the raw body.
		DisableCompression: true,
		TLSClientConfig:    tlsConfig(cfg.TLSRoots, cfg.InsecureTLS),
		// No environment proxies: LWP::UserAgent->new ignores them.
		Proxy:       nil,
		DialContext: (&net.Dialer{}).DialContext,
	}
	if c.proxy != "" {
		pu, err := url.Parse(c.proxy)
		if err != nil {
			return nil, fmt.Errorf("http check: proxy: %w", err)
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	c.client = &http.Client{Transport: tr, CheckRedirect: lwpRedirect}
	return c, nil
}

// lwpRedirect follows redirects the way LWP::UserAgent does for GET and HEAD.
func lwpRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return http.ErrUseLastResponse
	}
	// LWP removes Host from every redirected request, so the Host comes
	// from the new URL even for a relative Location.
	req.Host = ""
	return nil
}

// hostLiteral is the real server's address as ldirectord puts it in a Host
// header: the IP without the port, IPv6 in brackets.
func hostLiteral(ap netip.AddrPort) string {
	a := ap.Addr()
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// Check implements Checker.
func (c *HTTPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *HTTPChecker) check(ctx context.Context) Result {
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, nil)
	if err != nil {
		return down("", fmt.Errorf("building request: %w", err))
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", "directord-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return down("", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody))
	if err != nil {
		return down(resp.Status, fmt.Errorf("reading body: %w", err))
	}
	return judgeHTTP(resp.StatusCode, resp.Status, body, c.receive)
}

// judgeHTTP is ldirectord's verdict: 2xx, and the body matches receive when
// receive is set.
func judgeHTTP(code int, status string, body []byte, receive *receiveRE) Result {
	if code < 200 || code > 299 {
		return down(status, nil)
	}
	if receive != nil && !receive.match(body) {
		return down(status, fmt.Errorf("body does not match %v", receive))
	}
	return up(status)
}

// String says in words what the check does and expects.
func (c *HTTPChecker) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s %s", c.method, c.url)
	if c.proxy != "" {
		fmt.Fprintf(&b, " through proxy %s", c.proxy)
	}
	if c.host != "" {
		fmt.Fprintf(&b, " (Host: %s)", c.host)
	}
	b.WriteString(" expecting 2xx")
	if c.receive != nil {
		fmt.Fprintf(&b, " and body ~ %v", c.receive)
	}
	fmt.Fprintf(&b, " within %v", c.timeout)
	return b.String()
}
