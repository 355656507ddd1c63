// Package e2etest runs lnoded end to end against the kernel's IPVS (in the
// testbed VM when this host has none): real HTTP and DNS servers in network
// namespaces, lnoded in the director's namespace, assertions on the kernel
// table read through ipvs/.
package e2etest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded"
	"github.com/directord/directord/testbed/vm"
)

// childEnv makes the test binary run lnoded on the named lnoded.cf, as
// `directord lnoded --config FILE` does, instead of the tests. The tests
// start it in the director's namespace, so that its checks and its IPVS
// handle are the director's.
const childEnv = "DIRECTORD_LNODED_E2E_CONFIG"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(child(path))
	}
	// The directord binary is for the command-line test, and Debian's
	// ldirectord runs in the guest for the differential test.
	vm.MainWithGoBinary(m, "github.com/directord/directord/cmd/directord", cliEnv,
		vm.MainOptions{Files: ldirectordFiles})
}

// cliEnv names the directord binary built for the tests, on the host or in
// the guest (vm.MainWithGoBinary).
const cliEnv = "DIRECTORD_LNODED_E2E_CLI"

// child is `directord lnoded --config path` (cmd/directord/lnoded.go) minus
// flag parsing: both run lnoded.RunFile with SIGHUP reloading and SIGTERM
// stopping.
func child(path string) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	h, err := ipvs.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			reload <- struct{}{}
		}
	}()
	if err := lnoded.RunFile(ctx, path, h, logger, reload); err != nil {
		logger.Error(err.Error())
		return 1
	}
	logger.Info("lnoded stopped")
	return 0
}
