package e2etest

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// diffConfig is the lnoded.cf both daemons run in the differential test:
// seed 003's web service (with a fallback server) and its DNS service.
func diffConfig(dir, quiescent, rs1Weight, scheduler string) string {
	return fmt.Sprintf(`checktimeout=1
negotiatetimeout=1
checkinterval=1
autoreload=yes
quiescent=%s
cleanstop=yes
maintenancedir=%s/maint
fallbackcommand=%s/fallback.sh

virtual=192.0.2.100:80
	real=192.0.2.11:80 gate %s
	real=192.0.2.12:80 gate
	fallback=192.0.2.13:80 gate
	service=http
	request=".test.html"
	receive="ok"
	virtualhost=www.a.com
	scheduler=%s
	protocol=tcp

virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	real=192.0.2.12:53 gate
	service=dns
	request="www.a.com"
	receive="192.0.2.100"
	scheduler=rr
	protocol=udp
`, quiescent, dir, dir, rs1Weight, scheduler)
}

// event is one step of the differential scenario.
type event struct {
	name string
	do   func(b *bed)
}

func diffEvents() []event {
	cfg := func(q, w, s string) func(b *bed) {
		return func(b *bed) { b.writeConfig(diffConfig(b.dir, q, w, s)) }
	}
	maint := func(b *bed) string { return filepath.Join(b.dir, "maint", "192.0.2.11") }
	return []event{
		{"start (quiescent=yes, no .test.html)", func(b *bed) {}},
		{"rs1 .test.html says ok", func(b *bed) { b.rs[0].setTestHTML("ok\n") }},
		{"rs2 .test.html says ok", func(b *bed) { b.rs[1].setTestHTML("ok\n") }},
		{"rs1 web server stops", func(b *bed) { b.rs[0].stopWeb() }},
		{"rs1 web server starts", func(b *bed) { b.rs[0].startWeb() }},
		{"edit: quiescent=no", cfg("no", "", "rr")},
		{"rs2 web server stops", func(b *bed) { b.rs[1].stopWeb() }},
		{"rs1 web server stops (fallback)", func(b *bed) { b.rs[0].stopWeb() }},
		{"both web servers start", func(b *bed) { b.rs[0].startWeb(); b.rs[1].startWeb() }},
		{"maintenance file for rs1", func(b *bed) { os.WriteFile(maint(b), nil, 0o644) }},
		{"maintenance file removed", func(b *bed) { os.Remove(maint(b)) }},
		{"rs2 DNS server stops", func(b *bed) { b.rs[1].stopDNS() }},
		{"rs2 DNS server starts", func(b *bed) { b.rs[1].startDNS() }},
		{"edit: rs1 weight 2, scheduler wlc", cfg("no", "2", "wlc")},
		{"edit: quiescent=yes", cfg("yes", "2", "wlc")},
		{"rs2 web server stops (quiescent)", func(b *bed) { b.rs[1].stopWeb() }},
	}
}

// observation is what one daemon did after one event.
type observation struct {
	state string        // the settled kernel table
	took  time.Duration // from the event to the table's last change
	ops   []string      // the IPVS operations it issued, in ipvsadm syntax
}

// settle waits until the kernel table has not changed for quiet (or limit
// passes) and returns it with the time from start to its last change.
func (b *bed) settle(start time.Time, quiet, limit time.Duration) (string, time.Duration) {
	last, since := b.table(), start
	for time.Since(since) < quiet && time.Since(start) < limit {
		time.Sleep(50 * time.Millisecond)
		if cur := b.table(); cur != last {
			last, since = cur, time.Now()
		}
	}
	return last, since.Sub(start)
}

// ldirectord logs each command it runs; in -d mode every message comes
// twice, once as "DEBUG2: message", which is skipped.
var ldirectordOpRE = regexp.MustCompile(`^\S+ Running system\(\S*ipvsadm (.*)\)$`)

// canonical rewrites an ipvsadm command line in one order, with the
// defaults ipvsadm applies written out (-x 0 -y 0 for real servers), so that
// ldirectord's and lnoded's spellings of the same operation compare equal.
func canonical(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) < 3 {
		return cmd
	}
	op, svc := f[0], f[1]+" "+f[2]
	opts := map[string]string{}
	var flags []string
	for i := 3; i < len(f); i++ {
		switch f[i] {
		case "-g", "-m", "-i":
			flags = append(flags, f[i])
		default:
			if i+1 < len(f) {
				opts[f[i]] = f[i+1]
				i++
			}
		}
	}
	out := op + " " + svc
	switch op {
	case "-a", "-e":
		for _, k := range []string{"-x", "-y"} {
			if _, ok := opts[k]; !ok {
				opts[k] = "0"
			}
		}
		out += " -r " + opts["-r"] + " " + strings.Join(flags, " ") + " -w " + opts["-w"] + " -x " + opts["-x"] + " -y " + opts["-y"]
	case "-d":
		out += " -r " + opts["-r"]
	default:
		keys := slices.Sorted(maps.Keys(opts))
		for _, k := range keys {
			out += " " + k + " " + opts[k]
		}
		out += strings.Join(flags, " ")
	}
	return out
}

