package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// PingChecker is ldirectord's checktype=ping, and its connect check for UDP
// virtual services: up when the real server answers an ICMP (or ICMPv6) echo
// request. Like Net::Ping in ldirectord it sends up to checkcount requests,
// one at a time, each given checktimeout to be answered. It needs a raw
// socket, so directord must run as root (or with CAP_NET_RAW).
type PingChecker struct {
	ip      net.IP
	count   int
	timeout time.Duration
}

// NewPing builds an ICMP echo check.
func NewPing(cfg Config) (*PingChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("ping check: no real server address")
	}
	n := cfg.CheckCount
	if n <= 0 {
		n = 1
	}
	return &PingChecker{ip: net.IP(cfg.Addr.Addr().AsSlice()), count: n, timeout: cfg.checkTimeout()}, nil
}

// Check implements Checker.
func (c *PingChecker) Check(ctx context.Context) Result {
	start := time.Now()
	var last error
	for i := 0; i < c.count; i++ {
		r := timed(ctx, c.timeout, c.once)
		if r.Up || ctx.Err() != nil {
			r.Latency = time.Since(start)
			return r
		}
		last = r.Err
	}
	r := down(fmt.Sprintf("no echo reply to %d request(s)", c.count), last)
	r.Latency = time.Since(start)
	return r
}

func (c *PingChecker) once(ctx context.Context) Result {
	p := probing.New("")
	p.SetIPAddr(&net.IPAddr{IP: c.ip})
	p.SetPrivileged(true)
	p.SetLogger(probing.NoopLogger{})
	p.Count = 1
	if dl, ok := ctx.Deadline(); ok {
		p.Timeout = time.Until(dl)
	}
	if err := p.RunWithContext(ctx); err != nil {
		return down("", fmt.Errorf("ping %s: %w", c.ip, err))
	}
	st := p.Statistics()
	if st.PacketsRecv > 0 {
		return up(fmt.Sprintf("echo reply in %v", st.AvgRtt.Round(time.Microsecond)))
	}
	if err := ctx.Err(); err != nil {
		return down("no echo reply", fmt.Errorf("ping %s: %w", c.ip, err))
	}
	return down("no echo reply", fmt.Errorf("ping %s: timed out", c.ip))
}

// String says in words what the check does and expects.
func (c *PingChecker) String() string {
	return fmt.Sprintf("ICMP echo to %s, up to %d request(s) of %v each", c.ip, c.count, c.timeout)
}
