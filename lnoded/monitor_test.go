package lnoded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directord/directord/checks"
	"github.com/directord/directord/lnoded/config"
)

// TestMonitorLine: ldirectord's service_set line, field by field: Perl's
// localtime, the pid, the real server id with ':' runs squeezed and
// backslashes dropped, the state and the escaped message.
func TestMonitorLine(t *testing.T) {
	src := "virtual=192.0.2.100:80\n\treal=192.0.2.11:8080 gate 3 \"a:b\", \"x|y\"\n\tservice=http\n\tvirtualhost=www.example\n\tcheckport=81\n\n" +
		"virtual=192.0.2.101:53\n\treal=192.0.2.12 gate\n\tchecktype=connect\n\n" +
		"virtual=192.0.2.102:80\n\treal=192.0.2.13 masq\n\tchecktype=external\n\tcheckcommand=/usr/local/bin/chk\n\n" +
		"virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11]:80 gate\n\tchecktype=3\n\tservice=http\n"
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 3, 4, 5, 0, time.Local)
	cases := []struct {
		v, r int
		up   bool
		msg  string
		want string
	}{
		{0, 0, true, "200 OK", "[Mon Nov  2 03:04:05 2026] [42] negotiate http tcp 192.0.2.11 8080 www.example 81 3 gate /a b x|y [up] 200 OK\n"},
		{0, 0, false, "50% bad | \r\nnext", "[Mon Nov  2 03:04:05 2026] [42] negotiate http tcp 192.0.2.11 8080 www.example 81 3 gate /a b x|y [down] 50%25 bad %7c %0d%0anext\n"},
		{1, 0, false, "", "[Mon Nov  2 03:04:05 2026] [42] connect udp 192.0.2.12 0 1 gate /  [down] -\n"},
		{2, 0, true, "exit 0", "[Mon Nov  2 03:04:05 2026] [42] external /usr/local/bin/chk tcp 192.0.2.13 0 1 masq /  [up] exit 0\n"},
		{3, 0, true, "ok", "[Mon Nov  2 03:04:05 2026] [42] combined http tcp [2001 db8 11] 80 1 gate /  [up] ok\n"},
	}
	for _, c := range cases {
		v := &cfg.Virtuals[c.v]
		got := MonitorLine(at, 42, v, &v.Reals[c.r], c.up, c.msg)
		if got != c.want {
			t.Errorf("virtual %d:\n got %q\nwant %q", c.v, got, c.want)
		}
	}
}

// TestMonitorFile runs real HTTP checks through the scheduler with the
// module's OnResult hook and reads the monitorfile back: one line per check
// and per virtual service that has a monitorfile, soft failures included.
func TestMonitorFile(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ok.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dir := t.TempDir()
	mon := filepath.Join(dir, "monitor.log")
	src := fmt.Sprintf("checkinterval=1\nfailurecount=3\n\nvirtual=192.0.2.100:80\n\treal=127.0.0.1:%s gate\n\tservice=http\n\tmonitorfile=%q\n\n"+
		"virtual=192.0.2.101:80\n\treal=127.0.0.1:%s gate\n\tservice=http\n", port, mon, port)
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &Module{plan: p, notes: newNotifier(slog.New(slog.DiscardHandler))}
	sched := checks.NewScheduler(checks.SchedulerConfig{Jitter: -1, OnResult: m.onResult})
	if err := sched.Update(p.jobs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sched.Run(ctx) }()
	defer func() { cancel(); <-done }()

	lines := func() []string {
		b, _ := os.ReadFile(mon)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	waitLines := func(n int) []string {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if l := lines(); len(l) >= n && l[0] != "" {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("monitorfile has %q, want %d lines", lines(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitLines(1)
	ok.Store(false)
	all := waitLines(2)
	cancel()
	<-done
	re := regexp.MustCompile(`^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] \[` + fmt.Sprint(os.Getpid()) + `\] negotiate http tcp 127\.0\.0\.1 ` + port + ` 1 gate /  \[(up|down)\] (.*)$`)
	mm := re.FindStringSubmatch(first[0])
	if mm == nil || mm[1] != "up" {
		t.Fatalf("first line %q does not match %s", first[0], re)
	}
	// The second result is a soft failure (failurecount=3: the server
	// stays up) and is logged all the same, as ldirectord logs every check.
	mm = re.FindStringSubmatch(all[1])
	if mm == nil || mm[1] != "down" || !strings.Contains(mm[2], "503") {
		t.Fatalf("second line %q: want [down] with the 503", all[1])
	}
	// The other virtual service shares the probe but has no monitorfile.
	for _, l := range all {
		if strings.Contains(l, "192.0.2.101") {
			t.Errorf("line of the virtual service without monitorfile: %q", l)
		}
	}
}
