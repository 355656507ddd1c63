package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/heartbeat/cluster"
	"github.com/directord/directord/vip"
	"github.com/directord/directord/vip/handoff"
	"github.com/directord/directord/vip/rstguard"
)

// Resource is one resource of a group. The runner starts a group's resources
// left to right and stops them right to left.
type Resource interface {
	// String names the resource as haresources writes it.
	String() string
	// Kind is "vip", "lnoded" or "script".
	Kind() string
	// Start starts the resource; a resource that already runs (a daemon
	// restarted on the active node) is adopted, not restarted.
	Start(ctx context.Context) error
	// Stop stops it; stopping a stopped resource succeeds.
	Stop(ctx context.Context) error
	// Running reports whether the resource runs now, as Heartbeat's
	// "status" does.
	Running(ctx context.Context) (bool, error)
}

// vipResource is an IPaddr or IPaddr2 resource, carried out by vip.Manager.
type vipResource struct {
	m    *vip.Manager
	v    vip.VIP
	word string
	// refresh repeats the announcements while the VIP is held; 0 for never.
	refresh time.Duration
	// rstGuard, when not 0, is how long after taking the VIP over this node
	// drops its own TCP resets from it (vip/rstguard), for groups whose
	// connections the peer hands over through the sync daemon.
	rstGuard time.Duration
	log      *slog.Logger
	guard    *rstguard.Guard
	guardT   *time.Timer
	// heldBack, when set, counts the resets the guard dropped (metrics).
	heldBack *atomic.Uint64
	// For rstGuard too, in a handover between directord nodes, the new
	// holder forwards segments of connections it does not know to the
	// previous one, which still takes them (vip/handoff); forwarded, when
	// set, counts them (metrics).
	fwd       *handoff.Forwarder
	fwdT      *time.Timer
	rcv       *handoff.Receiver
	rcvT      *time.Timer
	forwarded *atomic.Uint64
	// handoffs and receives, when set, count the forwarders and receivers
	// installed (metrics).
	handoffs, receives *atomic.Uint64
	// tcpPorts lists the ports of the VIP's TCP virtual services (nil: no
	// IPVS, nothing to forward).
	tcpPorts func(ctx context.Context, vip netip.Addr) ([]uint16, error)

	// The announcer goroutine: its context, its cancel and its end; extra
	// announcements (reannounce) run under the same context and are
	// counted in extra, so Stop waits for them too.
	mu       sync.Mutex
	annCtx   context.Context
	stopRefr context.CancelFunc
	refrDone chan struct{}
	extra    sync.WaitGroup
}

// newVIPResource maps the config model's VIP to vip.VIP.
func newVIPResource(m *vip.Manager, c *config.VIP, garp config.GARP, log *slog.Logger) *vipResource {
	v := vip.VIP{
		Addr:        c.Addr,
		Interface:   c.Interface,
		Label:       c.Label,
		Broadcast:   c.Broadcast,
		ARPCount:    garp.Count,
		ARPInterval: garp.Interval,
	}
	if c.Prefix > 0 {
		v.Prefix = c.Prefix
	}
	// IPaddr made ifconfig aliases (eth0:0); IPaddr2 adds a plain address.
	v.AutoLabel = c.Agent == config.IPaddr && c.Label == ""
	return &vipResource{m: m, v: v, word: c.String(), refresh: garp.Refresh, log: log}
}

func (r *vipResource) String() string { return r.word }
func (r *vipResource) Kind() string   { return "vip" }

func (r *vipResource) Start(ctx context.Context) error {
	// The address goes on now; the announcements follow in the background,
	// as IPaddr2 runs send_arp in the background: the next resources of the
	// group need not wait ARPCount × ARPInterval for them.
	quiet := r.v
	quiet.ARPCount = -1
	r.holdResets(ctx)
	p, err := r.m.Acquire(ctx, quiet)
	if err != nil {
		r.releaseResets()
		return fmt.Errorf("IPaddr %s: %w", r.v, err)
	}
	if p.Existing {
		r.log.Info("IPaddr: Resource is running: adopted " + p.String())
	} else {
		r.log.Info("IPaddr: added " + p.String())
		r.forward(ctx, p.Interface)
	}
	if n := count(r.v.ARPCount, vip.DefaultARPCount); n > 0 {
		r.log.Info(fmt.Sprintf("IPaddr: Sending Gratuitous Arp for %s on %s (%d × %v)", r.v.Addr, p.Interface, n, orDefault(r.v.ARPInterval, vip.DefaultARPInterval)))
		// The first announcement goes out before Start returns: in a make
		// before break handover the peer removes the VIP as soon as we say
		// we hold it, and the LAN must already be pointed here by then.
		first := r.v
		first.ARPCount = 1
		if err := r.m.Announce(ctx, first); err != nil {
			r.log.Warn("IPaddr: gratuitous ARP for "+r.v.Addr.String()+" failed: "+err.Error(), "err", err)
		}
	}
	r.startAnnouncer()
	return nil
}

