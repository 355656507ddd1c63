// Package daemon is `directord run`: it composes the heartbeat engine
// (heartbeat/cluster), the resource groups of haresources (VIPs through vip,
// lnoded modules, resource scripts), the IPVS sync daemon, the watchdogs, the
// control socket and the metrics into one process.
//
// Data flows one way: the configuration model (config) is built once per
// load; the engine decides which groups this node holds and calls the
// Runner, which starts a group's resources left to right and stops them right
// to left; the lnoded modules keep the IPVS table warm on both nodes whatever
// the engine decides; the control socket and the metrics only read.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/heartbeat/cluster"
	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/internal/ctxsleep"
	"github.com/directord/directord/internal/watchdog"
	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded"
	"github.com/directord/directord/vip"
	"github.com/directord/directord/vip/handoff"
	"github.com/directord/directord/vip/rstguard"
)

// Options say where the daemon finds its configuration and puts its state.
type Options struct {
	// HADir is the Heartbeat configuration directory (ha.cf, haresources,
	// authkeys, lnoded.cf); ConfigFile, when set, is a YAML configuration
	// used instead.
	HADir      string
	ConfigFile string
	// NodeName overrides this node's name (default: the host name), so that
	// several nodes can run on one machine in network namespaces.
	NodeName string
	// StateDir, Socket and MetricsListen override the configuration's
	// settings when not empty.
	StateDir      string
	Socket        string
	MetricsListen string
	// InitDir is where resource scripts not in HADir/resource.d are looked
	// for (default /etc/init.d).
	InitDir string
	// ScriptTimeout bounds each run of a resource script (default
	// DefaultScriptTimeout).
	ScriptTimeout time.Duration
	// Version is reported in status.
	Version string
	// Logger receives the log (default slog.Default()).
	Logger *slog.Logger
	// Notify sends systemd notifications (the zero value: sd_notify).
	Notify watchdog.Notifier
}

// Daemon is one running director.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	// logClosers are ha.cf's logfile, debugfile and syslog connection.
	logClosers []io.Closer

	ipvs   *ipvs.Handle
	vips   *vip.Manager
	sync   *syncControl
	runner *Runner
	srv    *control.Server
	wd     *watchdog.Device
	sdWD   time.Duration
	met    *metrics

	// mu guards what a reload replaces.
	mu         sync.Mutex
	cfg        *config.Config
	mods       map[string]*module // by lnoded.cf path
	engine     *cluster.Engine
	engineErr  error
	lastReload *control.ReloadResult

	// pulse is the main loop's last tick (UnixNano); the watchdogs are fed
	// only while it is recent.
	pulse       atomic.Int64
	transitions atomic.Uint64
	// resetsHeldBack counts what the VIPs' reset guards dropped (metrics).
	resetsHeldBack atomic.Uint64
	// handoffForwarded counts the segments the VIPs' handoffs passed to
	// the peer (metrics).
	handoffForwarded atomic.Uint64
	// handoffs counts the handoffs (forwarders) this node set up as the
	// VIP's new holder (metrics).
	handoffs atomic.Uint64
	// handoffReceives counts the handoffs in which this node, letting the
	// VIP go, kept taking TCP for it (metrics).
	handoffReceives atomic.Uint64

	// reloadMu serialises reloads (SIGHUP and the socket).
	reloadMu sync.Mutex
	detach   chan struct{}
	detached atomic.Bool
	// reexec: the detach is for a restart in place (SIGUSR1), which
	// systemd is told is a reload, not a stop.
	reexec atomic.Bool
	modWG  sync.WaitGroup
}

// resumeFile, in the state directory, carries the heartbeat engine's state
// from a detached daemon to the next one (cluster.Resume, JSON).
const resumeFile = "resume.json"

// module is one lnoded.cf's module and the goroutine that runs it.
type module struct {
	m      *lnoded.Module
	path   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's error, once done is closed
}

// New loads the configuration and prepares everything without changing the
// system: nothing is started and no resource is touched until Run. The
// control socket is bound here, so that a second daemon on the same socket
// fails before it can do harm.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.InitDir == "" {
		opts.InitDir = "/etc/init.d"
	}
	d := &Daemon{opts: opts, log: opts.Logger, started: time.Now(), mods: map[string]*module{}, detach: make(chan struct{})}
	cfg, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	d.cfg = cfg
	d.log, d.logClosers, err = logTo(opts.Logger, cfg.Cluster.Logging)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.log.Warn("WARN: " + w.String())
	}

	ok := false
	defer func() {
		if !ok {
			d.closeAll()
		}
	}()
	var k syncKernel
	d.ipvs, k, err = openIPVS(cfg, ipvs.Open, d.log)
	if err != nil {
		return nil, err
	}
	d.vips, err = vip.New()
	if err != nil {
		return nil, fmt.Errorf("VIP manager: %w", err)
	}
	d.sync = newSyncControl(k, cfg.Directord.Sync, d.log)
	groups, err := d.buildGroups(cfg)
	if err != nil {
		return nil, err
	}
	if needsResetGuard(cfg) {
		// A daemon that died (or restarted in place) within a reset guard
		// left its filter behind: nothing else would remove it.
		if err := rstguard.Sweep(); err != nil {
			d.log.Warn("WARN: removing stale reset guards: "+err.Error(), "err", err)
		}
		if err := handoff.Sweep(); err != nil {
			d.log.Warn("WARN: removing a stale handoff: "+err.Error(), "err", err)
		}
	}
	d.runner = NewRunner(groups)
	d.runner.onChange = d.onGroupChange
	d.met = newMetrics(d)

	sock := d.socketPath()
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	d.srv, err = control.Listen(sock, d, d.log)
	if err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// openIPVS opens the kernel's IPVS. A kernel without IPVS is refused only
