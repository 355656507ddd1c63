package ipvs

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors the kernel's IPVS reports, matched with errors.Is. The error
// returned also matches the kernel's errno (syscall.EEXIST, ...).
var (
	// ErrUnavailable means the running kernel has no IPVS (no "IPVS"
	// generic netlink family: ip_vs not built or not loaded). Handle never
	// loads modules.
	ErrUnavailable = errors.New("IPVS is not available in this kernel (is the ip_vs module loaded?)")

	ErrServiceExists   = errors.New("service already exists")
	ErrNoService       = errors.New("no such service")
	ErrDestExists      = errors.New("destination already exists")
	ErrNoDest          = errors.New("no such destination")
	ErrNoScheduler     = errors.New("scheduler or persistence engine not found")
	ErrDaemonRunning   = errors.New("sync daemon already running")
	ErrNoDaemon        = errors.New("no sync daemon running")
	ErrInvalidArgument = errors.New("invalid argument")
)

// OpError is an error of one kernel operation.
type OpError struct {
	Op   string // what was done, e.g. "add service -t 10.0.0.1:80"
	Err  error  // the error, usually a syscall.Errno from the kernel
	kind error  // one of the Err* sentinels, or nil
}

func (e *OpError) Error() string {
	if e.kind != nil {
		return fmt.Sprintf("ipvs: %s: %v (%v)", e.Op, e.kind, e.Err)
	}
	return fmt.Sprintf("ipvs: %s: %v", e.Op, e.Err)
}

// Unwrap returns the kernel error and the matching sentinel.
func (e *OpError) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.Err}
	}
	return []error{e.Err}
}

// kernelErr wraps err from command cmd with the sentinel that the kernel's
// errno means for that command.
func kernelErr(cmd uint8, op string, err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	var kind error
	if errors.As(err, &errno) {
		switch {
		case errno == syscall.EINVAL:
			kind = ErrInvalidArgument
		case cmd == cmdNewService && errno == syscall.EEXIST:
			kind = ErrServiceExists
		case (cmd == cmdNewService || cmd == cmdSetService) && errno == syscall.ENOENT:
			kind = ErrNoScheduler
		case errno == syscall.ESRCH && cmd <= cmdGetDest, errno == syscall.ESRCH && cmd == cmdZero:
			kind = ErrNoService
		case cmd == cmdNewDest && errno == syscall.EEXIST:
			kind = ErrDestExists
		case (cmd == cmdSetDest || cmd == cmdDelDest) && errno == syscall.ENOENT:
			kind = ErrNoDest
		case cmd == cmdNewDaemon && errno == syscall.EEXIST:
			kind = ErrDaemonRunning
		case cmd == cmdDelDaemon && errno == syscall.ESRCH:
			kind = ErrNoDaemon
		}
	}
	return &OpError{Op: op, Err: err, kind: kind}
}
