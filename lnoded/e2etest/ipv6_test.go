package e2etest

import (
	"testing"
	"time"
)

// TestIPv6 runs a virtual6 service with real6 servers checked over IPv6:
// quiescent weight 0 until .test.html says ok, weight 1 after, removed
// (quiescent=no after an autoreload) when the web server stops, and a
// maintenance file named [ADDR]:PORT drains one.
func TestIPv6(t *testing.T) {
	b := newBed(t)
	for _, rs := range b.rs {
		rs.startWeb()
	}
	cfg := func(q string) string {
		return `checktimeout=1
negotiatetimeout=1
checkinterval=1
autoreload=yes
quiescent=` + q + `
maintenancedir=` + b.dir + `

virtual6=[2001:db8::100]:80
	real6=[2001:db8::b]:80 gate
	real6=[2001:db8::c]:80 gate 2
	service=http
	request=".test.html"
	receive="ok"
	scheduler=rr
`
	}
	const key = "-t [2001:db8::100]:80"
	b.writeConfig(cfg("yes"))
	ld := b.startLnoded()
	b.waitFor(key, line(key, "[2001:db8::b]:80 w0", "[2001:db8::c]:80 w0"), 5*time.Second)
	b.rs[0].setTestHTML("ok")
	b.rs[1].setTestHTML("ok")
	b.waitFor(key, line(key, "[2001:db8::b]:80 w1", "[2001:db8::c]:80 w2"), 3*time.Second)
	b.writeConfig(cfg("no"))
	time.Sleep(2 * time.Second)
	b.rs[0].stopWeb()
	b.waitFor(key, line(key, "[2001:db8::c]:80 w2"), 3*time.Second)
	b.rs[0].startWeb()
	b.waitFor(key, line(key, "[2001:db8::b]:80 w1", "[2001:db8::c]:80 w2"), 3*time.Second)
	b.writeConfigFile("[2001:db8::c]:80", "")
	b.waitFor(key, line(key, "[2001:db8::b]:80 w1"), 3*time.Second)
	if err := ld.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if tab := b.table(); tab != "" {
		t.Errorf("after SIGTERM:\n%s", tab)
	}
}
