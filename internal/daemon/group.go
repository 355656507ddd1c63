package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/directord/directord/internal/control"
)

// Group states.
const (
	StateStopped  = "stopped"
	StateStarting = "starting"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateFailed   = "failed"
)

// rollbackTimeout bounds stopping what a failed start had started.
const rollbackTimeout = 5 * time.Minute

// Group is a resource group: resources one node holds together, started left
// to right and stopped right to left, as Heartbeat's ResourceManager does.
type Group struct {
	name  string
	owner string
	res   []Resource
	line  string // "node1 192.0.2.100 lnoded::lnoded.cf", for log lines
	log   *slog.Logger

	// op serialises Start and Stop: the engine calls one at a time, but a
	// reload may too.
	op sync.Mutex

	mu       sync.Mutex
	state    string
	since    time.Time
	err      string
	resState []string
	resErr   []string
}

// NewGroup returns a stopped group of res, named name (its first resource, as
// Heartbeat names groups) and owned by owner.
func NewGroup(name, owner string, res []Resource, log *slog.Logger) *Group {
	words := []string{owner}
	for _, r := range res {
		words = append(words, r.String())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Group{
		name: name, owner: owner, res: res, line: strings.Join(words, " "), log: log,
		state: StateStopped, since: time.Now(),
		resState: make([]string, len(res)), resErr: make([]string, len(res)),
	}
	for i := range g.resState {
		g.resState[i] = StateStopped
	}
	return g
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Line returns the group as haresources writes it.
func (g *Group) Line() string { return g.line }

func (g *Group) set(state, err string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != state {
		g.since = time.Now()
	}
	g.state, g.err = state, err
}

func (g *Group) setRes(i int, state, err string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resState[i], g.resErr[i] = state, err
}

// Start starts the resources left to right. When one fails, those already
// started are stopped again, right to left, and the error names the resource
// that failed: a group is held whole or not at all.
func (g *Group) Start(ctx context.Context) error {
	g.op.Lock()
	defer g.op.Unlock()
	g.log.Info("Acquiring resource group: " + g.line)
	return g.startFrom(ctx, 0, 0)
}

// startFrom starts the resources from index first on; those before it run
// already. On a failure it stops what runs down to index keep. g.op is
// held.
func (g *Group) startFrom(ctx context.Context, first, keep int) error {
	g.set(StateStarting, "")
	for i := first; i < len(g.res); i++ {
		r := g.res[i]
		g.setRes(i, StateStarting, "")
		if err := r.Start(ctx); err != nil {
			g.setRes(i, StateFailed, err.Error())
			g.log.Error(fmt.Sprintf("ERROR: Resource %s failed to start: %v", r, err), "group", g.name, "resource", r.String())
			g.log.Error("ERROR: Acquiring resource group " + g.name + " failed: stopping what was started")
			// The rollback runs even when the failure was ctx ending: a
			// group is held whole or not at all.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			stopErr := g.stopFrom(rctx, i-1, keep)
			cancel()
			msg := fmt.Sprintf("resource %s failed to start: %v", r, err)
			if stopErr != nil {
				msg += fmt.Sprintf("; stopping the resources started before it also failed: %v", stopErr)
			}
			g.set(StateFailed, msg)
			return fmt.Errorf("resource group %s: %s", g.name, msg)
		}
		g.setRes(i, StateRunning, "")
	}
	g.set(StateRunning, "")
	return nil
}

// Transform makes the running group old into g (its new form after a
// reload) with the fewest stops and starts: the resources the two have in
// common at the front keep running (g takes them over), old's others are
// stopped right to left and g's others started left to right. It returns
// how many resources were kept. old must not be used afterwards.
func (g *Group) Transform(ctx context.Context, old *Group) (int, error) {
	old.op.Lock()
	defer old.op.Unlock()
	g.op.Lock()
	defer g.op.Unlock()
	k := 0
	for k < len(old.res) && k < len(g.res) && old.res[k].String() == g.res[k].String() && old.res[k].Kind() == g.res[k].Kind() {
		k++
	}
	g.log.Info(fmt.Sprintf("Changing resource group: %s -> %s (keeping the first %d resources)", old.line, g.line, k))
	stopErr := old.stopFrom(ctx, len(old.res)-1, k)
	for i := 0; i < k; i++ {
		// The running resource, with its goroutines, replaces the new
		// one that was never started.
		if c, ok := g.res[i].(interface{ close() }); ok {
			c.close()
		}
		g.res[i] = old.res[i]
		g.setRes(i, StateRunning, "")
	}
	// On a failure the kept resources stay: the engine still counts the
	// group as held here, and the VIP is better up than down. Status shows
	// the group failed until a reload or a standby/takeover fixes it.
	if err := g.startFrom(ctx, k, k); err != nil {
		return k, errors.Join(stopErr, err)
	}
	if stopErr != nil {
		return k, fmt.Errorf("resource group %s: %w", g.name, stopErr)
	}
	return k, nil
}

// Stop stops the resources right to left. A resource that fails to stop does
// not keep the others running (Heartbeat's ResourceManager carries on too);
// the errors are returned together.
func (g *Group) Stop(ctx context.Context) error {
	g.op.Lock()
	defer g.op.Unlock()
	g.log.Info("Releasing resource group: " + g.line)
	g.set(StateStopping, "")
	if err := g.stopFrom(ctx, len(g.res)-1, 0); err != nil {
		g.set(StateFailed, err.Error())
		return fmt.Errorf("resource group %s: %w", g.name, err)
	}
	g.set(StateStopped, "")
	return nil
}

// stopFrom stops the resources from index last down to index low, right to
// left. g.op is held.
func (g *Group) stopFrom(ctx context.Context, last, low int) error {
	var errs []error
	for i := last; i >= low; i-- {
		r := g.res[i]
		g.setRes(i, StateStopping, "")
		if err := r.Stop(ctx); err != nil {
			g.setRes(i, StateFailed, err.Error())
			g.log.Error(fmt.Sprintf("ERROR: Resource %s failed to stop: %v", r, err), "group", g.name, "resource", r.String())
			errs = append(errs, fmt.Errorf("resource %s failed to stop: %w", r, err))
			continue
		}
		g.setRes(i, StateStopped, "")
	}
	return errors.Join(errs...)
}

// StopIfNotHeld stops the group's resources unless the group is held, under
// the same lock as Start, so that it cannot undo an acquisition that raced
// with it. It reports whether it stopped anything.
func (g *Group) StopIfNotHeld(ctx context.Context) (bool, error) {
	g.op.Lock()
	defer g.op.Unlock()
	if g.Held() {
		return false, nil
	}
	g.log.Info("Releasing resource group: " + g.line + " (not held here)")
	err := g.stopFrom(ctx, len(g.res)-1, 0)
	if err == nil {
		g.set(StateStopped, "")
	}
	return true, err
}

// Adoptable reports which resources already run, for a daemon started on a
// node that held the group before it restarted.
func (g *Group) Adoptable(ctx context.Context) []string {
	var on []string
	for _, r := range g.res {
		if ok, err := r.Running(ctx); err == nil && ok {
			on = append(on, r.String())
		}
	}
	return on
}

// Held reports whether the group is running here.
func (g *Group) Held() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state == StateRunning
}

// Status returns the group for `directord status`.
func (g *Group) Status() control.Group {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := control.Group{Name: g.name, Owner: g.owner, State: g.state, Since: g.since, Error: g.err}
	for i, r := range g.res {
		s.Resources = append(s.Resources, control.Resource{Name: r.String(), Kind: r.Kind(), State: g.resState[i], Error: g.resErr[i]})
	}
	return s
}

// lnodedPaths returns the lnoded.cf files of the group's lnoded resources.
func (g *Group) lnodedPaths() []string {
	var out []string
	for _, r := range g.res {
		if l, ok := r.(*lnodedResource); ok {
			out = append(out, l.path)
		}
	}
	return out
}

// reannounce announces the group's addresses again, in the background, if
// it runs here.
func (g *Group) reannounce() {
	if !g.Held() {
		return
	}
	for _, r := range g.res {
		if a, ok := r.(interface{ reannounce() }); ok {
			a.reannounce()
		}
	}
}

// close releases what the resources hold in this process (goroutines)
// without stopping them, for a daemon that exits and leaves them in place.
func (g *Group) close() {
	for _, r := range g.res {
		if c, ok := r.(interface{ close() }); ok {
			c.close()
		}
	}
}

// Runner holds the resource groups and carries out the engine's decisions: it
// is the cluster engine's Resources.
type Runner struct {
	// ops serialises Acquire and Release with a reload's swap of the
	// groups, so that the engine never starts a group that is being
	// replaced.
	ops    sync.Mutex
	mu     sync.Mutex
	groups map[string]*Group
	order  []string
	// onChange is called after every Acquire and Release (metrics, sync
	// settling); nil for none.
	onChange func(group string, held bool, err error)
}

// NewRunner returns a runner for groups.
func NewRunner(groups []*Group) *Runner {
	r := &Runner{groups: map[string]*Group{}}
	for _, g := range groups {
		r.groups[g.name] = g
		r.order = append(r.order, g.name)
	}
	return r
}

func (r *Runner) group(name string) (*Group, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.groups[name]
	if !ok {
		return nil, fmt.Errorf("no resource group %q in haresources", name)
	}
	return g, nil
}

// Acquire starts the group called name.
func (r *Runner) Acquire(ctx context.Context, name string) error {
	r.ops.Lock()
	defer r.ops.Unlock()
	g, err := r.group(name)
	if err != nil {
		return err
	}
	err = g.Start(ctx)
	r.changed(name, err == nil, err)
	return err
}

// Release stops the group called name.
func (r *Runner) Release(ctx context.Context, name string) error {
	r.ops.Lock()
	defer r.ops.Unlock()
	return r.release(ctx, name)
}

func (r *Runner) release(ctx context.Context, name string) error {
	g, err := r.group(name)
	if err != nil {
		return err
	}
	err = g.Stop(ctx)
	r.changed(name, false, err)
	return err
}

func (r *Runner) changed(name string, held bool, err error) {
	r.mu.Lock()
	f := r.onChange
	r.mu.Unlock()
	if f != nil {
		f(name, held, err)
	}
}

// Reannounce announces the addresses of the group called name again
// (gratuitous ARP, unsolicited NA) if it runs here; it does not block. The
// engine asks for it (cluster.EventReassert) when another node may have
// announced them, e.g. after a healed partition.
func (r *Runner) Reannounce(name string) {
	if g, err := r.group(name); err == nil {
		g.reannounce()
	}
}

// Groups returns the groups in haresources order.
func (r *Runner) Groups() []*Group {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Group, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, r.groups[n])
	}
	return out
}

// ReleaseAll stops every held group, last first, for a stop without an engine.
func (r *Runner) ReleaseAll(ctx context.Context) error {
	gs := r.Groups()
	var errs []error
	for i := len(gs) - 1; i >= 0; i-- {
		if gs[i].Held() {
			errs = append(errs, r.Release(ctx, gs[i].name))
		}
	}
	return errors.Join(errs...)
}

// swap replaces the group set for a reload. build is given the current
// groups by name and returns the new set; it runs with Acquire and Release
// locked out, so it may stop and start groups itself.
func (r *Runner) swap(build func(old map[string]*Group) []*Group) {
	r.ops.Lock()
	defer r.ops.Unlock()
	old := map[string]*Group{}
	for _, g := range r.Groups() {
		old[g.name] = g
	}
	groups := build(old)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = map[string]*Group{}
	r.order = nil
	for _, g := range groups {
		r.groups[g.name] = g
		r.order = append(r.order, g.name)
	}
}