// when the configuration needs it: a pair that holds only VIPs and scripts,
// as many Heartbeat clusters do, runs on any kernel. Then the handle is nil
// and the sync controller gets a kernel that has none.
func openIPVS(cfg *config.Config, open func() (*ipvs.Handle, error), log *slog.Logger) (*ipvs.Handle, syncKernel, error) {
	h, err := open()
	if err == nil {
		return h, h, nil
	}
	why := ipvsNeeded(cfg)
	if !errors.Is(err, ipvs.ErrUnavailable) || why != "" {
		if why != "" {
			err = fmt.Errorf("%w (%s)", err, why)
		}
		return nil, nil, fmt.Errorf("IPVS: %w", err)
	}
	log.Info("IPVS is not available in this kernel; running without it (no lnoded resource, sync daemon off)")
	return nil, noIPVS{}, nil
}

// ipvsNeeded says why cfg needs the kernel's IPVS, or "" when it does not.
func ipvsNeeded(cfg *config.Config) string {
	switch {
	case len(lnodedFiles(cfg)) > 0:
		return "an lnoded resource needs it"
	case cfg.Directord.Sync.Enabled:
		return "the IPVS sync daemon is enabled"
	}
	return ""
}

// noIPVS is the sync controller's kernel when the kernel has no IPVS; with
// sync off it is never called, and says why if it is.
type noIPVS struct{}

func (noIPVS) StartDaemon(context.Context, ipvs.Daemon) error     { return ipvs.ErrUnavailable }
func (noIPVS) StopDaemon(context.Context, ipvs.DaemonState) error { return ipvs.ErrUnavailable }
func (noIPVS) Daemons(context.Context) ([]ipvs.Daemon, error)     { return nil, ipvs.ErrUnavailable }
func (noIPVS) Table(context.Context) (ipvs.Table, error)          { return nil, ipvs.ErrUnavailable }

func (d *Daemon) load(ctx context.Context) (*config.Config, error) {
	opts := &config.Options{NodeName: d.opts.NodeName}
	if d.opts.ConfigFile != "" {
		return config.LoadYAML(ctx, d.opts.ConfigFile, opts)
	}
	return config.LoadHADir(ctx, d.opts.HADir, opts)
}

func (d *Daemon) socketPath() string {
	if d.opts.Socket != "" {
		return d.opts.Socket
	}
	if d.cfg.Directord.ControlSocket != "" {
		return d.cfg.Directord.ControlSocket
	}
	return config.DefaultControlSocket
}

func (d *Daemon) stateDir() string {
	if d.opts.StateDir != "" {
		return d.opts.StateDir
	}
	if d.cfg.Directord.StateDir != "" {
		return d.cfg.Directord.StateDir
	}
	return config.DefaultStateDir
}

func (d *Daemon) metricsListen() string {
	if d.opts.MetricsListen != "" {
		return d.opts.MetricsListen
	}
	return d.cfg.Directord.MetricsListen
}

// buildGroups makes the resource groups of cfg.
func (d *Daemon) buildGroups(cfg *config.Config) ([]*Group, error) {
	dirs := []string{filepath.Join(d.opts.HADir, "resource.d"), d.opts.InitDir}
	if d.opts.HADir == "" {
		dirs = dirs[1:]
	}
	var out []*Group
	var errs []error
	for _, g := range cfg.Groups {
		var res []Resource
		// A group whose connections the sync daemon carries gets the
		// reset guard on its VIPs (see vipResource.holdResets).
		var guard time.Duration
		if groupNeedsResetGuard(cfg, g) {
			guard = resetGuard
		}
		for _, r := range g.Resources {
			switch r.Kind {
			case config.KindVIP:
				v := newVIPResource(d.vips, r.VIP, cfg.Directord.GARP, d.log)
				v.rstGuard, v.heldBack, v.forwarded = guard, &d.resetsHeldBack, &d.handoffForwarded
				if d.ipvs != nil {
					v.tcpPorts, v.handoffs, v.receives = d.tcpPorts, &d.handoffs, &d.handoffReceives
				}
				res = append(res, v)
			case config.KindLnoded:
				res = append(res, &lnodedResource{word: r.String(), path: r.Lnoded.Path, running: d.moduleRunning, sync: d.sync, log: d.log})
			case config.KindScript:
				s, err := newScriptResource(r.Script, dirs, d.opts.ScriptTimeout, d.log)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", r.Pos, err))
					continue
				}
				res = append(res, s)
			default:
				errs = append(errs, fmt.Errorf("%s: resource %s: unknown kind", r.Pos, r))
			}
		}
		out = append(out, NewGroup(g.Name(), g.Owner, res, d.log))
	}
	return out, errors.Join(errs...)
}

// resetGuard is how long a node that takes a VIP over drops its own resets
// from it: several of a client's retransmission timeouts (200 ms and up),
// far more than the peer needs to hand its connections over.
const resetGuard = 2 * time.Second

// groupNeedsResetGuard: the sync daemon carries g's connections (it has an
// lnoded resource).
func groupNeedsResetGuard(cfg *config.Config, g config.Group) bool {
	if !cfg.Directord.Sync.Enabled {
		return false
	}
	for _, r := range g.Resources {
		if r.Kind == config.KindLnoded {
			return true
		}
	}
	return false
}

