package demo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Traffic rates of the client. HTTP and DNS use a new connection (a new
// source port) per request, so that the scheduler picks a real server for
// each, as for many clients.
const (
	httpInterval   = 10 * time.Millisecond
	dnsInterval    = 20 * time.Millisecond
	longLived      = 10
	longLivedEvery = 100 * time.Millisecond
	// A SYN lost while the VIP moves is retransmitted after 1 s and 3 s: a
	// request that gets through then was delayed, not lost.
	requestTimeout = 3 * time.Second
	// A UDP query has no retransmission of its own here: one second
	// without an answer is a lost query (a resolver would ask again).
	udpTimeout = time.Second
	// A long-lived connection that gets no echo for this long is counted
	// broken even without a reset.
	stallLimit = 10 * time.Second
)

// longGap is the gap target of a graceful handover: every gap over it is
// listed with its time (Stream.LongGaps), so that a gap at the move can be
// told from the emulated guest's own pauses at other times.
const (
	longGap     = 50 * time.Millisecond
	maxLongGaps = 100
	maxGaps     = 100_000
)

// gap is a time without an answer, by when it ended.
type gap struct {
	end time.Time
	d   time.Duration
}

// failure is one lost request: when it was sent, when it was given up.
type failure struct {
	start, end time.Time
	err        string
}

// stream counts one kind of request.
type stream struct {
	mu       sync.Mutex
	sent     int
	failures []failure
	lastOK   time.Time
	longest  time.Duration
	gapEnd   time.Time // when the longest gap ended
	gaps     []gap     // every gap between answers, at most maxGaps
	by       map[string]int
}

func (s *stream) record(start time.Time, who string, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	if err != nil {
		s.failures = append(s.failures, failure{start, now, err.Error()})
		return
	}
	if !s.lastOK.IsZero() {
		g := now.Sub(s.lastOK)
		if g > s.longest {
			s.longest, s.gapEnd = g, now
		}
		if len(s.gaps) < maxGaps {
			s.gaps = append(s.gaps, gap{now, g})
		}
	}
	s.lastOK = now
	if who != "" {
		if s.by == nil {
			s.by = map[string]int{}
		}
		s.by[who]++
	}
}

// Stream is what the client saw of one kind of request.
type Stream struct {
	Sent         int     `json:"sent"`
	Lost         int     `json:"lost"`
	LongestGapMS float64 `json:"longest_gap_ms"`
	// LongGaps lists the gaps over 50 ms (at most 100): when each ended,
	// in ms from the start of the traffic, and how long it was.
	LongGaps []Gap `json:"long_gaps,omitempty"`
	// WindowGapMS is the longest gap that overlapped the scenario's
	// disruption (from its event to the service settling, plus 1 s).
	WindowGapMS float64 `json:"window_gap_ms"`
	// QuietGapMS is the longest gap that overlapped no disruption: what
	// the machine itself does to the stream, to hold WindowGapMS against.
	QuietGapMS float64 `json:"quiet_gap_ms"`
	// LostOutsideWindow counts lost requests that were neither sent nor
	// given up during the disruption the scenario causes (from the event
	// to the service settling again).
	LostOutsideWindow int            `json:"lost_outside_window"`
	AnsweredBy        map[string]int `json:"answered_by,omitempty"`
	FirstError        string         `json:"first_error,omitempty"`
	// Lost lists each lost request: sent and given up, in ms from the
	// start of the traffic, and why.
	LostRequests []LostRequest `json:"lost_requests,omitempty"`
}

// Gap is one time a stream went without an answer.
type Gap struct {
	EndMS float64 `json:"end_ms"`
	MS    float64 `json:"ms"`
}

// LostRequest is one request that got no answer.
type LostRequest struct {
	SentMS   float64 `json:"sent_ms"`
	GaveUpMS float64 `json:"gave_up_ms"`
	Error    string  `json:"error"`
}

// summary says what the stream saw; windows are the scenario's disruptions
// (a window still open, to zero, lasts to now).
func (s *stream) summary(t0 time.Time, windows []span) Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stream{Sent: s.sent, Lost: len(s.failures), LongestGapMS: ms(s.longest), AnsweredBy: s.by}
	for _, g := range s.gaps {
		if g.d > longGap && len(out.LongGaps) < maxLongGaps {
			out.LongGaps = append(out.LongGaps, Gap{ms(g.end.Sub(t0)), ms(g.d)})
		}
		if overlaps(g.end.Add(-g.d), g.end, windows) {
			out.WindowGapMS = max(out.WindowGapMS, ms(g.d))
		} else {
			out.QuietGapMS = max(out.QuietGapMS, ms(g.d))
		}
	}
	for _, f := range s.failures {
		// An outage still on when the traffic stopped: no answer ends it.
		if f.end.After(s.lastOK) && !s.lastOK.IsZero() {
			out.LongestGapMS = max(out.LongestGapMS, ms(f.end.Sub(s.lastOK)))
		}
		if out.FirstError == "" {
			out.FirstError = f.err
		}
		out.LostRequests = append(out.LostRequests, LostRequest{ms(f.start.Sub(t0)), ms(f.end.Sub(t0)), f.err})
		if !f.during(windows) {
			out.LostOutsideWindow++
		}
	}
	return out
}

// during says whether the request was in flight during one of windows.
func (f failure) during(windows []span) bool { return overlaps(f.start, f.end, windows) }

// overlaps says whether the time from start to end touches one of windows
// (a window still open, to zero, lasts to now).
func overlaps(start, end time.Time, windows []span) bool {
	for _, w := range windows {
		if !end.Before(w.from) && (w.to.IsZero() || !start.After(w.to)) {
			return true
		}
	}
	return false
}

