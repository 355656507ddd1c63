package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/media"
	"github.com/directord/directord/heartbeat/state"
	"github.com/directord/directord/heartbeat/wire"
)

// ErrNotRunning is returned by requests made before Run or after it ended.
var ErrNotRunning = errors.New("heartbeat engine is not running")

// link is one open heartbeat path; *media.Medium is one. It exists so
// that tests can put links inside network namespaces or in memory.
type link interface {
	Send(pkt []byte) error
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	Close() error
	String() string
	Interface() string
}

// Engine is one running heartbeat node. Create it with New, run it with
// Run; the other methods may be called from any goroutine.
type Engine struct {
	cfg Config
	res Resources
	log *slog.Logger
	clk Clock

	// Hooks for tests; nil in production.
	openLink func(ctx context.Context, m hacf.Medium) (link, error)
	dropOut  func(m *wire.Message) bool // drop a first transmission
	dropIn   func(m *wire.Message) bool // drop an authenticated arrival
	pingHost func(ctx context.Context, host string, interval time.Duration, seen func())

	reqs chan request // to the Run loop
	done chan struct{}

	mu      sync.Mutex
	snap    Snapshot
	running bool
}

type request struct {
	kind   string // "standby", "takeover", "stop", "detach"
	arg    Kind
	errc   chan error
	resume *Resume // filled in by a detach
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// New checks cfg, fills in defaults and returns an engine that is not yet
// running.
func New(cfg Config, res Resources) (*Engine, error) {
	if res == nil {
		return nil, errors.New("cluster: no Resources")
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	cfg.Node = wire.NodeName(cfg.Node)
	cfg.Peers = []string{wire.NodeName(cfg.Peers[0])}
	for i := range cfg.Groups {
		cfg.Groups[i].Owner = wire.NodeName(cfg.Groups[i].Owner)
	}
	cfg.Timing = cfg.Timing.withDefaults()
	if cfg.HopFudge <= 0 {
		cfg.HopFudge = 1
	}
	if cfg.StateDir == "" {
		cfg.StateDir = state.DefaultDir
	}
	e := &Engine{cfg: cfg, res: res, log: cfg.Logger, clk: cfg.Clock, reqs: make(chan request), done: make(chan struct{})}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.clk == nil {
		e.clk = systemClock{}
	}
	return e, nil
}

func (c *Config) check() error {
	if c.Node == "" {
		return errors.New("no node name")
	}
	if len(c.Peers) != 1 {
		return fmt.Errorf("need exactly one peer, have %d", len(c.Peers))
	}
	if wire.NodeName(c.Peers[0]) == wire.NodeName(c.Node) {
		return fmt.Errorf("peer %q is this node", c.Peers[0])
	}
	if c.Keyring == nil {
		return errors.New("no authkeys keyring")
	}
	if len(c.Media) == 0 {
		return errors.New("no heartbeat media")
	}
	seen := map[string]bool{}
	for _, g := range c.Groups {
		if g.Name == "" {
			return errors.New("resource group with no name")
		}
		if seen[g.Name] {
			return fmt.Errorf("resource group %q listed twice", g.Name)
		}
		seen[g.Name] = true
		o := wire.NodeName(g.Owner)
		if o != wire.NodeName(c.Node) && o != wire.NodeName(c.Peers[0]) {
			return fmt.Errorf("resource group %q: owner %q is not a cluster node", g.Name, g.Owner)
		}
	}
	t := c.Timing.withDefaults()
	if t.DeadTime <= t.Keepalive {
		return fmt.Errorf("deadtime %v must exceed keepalive %v", t.DeadTime, t.Keepalive)
	}
	return nil
}

func (t Timing) withDefaults() Timing {
	if t == (Timing{}) {
		return DefaultTiming()
	}
	if t.Keepalive <= 0 {
		t.Keepalive = time.Second
	}
	if t.DeadTime <= 0 {
		t.DeadTime = 30 * time.Second
	}
	if t.WarnTime <= 0 {
		t.WarnTime = t.DeadTime / 2
	}
	if t.InitDead <= 0 {
		t.InitDead = 2 * t.DeadTime
	}
	if t.MaxRexmitDelay <= 0 {
		t.MaxRexmitDelay = min(250*time.Millisecond, t.Keepalive)
	}
	if t.DeadPing <= 0 {
		t.DeadPing = t.DeadTime
	}
	return t
}

// Run runs the node until ctx ends or Stop completes. Cancelling ctx is a
// crash as far as the peer can tell: nothing is released and no goodbye
// is sent (the daemon calls Stop for a graceful shutdown). Run may be
// called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("cluster: Run called twice")
	}
	e.running = true
	e.mu.Unlock()
	defer close(e.done)

	uuid, err := state.LoadOrCreateUUID(filepath.Join(e.cfg.StateDir, state.UUIDFile))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	resume := e.usableResume(uuid)
	var gen uint64
	if resume != nil {
		gen = resume.Generation
	} else if gen, err = state.NextGeneration(filepath.Join(e.cfg.StateDir, state.GenerationFile), e.clk.Now); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	links := make([]link, 0, len(e.cfg.Media))
	// Every goroutine started below is owned here: cancel, close the
	// sockets they read, wait for them.
	defer func() {
		cancel()
		for _, l := range links {
			l.Close()
		}
		wg.Wait()
	}()
	for _, m := range e.cfg.Media {
		var l link
		if e.openLink != nil {
			l, err = e.openLink(ctx, m)
		} else {
			var md *media.Medium
			md, err = media.Open(ctx, m)
			if err == nil {
				l = md
			}
		}
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		links = append(links, l)
	}

	n := newNode(e, uuid, gen, links, resume)
	in := make(chan inbound, 64)
	for i, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readLoop(ctx, i, l, in, e.log)
		}()
	}
	// Closing the links unblocks the readers once ctx ends.
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		for _, l := range links {
			l.Close()
		}
	}()

	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}

	pings := make(chan pingSeen, 16)
	for _, h := range n.pingHosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.pinger(ctx, h, pings)
		}()
	}

	return n.loop(ctx, in, spawn, pings)
}

