// Package guesttest checks vm.Main end to end: its tests need IPVS, so on a
// kernel without it they run in the VM, and they check what the guest
// promises (root, /proc, /sys, /dev, tmpfs /tmp, loopback, the modules,
// arguments, environment and testdata).
package guesttest

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/directord/directord/testbed/vm"
	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) { vm.Main(m) }

func TestIPVS(t *testing.T) {
	if !vm.HasIPVS() {
		t.Fatal("HasIPVS() = false under vm.Main")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("euid %d, want root", os.Geteuid())
	}
}

func TestMounts(t *testing.T) {
	if !vm.InGuest() {
		t.Skip("on the host: its mounts are its own business")
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"proc /proc proc", "sysfs /sys sysfs", "devtmpfs /dev devtmpfs", "tmpfs /tmp tmpfs"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/proc/mounts lacks %q:\n%s", want, b)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&(1<<0) == 0 { // net.FlagUp
		t.Error("lo is down")
	}
}

func TestLinks(t *testing.T) {
	if !vm.InGuest() {
		t.Skip("creates links in the current namespace; only in the guest")
	}
	la := netlink.NewLinkAttrs()
	la.Name = "gt-a"
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "gt-b"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	defer netlink.LinkDel(veth)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "gt-br"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	defer netlink.LinkDel(br)
	out, err := exec.Command("ipvsadm", "-A", "-t", "192.0.2.9:80", "-s", "wlc").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm: %v: %s", err, out)
	}
	out, err = exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "192.0.2.9:80 wlc") {
		t.Fatalf("ipvsadm -Ln: %v: %s", err, out)
	}
}

func TestTestdata(t *testing.T) {
	b, err := os.ReadFile("testdata/hello.txt")
	if err != nil || string(b) != "hello from the host\n" {
		t.Fatalf("testdata/hello.txt: %q, %v", b, err)
	}
}

// TestEnvAndFailure fails on request, to check by hand that vm.Main passes
// DIRECTORD_* variables in and a failure out:
//
//	DIRECTORD_GUESTTEST_FAIL=1 go test ./testbed/vm/internal/guesttest   # must FAIL
func TestEnvAndFailure(t *testing.T) {
	if os.Getenv("DIRECTORD_GUESTTEST_FAIL") == "1" {
		t.Fatal("failing on request (DIRECTORD_GUESTTEST_FAIL=1 reached the test)")
	}
}
