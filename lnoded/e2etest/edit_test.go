package e2etest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
)

func editConfig(dir string, rs2Weight, cleanstop string, withFWM bool, extra string) string {
	s := fmt.Sprintf(`checktimeout=1
negotiatetimeout=1
checkinterval=1
autoreload=yes
quiescent=no
cleanstop=%s
callback="%s/callback.sh"

virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	real=192.0.2.12:80 gate %s
	service=http
	request="/"
	scheduler=rr
%s
virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	real=192.0.2.12:53 gate
	service=dns
	request="www.a.com"
	receive="192.0.2.100"
	scheduler=rr
`, cleanstop, dir, rs2Weight, extra)
	if withFWM {
		s += `
virtual=7
	real=192.0.2.11 gate
	real=192.0.2.12 gate
	checktype=on
	scheduler=rr
`
	}
	return s
}

// TestEditIsMinimal edits lnoded.cf under a running lnoded: a changed
// weight is exactly one IPVS operation and nothing else changes, a file
// with an error changes nothing (and is logged with file:line), a reload of
// an unchanged file issues nothing, a removed virtual is one deletion, and
// a service lnoded does not own is never touched. cleanstop=no leaves the
// services in place on SIGTERM.
func TestEditIsMinimal(t *testing.T) {
	b := newBed(t)
	for _, rs := range b.rs {
		rs.startWeb()
		rs.startDNS()
	}
	// The callback records the file name it is given.
	script := "#!/bin/sh\necho \"$@\" >> " + b.dir + "/callback.out\n"
	if err := os.WriteFile(filepath.Join(b.dir, "callback.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// A service that belongs to someone else.
	ctx := context.Background()
	foreign := ipvs.Service{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("192.0.2.200"), Port: 443, Scheduler: "wlc"}
	if err := b.h.NewService(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := b.h.NewDestination(ctx, foreign.Key(), ipvs.Destination{Addr: reals[0], Port: 443, Forward: ipvs.Route, Weight: 5}); err != nil {
		t.Fatal(err)
	}

	path := b.writeConfig(editConfig(b.dir, "", "yes", true, ""))
	ld := b.startLnoded()
	const settle = 5 * time.Second
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), settle)
	b.waitFor("-u 192.0.2.100:53", line("-u 192.0.2.100:53", "192.0.2.11:53 w1", "192.0.2.12:53 w1"), settle)
	b.waitFor("-f 7", line("-f 7", "192.0.2.11:0 w1", "192.0.2.12:0 w1"), settle)
	before := b.table()
	if !strings.Contains(before, "-t 192.0.2.200:443 wlc | 192.0.2.11:443 w5") {
		t.Fatalf("foreign service changed:\n%s", before)
	}

	// One weight changes: one op.
	mark := ld.mark()
	b.writeConfig(editConfig(b.dir, "3", "yes", true, ""))
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w3"), settle)
	time.Sleep(2 * time.Second) // more check rounds: still nothing else
	if ops := ld.ops(mark); !slices.Equal(ops, []string{"-e -t 192.0.2.100:80 -r 192.0.2.12:80 -g -w 3 -x 0 -y 0"}) {
		t.Errorf("a weight edit issued %q, want exactly one -e; lnoded said:\n%s", ops, ld.said(mark))
	}
	if after := b.table(); after != strings.Replace(before, "192.0.2.12:80 w1", "192.0.2.12:80 w3", 1) {
		t.Errorf("table after the edit:\n%s\nbefore:\n%s", after, before)
	}
	ld.waitLog(mark, `Configuration file '.*lnoded.cf' has changed on disk`, time.Second)
	if out, _ := os.ReadFile(filepath.Join(b.dir, "callback.out")); !strings.Contains(string(out), path) {
		t.Errorf("callback was not run with %s: %q", path, out)
	}

	// A broken edit (line 11: a method that does not exist) changes nothing.
	before = b.table()
	mark = ld.mark()
	b.writeConfig(strings.Replace(editConfig(b.dir, "3", "yes", true, ""), "real=192.0.2.12:80 gate 3", "real=192.0.2.12:80 bogus 3", 1))
	ld.waitLog(mark, `lnoded\.cf:11: `, settle)
	time.Sleep(2 * time.Second)
	if ops := ld.ops(mark); len(ops) != 0 {
		t.Errorf("a broken edit issued %q; lnoded said:\n%s", ops, ld.said(mark))
	}
	if after := b.table(); after != before {
		t.Errorf("a broken edit changed the table:\n%s\nbefore:\n%s", after, before)
	}

	// Fixed again, with another weight: one op.
	mark = ld.mark()
	b.writeConfig(editConfig(b.dir, "2", "yes", true, ""))
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w2"), settle)
	time.Sleep(time.Second)
	if ops := ld.ops(mark); len(ops) != 1 {
		t.Errorf("the fixed edit issued %q, want one op; lnoded said:\n%s", ops, ld.said(mark))
	}

	// SIGHUP on an unchanged file: a reload that issues nothing.
	mark = ld.mark()
	ld.signal(syscall.SIGHUP)
	ld.waitLog(mark, `Reloading lnoded config on signal`, settle)
	time.Sleep(2 * time.Second)
	if ops := ld.ops(mark); len(ops) != 0 {
		t.Errorf("reloading an unchanged file issued %q; lnoded said:\n%s", ops, ld.said(mark))
	}

	// A virtual removed from the file: its service is deleted, nothing else.
	mark = ld.mark()
	b.writeConfig(editConfig(b.dir, "2", "no", false, ""))
	b.waitFor("-f 7", "", settle)
	time.Sleep(time.Second)
	if ops := ld.ops(mark); !slices.Equal(ops, []string{"-D -f 7"}) {
		t.Errorf("removing a virtual issued %q, want -D -f 7; lnoded said:\n%s", ops, ld.said(mark))
	}

	// cleanstop=no: SIGTERM leaves the services.
	before = b.table()
	if err := ld.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if after := b.table(); after != before {
		t.Errorf("after SIGTERM with cleanstop=no the table is\n%s\nwant\n%s", after, before)
	}
}

// TestMaintenanceAndFallback drains real servers with files in
// maintenancedir (no config edit) and checks that the fallback server is in
// the service exactly when no real server is up, with fallbackcommand run
// with ldirectord's arguments on each change.
func TestMaintenanceAndFallback(t *testing.T) {
	b := newBed(t)
	for _, rs := range b.rs {
		rs.startWeb()
	}
	maint := filepath.Join(b.dir, "maint")
	if err := os.Mkdir(maint, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$@\" >> " + b.dir + "/fallback.out\n"
	if err := os.WriteFile(filepath.Join(b.dir, "fallback.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b.writeConfig(fmt.Sprintf(`checktimeout=1
negotiatetimeout=1
checkinterval=1
quiescent=no
maintenancedir=%s
fallback=192.0.2.13:80 gate
fallbackcommand=%s/fallback.sh

virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	real=192.0.2.12:80 gate
	service=http
	request=".test.html"
	receive="ok"
	scheduler=rr
`, maint, b.dir))
	fallbackLog := func() string {
		out, _ := os.ReadFile(filepath.Join(b.dir, "fallback.out"))
		return strings.TrimSpace(string(out))
	}
	waitFallbackLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for fallbackLog() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := fallbackLog(); got != want {
			t.Errorf("fallbackcommand ran as\n%s\nwant\n%s", got, want)
		}
	}
	ld := b.startLnoded()
	const settle, react = 5 * time.Second, 2 * time.Second

	// Nothing passes its check: the fallback server serves.
	b.waitFor(web, line(web, "192.0.2.13:80 w1"), settle)
	waitFallbackLog("start 192.0.2.100:80 tcp")
	b.rs[0].setTestHTML("ok")
	b.rs[1].setTestHTML("ok")
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), react)
	waitFallbackLog("start 192.0.2.100:80 tcp\nstop 192.0.2.100:80 tcp")

	// Maintenance by address, then by address:port.
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(maint, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("192.0.2.11")
	d := b.waitFor(web, line(web, "192.0.2.12:80 w1"), react)
	t.Logf("maintenance file honoured after %v", d.Round(time.Millisecond))
	touch("192.0.2.12:80")
	b.waitFor(web, line(web, "192.0.2.13:80 w1"), react)
	waitFallbackLog("start 192.0.2.100:80 tcp\nstop 192.0.2.100:80 tcp\nstart 192.0.2.100:80 tcp")
	for _, s := range ld.lines(0) {
		if strings.Contains(s, "Server maintenance") {
			t.Log(s)
		}
	}
	if st := ld.lines(0); !slices.ContainsFunc(st, func(l string) bool {
		return strings.Contains(l, "Server maintenance: 192.0.2.11:80 (192.0.2.100:80) forced down")
	}) {
		t.Error("maintenance not logged")
	}
	os.Remove(filepath.Join(maint, "192.0.2.11"))
	os.Remove(filepath.Join(maint, "192.0.2.12:80"))
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), react)
	waitFallbackLog("start 192.0.2.100:80 tcp\nstop 192.0.2.100:80 tcp\nstart 192.0.2.100:80 tcp\nstop 192.0.2.100:80 tcp")
	if err := ld.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}
