package checks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// NNTPChecker is ldirectord's negotiate check for service=nntp: it connects,
// reads at most 64 bytes of the greeting and is up when they start with "2".
// Nothing is sent.
type NNTPChecker struct {
	addr    string
	timeout time.Duration
}

// NewNNTP builds the check for service=nntp.
func NewNNTP(cfg Config) (*NNTPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("nntp check: no real server address")
	}
	return &NNTPChecker{addr: cfg.Addr.String(), timeout: cfg.negotiateTimeout()}, nil
}

// Check implements Checker.
func (c *NNTPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, func(ctx context.Context) Result {
		s, err := dialSession(ctx, "tcp", c.addr, nil)
		if err != nil {
			return down("", err)
		}
		defer s.close()
		buf := make([]byte, 64)
		n, err := s.conn.Read(buf)
		return judgeNNTP(buf[:n], err)
	})
}

// judgeNNTP is ldirectord's verdict on the first read of the greeting (one
// sysread of up to 64 bytes).
func judgeNNTP(greeting []byte, err error) Result {
	if len(greeting) == 0 {
		if err == nil {
			err = errors.New("empty read")
		}
		return down("no greeting", err)
	}
	if greeting[0] != '2' {
		return down(fmt.Sprintf("greeting %q", truncate(string(greeting), 64)), nil)
	}
	return up(fmt.Sprintf("greeting %q", string(greeting)))
}

// String says in words what the check does and expects.
func (c *NNTPChecker) String() string {
	return fmt.Sprintf("NNTP to %s expecting a greeting starting with 2 within %v", c.addr, c.timeout)
}
