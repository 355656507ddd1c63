package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// MainWithGoBinary is Main for tests that run a Go program of this module as
// a real process (the directord daemon, say): it builds pkg with
// CGO_ENABLED=0 before the tests start and sets the environment variable env
// to the binary's path. When the tests run here (the host has IPVS) that is a
// temporary file; otherwise the binary is carried into the guest, which has no
// Go toolchain, and env names its path there. env must start with DIRECTORD_
// so the guest gets it.
func MainWithGoBinary(m *testing.M, pkg, env string, o MainOptions) {
	if !strings.HasPrefix(env, "DIRECTORD_") {
		fmt.Fprintf(os.Stderr, "testbed/vm: MainWithGoBinary: %q does not start with DIRECTORD_, so the guest would not see it\n", env)
		os.Exit(2)
	}
	if InGuest() {
		MainWith(m, o)
	}
	dir, err := os.MkdirTemp("", "directord-gobin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbed/vm:", err)
		os.Exit(1)
	}
	if !guestNeeded() {
		bin, err := buildGo(dir, pkg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testbed/vm:", err)
			os.Exit(1)
		}
		os.Setenv(env, bin)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	guest := "/job/bin/" + path.Base(pkg)
	os.Setenv(env, guest)
	files := o.Files
	o.Files = func() ([]File, error) {
		var extra []File
		if files != nil {
			var err error
			if extra, err = files(); err != nil {
				return nil, err
			}
		}
		bin, err := buildGo(dir, pkg)
		if err != nil {
			return nil, err
		}
		return append(extra, File{Guest: guest, Host: bin, Mode: 0o755}), nil
	}
	MainWith(m, o)
}

// guestNeeded says whether MainWith will boot a guest rather than run the
// tests here.
func guestNeeded() bool {
	switch os.Getenv("DIRECTORD_VM") {
	case "always":
		return true
	case "never":
		return false
	}
	return !HasIPVS()
}

func buildGo(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s for the tests: %v\n%s", pkg, err, out)
	}
	return bin, nil
}
