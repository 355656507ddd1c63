package checks

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ExternalChecker is ldirectord's checktype=external: it runs checkcommand
// (executed directly, not through a shell) with four arguments, the virtual
// server's address (or firewall mark), the virtual port, the real server's
// address and the real server's port, and is up when the command exits 0
// within checktimeout. On timeout the command gets SIGTERM, as ldirectord
// sends, then SIGKILL a second later.
type ExternalChecker struct {
	path    string
	args    []string
	timeout time.Duration
}

// killGrace is how long a command may linger after SIGTERM.
const killGrace = time.Second

// NewExternal builds an external command check.
func NewExternal(cfg Config) (*ExternalChecker, error) {
	path := cfg.CheckCommand
	if path == "" {
		path = "/bin/true"
	}
	if !cfg.Addr.IsValid() {
		return nil, errors.New("external check: no real server address")
	}
	real := cfg.Addr.Addr().String()
	if cfg.Addr.Addr().Is6() {
		// ldirectord keeps IPv6 real servers in brackets.
		real = "[" + real + "]"
	}
	vport := cfg.VirtualPort
	if vport == "" {
		vport = "0"
	}
	return &ExternalChecker{
		path:    path,
		args:    []string{cfg.Virtual, vport, real, strconv.Itoa(int(cfg.RealPort))},
		timeout: cfg.checkTimeout(),
	}, nil
}

// Check implements Checker.
func (c *ExternalChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, func(ctx context.Context) Result {
		cmd := exec.CommandContext(ctx, c.path, c.args...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = killGrace
		err := cmd.Run()
		if err == nil {
			return up("exit status 0")
		}
		if ctx.Err() != nil {
			return down("", fmt.Errorf("%s: %w", c.path, ctx.Err()))
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return down(ee.ProcessState.String(), nil)
		}
		return down("", fmt.Errorf("running %s: %w", c.path, err))
	})
}

// String says in words what the check does and expects.
func (c *ExternalChecker) String() string {
	return fmt.Sprintf("command %s %q exiting 0 within %v", c.path, c.args, c.timeout)
}
