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
	"os/exec"
	"os/signal"
	"path/filepath"
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
	// Debian's ldirectord runs in the guest for the differential test, and
	// the directord binary for the command-line test.
	vm.MainWith(m, vm.MainOptions{Files: func() ([]vm.File, error) {
		files, err := ldirectordFiles()
		if err != nil {
			return nil, err
		}
		bin, err := buildCLI(os.TempDir())
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(bin)
		os.Remove(bin)
		if err != nil {
			return nil, err
		}
		return append(files, vm.File{Guest: guestCLI, Data: data, Mode: 0o755}), nil
	}})
}

// guestCLI is where the directord binary is in the guest.
const guestCLI = "/job/cli/directord"

// buildCLI builds cmd/directord (static, so that it runs in the guest) into
// dir and returns its path.
func buildCLI(dir string) (string, error) {
	out := filepath.Join(dir, fmt.Sprintf("directord-e2e-%d", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", out, "github.com/directord/directord/cmd/directord")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/directord: %v\n%s", err, b)
	}
	return out, nil
}

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
