package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ConnectChecker is ldirectord's checktype=connect for a TCP service: up
// when a TCP connection to the real server completes within checktimeout.
// The connection is closed at once; nothing is sent.
type ConnectChecker struct {
	addr    string
	timeout time.Duration
}

// NewConnect builds a TCP connect check.
func NewConnect(cfg Config) (*ConnectChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("connect check: no real server address")
	}
	return &ConnectChecker{addr: cfg.Addr.String(), timeout: cfg.checkTimeout()}, nil
}

// Check implements Checker.
func (c *ConnectChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, func(ctx context.Context) Result {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return down("", err)
		}
		conn.Close()
		return up("connected")
	})
}

// String says in words what the check does and expects.
func (c *ConnectChecker) String() string {
	return fmt.Sprintf("TCP connect to %s within %v", c.addr, c.timeout)
}
