package checks

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConnect(t *testing.T) {
	open := tcpServer(t, func(net.Conn) {})
	expect(t, mustNew(t, Config{CheckType: "connect", Addr: open}), true)
	r := expect(t, mustNew(t, Config{CheckType: "connect", Addr: closedPort(t)}), false)
	if r.Err == nil {
		t.Errorf("refused connect without an error: %v", r)
	}
}

func TestPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ICMP needs a raw socket: run as root")
	}
	c := mustNew(t, Config{CheckType: "ping", Addr: netip.MustParseAddrPort("127.0.0.1:0"), CheckTimeout: time.Second})
	expect(t, c, true)
	// A UDP virtual service's connect check is a ping.
	c = mustNew(t, Config{CheckType: "connect", Protocol: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:53"), CheckTimeout: time.Second})
	if _, ok := c.(*PingChecker); !ok {
		t.Fatalf("udp connect check is %T", c)
	}
	expect(t, c, true)
	c = mustNew(t, Config{CheckType: "ping", Addr: netip.MustParseAddrPort("[::1]:0"), CheckTimeout: time.Second})
	if r := c.Check(t.Context()); !r.Up {
		t.Logf("ICMPv6 to ::1 failed (no IPv6 loopback here?): %v", r)
	}
}

func TestExternal(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := script("ok", `echo "$@" > `+out+`; exit 0`)
	cfg := Config{CheckType: "external", CheckCommand: ok, Virtual: "192.0.2.1", VirtualPort: "80",
		Addr: netip.MustParseAddrPort("127.0.0.1:8080"), RealPort: 8080}
	expect(t, mustNew(t, cfg), true)
	got, _ := os.ReadFile(out)
	if strings.TrimSpace(string(got)) != "192.0.2.1 80 127.0.0.1 8080" {
		t.Errorf("command got arguments %q", got)
	}
	cfg.CheckCommand = script("fail", "exit 3")
	r := expect(t, mustNew(t, cfg), false)
	if !strings.Contains(r.Message, "3") {
		t.Errorf("exit status not reported: %v", r)
	}
	cfg.CheckCommand = filepath.Join(dir, "missing")
	expect(t, mustNew(t, cfg), false)
	// A command that never ends is stopped at checktimeout.
	cfg.CheckCommand = script("hang", "exec sleep 30")
	cfg.CheckTimeout = 200 * time.Millisecond
	start := time.Now()
	expect(t, mustNew(t, cfg), false)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("hung command held the check %v", el)
	}
	// The default command is /bin/true.
	expect(t, mustNew(t, Config{CheckType: "external", Addr: cfg.Addr}), true)
}
