package control

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
)

// fakeHandler stands in for the daemon: these tests are about the protocol
// and the socket, not about what the commands do.
type fakeHandler struct {
	mu    sync.Mutex
	calls []string
	err   error
	block chan struct{}
}

func (f *fakeHandler) record(s string) error {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
	if f.block != nil {
		<-f.block
	}
	return f.err
}

func (f *fakeHandler) Status(ctx context.Context) (*Status, error) {
	if err := f.record("status"); err != nil {
		return nil, err
	}
	return &Status{
		Node: "node1",
		HA:   HA{Engine: true, State: "active", Resources: "all", Peers: []Peer{{Name: "node2", Status: "active", Links: []Link{{Name: "eth1", Status: "up"}}}}},
		IPVS: IPVS{Info: ipvs.Info{Version: 0x010201, ConnTableSize: 4096}, Table: ipvs.Table{{
			Service:      ipvs.Service{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("192.0.2.100"), Port: 80, Scheduler: "rr"},
			Destinations: []ipvs.Destination{{Addr: netip.MustParseAddr("198.51.100.10"), Port: 80, Forward: ipvs.Route, Weight: 1}},
		}}},
	}, nil
}

func (f *fakeHandler) Standby(ctx context.Context, which string) (string, error) {
	return "standby " + which, f.record("standby " + which)
}

func (f *fakeHandler) Takeover(ctx context.Context, which string) (string, error) {
	return "takeover " + which, f.record("takeover " + which)
}

func (f *fakeHandler) Reload(ctx context.Context) (string, error) {
	return "reloaded", f.record("reload")
}

func serve(t *testing.T, h Handler) (path string, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "d.sock")
	s, err := Listen(path, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return path, stop
}

func TestRoundTrip(t *testing.T) {
	h := &fakeHandler{}
	path, _ := serve(t, h)
	ctx := context.Background()

	resp, err := Do(ctx, path, Request{Command: CmdStatus})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.OK || resp.Version != Version || resp.Status == nil {
		t.Fatalf("status response = %+v", resp)
	}
	st := resp.Status
	if st.Node != "node1" || st.HA.Peers[0].Links[0].Status != "up" {
		t.Errorf("status = %+v", st)
	}
	// The table survives JSON with its typed addresses, so that the client
	// can print it with ipvs.WriteList.
	if got := st.IPVS.Table[0].Destinations[0].Addr; got != netip.MustParseAddr("198.51.100.10") || st.IPVS.Table[0].Key().Protocol != ipvs.TCP {
		t.Errorf("table after JSON = %+v", st.IPVS.Table)
	}

	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Command: CmdStandby}, "standby all"},
		{Request{Command: CmdStandby, Which: WhichForeign}, "standby foreign"},
		{Request{Command: CmdTakeover, Which: WhichLocal}, "takeover local"},
		{Request{Command: CmdTakeover, Which: WhichFailback}, "takeover failback"},
		{Request{Command: CmdReload}, "reloaded"},
	} {
		resp, err := Do(ctx, path, c.req)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.OK || resp.Message != c.want {
			t.Errorf("%+v: response %+v, want message %q", c.req, resp, c.want)
		}
	}
}

func TestErrorsAreResponses(t *testing.T) {
	h := &fakeHandler{}
	path, _ := serve(t, h)
	ctx := context.Background()
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Command: "frobnicate"}, "unknown command"},
		{Request{Command: CmdStandby, Which: "some"}, "expected all, foreign, local or failback"},
	} {
		resp, err := Do(ctx, path, c.req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.OK || !strings.Contains(resp.Error, c.want) {
			t.Errorf("%+v: response %+v, want an error with %q", c.req, resp, c.want)
		}
	}
	h.mu.Lock()
	if len(h.calls) != 0 {
		t.Errorf("invalid requests reached the handler: %v", h.calls)
	}
	h.mu.Unlock()

	h.err = errors.New("peer node2 is dead: nothing to hand over to")
	resp, err := Do(ctx, path, Request{Command: CmdStandby})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OK || resp.Error != h.err.Error() {
		t.Errorf("failing command: response %+v", resp)
	}

	// Garbage on the socket is answered, not fatal to the server.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("{not json\n"))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), "bad request") {
		t.Errorf("garbage got %q", buf[:n])
	}
	if resp, err := Do(ctx, path, Request{Command: CmdReload}); err != nil || resp.Error == "" {
		t.Errorf("server after garbage: %+v, %v", resp, err)
	}
}

func TestSocketModeAndLifecycle(t *testing.T) {
	h := &fakeHandler{}
	path, stop := serve(t, h)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}

	// A second daemon on the same socket is refused while the first answers.
	if _, err := Listen(path, h, nil); err == nil || !strings.Contains(err.Error(), "another directord") {
		t.Errorf("second Listen on a live socket: %v", err)
	}

	stop()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: %v", err)
	}
	if _, err := Do(context.Background(), path, Request{Command: CmdStatus}); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Do with no daemon: %v, want ErrNoDaemon", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	// A daemon killed with -9 leaves its socket file behind.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := Do(context.Background(), path, Request{Command: CmdStatus}); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Do on a stale socket: %v, want ErrNoDaemon", err)
	}
	s, err := Listen(path, &fakeHandler{}, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	s.Close()

	// A regular file is not ours to remove.
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := Listen(path, &fakeHandler{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

func TestClientContext(t *testing.T) {
	h := &fakeHandler{block: make(chan struct{})}
	path, _ := serve(t, h)
	defer close(h.block)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Do(ctx, path, Request{Command: CmdStatus})
	if err == nil {
		t.Fatal("Do returned while the handler was blocked")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Do took %v after its context ended", d)
	}
}
