package checks

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ldirectord runs one of ldirectord's own check functions through
// testdata/ldirectord-oracle.pl and returns its verdict. The test is skipped
// where Debian's ldirectord package is not installed.
func ldirectord(t *testing.T, fn string, kv ...string) bool {
	t.Helper()
	if testing.Short() {
		t.Skip("differential tests run perl once per case")
	}
	if _, err := os.Stat("/usr/sbin/ldirectord"); err != nil {
		t.Skip("ldirectord is not installed (apt-get install ldirectord)")
	}
	out, err := exec.Command("perl", append([]string{"testdata/ldirectord-oracle.pl", fn}, kv...)...).Output()
	if err != nil {
		t.Fatalf("oracle %s %q: %v", fn, kv, err)
	}
	// Some check functions print to stdout; the verdict is the last line.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	switch v := lines[len(lines)-1]; v {
	case "up":
		return true
	case "down":
		return false
	default:
		t.Fatalf("oracle %s %q printed %q", fn, kv, v)
	}
	return false
}

// differ compares our verdict with ldirectord's for the same server.
func differ(t *testing.T, name string, cfg Config, fn string, kv ...string) {
	t.Helper()
	ours := mustNew(t, cfg).Check(t.Context())
	theirs := ldirectord(t, fn, kv...)
	if ours.Up != theirs {
		t.Errorf("%s: directord says up=%v (%v), ldirectord says up=%v", name, ours.Up, ours, theirs)
	} else {
		t.Logf("%s: both say up=%v", name, theirs)
	}
}

func TestDifferentialHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "all systems GO\n") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "GO", 503) })
	mux.HandleFunc("/vhost", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "vh.example" {
			http.Error(w, "wrong host "+r.Host, 404)
			return
		}
		io.WriteString(w, "hello vh")
	})
	mux.HandleFunc("/to-vhost", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/vhost", http.StatusFound) })
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Path, "/hop/%d", &n)
		if n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusMovedPermanently)
			return
		}
		io.WriteString(w, "landed")
	})
	addr, _ := httpServer(t, mux)
	ip, port := addr.Addr().String(), fmt.Sprint(addr.Port())
	cases := []struct {
		name, request, receive, method, vhost string
	}{
		{"match", "/ok", "systems G.", "GET", ""},
		{"no match", "/ok", "STOP", "GET", ""},
		{"perl $ before final newline", "/ok", "GO$", "GET", ""},
		{"503 with matching body", "/fail", "GO", "GET", ""},
		{"404", "/missing", "", "GET", ""},
		{"HEAD without receive", "/ok", "", "HEAD", ""},
		{"HEAD with receive", "/ok", "GO", "HEAD", ""},
		{"virtualhost", "/vhost", "hello", "GET", "vh.example"},
		{"no virtualhost: Host is the IP", "/vhost", "", "GET", ""},
		{"Host dropped on redirect", "/to-vhost", "", "GET", "vh.example"},
		{"7 redirects", "/hop/7", "landed", "GET", ""},
		{"8 redirects", "/hop/8", "landed", "GET", ""},
	}
	for _, c := range cases {
		kv := []string{"v_service=http", "v_negotiatetimeout=5", "v_httpmethod=" + c.method,
			"r_server=" + ip, "r_port=" + port, "r_url=http://" + addr.String() + c.request, "r_receive=" + c.receive}
		if c.vhost != "" {
			kv = append(kv, "v_virtualhost="+c.vhost)
		}
		differ(t, c.name, Config{Service: "http", Addr: addr, Request: c.request, Receive: c.receive, HTTPMethod: c.method, VirtualHost: c.vhost}, "check_http", kv...)
	}
}

func TestDifferentialDNS(t *testing.T) {
	ds := startDNS(t, true, true)
	ip, port := ds.addr.Addr().String(), fmt.Sprint(ds.addr.Port())
	for _, c := range []struct{ request, receive, protocol string }{
		{"www.example.org", `192\.0\.2\.11`, "udp"},
		{"www.example.org", `^198`, "udp"},
		{"www.example.org", ``, "udp"},
		{"192.0.2.10", `web\.example\.org`, "udp"},
		{"www.example.org", `192`, "tcp"},
		{"nope.example.org", `.`, "udp"},
	} {
		differ(t, c.request+" ~ "+c.receive+" over "+c.protocol,
			Config{Service: "dns", Protocol: c.protocol, Addr: ds.addr, Request: c.request, Receive: c.receive, NegotiateTimeout: 3 * time.Second},
			"check_dns", "v_service=dns", "v_negotiatetimeout=3", "v_protocol="+c.protocol,
			"r_server="+ip, "r_port="+port, "r_request=/"+c.request, "r_receive="+c.receive)
	}
}

