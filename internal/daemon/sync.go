package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/directord/directord/config"
	"github.com/directord/directord/ipvs"
)

// syncKernel is the part of ipvs.Handle the sync controller uses; tests
// substitute a fake for it.
type syncKernel interface {
	StartDaemon(ctx context.Context, d ipvs.Daemon) error
	StopDaemon(ctx context.Context, state ipvs.DaemonState) error
	Daemons(ctx context.Context) ([]ipvs.Daemon, error)
}

// syncControl runs the IPVS connection sync daemon as master while this node
// holds at least one group with an lnoded resource, and as backup otherwise,
// so that the standby has the active's connections when it takes over.
type syncControl struct {
	k   syncKernel
	log *slog.Logger

	mu      sync.Mutex
	cfg     config.Sync
	holders int
}

func newSyncControl(k syncKernel, cfg config.Sync, log *slog.Logger) *syncControl {
	return &syncControl{k: k, cfg: cfg, log: log}
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
	if !s.cfg.Enabled {
		return nil
	}
	return s.apply(ctx, s.role())
}

// Unhold counts one group fewer.
func (s *syncControl) Unhold(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holders > 0 {
		s.holders--
	}
	if !s.cfg.Enabled {
		return nil
	}
	return s.apply(ctx, s.role())
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

// apply starts the wanted role before stopping the other, so that there is no
// moment without a sync daemon.
func (s *syncControl) apply(ctx context.Context, want ipvs.DaemonState) error {
	other := ipvs.DaemonBackup
	if want == ipvs.DaemonBackup {
		other = ipvs.DaemonMaster
	}
	d := ipvs.Daemon{State: want, Interface: s.cfg.Interface, SyncID: uint8(s.cfg.SyncID)}
	started := true
	if err := s.k.StartDaemon(ctx, d); err != nil {
		if !errors.Is(err, ipvs.ErrDaemonRunning) {
			return fmt.Errorf("IPVS sync daemon: starting the %s on %s (syncid %d): %w", want, d.Interface, d.SyncID, err)
		}
		started = false
	}
	stopped := true
	if err := s.k.StopDaemon(ctx, other); err != nil {
		if !errors.Is(err, ipvs.ErrNoDaemon) {
			return fmt.Errorf("IPVS sync daemon: stopping the %s: %w", other, err)
		}
		stopped = false
	}
	if started || stopped {
		s.log.Info(fmt.Sprintf("IPVS sync daemon: now %s on %s (syncid %d)", want, d.Interface, d.SyncID))
	}
	return nil
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
