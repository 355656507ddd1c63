package control

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientEnv makes the test binary act as a client of the socket it names,
// so that a test can talk to the server as another user.
const clientEnv = "DIRECTORD_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(clientEnv); path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := Do(ctx, path, Request{Command: CmdStatus})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(0)
		}
		fmt.Printf("RESP ok=%v error=%q\n", resp.OK, resp.Error)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// asNobody runs the client half as uid/gid 65534 and returns what it printed.
func asNobody(t *testing.T, bin, path string) string {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v: %s", err, out)
	}
	return string(out)
}

// TestOtherUsersRefused: the socket is root's alone, by its mode and, should
// an administrator loosen the mode, by the peer's credentials.
func TestOtherUsersRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	// A directory nobody can reach (t.TempDir's parent is root's alone).
	dir, err := os.MkdirTemp("", "control-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	path := dir + "/d.sock"
	// go test's build directory is root's alone: nobody runs a copy.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := dir + "/client"
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(path, &fakeHandler{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	if out := asNobody(t, bin, path); !strings.Contains(out, "permission denied: run as root") {
		t.Errorf("nobody on a 0600 socket: %s", out)
	}
	os.Chmod(path, 0o666)
	if out := asNobody(t, bin, path); !strings.Contains(out, `ok=false error="permission denied: the control socket is for root"`) {
		t.Errorf("nobody on a loosened socket: %s", out)
	}
}
