package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/ipvs/connsync"
)

// syncKernel is the part of ipvs.Handle the sync controller uses; tests
// substitute a fake for it.
type syncKernel interface {
	StartDaemon(ctx context.Context, d ipvs.Daemon) error
	StopDaemon(ctx context.Context, state ipvs.DaemonState) error
	Daemons(ctx context.Context) ([]ipvs.Daemon, error)
	Table(ctx context.Context) (ipvs.Table, error)
}

// masterMaxLen is the master's sync message size: room for one IPv4
// connection. The kernel sends a message when the next connection does not
// fit in it, and a partly filled one only every 2 s (IPVS_SYNC_FLUSH_TIME);
// with room for one, each connection leaves with the next update (within
// the kernel's 20 ms send delay) instead of up to 2 s later, so a failover
// finds young connections on the backup. The price: one small UDP packet
// per connection update instead of one per 40.
const masterMaxLen = 8 + 36

// syncControl runs the IPVS connection sync daemon as master while this node
// holds at least one group with an lnoded resource, and as backup otherwise,
// so that the standby has the active's connections when it takes over.
type syncControl struct {
	k   syncKernel
	log *slog.Logger
	// procConns is the kernel's connection table (/proc/net/ip_vs_conn of
	// the daemon's namespace) and send sends sync messages
	// (connsync.Send); tests replace both.
	procConns string
	send      func(ctx context.Context, ifname string, group netip.Addr, port uint16, msgs [][]byte) error

	mu      sync.Mutex
	cfg     config.Sync
	holders int
	// finishT ends a release that Released did not (finishDelay).
	finishT     *time.Timer
	finishDelay time.Duration
	// handedOver counts the connections sent to the peer (metrics).
	handedOver atomic.Uint64
}

func newSyncControl(k syncKernel, cfg config.Sync, log *slog.Logger) *syncControl {
	return &syncControl{k: k, cfg: cfg, log: log, procConns: "/proc/net/ip_vs_conn", send: connsync.Send, finishDelay: time.Second}
}

// role is what the kernel should run now.
func (s *syncControl) role() ipvs.DaemonState {
	if s.holders > 0 {
		return ipvs.DaemonMaster
	}
	return ipvs.DaemonBackup
}

// Start runs the backup at daemon start. A master that already runs is left
// alone: this is a daemon restarted on the active node, and the engine is
// about to say whether we still hold the groups.
func (s *syncControl) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Enabled {
		return nil
	}
	ds, err := s.k.Daemons(ctx)
	if err != nil {
		return fmt.Errorf("IPVS sync daemon: %w", err)
	}
	for _, d := range ds {
		if d.State == ipvs.DaemonMaster {
			s.log.Info("IPVS sync daemon: master already running (daemon restart): left as it is", "interface", d.Interface, "syncid", d.SyncID)
			return nil
		}
	}
	return s.apply(ctx, ipvs.DaemonBackup)
}

// Hold counts one more held group that needs the master.
func (s *syncControl) Hold(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holders++
	if s.finishT != nil { // a release not finished: the master stays
		s.finishT.Stop()
		s.finishT = nil
	}
	if !s.cfg.Enabled {
		return nil
	}
	return s.apply(ctx, s.role())
}

// Unhold counts one group fewer. The last one does not stop the master at
// once: the group's VIP is still here (a group stops right to left) and
// connections still arrive. Once the group has stopped (Released, or
// finishDelay later at the latest) this node hands every connection over
// and only then stops the master, which discards what it has not sent.
func (s *syncControl) Unhold(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holders > 0 {
		s.holders--
	}
	if !s.cfg.Enabled || s.holders > 0 || s.finishT != nil {
		return nil
	}
	s.finishT = time.AfterFunc(s.finishDelay, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Released(ctx)
	})
	return nil
}

