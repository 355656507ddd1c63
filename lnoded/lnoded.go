package lnoded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/directord/directord/checks"
	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// Module runs one lnoded.cf: it checks the real servers and keeps the
// kernel's IPVS services of that file equal to what Desired asks for. Other
// services in the kernel are never touched.
type Module struct {
	h     *ipvs.Handle
	log   *slog.Logger
	sched *checks.Scheduler
	opts  options

	poke chan struct{}

	mu         sync.Mutex
	plan       *plan
	owned      map[ipvs.ServiceKey]bool // services to reconcile: the plan's, plus those of replaced plans not yet removed
	readd      bool                     // the next reconcile re-adds quiescent real servers (start, reload)
	maint      map[RealKey]time.Time    // real servers in maintenance, since when
	failed     map[RealKey]failure      // last failed check of each real server
	detach     chan struct{}            // closed by Detach
	detachOnce sync.Once
	fbState    map[ipvs.ServiceKey]string
	names      map[string][]string // reverse DNS names of real servers, for maintenancedir
	running    bool
	notes      *notifier // e-mail alerts and monitorfile (alert.go, monitor.go)
}

// Option tunes a Module.
type Option func(*options)

type options struct {
	onApply func([]ipvs.Op, error)
	shell   string
}

// WithOnApply has fn called after every reconcile that issued operations,
// with the operations in the order issued and the error of applying them,
// for metrics and tests.
func WithOnApply(fn func(ops []ipvs.Op, err error)) Option {
	return func(o *options) { o.onApply = fn }
}

// WithShell sets the shell that runs fallbackcommand and callback (default
// /bin/sh), which ldirectord runs through Perl's system().
func WithShell(path string) Option {
	return func(o *options) { o.shell = path }
}

// New returns a module for cfg that programs IPVS through h and logs to
// logger (nil: discard). It validates cfg and builds every checker first:
// a configuration it cannot run is an error. Nothing happens until Run.
func New(cfg *config.Config, h *ipvs.Handle, logger *slog.Logger, opts ...Option) (*Module, error) {
	if h == nil {
		return nil, errors.New("lnoded: no IPVS handle")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	m := &Module{
		h:       h,
		log:     logger,
		poke:    make(chan struct{}, 1),
		plan:    p,
		owned:   maps.Clone(p.owned),
		readd:   true,
		maint:   map[RealKey]time.Time{},
		failed:  map[RealKey]failure{},
		detach:  make(chan struct{}),
		fbState: map[ipvs.ServiceKey]string{},
		names:   map[string][]string{},
		opts:    options{shell: "/bin/sh"},
		notes:   newNotifier(logger),
	}
	for _, o := range opts {
		o(&m.opts)
	}
	m.sched = checks.NewScheduler(checks.SchedulerConfig{OnTransition: m.onTransition, OnResult: m.onResult})
	if err := m.sched.Update(p.jobs); err != nil {
		return nil, fmt.Errorf("lnoded: %w", err)
	}
	m.warn(p)
	return m, nil
}

func (m *Module) warn(p *plan) {
	for _, w := range p.cfg.Warnings {
		m.log.Warn("Warning: " + w.String())
	}
	for _, u := range p.unsupported {
		m.log.Warn("Real server kept down: " + u)
	}
}

// Reload replaces the configuration. Unchanged real servers keep their check
// state, and the next reconcile changes only what differs: a service or
// real server that did not change gets no operation at all. Services that
// cfg no longer has are removed. An invalid cfg is an error and changes
// nothing.
func (m *Module) Reload(cfg *config.Config) error {
	p, err := newPlan(cfg)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if err := m.sched.Update(p.jobs); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("lnoded: %w", err)
	}
	m.plan = p
	for k := range p.owned {
		m.owned[k] = true
	}
	m.readd = true
	m.notes.setPhase(config.AlertReloading)
	m.names = map[string][]string{}
	for k := range m.maint {
		if _, ok := p.byKey(k); !ok {
			delete(m.maint, k)
		}
	}
	m.mu.Unlock()
	m.warn(p)
	m.wake()
	return nil
}

func (p *plan) byKey(k RealKey) (*realInfo, bool) {
	for i := range p.reals {
		if p.reals[i].key == k {
			return &p.reals[i], true
		}
	}
	return nil, false
}

// Config returns the configuration the module runs.
func (m *Module) Config() *config.Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.plan.cfg
}

func (m *Module) wake() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// onTransition is called by the scheduler for every change of a check's
// verdict.
func (m *Module) onTransition(t checks.Transition) {
	m.mu.Lock()
	var what string
	if i, ok := m.plan.byJob[t.ID]; ok {
		r := m.plan.reals[i]
		what = destString(r.key.Dest) + " (" + r.virtual.Protocol.String() + ":" + serviceString(r.key.Service) + ")"
	}
	m.mu.Unlock()
	if what == "" {
		return
	}
	m.log.Debug("check transition", "real", what, "from", t.From.String(), "to", t.To.String(), "result", t.Result.String())
	switch t.To {
	case checks.Up:
		m.log.Info("Activated service "+what, "check", t.Result.Message)
	case checks.Down:
		m.log.Info("Deactivated service "+what+": "+reason(t.Result), "check", t.Result.Message)
	}
	m.wake()
}