// usableResume returns cfg.Resume when this node can continue it: the same
// node and uuid, and the generation still the one on disk (a start since
// then announced a newer one, which the peer would take the old one's
// messages as replays of).
func (e *Engine) usableResume(uuid wire.UUID) *Resume {
	r := e.cfg.Resume
	if r == nil {
		return nil
	}
	why := ""
	gen, err := state.Generation(filepath.Join(e.cfg.StateDir, state.GenerationFile))
	switch {
	case wire.NodeName(r.Node) != e.cfg.Node:
		why = fmt.Sprintf("it is node %s's", r.Node)
	case r.UUID != uuid:
		why = "the node's uuid changed"
	case err != nil:
		why = err.Error()
	case gen != r.Generation:
		why = fmt.Sprintf("generation %d is no longer the current one (%d)", r.Generation, gen)
	case r.NextSeq == 0:
		why = "no sequence number"
	}
	if why != "" {
		e.log.Warn("not resuming the previous engine: "+why+"; starting afresh (the peer sees a restart)", "generation", r.Generation)
		return nil
	}
	return r
}

type inbound struct {
	link int
	pkt  []byte
}

func readLoop(ctx context.Context, i int, l link, in chan<- inbound, log *slog.Logger) {
	buf := make([]byte, media.MaxDatagram)
	for {
		n, _, err := l.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("heartbeat read failed", "link", l.String(), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond): // avoid spinning on a broken socket
			}
			continue
		}
		pkt := append([]byte(nil), buf[:n]...)
		select {
		case in <- inbound{link: i, pkt: pkt}:
		case <-ctx.Done():
			return
		}
	}
}

// Standby gives up the groups kind names to the peer, as hb_standby does
// (failback means foreign). It returns once the request is sent;
// ownership changes asynchronously (watch State or OnEvent).
func (e *Engine) Standby(ctx context.Context, kind Kind) error {
	if !kind.valid() {
		return fmt.Errorf("cluster: bad standby kind %q", kind)
	}
	return e.do(ctx, request{kind: "standby", arg: kind})
}

// Takeover asks the peer to hand over the groups kind names, as
// hb_takeover does.
func (e *Engine) Takeover(ctx context.Context, kind Kind) error {
	if !kind.valid() {
		return fmt.Errorf("cluster: bad takeover kind %q", kind)
	}
	return e.do(ctx, request{kind: "takeover", arg: kind})
}

func (k Kind) valid() bool {
	switch k {
	case All, Local, Foreign, Failback:
		return true
	}
	return false
}

// Stop shuts the node down gracefully: it releases every group it holds,
// tells the peer (which takes them at once, without waiting for deadtime)
// and makes Run return nil. It returns when Run has returned or ctx ends.
func (e *Engine) Stop(ctx context.Context) error {
	if err := e.do(ctx, request{kind: "stop"}); err != nil {
		return err
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) do(ctx context.Context, r request) error {
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if !running {
		return ErrNotRunning
	}
	r.errc = make(chan error, 1)
	select {
	case e.reqs <- r:
	case <-e.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Detach ends Run without a word to the peer and without releasing
// anything, and returns what a successor engine needs (Config.Resume) to
// carry on as this node: the peer then sees only a gap in heartbeats. It
// waits until no resource transition or standby handshake is under way
// (bounded by ctx) and refuses while the node is still starting up or
// shutting down. The successor must start within the deadtime.
func (e *Engine) Detach(ctx context.Context) (Resume, error) {
	var r Resume
	if err := e.do(ctx, request{kind: "detach", resume: &r}); err != nil {
		return Resume{}, err
	}
	select {
	case <-e.done:
		return r, nil
	case <-ctx.Done():
		return Resume{}, ctx.Err()
	}
}

// State returns a copy of the engine's current state.
func (e *Engine) State() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap
	s.Groups = append([]GroupState(nil), s.Groups...)
	s.Ping = append([]PingState(nil), s.Ping...)
	s.Peer.Links = append([]LinkState(nil), s.Peer.Links...)
	return s
}

// job is resource work run in its own goroutine, one at a time, so the
// loop keeps sending heartbeats while scripts run.
type job struct {
	name string
	// start runs in the loop when the job is about to run and returns
	// the work to do outside it; nil means nothing to run.
	start func() func(ctx context.Context) any
	// then runs in the loop with the work's result.
	then func(result any)
}

type jobResult struct {
	j   job
	out any
}

func randOffset() uint64 { return rand.Uint64N(ackDiv) }
