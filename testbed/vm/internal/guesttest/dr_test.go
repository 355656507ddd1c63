package guesttest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/testbed/netns"
)

// TestDirectRouting builds an LVS-DR LAN with testbed/netns (client,
// director, two real servers holding the VIP on lo with ARP kept quiet) and
// balances TCP through the kernel's IPVS, set up with ipvsadm.
func TestDirectRouting(t *testing.T) {
	topo := netns.ForTest(t)
	lan, err := topo.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]*netns.Host{}
	for name, addr := range map[string]string{"client": "192.0.2.10/24", "director": "192.0.2.1/24", "rs1": "192.0.2.11/24", "rs2": "192.0.2.12/24"} {
		h, err := topo.Host(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := topo.Plug(h, "eth0", lan); err != nil {
			t.Fatal(err)
		}
		if err := h.AddAddr("eth0", netip.MustParsePrefix(addr)); err != nil {
			t.Fatal(err)
		}
		hosts[name] = h
	}
	vip := netip.MustParsePrefix("192.0.2.100/32")
	if err := hosts["director"].AddAddr("eth0", vip); err != nil {
		t.Fatal(err)
	}
	for _, rs := range []string{"rs1", "rs2"} {
		h := hosts[rs]
		for k, v := range map[string]string{"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"} {
			if err := h.Sysctl(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.AddAddr("lo", vip); err != nil {
			t.Fatal(err)
		}
		var ln net.Listener
		if err := h.Do(func() (err error) { ln, err = net.Listen("tcp", "192.0.2.100:80"); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintln(c, rs)
				c.Close()
			}
		}()
	}
	d := hosts["director"]
	for _, args := range [][]string{
		{"-A", "-t", "192.0.2.100:80", "-s", "rr"},
		{"-a", "-t", "192.0.2.100:80", "-r", "192.0.2.11:80", "-g"},
		{"-a", "-t", "192.0.2.100:80", "-r", "192.0.2.12:80", "-g"},
	} {
		if out, err := d.CombinedOutput(exec.Command("/usr/sbin/ipvsadm", args...)); err != nil {
			t.Fatalf("ipvsadm %v: %v: %s", args, err, out)
		}
	}
	seen := map[string]int{}
	for range 4 {
		var c net.Conn
		if err := hosts["client"].Do(func() (err error) { c, err = net.DialTimeout("tcp", "192.0.2.100:80", 3*time.Second); return err }); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimSpace(line)]++
	}
	if seen["rs1"] != 2 || seen["rs2"] != 2 {
		out, _ := d.CombinedOutput(exec.Command("/usr/sbin/ipvsadm", "-Ln", "--stats"))
		t.Errorf("answers %v, want rs1 and rs2 twice each (round robin)\n%s", seen, out)
	}
}
