// Package e2etest runs the appliance end to end: two `directord run`
// processes, each in its own network namespace, with a LAN, a heartbeat link,
// a client and two LVS-DR real servers, in the testbed VM when this host's
// kernel has no IPVS. Nothing is faked: the daemons are the real binary,
// built from cmd/directord before the tests start, and every assertion reads
// the kernel (addresses, IPVS) or talks to the daemons as an operator would
// (the CLI, the control socket, the metrics endpoint).
package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/directord/directord/testbed/vm"
)

// guestBinary is where the directord binary built on the host lands in the
// guest.
const guestBinary = "/job/bin/directord"

// binEnv names the directord binary when the tests run on a host that has
// IPVS (no guest).
const binEnv = "DIRECTORD_E2E_BINARY"

func TestMain(m *testing.M) {
	if !vm.InGuest() && os.Getenv("DIRECTORD_VM") != "always" && vm.HasIPVS() {
		// The tests run here: build the binary here.
		dir, err := os.MkdirTemp("", "directord-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bin, err := buildDirectord(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv(binEnv, bin)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	vm.MainWith(m, vm.MainOptions{Files: guestFiles})
}

// guestFiles builds the directord binary on the host for the guest, which
// has no Go toolchain.
func guestFiles() ([]vm.File, error) {
	dir, err := os.MkdirTemp("", "directord-e2e-")
	if err != nil {
		return nil, err
	}
	bin, err := buildDirectord(dir)
	if err != nil {
		return nil, err
	}
	return []vm.File{{Guest: guestBinary, Host: bin, Mode: 0o755}}, nil
}

func buildDirectord(dir string) (string, error) {
	bin := filepath.Join(dir, "directord")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/directord/directord/cmd/directord")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building directord for the end-to-end tests: %v\n%s", err, out)
	}
	return bin, nil
}

func directordBinary(t testing.TB) string {
	if p := os.Getenv(binEnv); p != "" {
		return p
	}
	if _, err := os.Stat(guestBinary); err != nil {
		t.Fatalf("directord binary: %v (run the tests with go test, which builds it)", err)
	}
	return guestBinary
}