func reason(r checks.Result) string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.Message != "":
		return r.Message
	}
	return "check failed"
}

// Detach makes Run return without applying cleanstop: the checks stop and
// the kernel's table is left exactly as it is, for a successor (a restarted
// daemon) that adopts it. It may be called before or during Run, and more
// than once; a module that has detached does not run again.
func (m *Module) Detach() {
	m.detachOnce.Do(func() { close(m.detach) })
}

// Run checks the real servers and programs IPVS until ctx ends. It then
// stops the checks and applies cleanstop: with cleanstop=yes (the default)
// the virtual services of the file are removed from the kernel, with
// cleanstop=no they are left as they are. After Detach it returns nil
// leaving the table as it is instead. A Module runs once at a time.
// Run returns nil after a clean stop.
func (m *Module) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("lnoded: already running")
	}
	m.running = true
	m.mu.Unlock()
	select {
	case <-m.detach:
		m.mu.Lock()
		m.running = false
		m.mu.Unlock()
		return nil
	default:
	}
	defer func() {
		m.mu.Lock()
		m.running = false
		m.mu.Unlock()
	}()
	defer m.notes.start()()

	sctx, stopChecks := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.sched.Run(sctx)
	}()
	cmds := newCommander(m.opts.shell, m.log)
	defer cmds.close()
	defer func() { stopChecks(); wg.Wait() }()

	m.log.Info("Starting lnoded", "config", m.Config().File, "virtual_services", len(m.Config().Virtuals))
	m.scanMaintenance(ctx)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// A failed update is retried, backing off from 1 s to 30 s, so that a
	// kernel that refuses (a scheduler module missing) is not hammered.
	backoff := time.Duration(0)
	reconcile := func() {
		err := m.reconcile(ctx, cmds)
		switch {
		case err == nil:
			backoff = 0
		case ctx.Err() == nil:
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			m.log.Error("IPVS update failed, retrying in "+backoff.String(), "err", err)
			retry.Reset(backoff)
		}
	}
	reconcile()
	tick := time.NewTicker(m.maintenanceInterval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopChecks()
			wg.Wait()
			return m.stop()
		case <-m.detach:
			stopChecks()
			wg.Wait()
			m.log.Info("Detached: IPVS table left as it is")
			return nil
		case <-m.poke:
			tick.Reset(m.maintenanceInterval())
			reconcile()
		case <-retry.C:
			reconcile()
		case <-tick.C:
			if m.scanMaintenance(ctx) {
				reconcile()
			}
		}
	}
}

// maintenanceInterval is how often maintenancedir is looked at: as often
// as the most frequent check, since ldirectord looks at it before each
// check.
func (m *Module) maintenanceInterval() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.plan.cfg.Global.CheckInterval
	for _, j := range m.plan.jobs {
		if j.Interval > 0 && (d <= 0 || j.Interval < d) {
			d = j.Interval
		}
	}
	if d <= 0 {
		d = checks.DefaultInterval
	}
	return d
}

// health returns each real server's health; m.mu is held.
func (m *Module) healthLocked() map[RealKey]Health {
	out := make(map[RealKey]Health, len(m.plan.reals))
	for _, st := range m.sched.Status() {
		i, ok := m.plan.byJob[st.ID]
		if !ok {
			continue
		}
		switch st.State {
		case checks.Up:
			out[m.plan.reals[i].key] = Up
		case checks.Down:
			out[m.plan.reals[i].key] = Down
		}
	}
	for k := range m.maint {
		out[k] = Maintenance
	}
	return out
}

// reconcile makes the kernel's table match the desired one, and runs the
// fallback commands whose state changed.
func (m *Module) reconcile(ctx context.Context, cmds *commander) error {
	m.mu.Lock()
	p := m.plan
	owned := maps.Clone(m.owned)
	readd := m.readd || p.cfg.Global.ReaddQuiescent
	health := m.healthLocked()
	m.mu.Unlock()

	actual, err := m.h.Table(ctx)
	if err != nil {
		return fmt.Errorf("read the IPVS table: %w", err)
	}
	want, upBy, errs := desired(p.cfg, Input{Health: health, Actual: actual, ReAdd: readd})
	for _, err := range errs {
		m.log.Error(err.Error())
	}
	ops, err := ipvs.Plan(want, actual, func(k ipvs.ServiceKey) bool { return owned[k] })
	if err != nil {
		return err
	}
	var applyErr error
	if len(ops) == 0 {
		m.log.Debug("IPVS table up to date", "services", len(want))
	} else {
		applyErr = m.h.Apply(ctx, ops)
		m.logOps(p, ops, applyErr)
		if m.opts.onApply != nil {
			m.opts.onApply(ops, applyErr)
		}
	}
	if applyErr == nil {
		m.mu.Lock()
		if m.plan == p {
			m.owned = maps.Clone(p.owned)
			m.readd = false
		}
		m.mu.Unlock()
	}
	m.notes.settled()
	m.fallbackCommands(p, upBy, cmds)
	return applyErr
}