func needsResetGuard(cfg *config.Config) bool {
	for _, g := range cfg.Groups {
		if groupNeedsResetGuard(cfg, g) {
			return true
		}
	}
	return false
}

// moduleRunning reports whether the lnoded module of path runs.
func (d *Daemon) moduleRunning(path string) error {
	d.mu.Lock()
	mod, ok := d.mods[path]
	d.mu.Unlock()
	if !ok {
		return errors.New("no lnoded module runs for this file")
	}
	select {
	case <-mod.done:
		return fmt.Errorf("its lnoded module stopped: %v", mod.err)
	default:
		return nil
	}
}

// newModule builds the lnoded module for one lnoded.cf without starting it.
func (d *Daemon) newModule(l *config.Lnoded) (*module, error) {
	m, err := lnoded.New(l.Config, d.ipvs, d.log.With("lnoded", l.Path), lnoded.WithOnApply(d.met.onApply))
	if err != nil {
		return nil, fmt.Errorf("lnoded %s: %w", l.Path, err)
	}
	return &module{m: m, path: l.Path, done: make(chan struct{})}, nil
}

// runModule starts mod's goroutine; d.mu is held.
func (d *Daemon) runModule(mod *module) {
	ctx, cancel := context.WithCancel(context.Background())
	mod.cancel = cancel
	d.modWG.Add(1)
	go func() {
		defer d.modWG.Done()
		defer close(mod.done)
		mod.err = mod.m.Run(ctx)
		if mod.err != nil && ctx.Err() == nil {
			d.log.Error("ERROR: lnoded "+mod.path+" stopped: "+mod.err.Error(), "err", mod.err)
		}
	}()
	d.mods[mod.path] = mod
}

func lnodedFiles(c *config.Config) []*config.Lnoded {
	seen := map[string]bool{}
	var out []*config.Lnoded
	for _, g := range c.Groups {
		for _, r := range g.Resources {
			if r.Kind == config.KindLnoded && !seen[r.Lnoded.Path] {
				seen[r.Lnoded.Path] = true
				out = append(out, r.Lnoded)
			}
		}
	}
	return out
}

// Detach makes Run return without releasing anything: VIPs, the IPVS table
// (the lnoded modules end without cleanstop) and the sync daemon stay as they
// are and the peer is told nothing. The heartbeat engine's state (generation,
// next sequence number, groups held) is written to the state directory, so
// that a new daemon started within the deadtime resumes it: the peer, a real
// Heartbeat too, sees only a gap in heartbeats, and nothing fails over. The
// watchdog is disarmed with the magic close.
func (d *Daemon) Detach() {
	if d.detached.CompareAndSwap(false, true) {
		close(d.detach)
	}
}

// CheckConfig loads the configuration as a start would, changing nothing:
// a restart in place is refused while the new daemon could not start (it
// would leave the VIPs held with no heartbeat until the peer took them too).
func (d *Daemon) CheckConfig(ctx context.Context) error {
	_, err := d.load(ctx)
	return err
}

// DetachForReexec is Detach for a restart in place (the same pid execs the
// binary again): systemd is told the service is reloading, not stopping.
func (d *Daemon) DetachForReexec() {
	d.reexec.Store(true)
	d.Detach()
}

// takeResume returns the engine state a detached predecessor left, if it is
// younger than the deadtime (older, the peer has declared this node dead or
// is about to, and a normal start is right). The file is used once: it is
// removed before it is read, so that a later start never resumes it.
func (d *Daemon) takeResume() *cluster.Resume {
	p := filepath.Join(d.stateDir(), resumeFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		d.log.Error("ERROR: removing "+p+": "+rerr.Error(), "err", rerr)
	}
	if err != nil {
		d.log.Warn("cannot read the previous daemon's heartbeat state; starting afresh (the peer sees a restart)", "err", err)
		return nil
	}
	var r cluster.Resume
	if err := json.Unmarshal(b, &r); err != nil {
		d.log.Warn("bad heartbeat state file "+p+"; starting afresh (the peer sees a restart)", "err", err)
		return nil
	}
	age := time.Since(r.At)
	if age < 0 || age >= d.cfg.Cluster.DeadTime {
		d.log.Warn(fmt.Sprintf("the previous daemon detached %v ago, not within the deadtime %v: starting afresh (the peer sees a restart)", age.Round(time.Millisecond), d.cfg.Cluster.DeadTime))
		return nil
	}
	d.log.Info(fmt.Sprintf("Resuming the previous daemon's heartbeat (detached %v ago): generation %d, groups held %v", age.Round(time.Millisecond), r.Generation, r.Held))
	return &r
}

// saveResume writes r for the next daemon: atomically (a reader sees all
// of it or nothing) and readable by root only.
func (d *Daemon) saveResume(r cluster.Resume) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("heartbeat state: %w", err)
	}
	dir := d.stateDir()
	f, err := os.CreateTemp(dir, "."+resumeFile+".*")
	if err != nil {
		return fmt.Errorf("heartbeat state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, resumeFile))
	}
	if err != nil {
		return fmt.Errorf("heartbeat state: %w", err)
	}
	return nil
}

