package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/ipvs/connsync"
)

// The tests in this file use fakes above the kernel boundary only: fakeRes
// stands in for a resource (the VIP and lnoded resources are tested against
// the kernel in the VM), fakeSync for ipvs.Handle's sync daemon calls.
// Resource scripts are real shell scripts.

type journal struct {
	mu  sync.Mutex
	ops []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.ops = append(j.ops, s)
	j.mu.Unlock()
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.ops, " ")
}

type fakeRes struct {
	name     string
	j        *journal
	failOn   string // "start" or "stop"
	on       bool
	startErr error
}

func (f *fakeRes) String() string { return f.name }
func (f *fakeRes) Kind() string   { return "fake" }
func (f *fakeRes) Start(ctx context.Context) error {
	f.j.add("start:" + f.name)
	if f.failOn == "start" {
		return errors.New("boom")
	}
	f.on = true
	return nil
}
func (f *fakeRes) Stop(ctx context.Context) error {
	f.j.add("stop:" + f.name)
	if f.failOn == "stop" {
		return errors.New("busy")
	}
	f.on = false
	return nil
}
func (f *fakeRes) Running(ctx context.Context) (bool, error) { return f.on, nil }

func TestGroupOrder(t *testing.T) {
	j := &journal{}
	a, b, c := &fakeRes{name: "a", j: j}, &fakeRes{name: "b", j: j}, &fakeRes{name: "c", j: j}
	g := NewGroup("a", "node1", []Resource{a, b, c}, nil)
	ctx := context.Background()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !g.Held() || g.Status().State != StateRunning {
		t.Errorf("after Start: %+v", g.Status())
	}
	if err := g.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := j.String(), "start:a start:b start:c stop:c stop:b stop:a"; got != want {
		t.Errorf("order %q, want %q (left to right, then right to left)", got, want)
	}
	if g.Held() {
		t.Error("held after Stop")
	}
}

func TestGroupStartFailureRollsBack(t *testing.T) {
	j := &journal{}
	a, b, c := &fakeRes{name: "a", j: j}, &fakeRes{name: "b", j: j, failOn: "start"}, &fakeRes{name: "c", j: j}
	g := NewGroup("a", "node1", []Resource{a, b, c}, nil)
	err := g.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "resource b failed to start: boom") {
		t.Fatalf("Start: %v", err)
	}
	// c is never started; a, which was, is stopped again.
	if got, want := j.String(), "start:a start:b stop:a"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	st := g.Status()
	if st.State != StateFailed || g.Held() || st.Resources[1].State != StateFailed || st.Resources[0].State != StateStopped || st.Resources[2].State != StateStopped {
		t.Errorf("status after a failed start: %+v", st)
	}
}

func TestGroupStopCarriesOn(t *testing.T) {
	j := &journal{}
	a, b, c := &fakeRes{name: "a", j: j}, &fakeRes{name: "b", j: j}, &fakeRes{name: "c", j: j}
	g := NewGroup("a", "node1", []Resource{a, b, c}, nil)
	g.Start(context.Background())
	b.failOn = "stop"
	err := g.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "resource b failed to stop: busy") {
		t.Fatalf("Stop: %v", err)
	}
	if got, want := j.String(), "start:a start:b start:c stop:c stop:b stop:a"; got != want {
		t.Errorf("order %q, want %q: a failing stop must not keep the others running", got, want)
	}
	if a.on || c.on {
		t.Error("resources left running")
	}
}

