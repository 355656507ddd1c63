package ipvs

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/mdlayher/netlink"
)

// TestOpenWithoutIPVS runs where the kernel has no IPVS (like the build
// host): Open must fail clearly, not hand out a handle that does nothing.
// Where IPVS exists, kerneltest covers Open.
func TestOpenWithoutIPVS(t *testing.T) {
	h, err := Open()
	if err == nil {
		h.Close()
		t.Skip("this kernel has IPVS")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open: %v, want an error matching ErrUnavailable", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open: %v does not keep the underlying not-exist error", err)
	}
}

func TestKernelErrMapping(t *testing.T) {
	// The shape mdlayher/netlink gives a kernel error code.
	kerr := func(e syscall.Errno) error { return &netlink.OpError{Op: "receive", Err: e} }
	tests := []struct {
		cmd   uint8
		errno syscall.Errno
		want  error
	}{
		{cmdNewService, syscall.EEXIST, ErrServiceExists},
		{cmdNewService, syscall.ENOENT, ErrNoScheduler},
		{cmdSetService, syscall.ESRCH, ErrNoService},
		{cmdDelService, syscall.ESRCH, ErrNoService},
		{cmdNewDest, syscall.ESRCH, ErrNoService},
		{cmdNewDest, syscall.EEXIST, ErrDestExists},
		{cmdSetDest, syscall.ENOENT, ErrNoDest},
		{cmdDelDest, syscall.ENOENT, ErrNoDest},
		{cmdGetDest, syscall.ESRCH, ErrNoService},
		{cmdZero, syscall.ESRCH, ErrNoService},
		{cmdNewDaemon, syscall.EEXIST, ErrDaemonRunning},
		{cmdDelDaemon, syscall.ESRCH, ErrNoDaemon},
		{cmdNewService, syscall.EINVAL, ErrInvalidArgument},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", kernelErr(tt.cmd, "op", kerr(tt.errno)))
		if !errors.Is(err, tt.want) {
			t.Errorf("cmd %d errno %v: %v does not match %v", tt.cmd, tt.errno, err, tt.want)
		}
		if !errors.Is(err, tt.errno) {
			t.Errorf("cmd %d errno %v: %v does not match the errno", tt.cmd, tt.errno, err)
		}
		var oe *OpError
		if !errors.As(err, &oe) || oe.Op != "op" {
			t.Errorf("cmd %d: no *OpError in %v", tt.cmd, err)
		}
	}
	// The same errno means different things for different commands.
	if errors.Is(kernelErr(cmdNewDest, "op", kerr(syscall.EEXIST)), ErrServiceExists) {
		t.Error("destination EEXIST matched ErrServiceExists")
	}
	if !errors.Is(kernelErr(cmdNewService, "op", kerr(syscall.EEXIST)), fs.ErrExist) {
		t.Error("EEXIST does not match fs.ErrExist")
	}
}

func TestIsKernelErr(t *testing.T) {
	if !isKernelErr(&netlink.OpError{Op: "receive", Err: syscall.ENOENT}) {
		t.Error("kernel error code not recognised")
	}
	if isKernelErr(&netlink.OpError{Op: "receive", Err: &osSyscallErr{}}) {
		t.Error("system call error taken for a kernel answer")
	}
	if isKernelErr(errors.New("x")) {
		t.Error("plain error taken for a kernel answer")
	}
}

type osSyscallErr struct{}

func (*osSyscallErr) Error() string { return "recvmsg: resource temporarily unavailable" }