// Run runs the daemon until ctx ends, then stops gracefully: the engine
// releases the groups and tells the peer, which takes them over at once.
// After Detach it returns leaving everything in place instead.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info(fmt.Sprintf("Starting directord %s on node %s (pid %d)", d.opts.Version, d.cfg.Cluster.ThisNode, os.Getpid()))
	d.pulse.Store(time.Now().UnixNano())

	if wdPath := d.cfg.Cluster.Watchdog; wdPath != "" {
		wd, err := watchdog.OpenDevice(wdPath, d.cfg.Cluster.DeadTime)
		if err != nil {
			return err
		}
		d.wd = wd
		d.log.Info("Using watchdog device: " + wdPath + fmt.Sprintf(" (timeout %v)", wd.Timeout()))
	}
	d.sdWD = watchdog.SystemdInterval()

	bg, stopBG := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	defer func() { stopBG(); bgWG.Wait() }()
	goBG := func(f func(context.Context)) {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); f(bg) }()
	}

	// Everything that can refuse the configuration runs before anything
	// is started: a daemon restarted on the active node must not purge the
	// IPVS table (lnoded's cleanstop) because a later step failed.
	cc, err := clusterConfig(d.cfg, d.stateDir(), d.log, d.onEvent)
	if err != nil {
		d.closeWatchdog()
		return err
	}
	cc.Ready = d.groupReady
	cc.LocalAddrs = d.localAddrs(d.cfg)
	cc.Resume = d.takeResume()
	eng, err := cluster.New(cc, d.runner)
	if err != nil {
		d.closeWatchdog()
		return fmt.Errorf("heartbeat: %w", err)
	}
	var mods []*module
	for _, l := range lnodedFiles(d.cfg) {
		mod, err := d.newModule(l)
		if err != nil {
			d.closeWatchdog()
			return err
		}
		mods = append(mods, mod)
	}

	if err := d.sync.Start(ctx); err != nil {
		d.log.Error("ERROR: "+err.Error()+"; connections will not survive a takeover", "err", err)
	}
	d.mu.Lock()
	for _, mod := range mods {
		d.runModule(mod)
	}
	d.mu.Unlock()
	for _, g := range d.runner.Groups() {
		if on := g.Adoptable(ctx); len(on) > 0 {
			d.log.Info("Resource group "+g.Name()+": already running here: "+strings.Join(on, " ")+" (adopted if this node keeps the group)", "group", g.Name())
		}
	}

	engCtx, crash := context.WithCancel(context.Background())
	defer crash()
	engDone := make(chan error, 1)
	d.mu.Lock()
	d.engine = eng
	d.mu.Unlock()
	go func() { engDone <- eng.Run(engCtx) }()

	goBG(func(ctx context.Context) {
		if err := d.srv.Serve(ctx); err != nil {
			d.log.Error("control socket: "+err.Error(), "err", err)
		}
	})
	if addr := d.metricsListen(); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			d.log.Error("ERROR: metrics: "+err.Error()+"; running without metrics", "err", err)
		} else {
			srv := &http.Server{Handler: d.met.handler(), ReadHeaderTimeout: 5 * time.Second}
			d.log.Info("Serving metrics on http://" + ln.Addr().String() + "/metrics")
			goBG(func(ctx context.Context) {
				go func() { <-ctx.Done(); srv.Close() }()
				srv.Serve(ln)
			})
		}
	}
	keeper := &watchdog.Keeper{Device: d.wd, Systemd: d.sdWD, Notify: d.opts.Notify, Healthy: d.healthy, Log: d.log}
	goBG(keeper.Run)

	d.opts.Notify.Ready()
	d.log.Info("directord started: control socket " + d.srv.Path())

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	settled := false
	for {
		select {
		case err := <-engDone:
			// The engine died: the peer takes over after deadtime, so
			// nothing may stay held here. Exit with an error, for systemd
			// (Restart=on-failure) to start a fresh daemon.
			d.mu.Lock()
			d.engineErr = fmt.Errorf("heartbeat engine stopped: %v", err)
			d.mu.Unlock()
			d.log.Error("ERROR: heartbeat engine stopped: "+fmt.Sprint(err)+"; releasing all resources and exiting", "err", err)
			serr := d.shutdown(eng, nil, stopBG, &bgWG)
			return errors.Join(fmt.Errorf("heartbeat engine stopped: %v", err), serr)
		case <-tick.C:
			d.pulse.Store(time.Now().UnixNano())
			if !settled {
				// After a restart that left a VIP or a sync master in
				// place, wait until ownership is settled: we hold a group,
				// or the peer says it holds some. (The engine may settle on
				// "none" first and take the groups back a moment later.)
				if s := eng.State(); s.Stable && (s.Holding != "none" && s.Holding != "" || peerHoldsAny(s)) {
					if err := d.sync.Settle(ctx); err == nil {
						settled = true
					}
					d.releaseLeftovers(ctx, s)
				}
			}
		case <-d.detach:
			if d.reexec.Load() {
				d.opts.Notify.Reloading()
			} else {
				d.opts.Notify.Stopping()
			}
			d.log.Info("Detaching: leaving VIPs, IPVS and the sync daemon as they are for the next directord")
			// Half the deadtime for a transition under way to finish: the
			// next daemon needs the rest to start.
			dctx, cancel := context.WithTimeout(context.Background(), d.cfg.Cluster.DeadTime/2)
			r, err := eng.Detach(dctx)
			cancel()
			if err == nil {
				err = d.saveResume(r)
			}
			if err != nil {
				d.log.Error("ERROR: cannot hand the heartbeat state over: "+err.Error()+"; the peer will see a restart", "err", err)
				crash()
			}
			<-engDone
			for _, g := range d.runner.Groups() {
				g.close()
			}
			d.mu.Lock()
			for _, mod := range d.mods {
				mod.m.Detach()
			}
			d.mu.Unlock()
			d.modWG.Wait()
			stopBG()
			bgWG.Wait()
			d.closeWatchdog()
			if err == nil {
				d.log.Info(fmt.Sprintf("Detached: heartbeat generation %d, next seq %d, groups held %v; start directord within %v", r.Generation, r.NextSeq, r.Held, d.cfg.Cluster.DeadTime))
			}
			return nil
		case <-ctx.Done():
			return d.shutdown(eng, engDone, stopBG, &bgWG)
		}
	}
}