// fallbackCommands runs each virtual service's fallbackcommand with "start"
// when none of its real servers is up and "stop" when one is, once per
// change, as ldirectord's do_fallback_command.
func (m *Module) fallbackCommands(p *plan, upBy map[ipvs.ServiceKey]bool, cmds *commander) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range p.cfg.Virtuals {
		v := &p.cfg.Virtuals[i]
		svc, err := ServiceOf(v)
		if err != nil {
			continue
		}
		sk := svc.Key()
		status := "start"
		if upBy[sk] {
			status = "stop"
		}
		if m.fbState[sk] == status {
			continue
		}
		m.fbState[sk] = status
		if v.FallbackCommand != "" {
			cmds.run(v.FallbackCommand + " " + status + " " + serviceString(sk) + " " + v.Protocol.String())
		}
	}
}

// logOps logs each operation in ldirectord's words.
func (m *Module) logOps(p *plan, ops []ipvs.Op, err error) {
	for _, op := range ops {
		sk := op.Service.Key()
		vs := serviceString(sk)
		tag := "real server"
		known := false
		if v := p.virtualOf(sk); v != nil {
			if fb, ok := fallbackDest(v); ok && fb.Key() == op.Dest.Key() {
				tag = "fallback server"
				known = true
			}
			for j := range v.Reals {
				if DestOf(v, &v.Reals[j]).Key() == op.Dest.Key() {
					tag, known = "real server", true
				}
			}
		}
		d := destString(op.Dest.Key())
		var msg string
		switch op.Kind {
		case ipvs.AddService:
			msg = "Added virtual server: " + vs
		case ipvs.EditService:
			msg = "Changed virtual server: " + vs
		case ipvs.DeleteService:
			msg = "Purged virtual server: " + vs
		case ipvs.AddDest:
			msg = fmt.Sprintf("Added %s: %s (%s) (Weight set to %d)", tag, d, vs, op.Dest.Weight)
		case ipvs.EditDest:
			if op.Dest.Weight == 0 {
				msg = fmt.Sprintf("Quiescent %s: %s (%s) (Weight set to 0)", tag, d, vs)
			} else {
				msg = fmt.Sprintf("Restored %s: %s (%s) (Weight set to %d)", tag, d, vs, op.Dest.Weight)
			}
		case ipvs.DeleteDest:
			if known {
				msg = fmt.Sprintf("Deleted %s: %s (%s)", tag, d, vs)
			} else {
				msg = fmt.Sprintf("Purged real server: %s (%s)", d, vs)
			}
		}
		m.log.Info(msg, "ipvsadm", op.String())
		m.notes.op(p, op, msg, tag == "real server" && known)
	}
	if err != nil {
		m.log.Error("IPVS operations failed", "err", err)
	}
}

func (p *plan) virtualOf(k ipvs.ServiceKey) *config.Virtual {
	for i := range p.cfg.Virtuals {
		v := &p.cfg.Virtuals[i]
		if s, err := ServiceOf(v); err == nil && s.Key() == k {
			return v
		}
	}
	return nil
}

// stop applies cleanstop, with a context of its own: the one Run was given
// has ended.
func (m *Module) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.notes.setPhase(config.AlertStopping)
	m.mu.Lock()
	p := m.plan
	m.mu.Unlock()
	var ops []ipvs.Op
	for i := range p.cfg.Virtuals {
		v := &p.cfg.Virtuals[i]
		if !v.CleanStop {
			continue
		}
		svc, err := ServiceOf(v)
		if err != nil {
			continue
		}
		ops = append(ops, ipvs.Op{Kind: ipvs.DeleteService, Service: svc})
	}
	var err error
	if len(ops) > 0 {
		actual, terr := m.h.Table(ctx)
		if terr != nil {
			return fmt.Errorf("lnoded: cleanstop: %w", terr)
		}
		have := map[ipvs.ServiceKey]bool{}
		for _, vs := range actual {
			have[vs.Key()] = true
		}
		ops = slices.DeleteFunc(ops, func(o ipvs.Op) bool { return !have[o.Service.Key()] })
		if len(ops) > 0 {
			err = m.h.Apply(ctx, ops)
			for _, o := range ops {
				m.log.Info("Purged virtual server (stop): "+serviceString(o.Service.Key()), "ipvsadm", o.String())
			}
			if m.opts.onApply != nil {
				m.opts.onApply(ops, err)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("lnoded: cleanstop: %w", err)
	}
	return nil
}