// Released finishes a release that left nothing held: the connections go
// to the peer's backup daemon, then the master stops. The daemon calls it
// when a group has stopped.
func (s *syncControl) Released(ctx context.Context) {
	s.mu.Lock()
	if s.finishT == nil {
		s.mu.Unlock()
		return
	}
	s.finishT.Stop()
	s.finishT = nil
	cfg, idle := s.cfg, s.holders == 0
	s.mu.Unlock()
	if !idle || !cfg.Enabled {
		return
	}
	s.handOverNow(ctx, cfg, "released")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holders > 0 || s.finishT != nil {
		return // taken again meanwhile
	}
	if err := s.apply(ctx, s.role()); err != nil {
		s.log.Error("ERROR: "+err.Error(), "err", err)
	}
}

// Settle makes the kernel run the role the holders call for, for when the
// engine has settled who holds what after a restart that left a master
// running.
func (s *syncControl) Settle(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Enabled {
		return nil
	}
	return s.apply(ctx, s.role())
}

// Reconfigure applies a changed sync section: the daemon is restarted in its
// current role with the new settings, or stopped when sync is disabled.
func (s *syncControl) Reconfigure(ctx context.Context, cfg config.Sync) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sameSync(cfg, s.cfg) {
		s.cfg = cfg
		return nil
	}
	old := s.cfg
	s.cfg = cfg
	var errs []error
	if old.Enabled {
		for _, st := range []ipvs.DaemonState{ipvs.DaemonMaster, ipvs.DaemonBackup} {
			if err := s.k.StopDaemon(ctx, st); err != nil && !errors.Is(err, ipvs.ErrNoDaemon) {
				errs = append(errs, err)
			}
		}
	}
	if cfg.Enabled {
		errs = append(errs, s.apply(ctx, s.role()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("IPVS sync daemon: %w", err)
	}
	return nil
}

// sameSync compares two sync sections by what they do, not where they
// were written.
func sameSync(a, b config.Sync) bool {
	a.Pos, b.Pos = config.Pos{}, config.Pos{}
	return a == b
}

// Stop stops both roles, for a daemon that stops for good.
func (s *syncControl) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finishT != nil {
		s.finishT.Stop()
		s.finishT = nil
	}
	if !s.cfg.Enabled {
		return nil
	}
	var errs []error
	for _, st := range []ipvs.DaemonState{ipvs.DaemonMaster, ipvs.DaemonBackup} {
		if err := s.k.StopDaemon(ctx, st); err != nil && !errors.Is(err, ipvs.ErrNoDaemon) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("IPVS sync daemon: %w", err)
	}
	return nil
}

// apply makes the kernel run what role calls for. The backup runs all the
// time, the master beside it while this node holds a group: a node that
// takes over keeps receiving what the peer sends while it lets go (the
// peer's master, and its handover of the connections the master has not
// sent yet). A role is started before another stops: there is never a
// moment without a sync daemon.
func (s *syncControl) apply(ctx context.Context, want ipvs.DaemonState) error {
	backup := ipvs.Daemon{State: ipvs.DaemonBackup, Interface: s.cfg.Interface, SyncID: uint8(s.cfg.SyncID)}
	changed := false
	if err := s.k.StartDaemon(ctx, backup); err == nil {
		changed = true
	} else if !errors.Is(err, ipvs.ErrDaemonRunning) {
		return fmt.Errorf("IPVS sync daemon: starting the backup on %s (syncid %d): %w", backup.Interface, backup.SyncID, err)
	}
	if want == ipvs.DaemonMaster {
		m := ipvs.Daemon{State: ipvs.DaemonMaster, Interface: s.cfg.Interface, SyncID: uint8(s.cfg.SyncID), MaxLen: masterMaxLen}
		if err := s.k.StartDaemon(ctx, m); err == nil {
			changed = true
		} else if !errors.Is(err, ipvs.ErrDaemonRunning) {
			return fmt.Errorf("IPVS sync daemon: starting the master on %s (syncid %d): %w", m.Interface, m.SyncID, err)
		}
	} else {
		if err := s.k.StopDaemon(ctx, ipvs.DaemonMaster); err == nil {
			changed = true
		} else if !errors.Is(err, ipvs.ErrNoDaemon) {
			return fmt.Errorf("IPVS sync daemon: stopping the master: %w", err)
		}
	}
	if changed {
		what := "backup"
		if want == ipvs.DaemonMaster {
			what = "master and backup"
		}
		s.log.Info(fmt.Sprintf("IPVS sync daemon: now %s on %s (syncid %d)", what, s.cfg.Interface, s.cfg.SyncID))
	}
	return nil
}