// shutdown is the graceful stop: hand the groups over, stop lnoded (its
// cleanstop applies), stop the sync daemon, disarm the watchdog.
func (d *Daemon) shutdown(eng *cluster.Engine, engDone chan error, stopBG context.CancelFunc, bgWG *sync.WaitGroup) error {
	d.opts.Notify.Stopping()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if engDone != nil {
		d.standbyBeforeStop(ctx, eng)
		if err := eng.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("heartbeat: %w", err))
		}
	}
	// Whatever the engine did, nothing may stay held.
	if err := d.runner.ReleaseAll(ctx); err != nil {
		errs = append(errs, err)
	}
	stopBG()
	bgWG.Wait()
	d.stopModules()
	if err := d.sync.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	d.closeWatchdog()
	d.log.Info("directord stopped.")
	return errors.Join(errs...)
}

// standbyBeforeStopMax bounds the standby a graceful stop starts with: the
// peer may wait up to its WarmWait (8 s) for warm checks before it takes
// the groups, and systemd allows the stop 60 s.
const standbyBeforeStopMax = 15 * time.Second

// standbyBeforeStop hands the groups to a live directord peer with a
// standby (make before break: the VIP is never absent) before the stop.
// Heartbeat's shutdown protocol, which the stop runs next, releases first
// and lets the peer acquire after: the VIP is absent meanwhile and a
// connection attempt then waits for its retransmission. A Heartbeat peer,
// which does not make before break, gets the shutdown protocol alone, as
// does any peer when the standby is refused or too slow.
func (d *Daemon) standbyBeforeStop(ctx context.Context, eng *cluster.Engine) {
	s := eng.State()
	if !s.Peer.Directord || s.Peer.Status != cluster.StatusActive || s.Holding == "none" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, standbyBeforeStopMax)
	defer cancel()
	d.log.Info("Graceful stop: handing the resource groups to " + s.Peer.Name + " with a standby first (make before break)")
	for {
		err := eng.Standby(ctx, cluster.All)
		if err == nil {
			break
		}
		// Refused while a transition runs; it ends soon.
		if ctxsleep.Sleep(ctx, 50*time.Millisecond) != nil {
			d.log.Warn("WARN: Graceful stop: the standby was refused (" + err.Error() + "); stopping with the shutdown protocol")
			return
		}
	}
	for {
		if s := eng.State(); s.Holding == "none" && s.Stable {
			return
		}
		if ctxsleep.Sleep(ctx, 20*time.Millisecond) != nil {
			d.log.Warn("WARN: Graceful stop: the standby did not complete within " + standbyBeforeStopMax.String() + "; stopping with the shutdown protocol")
			return
		}
	}
}

// peerHolds reports whether the peer's last rsc_hold covers the groups
// owned by owner: "all", or "local" for the peer's own groups, "foreign" for
// ours.
func peerHolds(s cluster.Snapshot, owner string) bool {
	switch s.Peer.Holding {
	case "all":
		return true
	case "local":
		return strings.EqualFold(owner, s.Peer.Name)
	case "foreign":
		return !strings.EqualFold(owner, s.Peer.Name)
	}
	return false
}

func peerHoldsAny(s cluster.Snapshot) bool {
	return s.Peer.Holding == "all" || s.Peer.Holding == "local" || s.Peer.Holding == "foreign"
}

// releaseLeftovers stops what a previous daemon left running of the groups
// the engine has settled that this node does not hold: a VIP must never stay
// on both nodes.
func (d *Daemon) releaseLeftovers(ctx context.Context, s cluster.Snapshot) {
	for _, g := range d.runner.Groups() {
		if !peerHolds(s, g.owner) {
			// Nobody may hold it yet: the engine will acquire it here
			// (adopting what is there) or the peer will.
			continue
		}
		if on := g.Adoptable(ctx); len(on) > 0 {
			if stopped, err := g.StopIfNotHeld(ctx); stopped {
				d.log.Info("Released resources of group "+g.Name()+" left by a previous directord: this node does not hold the group", "group", g.Name(), "err", err)
			}
		}
	}
}

func (d *Daemon) stopModules() {
	d.mu.Lock()
	mods := d.mods
	d.mods = map[string]*module{}
	d.mu.Unlock()
	for _, m := range mods {
		m.cancel()
	}
	d.modWG.Wait()
}

func (d *Daemon) closeWatchdog() {
	if d.wd != nil {
		if err := d.wd.Close(); err != nil {
			d.log.Error("ERROR: "+err.Error(), "err", err)
		}
	}
}

// Close releases the daemon's handles (not its resources). Call it after Run.
func (d *Daemon) Close() error {
	d.closeAll()
	return nil
}

func (d *Daemon) closeAll() {
	if d.srv != nil {
		d.srv.Close()
	}
	if d.vips != nil {
		d.vips.Close()
	}
	if d.ipvs != nil {
		d.ipvs.Close()
	}
	for _, c := range d.logClosers {
		c.Close()
	}
	d.logClosers = nil
}