// runScenario runs the events against one daemon, started by start and
// whose operations ops extracts from its log.
func runScenario(t *testing.T, b *bed, start func() *proc, ops func(p *proc, from int) []string) []observation {
	for _, rs := range b.rs {
		rs.startWeb()
		rs.startDNS()
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "maint"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.writeConfigFile("fallback.sh", "#!/bin/sh\necho \"$@\" >> "+b.dir+"/fallback.out\n")
	os.Chmod(filepath.Join(b.dir, "fallback.sh"), 0o755)
	b.writeConfig(diffConfig(b.dir, "yes", "", "rr"))
	var obs []observation
	var p *proc
	for i, ev := range diffEvents() {
		mark, t0 := 0, time.Now()
		if i == 0 {
			p = start()
			// Perl starts slowly in the emulated guest: wait for the
			// first service before waiting for the table to settle.
			p.waitLog(0, `Added virtual server`, 60*time.Second)
		} else {
			mark = p.mark()
			ev.do(b)
		}
		// Several check rounds without a change: settled. (ldirectord's
		// round of four checks takes seconds in the emulated guest, and
		// its start much longer.)
		quiet := 6 * time.Second
		if i == 0 {
			quiet = 15 * time.Second
		}
		state, took := b.settle(t0, quiet, 60*time.Second)
		obs = append(obs, observation{state: state, took: took, ops: ops(p, mark)})
	}
	for _, l := range p.lines(0) {
		if strings.Contains(l, "Deactivated") && !strings.Contains(l, "DEBUG") {
			t.Log(l)
		}
	}
	mark := p.mark()
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	obs = append(obs, observation{state: b.table(), ops: ops(p, mark)})
	out, _ := os.ReadFile(filepath.Join(b.dir, "fallback.out"))
	t.Logf("fallbackcommand ran as:\n%s", out)
	return obs
}

// TestDifferentialLdirectord runs Debian's ldirectord 4.12 and lnoded on
// the same lnoded.cf through the same server events (check results,
// configuration edits, maintenance, fallback, SIGTERM) against the
// kernel's IPVS, and requires the same sequence of settled IPVS tables.
// The operations each issued are compared as sets per event (ldirectord's
// order within a batch is random) and their differences logged: they are
// the documented ones (docs/lnoded.md).
func TestDifferentialLdirectord(t *testing.T) {
	if _, err := os.Stat(ldirectordPath); err != nil {
		t.Skipf("Debian's ldirectord is not installed on the host that built the guest (apt-get install ldirectord): %v", err)
	}
	if testing.Short() {
		t.Skip("the differential scenario takes minutes")
	}
	var theirs, ours []observation
	t.Run("ldirectord", func(t *testing.T) {
		b := newBed(t)
		theirs = runScenario(t, b, func() *proc {
			cmd := exec.Command(ldirectordPath, "-d", b.dir+"/lnoded.cf", "start")
			cmd.Dir = b.dir // no ./ipvsadm there: it runs /usr/sbin/ipvsadm
			cmd.Env = append(os.Environ(), "PERLIO=perlio")
			return b.start(cmd)
		}, func(p *proc, from int) []string {
			var ops []string
			for _, l := range p.lines(from) {
				if m := ldirectordOpRE.FindStringSubmatch(l); m != nil {
					ops = append(ops, canonical(m[1]))
				}
			}
			return ops
		})
	})
	t.Run("lnoded", func(t *testing.T) {
		b := newBed(t)
		ours = runScenario(t, b, b.startLnoded, func(p *proc, from int) []string {
			var ops []string
			for _, o := range p.ops(from) {
				ops = append(ops, canonical(o))
			}
			return ops
		})
	})
	if t.Failed() {
		return
	}
	names := append(slices.Collect(func(yield func(string) bool) {
		for _, e := range diffEvents() {
			if !yield(e.name) {
				return
			}
		}
	}), "SIGTERM (cleanstop=yes)")
	for i, name := range names {
		th, us := theirs[i], ours[i]
		if th.state != us.state {
			t.Errorf("after %q the tables differ:\nldirectord:\n%s\nlnoded:\n%s", name, indent(th.state), indent(us.state))
		} else {
			t.Logf("after %q both have (settled after %v / %v):\n%s", name, th.took.Round(10*time.Millisecond), us.took.Round(10*time.Millisecond), indent(th.state))
		}
		onlyTheirs, onlyOurs := setDiff(th.ops, us.ops)
		if len(onlyTheirs)+len(onlyOurs) > 0 {
			t.Logf("  ops only ldirectord issued: %q\n  ops only lnoded issued: %q", onlyTheirs, onlyOurs)
		}
	}
}

func indent(s string) string {
	if s == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// setDiff returns the elements of a not in b and of b not in a, as
// multisets.
func setDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		count[x]--
	}
	for _, x := range a {
		if count[x] > 0 {
			onlyA = append(onlyA, x)
			count[x]--
		}
	}
	for _, x := range b {
		if count[x] < 0 {
			onlyB = append(onlyB, x)
			count[x]++
		}
	}
	return onlyA, onlyB
}