func TestRunner(t *testing.T) {
	j := &journal{}
	g1 := NewGroup("g1", "node1", []Resource{&fakeRes{name: "x", j: j}}, nil)
	g2 := NewGroup("g2", "node2", []Resource{&fakeRes{name: "y", j: j}}, nil)
	r := NewRunner([]*Group{g1, g2})
	var changes []string
	r.onChange = func(g string, held bool, err error) {
		changes = append(changes, fmt.Sprintf("%s %v %v", g, held, err == nil))
	}
	ctx := context.Background()
	if err := r.Acquire(ctx, "nope"); err == nil {
		t.Error("Acquire of an unknown group succeeded")
	}
	r.Acquire(ctx, "g1")
	r.Acquire(ctx, "g2")
	if err := r.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := j.String(), "start:x start:y stop:y stop:x"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	if got := strings.Join(changes, ","); got != "g1 true true,g2 true true,g2 false true,g1 false true" {
		t.Errorf("changes %s", got)
	}
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestScriptResource(t *testing.T) {
	ha := t.TempDir()
	rd := filepath.Join(ha, "resource.d")
	initd := t.TempDir()
	os.Mkdir(rd, 0o755)
	state := filepath.Join(t.TempDir(), "state")
	// A Heartbeat-style script: args then the operation.
	writeScript(t, rd, "svc", `echo "$@" >> `+state+`.log
case "$2" in
start) echo on > `+state+` ;;
stop) rm -f `+state+` ;;
status) if [ -f `+state+` ]; then echo "svc is running"; else echo "svc is stopped"; fi ;;
esac
`)
	// The init.d copy must not be used: resource.d comes first.
	writeScript(t, initd, "svc", "exit 1\n")
	writeScript(t, initd, "other", "exit 0\n")
	dirs := []string{rd, initd}
	log := slog.New(slog.DiscardHandler)

	s, err := newScriptResource(&config.Script{Name: "svc", Args: []string{"arg1"}}, dirs, time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.path != filepath.Join(rd, "svc") {
		t.Errorf("path %s", s.path)
	}
	ctx := context.Background()
	if on, _ := s.Running(ctx); on {
		t.Error("running before start")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if on, _ := s.Running(ctx); !on {
		t.Error("not running after start")
	}
	// A second start adopts: the script is not run with start again.
	s.Start(ctx)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	logged, _ := os.ReadFile(state + ".log")
	if got, want := strings.Fields(string(logged)), strings.Fields("arg1 status arg1 status arg1 start arg1 status arg1 status arg1 stop"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("script ran %q, want %q", got, want)
	}

	if o, err := newScriptResource(&config.Script{Name: "other"}, dirs, 0, log); err != nil || o.path != filepath.Join(initd, "other") || o.timeout != DefaultScriptTimeout {
		t.Errorf("init.d fallback: %+v, %v", o, err)
	}
	if _, err := newScriptResource(&config.Script{Name: "missing"}, dirs, 0, log); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing script: %v", err)
	}
	if _, err := newScriptResource(&config.Script{Name: "../x"}, dirs, 0, log); err == nil {
		t.Error("a path was accepted as a script name")
	}
}

func TestScriptFailureAndTimeout(t *testing.T) {
	rd := t.TempDir()
	writeScript(t, rd, "bad", `[ "$1" = status ] && exit 3; echo "cannot mount /webdata" >&2; exit 1`+"\n")
	writeScript(t, rd, "slow", `[ "$1" = status ] && exit 3; sleep 30`+"\n")
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	bad, _ := newScriptResource(&config.Script{Name: "bad"}, []string{rd}, time.Second, log)
	err := bad.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "exit status 1: cannot mount /webdata") {
		t.Errorf("failing script: %v", err)
	}
	slow, _ := newScriptResource(&config.Script{Name: "slow"}, []string{rd}, 300*time.Millisecond, log)
	start := time.Now()
	err = slow.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("hanging script: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

type fakeSync struct {
	mu      sync.Mutex
	running map[ipvs.DaemonState]ipvs.Daemon
	started map[ipvs.DaemonState]ipvs.Daemon // last start of each role
	ops     []string
	table   ipvs.Table
}

func (f *fakeSync) Table(ctx context.Context) (ipvs.Table, error) { return f.table, nil }

func (f *fakeSync) StartDaemon(ctx context.Context, d ipvs.Daemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[d.State]; ok {
		return fmt.Errorf("start: %w", ipvs.ErrDaemonRunning)
	}
	f.running[d.State] = d
	if f.started == nil {
		f.started = map[ipvs.DaemonState]ipvs.Daemon{}
	}
	f.started[d.State] = d
	f.ops = append(f.ops, "start:"+d.State.String())
	return nil
}

func (f *fakeSync) StopDaemon(ctx context.Context, s ipvs.DaemonState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[s]; !ok {
		return fmt.Errorf("stop: %w", ipvs.ErrNoDaemon)
	}
	delete(f.running, s)
	f.ops = append(f.ops, "stop:"+s.String())
	return nil
}

func (f *fakeSync) Daemons(ctx context.Context) ([]ipvs.Daemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ipvs.Daemon
	for _, d := range f.running {
		out = append(out, d)
	}
	return out, nil
}

func TestSyncFlip(t *testing.T) {
	k := &fakeSync{running: map[ipvs.DaemonState]ipvs.Daemon{}}
	s := newSyncControl(k, config.Sync{Enabled: true, Interface: "eth0", SyncID: 7}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	lr := &lnodedResource{word: "lnoded::a.cf", path: "a.cf", running: func(string) error { return nil }, sync: s, log: slog.New(slog.DiscardHandler)}
	lr2 := &lnodedResource{word: "lnoded::b.cf", path: "b.cf", running: func(string) error { return nil }, sync: s, log: slog.New(slog.DiscardHandler)}
	lr.Start(ctx)
	lr.Start(ctx) // idempotent: one hold
	lr2.Start(ctx)
	lr.Stop(ctx)
	if st, _ := s.State(ctx); st != "master" {
		t.Errorf("one group still held: sync %s", st)
	}
	lr2.Stop(ctx)
	// The master runs on until the group has stopped (its VIP may still
	// bring connections), then stops.
	if st, _ := s.State(ctx); st != "master" {
		t.Errorf("group still stopping: sync %s", st)
	}
	s.Released(ctx)
	if st, _ := s.State(ctx); st != "backup" {
		t.Errorf("nothing held: sync %s", st)
	}
	// The backup runs all the time, the master beside it while a group is
	// held: the node taking over still hears the one letting go.
	if got, want := strings.Join(k.ops, " "), "start:backup start:master stop:master"; got != want {
		t.Errorf("ops %q, want %q", got, want)
	}
	if d := k.running[ipvs.DaemonBackup]; d.Interface != "eth0" || d.SyncID != 7 {
		t.Errorf("daemon %+v", d)
	}
	if k.started[ipvs.DaemonMaster].MaxLen != masterMaxLen || k.started[ipvs.DaemonBackup].MaxLen != 0 {
		t.Errorf("master %+v, backup %+v: the master sends each connection at once, the backup takes the kernel's buffer", k.started[ipvs.DaemonMaster], k.started[ipvs.DaemonBackup])
	}

	// A restart on the active node finds the master running and keeps it.
	k2 := &fakeSync{running: map[ipvs.DaemonState]ipvs.Daemon{ipvs.DaemonMaster: {State: ipvs.DaemonMaster}}}
	s2 := newSyncControl(k2, config.Sync{Enabled: true, Interface: "eth0"}, slog.New(slog.DiscardHandler))
	s2.Start(ctx)
	if len(k2.ops) != 0 {
		t.Errorf("restart touched a running master: %v", k2.ops)
	}
	// Once the engine has settled with nothing held here, it flips.
	s2.Settle(ctx)
	if st, _ := s2.State(ctx); st != "backup" {
		t.Errorf("after Settle with nothing held: %s", st)
	}

	// A release the daemon does not finish (no group change reported)
	// ends by itself; one taken back meanwhile keeps the master.
	s.finishDelay = 50 * time.Millisecond
	lr.Start(ctx)
	lr.Stop(ctx)
	lr.Start(ctx)
	time.Sleep(150 * time.Millisecond)
	if st, _ := s.State(ctx); st != "master" {
		t.Errorf("held again: sync %s", st)
	}
	lr.Stop(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for st, _ := s.State(ctx); st != "backup"; st, _ = s.State(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("an unfinished release kept the master: %s", st)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := s.Stop(ctx); err != nil || len(k.running) != 0 {
		t.Errorf("Stop: %v, still running %v", err, k.running)
	}

	// An lnoded resource whose module is not running fails to start.
	lr3 := &lnodedResource{word: "lnoded::c.cf", path: "c.cf", running: func(string) error { return errors.New("not running") }, sync: s, log: slog.New(slog.DiscardHandler)}
	if err := lr3.Start(ctx); err == nil {
		t.Error("lnoded resource started without its module")
	}
}

func TestGroupStatus(t *testing.T) {
	j := &journal{}
	g := NewGroup("192.0.2.100", "node1", []Resource{&fakeRes{name: "192.0.2.100", j: j}, &fakeRes{name: "lnoded::lnoded.cf", j: j}}, nil)
	if g.Line() != "node1 192.0.2.100 lnoded::lnoded.cf" {
		t.Errorf("Line %q", g.Line())
	}
	g.Start(context.Background())
	st := g.Status()
	want := control.Group{Name: "192.0.2.100", Owner: "node1", State: StateRunning}
	if st.Name != want.Name || st.Owner != want.Owner || st.State != want.State || len(st.Resources) != 2 || st.Resources[1].State != StateRunning {
		t.Errorf("status %+v", st)
	}
	if on := g.Adoptable(context.Background()); len(on) != 2 {
		t.Errorf("Adoptable %v", on)
	}
}

// TestTransform: a reload that changes a held group keeps the resources it
// has in common at the front running.
func TestTransform(t *testing.T) {
	j := &journal{}
	vip := &fakeRes{name: "vip", j: j}
	lnd := &fakeRes{name: "lnoded", j: j}
	old := NewGroup("vip", "node1", []Resource{vip, lnd, &fakeRes{name: "httpd", j: j}}, nil)
	ctx := context.Background()
	old.Start(ctx)
	j.ops = nil

	newVIP, newLnd := &fakeRes{name: "vip", j: j}, &fakeRes{name: "lnoded", j: j}
	ng := NewGroup("vip", "node1", []Resource{newVIP, newLnd, &fakeRes{name: "nginx", j: j}, &fakeRes{name: "maid", j: j}}, nil)
	kept, err := ng.Transform(ctx, old)
	if err != nil || kept != 2 {
		t.Fatalf("Transform: kept %d, %v", kept, err)
	}
	if got, want := j.String(), "stop:httpd start:nginx start:maid"; got != want {
		t.Errorf("ops %q, want %q: the VIP and lnoded must not flap", got, want)
	}
	if ng.res[0] != Resource(vip) || !ng.Held() {
		t.Error("the running VIP resource was not taken over")
	}
	for i, r := range ng.Status().Resources {
		if r.State != StateRunning {
			t.Errorf("resource %d state %s", i, r.State)
		}
	}

	// A failing new resource leaves the kept ones running.
	j.ops = nil
	ng2 := NewGroup("vip", "node1", []Resource{&fakeRes{name: "vip", j: j}, &fakeRes{name: "lnoded", j: j}, &fakeRes{name: "bad", j: j, failOn: "start"}}, nil)
	if _, err := ng2.Transform(ctx, ng); err == nil {
		t.Fatal("Transform with a failing resource succeeded")
	}
	if got, want := j.String(), "stop:maid stop:nginx start:bad"; got != want {
		t.Errorf("ops %q, want %q", got, want)
	}
	if !vip.on || ng2.Status().State != StateFailed {
		t.Errorf("after a failed transform: vip on=%v, state %s", vip.on, ng2.Status().State)
	}
}

// announcingRes is a fakeRes that records re-announcements.
type announcingRes struct{ fakeRes }

func (a *announcingRes) reannounce() { a.j.add("reannounce:" + a.name) }

// The engine's EventReassert reaches the VIP resources of a held group only.
func TestRunnerReannounce(t *testing.T) {
	j := &journal{}
	g1 := NewGroup("g1", "node1", []Resource{&announcingRes{fakeRes{name: "vip1", j: j}}, &fakeRes{name: "x", j: j}}, nil)
	g2 := NewGroup("g2", "node2", []Resource{&announcingRes{fakeRes{name: "vip2", j: j}}}, nil)
	r := NewRunner([]*Group{g1, g2})
	if err := r.Acquire(context.Background(), "g1"); err != nil {
		t.Fatal(err)
	}
	r.Reannounce("g1")
	r.Reannounce("g2")
	r.Reannounce("nope")
	if got, want := j.String(), "start:vip1 start:x reannounce:vip1"; got != want {
		t.Errorf("journal %q, want %q", got, want)
	}
}

// TestSyncHandOver: a release that leaves nothing held (and `directord
// standby`) sends the connections of this node's table to the sync group at
// once, which the kernel's master would send within 2 s or drop as it
// stops; a node that holds nothing sends nothing. (The kernel's backup installing them is ipvs/kerneltest's
// TestConnHandover.)
func TestSyncHandOver(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "ip_vs_conn")
	os.WriteFile(proc, []byte(`Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C000020A 9C40 C6336401 0050 C0000214 0050 ESTABLISHED     897
TCP C000020A 9C42 C6336401 0050 C0000214 0050 TIME_WAIT        119
`), 0o644)
	k := &fakeSync{running: map[ipvs.DaemonState]ipvs.Daemon{}, table: ipvs.Table{{
		Service:      ipvs.Service{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("198.51.100.1"), Port: 80},
		Destinations: []ipvs.Destination{{Addr: netip.MustParseAddr("192.0.2.20"), Port: 80, Forward: ipvs.Route}},
	}}}
	var logs strings.Builder
	s := newSyncControl(k, config.Sync{Enabled: true, Interface: "hb0", SyncID: 4}, slog.New(slog.NewTextHandler(&logs, nil)))
	s.procConns = proc
	var sent []string
	s.send = func(ctx context.Context, ifname string, group netip.Addr, port uint16, msgs [][]byte) error {
		for _, m := range msgs {
			id, cs, err := connsync.Decode(m)
			if err != nil {
				t.Errorf("sent a bad message: %v", err)
			}
			for _, c := range cs {
				sent = append(sent, fmt.Sprintf("%s syncid %d %s->%s state %d flags %#x", ifname, id, c.Client, c.Dest, c.State, c.Flags))
			}
		}
		return nil
	}
	ctx := context.Background()
	s.Start(ctx)
	s.HandOver(ctx, "standby")
	if len(sent) != 0 {
		t.Fatalf("a node holding nothing handed over %v", sent)
	}
	lr := &lnodedResource{word: "lnoded::a.cf", path: "a.cf", running: func(string) error { return nil }, sync: s, log: slog.New(slog.DiscardHandler)}
	lr.Start(ctx)
	if err := lr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 0 {
		t.Fatalf("handed over before the group stopped (its VIP still here): %v", sent)
	}
	s.Released(ctx)
	if want := "hb0 syncid 4 192.0.2.10:40000->192.0.2.20:80 state 1 flags 0x3"; strings.Join(sent, "; ") != want {
		t.Errorf("handed over %q, want %q", sent, want)
	}
	if n := s.handedOver.Load(); n != 1 {
		t.Errorf("handed-over counter %d, want 1", n)
	}
	if !strings.Contains(logs.String(), "handed 1 connections over") {
		t.Errorf("log:\n%s", logs.String())
	}
	// A table that cannot be read is logged, and the release goes on.
	s.procConns = filepath.Join(t.TempDir(), "missing")
	lr.Start(ctx)
	if err := lr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	s.Released(ctx)
	if st, _ := s.State(ctx); st != "backup" {
		t.Errorf("after a failed handover: sync %s, want backup", st)
	}
	if !strings.Contains(logs.String(), "WARN: IPVS sync: handing the connections over") {
		t.Errorf("log:\n%s", logs.String())
	}
}