// healthy says whether the watchdogs may be fed: the main loop ticks (it
// ticks every 500ms) and the engine runs and answers. If the engine is
// wedged, State blocks, the keeper blocks with it and the watchdogs starve,
// which is the point.
func (d *Daemon) healthy() error {
	limit := min(5*time.Second, max(d.cfg.Cluster.DeadTime/2, 1500*time.Millisecond))
	if age := time.Since(time.Unix(0, d.pulse.Load())); age > limit {
		return fmt.Errorf("main loop silent for %v", age.Round(time.Millisecond))
	}
	d.mu.Lock()
	eng, err := d.engine, d.engineErr
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if eng != nil {
		eng.State()
	}
	return nil
}

func (d *Daemon) onGroupChange(group string, held bool, err error) {
	d.transitions.Add(1)
	if !held {
		// The group's VIP is gone: no connection arrives here any more, so
		// the last handover to the peer is complete.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d.sync.Released(ctx)
		cancel()
	}
	st := "standby"
	if held {
		st = "active"
	}
	d.opts.Notify.Status(fmt.Sprintf("%s: group %s %s", d.cfg.Cluster.ThisNode, group, map[bool]string{true: "held", false: "released"}[held]) + " (" + st + ")")
}

func (d *Daemon) currentEngine() (*cluster.Engine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.engine == nil {
		return nil, errors.New("the heartbeat engine has not started yet; try again")
	}
	if d.engineErr != nil {
		return nil, d.engineErr
	}
	return d.engine, nil
}

// Standby implements control.Handler: hb_standby.
func (d *Daemon) Standby(ctx context.Context, which string) (string, error) {
	eng, err := d.currentEngine()
	if err != nil {
		return "", err
	}
	// The peer's backup gets our connections before it takes over; those
	// opened from now on reach it within the kernel's send delay, and the
	// release hands over again.
	d.sync.HandOver(ctx, "standby")
	if err := eng.Standby(ctx, cluster.Kind(which)); err != nil {
		return "", err
	}
	return "Going standby [" + which + "].", nil
}

// Takeover implements control.Handler: hb_takeover.
func (d *Daemon) Takeover(ctx context.Context, which string) (string, error) {
	eng, err := d.currentEngine()
	if err != nil {
		return "", err
	}
	if err := eng.Takeover(ctx, cluster.Kind(which)); err != nil {
		return "", err
	}
	return "Taking over [" + which + "] resources.", nil
}

// Status implements control.Handler.
func (d *Daemon) Status(ctx context.Context) (*control.Status, error) {
	d.mu.Lock()
	cfg, eng, engErr := d.cfg, d.engine, d.engineErr
	mods := make([]*module, 0, len(d.mods))
	paths := make([]string, 0, len(d.mods))
	for p := range d.mods {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		mods = append(mods, d.mods[p])
	}
	last := d.lastReload
	d.mu.Unlock()

	st := &control.Status{
		Node: cfg.Cluster.ThisNode, PID: os.Getpid(), Version: d.opts.Version, Started: d.started,
		Config: cfg.Sources, Reload: last, Groups: []control.Group{}, Reals: []control.Real{},
	}
	st.HA.AutoFailback = cfg.Cluster.AutoFailback.String()
	st.HA.Transitions = d.transitions.Load()
	st.HA.Peers = []control.Peer{}
	st.HA.PingNodes = []control.PingNode{}
	if eng != nil && engErr == nil {
		s := eng.State()
		st.HA.Engine = true
		st.HA.State, st.HA.Resources, st.HA.Stable = s.Status, s.Holding, s.Stable
		if s.Last.What != "" {
			st.HA.LastTransition = s.Last.At.Format("15:04:05.000") + " " + s.Last.What
			if s.Last.Reason != "" {
				st.HA.LastTransition += " (" + s.Last.Reason + ")"
			}
		}
		p := control.Peer{Name: s.Peer.Name, Status: s.Peer.Status, LastHeartbeat: s.Peer.LastHeard, Links: []control.Link{}}
		if p.Status == "" {
			p.Status = "unknown"
		}
		for _, l := range s.Peer.Links {
			ls := "dead"
			if l.Up {
				ls = "up"
			}
			p.Links = append(p.Links, control.Link{Name: l.Interface, Status: ls})
		}
		st.HA.Peers = append(st.HA.Peers, p)
		for _, pn := range s.Ping {
			ps := "dead"
			if pn.Up {
				ps = "up"
			}
			st.HA.PingNodes = append(st.HA.PingNodes, control.PingNode{Name: pn.Name, Status: ps})
		}
	} else if engErr != nil {
		st.Errors = append(st.Errors, engErr.Error())
	}
	for _, g := range d.runner.Groups() {
		st.Groups = append(st.Groups, g.Status())
	}
	for _, m := range mods {
		for _, r := range m.m.State() {
			st.Reals = append(st.Reals, control.Real{
				Service: r.Key.Service, Addr: r.Key.Dest.Addr, Port: r.Key.Dest.Port,
				Health: r.Health.String(), Check: r.Check, Since: r.Since, LastCheck: r.LastCheck,
				Latency: r.Latency, Failures: r.Failures, LastFailure: r.LastFailure, LastFailureTime: r.LastFailureAt,
			})
		}
	}
	state, sc := d.sync.State(ctx)
	st.Sync = control.Sync{Enabled: sc.Enabled, State: state, Interface: sc.Interface, SyncID: sc.SyncID}
	if d.wd != nil {
		st.Watchdog = control.Watchdog{Device: d.wd.Path(), Interval: d.wd.Timeout(), LastFeed: d.wd.LastFeed()}
	}
	st.Watchdog.Systemd = d.sdWD
	if d.ipvs == nil {
		st.IPVS.Error = ipvs.ErrUnavailable.Error()
	} else {
		info, err := d.ipvs.Info(ctx)
		if err == nil {
			st.IPVS.Info = info
			st.IPVS.Table, err = d.ipvs.Table(ctx)
		}
		if err != nil {
			st.IPVS.Error = err.Error()
		}
	}
	if st.IPVS.Table == nil {
		st.IPVS.Table = ipvs.Table{}
	}
	return st, nil
}