// startAnnouncer starts the goroutine that announces the VIP once and then,
// with a refresh period, again every period while it is held. Stop (or close)
// ends it before anything else, so a released VIP is never announced.
func (r *vipResource) startAnnouncer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopRefr != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.annCtx, r.stopRefr, r.refrDone = ctx, cancel, done
	go func() {
		defer close(done)
		// Start sent the first announcement; the rest follow it.
		if n := count(r.v.ARPCount, vip.DefaultARPCount); n > 1 {
			rest := r.v
			rest.ARPCount = n - 1
			t := time.NewTimer(orDefault(r.v.ARPInterval, vip.DefaultARPInterval))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if err := r.m.Announce(ctx, rest); err != nil && ctx.Err() == nil {
				r.log.Warn("IPaddr: gratuitous ARP for "+r.v.Addr.String()+" failed: "+err.Error(), "err", err)
			}
		}
		if r.refresh > 0 {
			r.m.Refresh(ctx, r.v, r.refresh, func(err error) {
				r.log.Warn("IPaddr: periodic announcement failed", "vip", r.v.String(), "err", err)
			})
		}
	}()
}

// reannounce announces the held VIP once more (ARPCount × ARPInterval) in
// the background, for an address another node may have announced since ours
// (cluster.EventReassert). It does nothing unless the VIP is held.
func (r *vipResource) reannounce() {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx := r.annCtx
	if ctx == nil || count(r.v.ARPCount, vip.DefaultARPCount) == 0 {
		return
	}
	r.log.Info("IPaddr: announcing " + r.v.Addr.String() + " again: another node may have announced it")
	r.extra.Add(1)
	go func() {
		defer r.extra.Done()
		if err := r.m.Announce(ctx, r.v); err != nil && ctx.Err() == nil {
			r.log.Warn("IPaddr: gratuitous ARP for "+r.v.Addr.String()+" failed: "+err.Error(), "err", err)
		}
	}()
}

func (r *vipResource) stopRefresh() {
	r.mu.Lock()
	cancel, done := r.stopRefr, r.refrDone
	r.annCtx, r.stopRefr, r.refrDone = nil, nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	r.extra.Wait()
}

// holdResets installs the reset guard before the VIP becomes local, for a
// VIP a live directord peer hands over: a connection of the peer's that arrives
// before its sync entry is then retransmitted by the client instead of reset
// by our stack. It ends after rstGuard, or when the VIP goes. Without tc
// (a kernel lacking act_gact) the takeover goes on unguarded.
func (r *vipResource) holdResets(ctx context.Context) {
	// Only a live directord peer hands its connections over; after a death,
	// or from Heartbeat, a connection this node does not know is lost, and
	// a reset tells the client at once.
	if h, ok := cluster.HandoverOf(ctx); r.rstGuard <= 0 || !ok || !h.Directord {
		return
	}
	if has, err := r.m.Has(ctx, r.v.Addr); err != nil || has {
		return // adopted at a restart: nothing was taken over
	}
	g, err := rstguard.Hold(r.v.Addr)
	if err != nil {
		r.log.Warn("WARN: IPaddr: "+err.Error()+"; connections the peer hands over may be reset until their sync arrives", "err", err)
		return
	}
	r.log.Info(fmt.Sprintf("IPaddr: holding back our own TCP resets from %s for %v (reset guard): connections the peer hands over are retransmitted, not reset, until their sync arrives", r.v.Addr, r.rstGuard))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.guard = g
	r.guardT = time.AfterFunc(r.rstGuard, r.releaseResets)
}

func (r *vipResource) releaseResets() {
	g := take(&r.mu, &r.guard, &r.guardT)
	if g == nil {
		return
	}
	n, err := g.Release()
	if err != nil {
		r.log.Warn("WARN: IPaddr: "+err.Error(), "err", err)
	}
	if r.heldBack != nil {
		r.heldBack.Add(uint64(n))
	}
	r.log.Info(fmt.Sprintf("IPaddr: reset guard of %s ended: %d resets held back", r.v.Addr, n))
}

