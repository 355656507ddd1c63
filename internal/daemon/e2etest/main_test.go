// Package e2etest runs the appliance end to end: two `directord run`
// processes, each in its own network namespace, with a LAN, a heartbeat link,
// a client and two LVS-DR real servers, in the testbed VM when this host's
// kernel has no IPVS. Nothing is faked: the daemons are the real binary,
// built from cmd/directord before the tests start, and every assertion reads
// the kernel (addresses, IPVS) or talks to the daemons as an operator would
// (the CLI, the control socket, the metrics endpoint).
package e2etest

import (
	"os"
	"testing"

	"github.com/directord/directord/testbed/vm"
)

// binEnv names the directord binary, built from cmd/directord before the
// tests start (testbed/vm.MainWithGoBinary).
const binEnv = "DIRECTORD_E2E_BINARY"

func TestMain(m *testing.M) {
	vm.MainWithGoBinary(m, "github.com/directord/directord/cmd/directord", binEnv, vm.MainOptions{})
}

func directordBinary(t testing.TB) string {
	p := os.Getenv(binEnv)
	if _, err := os.Stat(p); p == "" || err != nil {
		t.Fatalf("directord binary %q: %v (run the tests with go test, which builds it)", p, err)
	}
	return p
}
