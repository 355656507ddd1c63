package config_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/lnoded"
	"github.com/directord/directord/lnoded/config"
)

// TestLdirectordMonitorFile lets Debian's ldirectord check a loopback HTTP
// server with a monitorfile and compares its line with lnoded.MonitorLine
// for the same file and result: everything but the time and the pid must
// be equal, and the time must be in Perl's localtime form.
func TestLdirectordMonitorFile(t *testing.T) {
	if _, err := os.Stat(config.LdirectordPath); err != nil {
		t.Skipf("%s is absent (apt-get install ldirectord): the monitorfile comparison did not run", config.LdirectordPath)
	}
	if testing.Short() {
		t.Skip("starts ldirectord; skipped in -short mode")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "all fine")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	mon := filepath.Join(t.TempDir(), "monitor.log")
	src := "checkinterval=60\nvirtual=127.0.0.2:8080\n" +
		"    real=127.0.0.1:" + port + " gate 2 \"a:b\", \"ok|fine\"\n" +
		"    service=http\n    virtualhost=vh.example\n    checkport=" + port + "\n" +
		"    monitorfile=\"" + mon + "\"\n"
	lines := func() []string {
		b, _ := os.ReadFile(mon)
		if len(b) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	config.RunLdirectordStart(t, self, "mon.cf", []byte(src), func(*config.FakeTable) bool { return len(lines()) > 0 })
	got := lines()
	if len(got) == 0 {
		t.Fatal("ldirectord wrote no monitorfile line")
	}
	cfg, err := config.Parse(context.Background(), "mon.cf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &cfg.Virtuals[0]
	// ldirectord's message for a passing HTTP check is the status line,
	// as lnoded's HTTP check says it.
	want := lnoded.MonitorLine(time.Now(), 1, v, &v.Reals[0], true, "200 OK")
	head := regexp.MustCompile(`^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] \[\d+\] `)
	if !head.MatchString(got[0]) {
		t.Fatalf("ldirectord's line %q does not start with [localtime] [pid]", got[0])
	}
	t.Logf("ldirectord: %s", got[0])
	if a, b := head.ReplaceAllString(got[0], ""), head.ReplaceAllString(strings.TrimSuffix(want, "\n"), ""); a != b {
		t.Errorf("after the time and pid:\nldirectord %q\nlnoded     %q", a, b)
	}
}