// Reload implements control.Handler; SIGHUP does the same.
func (d *Daemon) Reload(ctx context.Context) (string, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.opts.Notify.Reloading()
	defer d.opts.Notify.Ready()
	changes, err := d.reload(ctx)
	res := &control.ReloadResult{Time: time.Now(), OK: err == nil, Changes: changes}
	if err != nil {
		res.Error = err.Error()
		d.log.Error("ERROR: Reload refused, nothing changed: "+err.Error(), "err", err)
	} else if len(changes) == 0 {
		d.log.Info("Reload: configuration unchanged")
	} else {
		for _, c := range changes {
			d.log.Info("Reload: " + c)
		}
	}
	d.mu.Lock()
	d.lastReload = res
	d.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	if len(changes) == 0 {
		return "Configuration unchanged.", nil
	}
	return "Reloaded: " + strings.Join(changes, "; "), nil
}

// reload loads the configuration again and applies the difference. Anything
// the running engine cannot take (membership, media, keys, timings, the set
// of groups and their owners) refuses the whole reload: a restart is needed.
func (d *Daemon) reload(ctx context.Context) ([]string, error) {
	cfg, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	if why := ipvsNeeded(cfg); d.ipvs == nil && why != "" {
		return nil, fmt.Errorf("%s, and this kernel has no IPVS", why)
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if why := needsRestart(old, cfg); why != "" {
		return nil, fmt.Errorf("%s changed: restart directord to apply it (it hands the resources over while it restarts)", why)
	}
	// Prepare every new piece before touching anything, so that a
	// failure leaves the running state whole.
	newGroups, err := d.buildGroups(cfg)
	if err != nil {
		return nil, err
	}
	var changes []string
	oldFiles := map[string]bool{}
	for _, l := range lnodedFiles(old) {
		oldFiles[l.Path] = true
	}
	type modChange struct {
		l   *config.Lnoded
		mod *module
	}
	var reloads []modChange
	var adds []*config.Lnoded
	d.mu.Lock()
	for _, l := range lnodedFiles(cfg) {
		if mod, ok := d.mods[l.Path]; ok {
			if !reflect.DeepEqual(mod.m.Config(), l.Config) {
				reloads = append(reloads, modChange{l, mod})
			}
		} else {
			adds = append(adds, l)
		}
		delete(oldFiles, l.Path)
	}
	d.mu.Unlock()
	// Validate every changed lnoded.cf (a module that is built but never
	// run touches nothing) and build the new ones before applying any.
	for _, rc := range reloads {
		if _, err := lnoded.New(rc.l.Config, d.ipvs, nil); err != nil {
			return nil, fmt.Errorf("lnoded %s: %w", rc.l.Path, err)
		}
	}
	var added []*module
	for _, l := range adds {
		mod, err := d.newModule(l)
		if err != nil {
			return nil, err
		}
		added = append(added, mod)
	}
	for _, rc := range reloads {
		if err := rc.mod.m.Reload(rc.l.Config); err != nil {
			return changes, fmt.Errorf("lnoded %s: %w", rc.l.Path, err)
		}
		changes = append(changes, "lnoded "+rc.l.Path+" reloaded")
	}
	d.mu.Lock()
	for _, mod := range added {
		d.runModule(mod)
		changes = append(changes, "lnoded "+mod.path+" started")
	}
	for p := range oldFiles {
		if mod, ok := d.mods[p]; ok {
			mod.cancel()
			delete(d.mods, p)
			changes = append(changes, "lnoded "+p+" stopped")
		}
	}
	d.mu.Unlock()

	// Groups: a held group whose resources did not change keeps running
	// untouched (new GARP settings apply at its next start); a changed
	// group that is held is stopped in its old form and started in its new
	// one; a group not held takes its new form.
	d.runner.swap(func(oldGroups map[string]*Group) []*Group {
		final := make([]*Group, 0, len(newGroups))
		for _, ng := range newGroups {
			og := oldGroups[ng.Name()]
			switch {
			case og != nil && og.Held() && og.Line() == ng.Line():
				final = append(final, og)
				continue
			case og != nil && og.Held():
				kept, err := ng.Transform(ctx, og)
				changes = append(changes, fmt.Sprintf("resource group %s changed while held: %s (%d resources kept running)", ng.Name(), ng.Line(), kept))
				if err != nil {
					d.log.Error("ERROR: "+err.Error(), "err", err)
				}
				// og's kept resources now belong to ng: og.close must not
				// stop their goroutines.
				final = append(final, ng)
				continue
			case og != nil && og.Line() != ng.Line():
				changes = append(changes, "resource group "+ng.Name()+" changed: "+ng.Line())
			}
			if og != nil {
				og.close()
			}
			final = append(final, ng)
		}
		return final
	})
	if err := d.sync.Reconfigure(ctx, cfg.Directord.Sync); err != nil {
		d.log.Error("ERROR: "+err.Error(), "err", err)
	} else if !sameSync(cfg.Directord.Sync, old.Directord.Sync) {
		changes = append(changes, "IPVS sync daemon reconfigured")
	}
	if !sameGARP(old.Directord.GARP, cfg.Directord.GARP) {
		changes = append(changes, "gratuitous ARP settings changed")
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return changes, nil
}

// sameGARP compares two garp sections by what they do.
func sameGARP(a, b config.GARP) bool {
	a.Pos, b.Pos = config.Pos{}, config.Pos{}
	return a == b
}

// needsRestart names what changed that the running engine cannot take.
func needsRestart(a, b *config.Config) string {
	ca, _ := clusterConfig(a, "", nil, nil)
	cb, _ := clusterConfig(b, "", nil, nil)
	for i := range ca.Media {
		ca.Media[i].Line = 0
	}
	for i := range cb.Media {
		cb.Media[i].Line = 0
	}
	for i := range ca.PingGroups {
		ca.PingGroups[i].Line = 0
	}
	for i := range cb.PingGroups {
		cb.PingGroups[i].Line = 0
	}
	switch {
	case ca.Node != cb.Node || !reflect.DeepEqual(ca.Peers, cb.Peers):
		return "the node list"
	case !reflect.DeepEqual(ca.Media, cb.Media):
		return "the heartbeat media"
	case !reflect.DeepEqual(ca.Keyring, cb.Keyring):
		return "authkeys"
	case ca.Timing != cb.Timing:
		return "the heartbeat timings"
	case !reflect.DeepEqual(ca.Groups, cb.Groups):
		return "the set of resource groups (or their owners)"
	case ca.AutoFailback != cb.AutoFailback:
		return "auto_failback"
	case !reflect.DeepEqual(ca.PingNodes, cb.PingNodes) || !reflect.DeepEqual(ca.PingGroups, cb.PingGroups):
		return "the ping nodes"
	case !reflect.DeepEqual(ca.StonithCmd, cb.StonithCmd):
		return "stonith"
	case a.Cluster.Watchdog != b.Cluster.Watchdog:
		return "the watchdog device"
	case a.Cluster.Logging != b.Cluster.Logging:
		return "logging (logfile, debugfile, logfacility, debug)"
	case a.Directord.ControlSocket != b.Directord.ControlSocket || a.Directord.StateDir != b.Directord.StateDir || a.Directord.MetricsListen != b.Directord.MetricsListen:
		return "the control socket, state directory or metrics address"
	}
	return ""
}

// onEvent is the engine's OnEvent (it must not block): metrics, and the
// re-announcements the engine asks for.
func (d *Daemon) onEvent(e cluster.Event) {
	d.met.onEvent(e)
	if e.Kind == cluster.EventReassert {
		d.runner.Reannounce(e.Group)
	}
}

// groupReady is the engine's Ready: a group is ready to be served here once
// every real server of its lnoded modules has been checked by a check that
// started after since (when a heartbeat link or ping node last came back),
// so that a table whose checks failed while this node was cut off is not
// served before they have run again.
func (d *Daemon) groupReady(group string, since time.Time) bool {
	g, err := d.runner.group(group)
	if err != nil {
		return true
	}
	for _, path := range g.lnodedPaths() {
		d.mu.Lock()
		mod, ok := d.mods[path]
		d.mu.Unlock()
		if !ok {
			continue // nothing to wait for; Acquire reports the missing module
		}
		if !checkedSince(mod.m.State(), since) {
			return false
		}
	}
	return true
}

// checkedSince reports whether every real server in states has had a check
// that started at or after since; one in maintenance needs none.
func checkedSince(states []lnoded.RealState, since time.Time) bool {
	for _, s := range states {
		if s.Health == lnoded.Maintenance {
			continue
		}
		if s.LastCheck.IsZero() || s.LastCheck.Add(-s.Latency).Before(since) {
			return false
		}
	}
	return true
}

// localAddrs is the engine's LocalAddrs: where the peer can reach this
// node to forward our connections' segments in a handover (vip/handoff);
// the VIPs of cfg move, so they are not among them.
func (d *Daemon) localAddrs(cfg *config.Config) func() []netip.Addr {
	vips := map[netip.Addr]bool{}
	for _, g := range cfg.Groups {
		for _, r := range g.Resources {
			if r.Kind == config.KindVIP {
				vips[r.VIP.Addr.Unmap()] = true
			}
		}
	}
	return func() []netip.Addr {
		as, err := handoff.LocalAddrs(func(a netip.Addr) bool { return vips[a] })
		if err != nil {
			d.log.Warn("WARN: listing this node's addresses for the peer: "+err.Error(), "err", err)
		}
		return as
	}
}

// tcpPorts lists the ports of vip's TCP virtual services in the kernel's
// table (0 for a persistent all-ports service).
func (d *Daemon) tcpPorts(ctx context.Context, vip netip.Addr) ([]uint16, error) {
	tbl, err := d.ipvs.Table(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the IPVS table: %w", err)
	}
	var ports []uint16
	for _, e := range tbl {
		if e.Service.Protocol == ipvs.TCP && e.Service.FWMark == 0 && e.Service.Addr.Unmap() == vip.Unmap() {
			ports = append(ports, e.Service.Port)
		}
	}
	return ports, nil
}
