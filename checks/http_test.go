package checks

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpServer starts a loopback HTTP server and returns its address.
func httpServer(t testing.TB, h http.Handler) (netip.AddrPort, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String()), srv
}

func TestHTTPStatusAndReceive(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "all systems GO\n") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "all systems GO")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	addr, _ := httpServer(t, mux)

	tests := []struct {
		name, request, receive, method string
		want                           bool
	}{
		{"2xx and match", "/ok", "systems G.", "", true},
		{"2xx, receive unset", "/ok", "", "", true},
		{"2xx, 204 no body, receive unset", "/nocontent", "", "", true},
		{"2xx, no match", "/ok", "STOP", "", false},
		{"receive is a regexp, unanchored", "ok", "s[xyz]{1}stems? G", "", true},
		{"perl $ before the final newline", "/ok", "GO$", "", true},
		{"anchored at start fails", "/ok", "^systems", "", false},
		{"5xx with matching body", "/fail", "GO", "", false},
		{"404", "/missing", "", "", false},
		{"HEAD, receive unset", "/ok", "", "HEAD", true},
		{"HEAD has no body to match", "/ok", "GO", "HEAD", false},
		{"HEAD, receive matching empty", "/ok", "^$", "head", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, Config{Service: "http", Addr: addr, Request: tt.request, Receive: tt.receive, HTTPMethod: tt.method, NegotiateTimeout: 5 * time.Second})
			expect(t, c, tt.want)
		})
	}
}

func TestHTTPRequestShape(t *testing.T) {
	type seen struct{ method, host, uri, accEnc string }
	var mu sync.Mutex
	var got []seen
	addr, _ := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.Host, r.RequestURI, r.Header.Get("Accept-Encoding")})
		mu.Unlock()
	}))
	last := func() seen {
		mu.Lock()
		defer mu.Unlock()
		return got[len(got)-1]
	}
	expect(t, mustNew(t, Config{Service: "http", Addr: addr, Request: "health?x=1"}), true)
	if s := last(); s.method != "GET" || s.host != "127.0.0.1" || s.uri != "/health?x=1" || s.accEnc != "" {
		t.Errorf("default request: %+v; want GET, Host 127.0.0.1 (no port), /health?x=1, no Accept-Encoding", s)
	}
	expect(t, mustNew(t, Config{Service: "http", Addr: addr, VirtualHost: "www.example.org", HTTPMethod: "HEAD"}), true)
	if s := last(); s.method != "HEAD" || s.host != "www.example.org" || s.uri != "/" {
		t.Errorf("virtualhost request: %+v; want HEAD, Host www.example.org, /", s)
	}
	// A per-real request that is already a URL is used as is.
	full := fmt.Sprintf("http://%s/full", addr)
	expect(t, mustNew(t, Config{Service: "http", Addr: netip.MustParseAddrPort("127.0.0.1:1"), Request: full}), true)
	if s := last(); s.uri != "/full" {
		t.Errorf("full URL request: %+v", s)
	}
}

func TestHTTPRedirects(t *testing.T) {
	var hosts []string
	var mu sync.Mutex
	addr, _ := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/hop/%d", &n); err == nil && n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
			return
		}
		io.WriteString(w, "landed")
	}))
	for _, tt := range []struct {
		hops int
		want bool
	}{{1, true}, {7, true}, {8, false}} {
		mu.Lock()
		hosts = nil
		mu.Unlock()
		c := mustNew(t, Config{Service: "http", Addr: addr, VirtualHost: "vhost", Request: fmt.Sprintf("/hop/%d", tt.hops), Receive: "landed"})
		expect(t, c, tt.want)
		mu.Lock()
		// LWP drops Host on redirect: the first request carries the
		// virtualhost, the next ones the URL's host.
		if hosts[0] != "vhost" || hosts[1] != addr.String() {
			t.Errorf("%d hops: Host headers %q; want vhost then %s", tt.hops, hosts, addr)
		}
		mu.Unlock()
	}
}

