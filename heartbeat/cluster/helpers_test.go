package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/wire"
)

// recorder is a Resources that records calls and what is held.
type recorder struct {
	mu    sync.Mutex
	name  string
	held  map[string]bool
	calls []string
	delay time.Duration
	fail  map[string]bool
	// onRelease, when set, is called at the start of each Release.
	onRelease func(g string)
	// slow, when set, adds its nanoseconds to each Acquire.
	slow atomic.Int64
	// handed lists the groups acquired as handed over (HandoverOf).
	handed []string
	// handedAddrs is the PeerAddrs of the last handover acquired;
	// releasedHanded lists the groups released as handed over.
	handedAddrs    []netip.Addr
	releasedHanded []string
}

func (r *recorder) handedOver() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.handed, ",")
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, held: map[string]bool{}, fail: map[string]bool{}}
}

func (r *recorder) Acquire(ctx context.Context, g string) error {
	time.Sleep(r.delay + time.Duration(r.slow.Load()))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "acquire "+g)
	if h, ok := HandoverOf(ctx); ok {
		what := g
		if !h.Directord {
			what += " (not from directord)"
		}
		r.handed = append(r.handed, what)
		r.handedAddrs = h.PeerAddrs
	}
	if r.fail[g] {
		return errors.New("injected failure")
	}
	r.held[g] = true
	return nil
}

func (r *recorder) Release(ctx context.Context, g string) error {
	if r.onRelease != nil {
		r.onRelease(g)
	}
	time.Sleep(r.delay)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "release "+g)
	if _, ok := HandoverOf(ctx); ok {
		r.releasedHanded = append(r.releasedHanded, g)
	}
	delete(r.held, g)
	return nil
}

func (r *recorder) holds(g string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[g]
}

func (r *recorder) callLog() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, ", ")
}

// memNet is an in-memory broadcast segment per medium index: what one
// link sends, the other engines' links of the same index receive. Links
// can be cut and packets filtered. It stands in for the kernel in the
// fast tests; the netns tests use real sockets.
type memNet struct {
	mu    sync.Mutex
	links map[int][]*memLink
	cut   map[int]bool
}

func newMemNet() *memNet { return &memNet{links: map[int][]*memLink{}, cut: map[int]bool{}} }

func (mn *memNet) setCut(i int, cut bool) {
	mn.mu.Lock()
	mn.cut[i] = cut
	mn.mu.Unlock()
}

type memLink struct {
	net    *memNet
	idx    int
	iface  string
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

func (mn *memNet) open(idx int, iface string) *memLink {
	l := &memLink{net: mn, idx: idx, iface: iface, in: make(chan []byte, 256), closed: make(chan struct{})}
	mn.mu.Lock()
	mn.links[idx] = append(mn.links[idx], l)
	mn.mu.Unlock()
	return l
}

func (l *memLink) Send(pkt []byte) error {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.net.cut[l.idx] {
		return nil
	}
	for _, o := range l.net.links[l.idx] {
		if o == l {
			continue
		}
		select {
		case <-o.closed:
		case o.in <- append([]byte(nil), pkt...):
		default: // a full queue drops, as a socket buffer would
		}
	}
	return nil
}

func (l *memLink) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case p := <-l.in:
		return copy(b, p), netip.AddrPort{}, nil
	case <-l.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (l *memLink) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.net.mu.Lock()
		ls := l.net.links[l.idx]
		for i, o := range ls {
			if o == l {
				l.net.links[l.idx] = append(ls[:i:i], ls[i+1:]...)
				break
			}
		}
		l.net.mu.Unlock()
	})
	return nil
}
func (l *memLink) String() string    { return "mem " + l.iface }
func (l *memLink) Interface() string { return l.iface }

// logBuf collects log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (lb *logBuf) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.Write(p)
}

func (lb *logBuf) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.String()
}

func (lb *logBuf) has(s string) bool { return strings.Contains(lb.String(), s) }

// testNode is one engine under test.
type testNode struct {
	name   string
	e      *Engine
	res    *recorder
	log    *logBuf
	cancel context.CancelFunc
	errc   chan error
	dir    string
	once   sync.Once
}

func testKeyring() *wire.Keyring {
	return wire.NewKeyring(wire.Key{Num: 1, Method: wire.SHA1, Secret: []byte("cluster-test-key")})
}

// fastTiming is quick but leaves room for a loaded 2-core machine under
// the race detector: a deadtime of ten keepalives.
func fastTiming() Timing {
	return Timing{Keepalive: 25 * time.Millisecond, WarnTime: 100 * time.Millisecond, DeadTime: 250 * time.Millisecond,
		InitDead: 600 * time.Millisecond, MaxRexmitDelay: 25 * time.Millisecond, DeadPing: 250 * time.Millisecond}
}

// memConfig is a two-node config with nmedia in-memory links and one
// group per node.
func memConfig(self, peer string, nmedia int, fb hacf.AutoFailback, dir string) Config {
	var ms []hacf.Medium
	for i := range nmedia {
		ms = append(ms, hacf.Medium{Type: hacf.Bcast, Interface: fmt.Sprintf("eth%d", i), Port: 694})
	}
	return Config{
		Node: self, Peers: []string{peer}, Media: ms, Keyring: testKeyring(), Timing: fastTiming(),
		Groups:       []Group{{Name: "192.0.2.10", Owner: "nodea"}, {Name: "192.0.2.20", Owner: "nodeb"}},
		AutoFailback: fb, StateDir: dir,
	}
}

// startMem starts an engine on mn. dir keeps its identity across restarts.
func startMem(t *testing.T, mn *memNet, cfg Config, res *recorder, tweak func(*Engine)) *testNode {
	t.Helper()
	lb := &logBuf{}
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(cfg, res)
	if err != nil {
		t.Fatal(err)
	}
	e.openLink = func(_ context.Context, m hacf.Medium) (link, error) {
		var idx int
		fmt.Sscanf(m.Interface, "eth%d", &idx)
		return mn.open(idx, m.Interface), nil
	}
	if tweak != nil {
		tweak(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{name: cfg.Node, e: e, res: res, log: lb, cancel: cancel, errc: make(chan error, 1), dir: cfg.StateDir}
	go func() { tn.errc <- e.Run(ctx) }()
	t.Cleanup(func() {
		tn.kill()
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("log of %s:\n%s", tn.name, lb.String())
		}
	})
	return tn
}

// kill cancels the engine: a crash, no goodbye.
func (tn *testNode) kill() {
	tn.once.Do(func() {
		tn.cancel()
		select {
		case err := <-tn.errc:
			tn.errc <- err
		case <-time.After(10 * time.Second):
		}
	})
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
	return 0
}
