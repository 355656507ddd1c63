package hbinterop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binEnv names the directord binary the tests run; TestMain builds it from
// cmd/directord unless it is set.
const binEnv = "DIRECTORD_HBINTEROP_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(binEnv) != "" || os.Geteuid() != 0 {
		os.Exit(m.Run()) // the tests skip without root: nothing to build
	}
	dir, err := os.MkdirTemp("", "hbinterop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "directord")
	build := exec.Command("go", "build", "-o", bin, "github.com/directord/directord/cmd/directord")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building directord for the tests: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Setenv(binEnv, bin)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
