// Package kerneltest checks package ipvs against a real kernel's IPVS and
// against ipvsadm, the reference. Its TestMain runs the tests on the host
// when the host kernel has IPVS and otherwise in a qemu guest booting
// Debian's cloud kernel (testbed/vm). The tests change the kernel's IPVS
// table, so they flush it and must not run on a production director.
package kerneltest

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/testbed/vm"
)

func TestMain(m *testing.M) { vm.Main(m) }

const ipvsadmPath = "/usr/sbin/ipvsadm"

// ipvsadm runs ipvsadm with args (and stdin, if not empty) and returns its
// standard output; a failure fails the test.
func ipvsadm(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(ipvsadmPath, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ipvsadm %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// ipPath is iproute2's ip in the guest (Debian has both paths).
func ip(t testing.TB, args ...string) {
	t.Helper()
	for _, p := range []string{"/usr/sbin/ip", "/bin/ip", "/sbin/ip"} {
		if _, err := exec.LookPath(p); err != nil {
			continue
		}
		if out, err := exec.Command(p, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return
	}
	t.Fatal("iproute2 ip not found")
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// open returns a handle on a flushed table.
func open(t testing.TB) *ipvs.Handle {
	t.Helper()
	h, err := ipvs.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Flush(ctx(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return h
}
