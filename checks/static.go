package checks

import "context"

// StaticChecker gives the same verdict every time without any traffic. It
// is checktype=on (always up), checktype=off (never up: ldirectord adds no
// real server) and service=none with a negotiate check (always up).
type StaticChecker struct {
	up   bool
	what string
}

// NewStatic returns a checker whose verdict is always up (or always down),
// described by what.
func NewStatic(up bool, what string) *StaticChecker { return &StaticChecker{up: up, what: what} }

// Check implements Checker.
func (c *StaticChecker) Check(context.Context) Result {
	return Result{Up: c.up, Message: c.what}
}

// String says in words what the check does and expects.
func (c *StaticChecker) String() string {
	if c.up {
		return "no check (" + c.what + "): always up"
	}
	return "no check (" + c.what + "): never up"
}