// HandOver sends this node's connections to the peer's backup daemon now,
// ahead of a graceful handover (a standby asked for here): the kernel's
// master would send the youngest only within a moment, and the peer
// announces the VIP before this node lets go. It does nothing unless this
// node runs the master.
func (s *syncControl) HandOver(ctx context.Context, why string) {
	s.mu.Lock()
	cfg, master := s.cfg, s.holders > 0
	s.mu.Unlock()
	if !cfg.Enabled || !master {
		return
	}
	s.handOverNow(ctx, cfg, why)
}

// handOverNow sends the connections. A failure is logged: the handover
// goes on, and the kernel's own sync has sent most connections.
func (s *syncControl) handOverNow(ctx context.Context, cfg config.Sync, why string) {
	start := time.Now()
	n, err := s.handOver(ctx, cfg)
	if err != nil {
		s.log.Warn("WARN: IPVS sync: handing the connections over to the peer ("+why+"): "+err.Error()+"; only those the kernel's sync daemon sent are there", "err", err)
		return
	}
	s.handedOver.Add(uint64(n))
	s.log.Info(fmt.Sprintf("IPVS sync: handed %d connections over to the peer's backup daemon (%s) in %v", n, why, time.Since(start).Round(time.Microsecond)))
}

func (s *syncControl) handOver(ctx context.Context, cfg config.Sync) (int, error) {
	f, err := os.Open(s.procConns)
	if err != nil {
		return 0, err
	}
	conns, err := connsync.ParseProc(f)
	f.Close()
	if err != nil {
		return 0, err
	}
	tbl, err := s.k.Table(ctx)
	if err != nil {
		return 0, err
	}
	send := connsync.Handover(conns, tbl)
	return len(send), s.send(ctx, cfg.Interface, netip.Addr{}, 0, connsync.Encode(uint8(cfg.SyncID), send, 0))
}

// State reports the role the kernel runs, for status.
func (s *syncControl) State(ctx context.Context) (string, config.Sync) {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	ds, err := s.k.Daemons(ctx)
	if err != nil {
		return "unknown", cfg
	}
	st := "none"
	for _, d := range ds {
		if d.State == ipvs.DaemonMaster {
			return "master", cfg
		}
		st = d.State.String()
	}
	return st, cfg
}

// lnodedResource is an "lnoded::FILE" resource. The lnoded module for FILE
// runs on both nodes all the time (the standby's IPVS table is kept warm), so
// holding the resource means only: the module runs here, and this node's
// sync daemon is the master.
type lnodedResource struct {
	word    string
	path    string
	running func(path string) error
	sync    *syncControl
	log     *slog.Logger

	mu   sync.Mutex
	held bool
}

func (r *lnodedResource) String() string { return r.word }
func (r *lnodedResource) Kind() string   { return "lnoded" }

func (r *lnodedResource) Start(ctx context.Context) error {
	if err := r.running(r.path); err != nil {
		return fmt.Errorf("lnoded::%s: %w", r.path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		return nil
	}
	if err := r.sync.Hold(ctx); err != nil {
		// The VIP works without sync; losing connections on the next
		// takeover is better than refusing the group.
		r.log.Error("ERROR: lnoded::"+r.path+": "+err.Error()+"; connections will not survive the next takeover", "err", err)
	}
	r.held = true
	return nil
}

func (r *lnodedResource) Stop(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return nil
	}
	r.held = false
	return r.sync.Unhold(ctx)
}

func (r *lnodedResource) Running(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held, nil
}
