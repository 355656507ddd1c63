package deploy_test

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/directord/directord/testbed/netns"
)

// TestRealserverCLI runs `directord realserver` as the real-server unit
// does, in a network namespace of its own, and checks what it leaves behind.
// deploy/realserver's tests cover the behaviour; this covers the command.
func TestRealserverCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	rs, err := netns.ForTest(t).Host("rs")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(append([]string{"realserver"}, args...), "--state-dir", state)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := rs.Run(cmd); err != nil {
			t.Fatalf("directord realserver %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	sysctl := func(name string) string {
		t.Helper()
		out, err := rs.CombinedOutput(exec.Command("cat", filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	onLo := func() []string {
		t.Helper()
		lo, err := rs.Netlink().LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := rs.Netlink().AddrList(lo, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range addrs {
			if p, ok := netip.AddrFromSlice(a.IP); ok && !p.IsLoopback() {
				out = append(out, a.IPNet.String())
			}
		}
		return out
	}

	if out := cli("up", "--dry-run", "192.0.2.101"); !strings.Contains(out, "would add 192.0.2.101/32 to lo") || len(onLo()) != 0 {
		t.Errorf("dry run: %q, lo %v", out, onLo())
	}
	cli("up", "192.0.2.101", "2001:db8::101")
	if got := strings.Join(onLo(), " "); got != "192.0.2.101/32 2001:db8::101/128" {
		t.Errorf("lo holds %q", got)
	}
	if sysctl("net.ipv4.conf.all.arp_ignore") != "1" || sysctl("net.ipv4.conf.lo.arp_announce") != "2" {
		t.Error("the ARP sysctls are not set")
	}
	if _, err := os.Stat(filepath.Join(state, "realserver.json")); err != nil {
		t.Errorf("no record of what was done: %v", err)
	}
	cli("down")
	if got := onLo(); len(got) != 0 {
		t.Errorf("lo still holds %v", got)
	}
	if sysctl("net.ipv4.conf.all.arp_ignore") != "0" || sysctl("net.ipv4.conf.lo.arp_announce") != "0" {
		t.Error("the ARP sysctls are not restored")
	}
}