func (s *stream) counts() (sent, lost int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, len(s.failures)
}

// traffic is the client's load: HTTP, DNS over UDP and TCP, and long-lived
// echo connections, all through the VIP.
type traffic struct {
	http, dnsUDP, dnsTCP stream
	conns                []*heldConn
	cancel               context.CancelFunc
	wg                   sync.WaitGroup
}

// heldConn is one long-lived connection, exercised every longLivedEvery.
type heldConn struct {
	mu       sync.Mutex
	server   string
	broken   string // why, "" while it works
	brokenAt time.Time
	longest  time.Duration
	c        net.Conn
}

func (b *bed) startTraffic(ctx context.Context) (*traffic, error) {
	ctx, cancel := context.WithCancel(ctx)
	tr := &traffic{cancel: cancel}
	addr := func(port int) string { return net.JoinHostPort(vip.String(), fmt.Sprint(port)) }
	// The long-lived connections first: a connection that cannot even be
	// opened is a setup failure, not a measurement.
	for i := 0; i < longLived; i++ {
		dctx, dcancel := context.WithTimeout(ctx, requestTimeout)
		c, err := b.client.Dial(dctx, "tcp", addr(echoPort))
		dcancel()
		if err != nil {
			cancel()
			tr.close()
			return nil, fmt.Errorf("opening long-lived connection %d to %s: %w", i+1, addr(echoPort), err)
		}
		hc := &heldConn{c: c}
		tr.conns = append(tr.conns, hc)
	}
	for i, hc := range tr.conns {
		tr.wg.Add(1)
		go func() { defer tr.wg.Done(); hc.run(ctx, i) }()
	}

	hcl := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		DialContext:       func(ctx context.Context, n, a string) (net.Conn, error) { return b.client.Dial(ctx, n, a) },
		DisableKeepAlives: true,
	}}
	tr.wg.Add(3)
	go func() {
		defer tr.wg.Done()
		loop(ctx, httpInterval, func() {
			start := time.Now()
			// Not ctx: a request in flight at the end finishes and counts.
			who, err := get(context.Background(), hcl, "http://"+vip.String()+"/")
			tr.http.record(start, who, err)
		})
	}()
	query := func(network string, timeout time.Duration) (string, error) {
		dctx, dcancel := context.WithTimeout(context.Background(), timeout)
		defer dcancel()
		c, err := b.client.Dial(dctx, network, addr(dnsPort))
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		co := &dns.Conn{Conn: c}
		m := new(dns.Msg)
		m.SetQuestion("www.a.com.", dns.TypeA)
		if err := co.WriteMsg(m); err != nil {
			return "", err
		}
		r, err := co.ReadMsg()
		if err != nil {
			return "", err
		}
		if len(r.Answer) != 1 {
			return "", fmt.Errorf("DNS answer: %d records, want 1", len(r.Answer))
		}
		return "", nil
	}
	for _, q := range []struct {
		s       *stream
		network string
		timeout time.Duration
	}{{&tr.dnsUDP, "udp", udpTimeout}, {&tr.dnsTCP, "tcp", requestTimeout}} {
		go func() {
			defer tr.wg.Done()
			loop(ctx, dnsInterval, func() {
				start := time.Now()
				_, err := query(q.network, q.timeout)
				q.s.record(start, "", err)
			})
		}()
	}
	return tr, nil
}

// loop calls fn, then waits interval, until ctx ends.
func loop(ctx context.Context, interval time.Duration, fn func()) {
	for ctx.Err() == nil {
		fn()
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

func (hc *heldConn) run(ctx context.Context, i int) {
	r := bufio.NewReader(hc.c)
	last := time.Now()
	for n := 0; ctx.Err() == nil; n++ {
		msg := fmt.Sprintf("conn %d ping %d\n", i, n)
		hc.c.SetDeadline(time.Now().Add(stallLimit))
		_, err := hc.c.Write([]byte(msg))
		var line string
		if err == nil {
			line, err = r.ReadString('\n')
		}
		if err == nil && !strings.HasSuffix(line, " "+msg) {
			err = fmt.Errorf("echo %q for %q", line, msg)
		}
		now := time.Now()
		hc.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				hc.broken, hc.brokenAt = err.Error(), now
			}
			hc.mu.Unlock()
			return
		}
		hc.server, _, _ = strings.Cut(line, " ")
		if g := now.Sub(last); g > hc.longest {
			hc.longest = g
		}
		last = now
		hc.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(longLivedEvery):
		}
	}
}

// alive counts the connections not broken.
func (tr *traffic) alive() int {
	n := 0
	for _, hc := range tr.conns {
		hc.mu.Lock()
		if hc.broken == "" {
			n++
		}
		hc.mu.Unlock()
	}
	return n
}

func (tr *traffic) stop() {
	tr.cancel()
	for _, hc := range tr.conns {
		// Wake a connection blocked in a read well before its deadline.
		hc.c.SetDeadline(time.Now().Add(requestTimeout))
	}
	tr.wg.Wait()
	tr.close()
}

func (tr *traffic) close() {
	for _, hc := range tr.conns {
		hc.c.Close()
	}
}

// progress is one line of what the client sees now.
func (tr *traffic) progress() string {
	hs, hl := tr.http.counts()
	us, ul := tr.dnsUDP.counts()
	ts, tl := tr.dnsTCP.counts()
	return fmt.Sprintf("http %d sent/%d lost, dns udp %d/%d, dns tcp %d/%d, long-lived %d/%d alive", hs, hl, us, ul, ts, tl, tr.alive(), len(tr.conns))
}
