package e2etest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// seedConfig is seed 003's lnoded.cf (section 10.2.1) in documentation
// addresses, with short intervals for tests, plus the UDP and TCP :53
// services of its section 8 checked with DNS queries.
func seedConfig(quiescent, cleanstop string) string {
	return fmt.Sprintf(`# seed 003, section 10
checktimeout=1
negotiatetimeout=1
checkinterval=1
autoreload=yes
quiescent=%s
cleanstop=%s

virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	real=192.0.2.12:80 gate
	service=http
	request=".test.html"
	receive="ok"
	virtualhost=www.a.com
	scheduler=rr
	protocol=tcp

virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	real=192.0.2.12:53 gate
	service=dns
	request="www.a.com"
	receive="192.0.2.100"
	scheduler=rr
	protocol=udp

virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	real=192.0.2.12:53 gate
	service=dns
	request="www.a.com"
	receive="192.0.2.100"
	scheduler=rr
	protocol=tcp
`, quiescent, cleanstop)
}

const (
	web    = "-t 192.0.2.100:80"
	dnsUDP = "-u 192.0.2.100:53"
	dnsTCP = "-t 192.0.2.100:53"
)

func line(key string, dests ...string) string {
	l := key + " rr |"
	for i, d := range dests {
		if i > 0 {
			l += ","
		}
		l += " " + d
	}
	return l
}

// startLnoded runs lnoded on the bed's lnoded.cf in the director's
// namespace.
func (b *bed) startLnoded() *proc {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+b.dir+"/lnoded.cf")
	return b.start(cmd)
}

// TestSeed003Section10 walks through seed 003's section 10 against real
// servers: weight 0 (quiescent=yes) or an empty service (quiescent=no)
// while .test.html is missing, weight 1 once it says ok, and a web server
// that stops is quiesced or removed within checkinterval + checktimeout
// and comes back when it restarts. The DNS services over UDP and TCP
// behave the same.
func TestSeed003Section10(t *testing.T) {
	b := newBed(t)
	for _, rs := range b.rs {
		rs.startWeb()
		rs.startDNS()
	}
	b.writeConfig(seedConfig("yes", "yes"))
	ld := b.startLnoded()
	// checkinterval + checktimeout: how soon a failure must show.
	const react = 2 * time.Second
	// A first check and an autoreload can take a little longer: the file
	// is polled every second.
	const settle = 5 * time.Second

	// 10.2.3: no .test.html anywhere, quiescent=yes: weight 0.
	b.waitFor(web, line(web, "192.0.2.11:80 w0", "192.0.2.12:80 w0"), settle)
	// The DNS servers answer, so :53 is up over UDP and TCP.
	b.waitFor(dnsUDP, line(dnsUDP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), settle)
	b.waitFor(dnsTCP, line(dnsTCP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), settle)

	// quiescent=no, picked up by autoreload: the web service is empty, and
	// the DNS services, whose servers are up, get no operation at all.
	mark := ld.mark()
	b.writeConfig(seedConfig("no", "yes"))
	b.waitFor(web, line(web), settle)
	time.Sleep(300 * time.Millisecond)
	if ops := ld.ops(mark); len(ops) != 2 || !strings.HasPrefix(ops[0], "-d "+web) || !strings.HasPrefix(ops[1], "-d "+web) {
		t.Errorf("quiescent=no issued %q, want two deletions in %s and nothing else", ops, web)
	}

	// 10.2.4: .test.html says ok on rs1, then on rs2.
	b.rs[0].setTestHTML("ok\n")
	b.waitFor(web, line(web, "192.0.2.11:80 w1"), react)
	b.rs[1].setTestHTML("ok\n")
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), react)

	// Real traffic through the VIP reaches both.
	seen := map[string]int{}
	for range 6 {
		seen[b.get(t)]++
	}
	if seen["rs1"] != 3 || seen["rs2"] != 3 {
		t.Errorf("HTTP through the VIP answered by %v, want rs1 and rs2 3 times each", seen)
	}
	if a := b.lookup(t, "udp"); a != "192.0.2.100" {
		t.Errorf("DNS over UDP through the VIP: %q", a)
	}
	if a := b.lookup(t, "tcp"); a != "192.0.2.100" {
		t.Errorf("DNS over TCP through the VIP: %q", a)
	}

	// 10.2.5: rs1's web server stops: removed; then both stop: empty.
	b.rs[0].stopWeb()
	d := b.waitFor(web, line(web, "192.0.2.12:80 w1"), react)
	t.Logf("stopped web server removed after %v", d.Round(time.Millisecond))
	b.rs[1].stopWeb()
	b.waitFor(web, line(web), react)

	// 10.2.6: both start again: back at weight 1.
	b.rs[0].startWeb()
	b.rs[1].startWeb()
	d = b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), react)
	t.Logf("restarted web servers back after %v", d.Round(time.Millisecond))

	// DNS: rs1's name server stops: removed from both :53 services.
	b.rs[0].stopDNS()
	b.waitFor(dnsUDP, line(dnsUDP, "192.0.2.12:53 w1"), react)
	b.waitFor(dnsTCP, line(dnsTCP, "192.0.2.12:53 w1"), react)
	b.rs[0].startDNS()
	b.waitFor(dnsUDP, line(dnsUDP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), react)
	b.waitFor(dnsTCP, line(dnsTCP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), react)

	// The same failures with quiescent=yes: weight 0 instead of removal.
	b.writeConfig(seedConfig("yes", "yes"))
	time.Sleep(settle / 2)
	b.rs[1].stopWeb()
	d = b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w0"), react)
	t.Logf("quiescent=yes: stopped web server at weight 0 after %v", d.Round(time.Millisecond))
	b.rs[1].stopDNS()
	b.waitFor(dnsUDP, line(dnsUDP, "192.0.2.11:53 w1", "192.0.2.12:53 w0"), react)
	b.waitFor(dnsTCP, line(dnsTCP, "192.0.2.11:53 w1", "192.0.2.12:53 w0"), react)
	b.rs[1].startWeb()
	b.rs[1].startDNS()
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), react)
	b.waitFor(dnsUDP, line(dnsUDP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), react)
	b.waitFor(dnsTCP, line(dnsTCP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), react)

	// SIGTERM with cleanstop=yes removes lnoded's services.
	if err := ld.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if tab := b.table(); tab != "" {
		t.Errorf("after SIGTERM with cleanstop=yes the table is\n%s", tab)
	}
	ld.waitLog(0, `Purged virtual server \(stop\): 192.0.2.100:80`, time.Second)
}

// get fetches http://VIP/ from the client and returns who answered.
func (b *bed) get(t *testing.T) string {
	t.Helper()
	var c net.Conn
	if err := b.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", "192.0.2.100:80", 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: www.a.com\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body))
}

// lookup asks the VIP for www.a.com's A record from the client.
func (b *bed) lookup(t *testing.T, network string) string {
	t.Helper()
	var conn net.Conn
	if err := b.client.Do(func() (err error) {
		conn, err = net.DialTimeout(network, "192.0.2.100:53", 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("www.a.com.", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, _, err := c.ExchangeWithConnContext(ctx, q, &dns.Conn{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Answer {
		if a, ok := a.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}