func TestDifferentialLineProtocols(t *testing.T) {
	kv := func(addrPort string, more ...string) []string {
		host, port, _ := net.SplitHostPort(addrPort)
		return append([]string{"v_negotiatetimeout=3", "v_checktimeout=3", "v_protocol=tcp", "r_server=" + host, "r_port=" + port}, more...)
	}
	smtp := map[string]func(p *textPeer){
		"esmtp": func(p *textPeer) { p.say("220 hi"); p.hear(); p.say("250 ok"); p.hear(); p.say("221 bye") },
		"helo fallback": func(p *textPeer) {
			p.say("220 hi")
			p.hear()
			p.say("502 no")
			p.hear()
			p.say("250 ok")
			p.hear()
			p.say("221 bye")
		},
		"greeting 554": func(p *textPeer) { p.say("554 no") },
		"ehlo 421":     func(p *textPeer) { p.say("220 hi"); p.hear(); p.say("421 busy") },
	}
	for name, script := range smtp {
		a := textServer(t, script)
		differ(t, "smtp "+name, Config{Service: "smtp", Addr: a, NegotiateTimeout: 3 * time.Second}, "check_smtp", kv(a.String(), "v_service=smtp")...)
	}
	for _, greet := range []string{"200 news", "400 none"} {
		a := textServer(t, func(p *textPeer) { p.say(greet) })
		differ(t, "nntp "+greet, Config{Service: "nntp", Addr: a}, "check_nntp", kv(a.String(), "v_service=nntp")...)
	}
	echo := tcpServer(t, func(c net.Conn) {
		req, _ := io.ReadAll(c)
		io.WriteString(c, "banner\nyou said "+strings.TrimSpace(string(req))+"\n")
	})
	for _, recv := range []string{"said ping$", "pong"} {
		differ(t, "simpletcp "+recv, Config{Service: "simpletcp", Addr: echo, Request: `/ping\n`, Receive: recv},
			"check_simpletcp", kv(echo.String(), "v_service=simpletcp", `r_request=/ping\n`, "r_receive="+recv)...)
	}
	pop := textServer(t, func(p *textPeer) {
		p.say("+OK ready")
		for {
			switch l := p.hear(); {
			case l == "":
				return
			case l == "PASS right", strings.HasPrefix(l, "USER"), l == "STAT", l == "QUIT", strings.HasPrefix(l, "CAPA"):
				p.say("+OK 0 0")
				if strings.HasPrefix(l, "CAPA") {
					p.say(".")
				}
			default:
				p.say("-ERR")
			}
		}
	})
	for _, pw := range []string{"right", "wrong"} {
		differ(t, "pop login "+pw, Config{Service: "pop", Addr: pop, Login: "u", Passwd: pw},
			"check_pop", kv(pop.String(), "v_service=pop", "v_login=u", "v_passwd="+pw)...)
	}
}

func TestDifferentialFTP(t *testing.T) {
	rec := &recorder{}
	a := ftpServer(t, map[string]string{"anonymous": "", "carol": "pw"}, map[string]string{"/health.txt": "service OK\n"}, rec)
	host, port, _ := net.SplitHostPort(a.String())
	for _, c := range []struct{ login, passwd, request, receive string }{
		{"", "", "/health.txt", "OK$"},
		{"", "", "/health.txt", "FAIL"},
		{"", "", "/nope", "OK"},
		{"", "", "/nope", "^$"},
		{"carol", "pw", "/health.txt", "service"},
		{"carol", "bad", "/health.txt", "service"},
	} {
		differ(t, fmt.Sprintf("ftp %+v", c), Config{Service: "ftp", Addr: a, Login: c.login, Passwd: c.passwd, Request: c.request, Receive: c.receive, NegotiateTimeout: 3 * time.Second},
			"check_ftp", "v_service=ftp", "v_negotiatetimeout=3", "v_login="+c.login, "v_passwd="+c.passwd,
			"r_server="+host, "r_port="+port, "r_request="+c.request, "r_receive="+c.receive)
	}
	// ldirectord asks for PASV, then fetches in active mode anyway.
	if got := strings.Join(rec.all(), "|"); !strings.Contains(got, "PASV|PORT 127,0,0,1,") {
		t.Errorf("ldirectord's FTP session: %s", got)
	}
}

func TestDifferentialSIP(t *testing.T) {
	for _, status := range []string{"SIP/2.0 200 OK", "SIP/2.0 503 Service Unavailable"} {
		a := tcpServer(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil || l == "\r\n" {
					break
				}
			}
			io.WriteString(c, status+"\r\nCSeq: 63104 OPTIONS\r\nContent-Length: 0\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		host, port, _ := net.SplitHostPort(a.String())
		differ(t, "sip "+status, Config{Service: "sip", Addr: a, Login: "probe@director"},
			"check_sip", "v_service=sip", "v_negotiatetimeout=3", "v_checktimeout=3", "v_protocol=tcp", "v_login=probe@director",
			"r_server="+host, "r_port="+port)
	}
}

// TestDifferentialKnownDifferences pins the places where directord
// deliberately differs from ldirectord, so that a change on either side is
// noticed.
func TestDifferentialKnownDifferences(t *testing.T) {
	dead := closedPort(t)
	host, port, _ := net.SplitHostPort(dead.String())
	// ldirectord's POP check without a login never notices a dead server.
	if !ldirectord(t, "check_pop", "v_service=pop", "v_negotiatetimeout=2", "v_login=", "v_passwd=", "r_server="+host, "r_port="+port) {
		t.Error("ldirectord's POP check without login now fails on a dead server: update POPChecker's doc")
	}
	expect(t, mustNew(t, Config{Service: "pop", Addr: dead}), false)

	// ldirectord's IMAP check gives Net::IMAP::Simple the port as an
	// option, which the module ignores for an IPv4 address: it always
	// connects to 143 (993 for imaps). directord uses the check port.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:143", time.Second); err == nil {
		c.Close()
		t.Skip("something listens on 127.0.0.1:143")
	}
	imap := textServer(t, func(p *textPeer) {
		p.say("* OK imap")
		for {
			l := p.hear()
			if l == "" {
				return
			}
			tag, _, _ := strings.Cut(l, " ")
			p.say(tag + " OK")
		}
	})
	ip, iport, _ := net.SplitHostPort(imap.String())
	if ldirectord(t, "check_imap", "v_service=imap", "v_negotiatetimeout=2", "v_login=u", "v_passwd=p", "r_server="+ip, "r_port="+iport) {
		t.Error("ldirectord's IMAP check now honours the port: update IMAPChecker's doc")
	}
	expect(t, mustNew(t, Config{Service: "imap", Addr: imap, Login: "u", Passwd: "p"}), true)
}
