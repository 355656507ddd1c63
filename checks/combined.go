package checks

import (
	"context"
	"fmt"
	"sync"
)

// CombinedChecker is ldirectord's checktype=N: a connect check every time,
// and the negotiate check instead once N connects in a row have succeeded
// since the last successful negotiate; a failed connect makes the next
// check a negotiate. The first check is a negotiate. It keeps that count, so
// it is stateful: Check must not run concurrently with itself (the
// Scheduler never does), and a mutex keeps it sound if it is.
type CombinedChecker struct {
	every     int
	connect   Checker
	negotiate Checker

	mu       sync.Mutex
	connects int // successful connects since the last negotiate
}

// NewCombined builds checktype=N from its two halves.
func NewCombined(n int, connect, negotiate Checker) *CombinedChecker {
	// ldirectord starts each real server's count at 999999: negotiate first.
	return &CombinedChecker{every: n, connect: connect, negotiate: negotiate, connects: n}
}

// Check implements Checker.
func (c *CombinedChecker) Check(ctx context.Context) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connects >= c.every {
		r := c.negotiate.Check(ctx)
		if r.Up {
			c.connects = 0
		}
		return r
	}
	r := c.connect.Check(ctx)
	if r.Up {
		c.connects++
	} else {
		c.connects = c.every
	}
	return r
}

// String says in words what the check does and expects.
func (c *CombinedChecker) String() string {
	return fmt.Sprintf("every check: %v; after %d successful connects: %v", c.connect, c.every, c.negotiate)
}
