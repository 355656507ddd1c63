package media

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/directord/directord/heartbeat/hacf"
)

// pair is two network namespaces joined by a veth pair named hb0 in
// both, addressed 198.51.100.1/24 (a) and 198.51.100.2/24 (b).
type pair struct{ a, b netns.NsHandle }

func newPair(t *testing.T) *pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	na, nb := fmt.Sprintf("ddhb-a-%d", os.Getpid()), fmt.Sprintf("ddhb-b-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", na).Run()
		exec.Command("ip", "netns", "del", nb).Run()
	})
	ip("netns", "add", na)
	ip("netns", "add", nb)
	ip("link", "add", "hb0", "netns", na, "type", "veth", "peer", "name", "hb0", "netns", nb)
	ip("-n", na, "addr", "add", "198.51.100.1/24", "dev", "hb0")
	ip("-n", nb, "addr", "add", "198.51.100.2/24", "dev", "hb0")
	for _, n := range []string{na, nb} {
		ip("-n", n, "link", "set", "hb0", "up")
		ip("-n", n, "link", "set", "lo", "up")
	}
	p := &pair{}
	var err error
	if p.a, err = netns.GetFromName(na); err != nil {
		t.Fatal(err)
	}
	if p.b, err = netns.GetFromName(nb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.a.Close(); p.b.Close() })
	return p
}

// openIn opens m inside namespace ns. Sockets keep the namespace they
// were created in, so only the open needs the thread switched.
func openIn(t *testing.T, ns netns.NsHandle, m hacf.Medium) *Medium {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	md, oerr := Open(context.Background(), m)
	if err := netns.Set(orig); err != nil {
		t.Fatal(err) // the thread stays locked and dies with the test
	}
	if oerr != nil {
		t.Fatal(oerr)
	}
	t.Cleanup(func() { md.Close() })
	return md
}

func TestMediaBetweenNamespaces(t *testing.T) {
	p := newPair(t)
	a1 := netip.MustParseAddr("198.51.100.1")
	group := netip.MustParseAddr("239.0.0.1")
	tests := []struct {
		name string
		a, b hacf.Medium
	}{
		{"ucast",
			hacf.Medium{Type: hacf.Ucast, Interface: "hb0", Peer: "198.51.100.2", Port: 694},
			hacf.Medium{Type: hacf.Ucast, Interface: "hb0", Peer: "198.51.100.1", Port: 694}},
		{"bcast",
			hacf.Medium{Type: hacf.Bcast, Interface: "hb0", Port: 695},
			hacf.Medium{Type: hacf.Bcast, Interface: "hb0", Port: 695}},
		{"mcast",
			hacf.Medium{Type: hacf.Mcast, Interface: "hb0", Group: group, Port: 696, TTL: 1},
			hacf.Medium{Type: hacf.Mcast, Interface: "hb0", Group: group, Port: 696, TTL: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ma := openIn(t, p.a, tt.a)
			mb := openIn(t, p.b, tt.b)
			// Each side sends its own message; broadcast and multicast
			// also loop back to the sender, which must skip its own.
			for _, dir := range []struct {
				from, to *Medium
				src      netip.Addr
			}{{ma, mb, a1}, {mb, ma, netip.MustParseAddr("198.51.100.2")}} {
				msg := []byte("###\n11:(0)t=status,%%%\n" + tt.name + " from " + dir.src.String())
				if err := dir.from.Send(msg); err != nil {
					t.Fatal(err)
				}
				for {
					got, from := recv(t, dir.to)
					if from.Addr() != dir.src {
						continue // our own looped-back datagram
					}
					if !bytes.Equal(got, msg) {
						t.Errorf("received %q, want %q", got, msg)
					}
					break
				}
			}
		})
	}
}
