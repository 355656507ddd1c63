package daemon

import (
	"bytes"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/config"
)

func TestLogTo(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	base := slog.New(slog.NewTextHandler(&stderr, nil))
	l := config.Logging{File: filepath.Join(dir, "ha-log"), DebugFile: filepath.Join(dir, "ha-debug")}
	log, closers, err := logTo(base, l)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("Link node2:eth1 up.")
	log.Debug("debug detail")
	for _, c := range closers {
		c.Close()
	}
	haLog, _ := os.ReadFile(l.File)
	haDebug, _ := os.ReadFile(l.DebugFile)
	for name, got := range map[string]string{"stderr": stderr.String(), "logfile": string(haLog), "debugfile": string(haDebug)} {
		if !strings.Contains(got, "Link node2:eth1 up.") {
			t.Errorf("%s lacks the info line: %q", name, got)
		}
	}
	if strings.Contains(string(haLog), "debug detail") || !strings.Contains(string(haDebug), "debug detail") {
		t.Errorf("debug line: logfile %q, debugfile %q; want it in the debugfile only", haLog, haDebug)
	}
	if fi, _ := os.Stat(l.File); fi.Mode().Perm() != 0o600 {
		t.Errorf("logfile mode %v", fi.Mode())
	}

	if same, closers, err := logTo(base, config.Logging{}); same != base || closers != nil || err != nil {
		t.Error("no logging settings changed the logger")
	}
	if _, _, err := logTo(base, config.Logging{File: filepath.Join(dir, "missing", "ha-log")}); err == nil {
		t.Error("an unwritable logfile was accepted")
	}
	if _, _, err := logTo(base, config.Logging{Facility: "local9"}); err == nil || !strings.Contains(err.Error(), "not a syslog facility") {
		t.Errorf("facility local9: %v", err)
	}
}

func TestFacility(t *testing.T) {
	for name, want := range map[string]syslog.Priority{"daemon": syslog.LOG_DAEMON, "local0": syslog.LOG_LOCAL0, "LOCAL7": syslog.LOG_LOCAL7, "authpriv": syslog.LOG_AUTHPRIV} {
		if got, ok := facility(name); !ok || got != want {
			t.Errorf("facility(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
	for _, bad := range []string{"", "local8", "locals", "bogus"} {
		if _, ok := facility(bad); ok {
			t.Errorf("facility(%q) accepted", bad)
		}
	}
}

// TestSyslog sends through a fake syslogd on a Unix datagram socket: each
// level at its severity, no time stamp of ours.
func TestSyslogHandler(t *testing.T) {
	dir := t.TempDir()
	addr := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, err := syslog.Dial("unixgram", addr, syslog.LOG_LOCAL0|syslog.LOG_INFO, "directord")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	log := slog.New(&syslogHandler{w: w, level: slog.LevelInfo, mu: &sync.Mutex{}, buf: &bytes.Buffer{}}).With("node", "node1")
	log.Warn("node node2: is dead")
	log.Info("Link node2:eth1 up.")
	log.Debug("not sent")
	buf := make([]byte, 1024)
	for _, want := range []string{
		// <PRI> = local0 (16) × 8 + severity: warning 4, info 6.
		`<132>`, `<134>`,
	} {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want) || !strings.Contains(got, "directord[") || strings.Contains(got, "time=") || !strings.Contains(got, "node=node1") {
			t.Errorf("syslog got %q, want priority %s, our tag, no time= and the logger's attributes", got, want)
		}
	}
}
