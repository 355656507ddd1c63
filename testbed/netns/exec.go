package netns

import (
	"bytes"
	"fmt"
	"os/exec"
)

// Start starts cmd inside the host's namespace: the child is forked from a
// thread that is in the namespace, so it inherits it (no nsenter or
// `ip netns exec` needed). Only the network namespace changes: the mount
// namespace, and so /sys, stay the caller's. The caller owns cmd and must
// Wait for it; Close kills it if it still runs then, as a process inside
// would keep the namespace alive.
func (h *Host) Start(cmd *exec.Cmd) error {
	err := h.Do(func() error { return cmd.Start() })
	if err != nil {
		return fmt.Errorf("netns: %s: start %s: %w", h.name, cmd.Path, err)
	}
	h.mu.Lock()
	h.procs = append(h.procs, cmd.Process)
	h.mu.Unlock()
	return nil
}

// Run runs cmd inside the host's namespace and waits for it.
func (h *Host) Run(cmd *exec.Cmd) error {
	if err := h.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// CombinedOutput runs cmd inside the host's namespace and returns its
// standard output and standard error together, like exec.Cmd.CombinedOutput.
func (h *Host) CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, fmt.Errorf("netns: %s: CombinedOutput: Stdout or Stderr already set", h.name)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := h.Run(cmd)
	return out.Bytes(), err
}