// forward starts passing the segments of connections this node does not
// know yet to the directord peer that hands the VIP over (vip/handoff), at
// its address on the VIP's LAN, for as long as the reset guard lasts.
// Without such an address or nf_tables, the reset guard alone remains.
func (r *vipResource) forward(ctx context.Context, ifname string) {
	h, ok := cluster.HandoverOf(ctx)
	if r.rstGuard <= 0 || !ok || !h.Directord || r.tcpPorts == nil {
		return
	}
	r.endReceive() // a VIP taken back within a moment of giving it up
	ports, err := r.tcpPorts(ctx, r.v.Addr)
	if err != nil || len(ports) == 0 {
		if err != nil {
			r.log.Warn("WARN: IPaddr: not forwarding unknown segments of "+r.v.Addr.String()+" to the peer: "+err.Error(), "err", err)
		}
		return
	}
	peer, idx, ok, err := handoff.PeerOnLink(ifname, r.v.Addr, h.PeerAddrs)
	if err != nil || !ok {
		why := fmt.Sprintf("the peer named no address on %s's LAN (%v)", ifname, h.PeerAddrs)
		if err != nil {
			why = err.Error()
		}
		r.log.Warn("WARN: IPaddr: not forwarding unknown segments of " + r.v.Addr.String() + " to the peer: " + why + "; its connections that arrive before their sync wait for a retransmission")
		return
	}
	f, err := handoff.Forward(r.v.Addr, peer, idx, ports)
	if err != nil {
		r.log.Warn("WARN: IPaddr: "+err.Error()+"; connections the peer hands over may wait for a retransmission until their sync arrives", "err", err)
		return
	}
	r.log.Info(fmt.Sprintf("IPaddr: passing TCP segments for %s (ports %v) that IPVS does not know to %s on %s for %v (handoff): connections the peer still owns keep working", r.v.Addr, ports, peer, ifname, r.rstGuard))
	if r.handoffs != nil {
		r.handoffs.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fwd = f
	r.fwdT = time.AfterFunc(r.rstGuard, r.endForward)
}

func (r *vipResource) endForward() {
	f := take(&r.mu, &r.fwd, &r.fwdT)
	if f == nil {
		return
	}
	n, err := f.Release()
	if err != nil {
		r.log.Warn("WARN: IPaddr: "+err.Error(), "err", err)
	}
	if r.forwarded != nil {
		r.forwarded.Add(n)
	}
	r.log.Info(fmt.Sprintf("IPaddr: handoff of %s ended: %d segments passed to the peer", r.v.Addr, n))
}

// receive keeps taking TCP for the VIP after it is removed, while the
// directord peer that took it forwards the segments of our connections
// (vip/handoff): only in a handover the peer has already made.
func (r *vipResource) receive(ctx context.Context) {
	h, ok := cluster.HandoverOf(ctx)
	if r.rstGuard <= 0 || !ok || !h.Directord {
		return
	}
	if has, err := r.m.Has(ctx, r.v.Addr); err != nil || !has {
		return
	}
	rc, err := handoff.Receive(r.v.Addr)
	if err != nil {
		r.log.Warn("WARN: IPaddr: "+err.Error()+"; connections of ours the peer forwards are dropped", "err", err)
		return
	}
	r.log.Info(fmt.Sprintf("IPaddr: still taking TCP for %s for %v after removing it (handoff): the peer passes our connections' segments back until their sync arrives", r.v.Addr, r.rstGuard))
	if r.receives != nil {
		r.receives.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rcv = rc
	r.rcvT = time.AfterFunc(r.rstGuard, r.endReceive)
}

func (r *vipResource) endReceive() {
	rc := take(&r.mu, &r.rcv, &r.rcvT)
	if rc == nil {
		return
	}
	if err := rc.Release(); err != nil {
		r.log.Warn("WARN: IPaddr: "+err.Error(), "err", err)
	}
	r.log.Info("IPaddr: handoff of " + r.v.Addr.String() + " ended: TCP for it is no longer taken here")
}

// take empties a held handle (a guard, forwarder or receiver) and stops its
// end timer, under mu, and returns the handle: whoever takes it releases it.
func take[T any](mu *sync.Mutex, h **T, end **time.Timer) *T {
	mu.Lock()
	v, t := *h, *end
	*h, *end = nil, nil
	mu.Unlock()
	if t != nil {
		t.Stop()
	}
	return v
}

func (r *vipResource) Stop(ctx context.Context) error {
	// The announcer must end first: it must never announce a VIP we gave up.
	r.stopRefresh()
	r.releaseResets()
	r.endForward()
	r.receive(ctx)
	removed, err := r.m.Release(ctx, r.v)
	if err != nil {
		return fmt.Errorf("IPaddr %s: %w", r.v, err)
	}
	if removed {
		r.log.Info("IPaddr: removed " + r.v.String())
	} else {
		r.log.Info("IPaddr: Resource is stopped: " + r.v.String())
	}
	return nil
}

func (r *vipResource) Running(ctx context.Context) (bool, error) {
	return r.m.Has(ctx, r.v.Addr)
}

// close ends the announcer goroutine without touching the address, for a
// daemon that exits and leaves its resources in place.
func (r *vipResource) close() { r.stopRefresh(); r.releaseResets(); r.endForward(); r.endReceive() }

func count(n, def int) int {
	if n == 0 {
		return def
	}
	return max(n, 0)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// scriptResource is a Heartbeat resource script: resource.d/NAME under the
// ha.d directory, else /etc/init.d/NAME, run as "NAME ARGS… start|stop|status".
type scriptResource struct {
	name    string
	word    string
	path    string
	args    []string
	timeout time.Duration
	log     *slog.Logger
}

// DefaultScriptTimeout bounds one run of a resource script. Heartbeat has no
// limit; a script that hangs would then hold the takeover forever.
const DefaultScriptTimeout = 2 * time.Minute

// findScript resolves a resource script as Heartbeat's ResourceManager does:
// $HA_DIR/resource.d first, then the init script directory.
func findScript(name string, dirs []string) (string, error) {
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("resource script %q: a name, not a path, is expected", name)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("resource script %s: not found (or not executable) in %s", name, strings.Join(dirs, " or "))
}

func newScriptResource(s *config.Script, dirs []string, timeout time.Duration, log *slog.Logger) (*scriptResource, error) {
	p, err := findScript(s.Name, dirs)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultScriptTimeout
	}
	return &scriptResource{name: s.Name, word: s.String(), path: p, args: s.Args, timeout: timeout, log: log}, nil
}

func (r *scriptResource) String() string { return r.word }
func (r *scriptResource) Kind() string   { return "script" }

// run runs the script with op and returns its combined output.
func (r *scriptResource) run(ctx context.Context, op string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	argv := append(append([]string{}, r.args...), op)
	cmd := exec.CommandContext(ctx, r.path, argv...)
	// The script's own children (daemons it starts in the foreground by
	// mistake) are killed with it on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), "HA_RSCTMP=/run/resource-agents", "OCF_RESKEY_CRM_meta_timeout="+fmt.Sprint(r.timeout.Milliseconds()))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if op != "status" {
		r.log.Info("Running " + strings.Join(append([]string{r.path}, argv...), " "))
	}
	err := cmd.Run()
	for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if l != "" && op != "status" {
			r.log.Info(r.name + ": " + l)
		}
	}
	if ctx.Err() == context.DeadlineExceeded {
		return out.Bytes(), fmt.Errorf("%s %s: timed out after %v and was killed", r.path, op, r.timeout)
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w%s", r.path, op, err, tail(out.Bytes()))
	}
	return out.Bytes(), nil
}

func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}

func (r *scriptResource) Start(ctx context.Context) error {
	if on, err := r.Running(ctx); err == nil && on {
		r.log.Info(r.name + ": Resource is running: adopted")
		return nil
	}
	_, err := r.run(ctx, "start")
	return err
}

func (r *scriptResource) Stop(ctx context.Context) error {
	_, err := r.run(ctx, "stop")
	return err
}

// notRunningRE is what, in a script's status output, means "stopped".
// Heartbeat's ResourceManager looks for "running" in the output; LSB init
// scripts print "is not running" or "is stopped" and exit 3, so the words that
// say "not running" are looked for first.
var notRunningRE = regexp.MustCompile(`(?i)\b(not running|stopped|dead)\b`)

func (r *scriptResource) Running(ctx context.Context) (bool, error) {
	out, err := r.run(ctx, "status")
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// LSB: 3 is "not running"; other codes are failures of the check
		// itself, which also mean "not running" for Heartbeat.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !notRunningRE.Match(out), nil
}
