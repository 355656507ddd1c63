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
// BuildGoBinary before the tests start and sets the environment variable env
// to the binary's path. When the tests run here (the host has IPVS) that is a
// temporary file; otherwise the binary is carried into the guest, which has no
// Go toolchain, as GoBinaryFile, and env names its path there. env must start
// with DIRECTORD_ so the guest gets it. o.Files, when set, adds to the binary.
func MainWithGoBinary(m *testing.M, pkg, env string, o MainOptions) {
	if !strings.HasPrefix(env, "DIRECTORD_") {
		fmt.Fprintf(os.Stderr, "testbed/vm: MainWithGoBinary: %q does not start with DIRECTORD_, so the guest would not see it\n", env)
		os.Exit(2)
	}
	if InGuest() {
		MainWith(m, o)
	}
	if !guestNeeded() {
		bin, cleanup, err := BuildGoBinary(pkg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testbed/vm:", err)
			os.Exit(1)
		}
		os.Setenv(env, bin)
		code := m.Run()
		cleanup()
		os.Exit(code)
	}
	os.Setenv(env, GoBinaryGuestPath(pkg))
	// The build waits for Files, which runs only when a guest boots (not
	// for `go test -list`, say).
	cleanup := func() {}
	files := o.Files
	o.Files = func() ([]File, error) {
		var extra []File
		if files != nil {
			var err error
			if extra, err = files(); err != nil {
				return nil, err
			}
		}
		bin, done, err := BuildGoBinary(pkg)
		if err != nil {
			return nil, err
		}
		cleanup = done
		return append(extra, GoBinaryFile(pkg, bin)), nil
	}
	code := mainCode(m, o)
	cleanup()
	os.Exit(code)
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

// BuildGoBinary builds the program pkg of this module (an import path such as
// "github.com/directord/directord/cmd/directord") into a new temporary
// directory and returns the binary's path and a func that removes the
// directory. It builds with CGO_ENABLED=0: the static binary runs on the host
// and in the guest alike. For tests that boot a guest themselves; tests that
// only need the binary there or here use MainWithGoBinary.
func BuildGoBinary(pkg string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "directord-gobin-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building %s for the tests: %v\n%s", pkg, err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// GoBinaryGuestPath is where GoBinaryFile puts the program pkg in the guest:
// /job/bin/ and the last element of pkg.
func GoBinaryGuestPath(pkg string) string {
	return "/job/bin/" + path.Base(pkg)
}

// GoBinaryFile carries bin, built from pkg by BuildGoBinary, into the guest
// at GoBinaryGuestPath(pkg).
func GoBinaryFile(pkg, bin string) File {
	return File{Guest: GoBinaryGuestPath(pkg), Host: bin, Mode: 0o755}
}