func TestHTTPNewConnectionPerCheck(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := mustNew(t, Config{Service: "http", Addr: netip.MustParseAddrPort(srv.Listener.Addr().String())})
	for i := 0; i < 3; i++ {
		expect(t, c, true)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 checks opened %d connections; ldirectord opens one per check", n)
	}
}

func TestHTTPS(t *testing.T) {
	type seen struct{ host, sni string }
	seenc := make(chan seen, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenc <- seen{r.Host, r.TLS.ServerName}
		io.WriteString(w, "secure ok")
	}))
	cert := selfSigned(t, "www.example.org")
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	// Like ldirectord, an untrusted chain is down...
	r := expect(t, mustNew(t, Config{Service: "https", Addr: addr, Receive: "ok$"}), false)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "certificate verify failed") {
		t.Errorf("self-signed certificate: %v", r)
	}
	// ...a trusted one is up although it names www.example.org, not
	// 127.0.0.1...
	roots := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	roots.AddCert(leaf)
	c := mustNew(t, Config{Service: "https", Addr: addr, VirtualHost: "www.example.org", Receive: "ok$", TLSRoots: roots})
	if !strings.HasPrefix(c.String(), "HTTP GET https://127.0.0.1:") {
		t.Errorf("String() = %q", c)
	}
	expect(t, c, true)
	if s := <-seenc; s.host != "www.example.org" || s.sni != "" {
		t.Errorf("Host %q, SNI %q; want www.example.org and none (the URL names an IP)", s.host, s.sni)
	}
	// ...and with InsecureTLS nothing is verified.
	expect(t, mustNew(t, Config{Service: "https", Addr: addr, InsecureTLS: true}), true)
	// Plain HTTP to a TLS port fails.
	expect(t, mustNew(t, Config{Service: "http", Addr: addr}), false)
}

func TestHTTPProxy(t *testing.T) {
	uris := make(chan string, 1)
	addr, _ := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris <- r.RequestURI
		io.WriteString(w, "proxied")
	}))
	c := mustNew(t, Config{Service: "http_proxy", Addr: addr, Request: "http://origin.example/page", Receive: "proxied"})
	expect(t, c, true)
	if uri := <-uris; uri != "http://origin.example/page" {
		t.Errorf("proxy saw request URI %q; want the absolute URL", uri)
	}
}

func TestHTTPHungServerTimesOut(t *testing.T) {
	noLeaks(t)
	addr := hungServer(t)
	c := mustNew(t, Config{Service: "http", Addr: addr, NegotiateTimeout: 300 * time.Millisecond})
	start := time.Now()
	r := expect(t, c, false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("hung server held the check %v (timeout 300ms)", el)
	}
	if r.Err == nil {
		t.Errorf("timeout without an error: %v", r)
	}
}

func TestHTTPRefused(t *testing.T) {
	r := expect(t, mustNew(t, Config{Service: "http", Addr: closedPort(t)}), false)
	if r.Err == nil {
		t.Errorf("refused without an error: %v", r)
	}
}

func TestHTTPBodyCap(t *testing.T) {
	addr, _ := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100)+"MARK")
	}))
	expect(t, mustNew(t, Config{Service: "http", Addr: addr, Receive: "MARK", MaxBody: 104}), true)
	expect(t, mustNew(t, Config{Service: "http", Addr: addr, Receive: "MARK", MaxBody: 50}), false)
}

func TestHTTPIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	hosts := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := netip.MustParseAddrPort(ln.Addr().String())
	c := mustNew(t, Config{Service: "http", Addr: addr})
	if !strings.Contains(c.String(), "http://[::1]:") {
		t.Errorf("String() = %q", c)
	}
	expect(t, c, true)
	if host := <-hosts; host != "[::1]" {
		t.Errorf("Host %q; want [::1], the address without the port", host)
	}
}
