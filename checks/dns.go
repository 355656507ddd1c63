package checks

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsRetrans is Net::DNS's first retransmission interval; it doubles after
// each unanswered UDP query, all within the check's deadline.
const dnsRetrans = 5 * time.Second

// DNSChecker is ldirectord's negotiate check for service=dns: it asks the
// real server for the A record of request (a PTR lookup when request is an
// IP address, as Net::DNS does), with recursion desired, over UDP, or over
// TCP when the virtual service's protocol is tcp; a truncated UDP answer is
// asked again over TCP. It is up when an A record's address or a PTR record's
// name in the answer section matches receive. An empty receive never
// matches, so such a check is always down, as in ldirectord.
type DNSChecker struct {
	addr    string
	network string
	qname   string
	qtype   uint16
	receive *receiveRE
	timeout time.Duration
}

// NewDNS builds the check for service=dns.
func NewDNS(cfg Config) (*DNSChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("dns check: no real server address")
	}
	name := strings.TrimPrefix(cfg.request(), "/")
	if name == "" {
		return nil, errors.New("dns check: request names nothing to look up")
	}
	c := &DNSChecker{addr: cfg.Addr.String(), network: "udp", timeout: cfg.negotiateTimeout()}
	if cfg.protocol() == "tcp" {
		c.network = "tcp"
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		rev, err := dns.ReverseAddr(ip.String())
		if err != nil {
			return nil, fmt.Errorf("dns check: reverse name of %s: %w", ip, err)
		}
		c.qname, c.qtype = rev, dns.TypePTR
	} else {
		if _, ok := dns.IsDomainName(name); !ok {
			return nil, fmt.Errorf("dns check: request %q is not a domain name", name)
		}
		c.qname, c.qtype = dns.Fqdn(name), dns.TypeA
	}
	if cfg.Receive != "" {
		re, err := compileReceive(cfg.Receive)
		if err != nil {
			return nil, fmt.Errorf("dns check: %w", err)
		}
		c.receive = re
	}
	return c, nil
}

// Check implements Checker.
func (c *DNSChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *DNSChecker) check(ctx context.Context) Result {
	q := new(dns.Msg)
	q.SetQuestion(c.qname, c.qtype)
	q.RecursionDesired = true
	resp, err := c.exchange(ctx, q)
	if err != nil {
		return down("", err)
	}
	return judgeDNS(resp, c.receive)
}

func (c *DNSChecker) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if c.network == "tcp" {
		cl := &dns.Client{Net: "tcp"}
		r, _, err := cl.ExchangeContext(ctx, q, c.addr)
		if err != nil {
			return nil, fmt.Errorf("dns query over tcp to %s: %w", c.addr, err)
		}
		return r, nil
	}
	cl := &dns.Client{Net: "udp"}
	retrans := dnsRetrans
	for {
		actx, cancel := context.WithTimeout(ctx, retrans)
		r, _, err := cl.ExchangeContext(actx, q, c.addr)
		cancel()
		if err == nil {
			if r.Truncated {
				tcp := &dns.Client{Net: "tcp"}
				r, _, err = tcp.ExchangeContext(ctx, q, c.addr)
				if err != nil {
					return nil, fmt.Errorf("dns query over tcp (udp answer truncated) to %s: %w", c.addr, err)
				}
			}
			return r, nil
		}
		if ctx.Err() != nil || !isTimeout(err) {
			return nil, fmt.Errorf("dns query over udp to %s: %w", c.addr, err)
		}
		retrans *= 2
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// judgeDNS is ldirectord's verdict on an answer: Net::DNS's search returns
// nothing unless the answer section is non-empty, and then an A address or a
// PTR name (without its final dot) must match receive.
func judgeDNS(resp *dns.Msg, receive *receiveRE) Result {
	if resp == nil || len(resp.Answer) == 0 {
		rcode := "no answer"
		if resp != nil {
			rcode = "no answer (" + dns.RcodeToString[resp.Rcode] + ")"
		}
		return down(rcode, nil)
	}
	if receive == nil {
		return down("answered, but receive is empty and matches nothing", nil)
	}
	for _, rr := range resp.Answer {
		var s string
		switch rr := rr.(type) {
		case *dns.A:
			s = rr.A.String()
		case *dns.PTR:
			s = strings.TrimSuffix(rr.Ptr, ".")
		default:
			continue
		}
		if receive.match([]byte(s)) {
			return up("answer " + s)
		}
	}
	return down(fmt.Sprintf("no A or PTR answer matches %v", receive), nil)
}

// String says in words what the check does and expects.
func (c *DNSChecker) String() string {
	recv := "nothing (receive is empty)"
	if c.receive != nil {
		recv = c.receive.String()
	}
	return fmt.Sprintf("DNS %s %s query over %s to %s expecting an answer matching %s within %v",
		dns.TypeToString[c.qtype], c.qname, c.network, c.addr, recv, c.timeout)
}
