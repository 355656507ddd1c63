// Package realserver prepares a host as an LVS-DR real server, as seed 003
// does by hand (§4.1–4.2): each VIP on lo with a host prefix (/32, /128),
// and the ARP sysctls that keep the host from answering for it.
//
// Why: with direct routing the director forwards a packet for the VIP to
// the real server's MAC address unchanged, so the real server must hold the
// VIP to accept it, yet must not claim it on the wire, or the router would
// send clients to a real server instead of the director.
//
//   - arp_ignore=1 (all, lo): answer an ARP request only for an address of
//     the interface it came in on; the VIP is on lo, so it is never
//     answered.
//   - arp_announce=2 (all, lo): never use the VIP as the sender address of
//     the host's own ARP requests; use the outgoing interface's address.
//
// IPv6 needs no sysctl: Linux answers a neighbour solicitation only for an
// address of the interface it arrived on, so a VIP on lo stays silent.
//
// Up sets the sysctls before it adds any VIP, so that no moment exists in
// which the host answers ARP for one. Down removes VIPs first and restores
// the sysctls to the values Up found only when no VIP that Up added is left
// on lo: with one left, restoring them would make the host answer for it.
// Up remembers what it added and the values it found in a small JSON file
// in the state directory; a host prepared by hand (no such file) keeps its
// sysctls on Down. Both are idempotent: Up on a prepared host and Down on a
// clean one change nothing and succeed.
package realserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/directord/directord/vip"
)

// Sysctl is one kernel setting, named as sysctl(8) names it.
type Sysctl struct {
	Name, Value string
}

// Sysctls returns the ARP settings of a real server holding IPv4 VIPs, in
// the order Up applies them.
func Sysctls() []Sysctl {
	return []Sysctl{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.lo.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.lo.arp_announce", "2"},
	}
}

// StateFile is the name of the file, in Options.StateDir, where Up records
// the VIPs it added and the sysctl values it found.
const StateFile = "realserver.json"

// state is the content of StateFile.
type state struct {
	VIPs    []string          `json:"vips"`
	Sysctls map[string]string `json:"sysctls,omitempty"`
}

// Options configure a Preparer.
type Options struct {
	// StateDir holds StateFile (directord's state directory).
	StateDir string
	// SysctlRoot is the sysctl tree; "" is /proc/sys.
	SysctlRoot string
	// DryRun reports what would be done and changes nothing.
	DryRun bool
	// Report receives one line per action or finding, for the operator;
	// nil discards them.
	Report io.Writer
}

// Preparer adds and removes real-server VIPs in the network namespace of
// the thread that created it (vip.New). It is not safe for concurrent use.
type Preparer struct {
	opts Options
	m    *vip.Manager
}

// New returns a Preparer for the calling thread's network namespace.
func New(opts Options) (*Preparer, error) {
	if opts.SysctlRoot == "" {
		opts.SysctlRoot = "/proc/sys"
	}
	if opts.Report == nil {
		opts.Report = io.Discard
	}
	if opts.StateDir == "" {
		return nil, errors.New("realserver: no state directory")
	}
	m, err := vip.New()
	if err != nil {
		return nil, fmt.Errorf("realserver: %w", err)
	}
	return &Preparer{opts: opts, m: m}, nil
}

// Close releases the netlink socket; it changes nothing on the host.
func (p *Preparer) Close() error { return p.m.Close() }

// loVIP is a VIP as a real server holds it: on lo, host prefix, never
// announced.
func loVIP(a netip.Addr) vip.VIP {
	return vip.VIP{Addr: a, Prefix: a.BitLen(), Interface: "lo", ARPCount: -1}
}

// act reports an action, as done or (dry run) as to be done.
func (p *Preparer) act(format string, a ...any) {
	if p.opts.DryRun {
		format = "would " + format
	}
	fmt.Fprintf(p.opts.Report, format+"\n", a...)
}

// note reports a finding, the same in a dry run.
func (p *Preparer) note(format string, a ...any) {
	fmt.Fprintf(p.opts.Report, format+"\n", a...)
}

// Up puts each VIP on lo and, when any is IPv4, sets the ARP sysctls first.
// A VIP already on lo is left as it is; a VIP on another interface is an
// error (that host is a director, or misconfigured).
func (p *Preparer) Up(ctx context.Context, vips []netip.Addr) error {
	st, err := p.load()
	if err != nil {
		return err
	}
	for _, a := range vips {
		status, err := p.m.Status(ctx, a.Unmap())
		if err != nil {
			return err
		}
		if others := slices.DeleteFunc(status.Interfaces(), func(s string) bool { return s == "lo" }); len(others) > 0 {
			return fmt.Errorf("%v is on %s: a real server holds its VIPs on lo only (is this a director?)", a, strings.Join(others, ", "))
		}
	}
	if slices.ContainsFunc(vips, func(a netip.Addr) bool { return a.Unmap().Is4() }) {
		if st.Sysctls == nil {
			st.Sysctls = map[string]string{}
			for _, s := range Sysctls() {
				v, err := p.readSysctl(s.Name)
				if err != nil {
					return err
				}
				st.Sysctls[s.Name] = v
			}
		}
		// Recorded before anything changes, so that Down can undo a
		// half-done Up.
		if err := p.save(st); err != nil {
			return err
		}
		for _, s := range Sysctls() {
			if err := p.setSysctl(s.Name, s.Value); err != nil {
				return err
			}
		}
	}
	for _, a := range vips {
		a = a.Unmap()
		status, err := p.m.Status(ctx, a)
		if err != nil {
			return err
		}
		if _, on := status.On("lo"); on {
			p.note("lo: %v already present", a)
		} else {
			p.act("add %v/%d to lo", a, a.BitLen())
			if !p.opts.DryRun {
				if _, err := p.m.Acquire(ctx, loVIP(a)); err != nil {
					return err
				}
			}
		}
		if s := a.String(); !slices.Contains(st.VIPs, s) {
			st.VIPs = append(st.VIPs, s)
		}
		if err := p.save(st); err != nil {
			return err
		}
	}
	return nil
}

// Down removes each VIP from lo (with none named, every VIP Up added), then
// restores the sysctls Up changed if no VIP it added remains.
func (p *Preparer) Down(ctx context.Context, vips []netip.Addr) error {
	st, err := p.load()
	if err != nil {
		return err
	}
	if len(vips) == 0 {
		for _, s := range st.VIPs {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not an address", p.statePath(), s)
			}
			vips = append(vips, a)
		}
	}
	for _, a := range vips {
		a = a.Unmap()
		status, err := p.m.Status(ctx, a)
		if err != nil {
			return err
		}
		if _, on := status.On("lo"); !on {
			p.note("lo: %v not present", a)
		} else {
			p.act("remove %v from lo", a)
			if !p.opts.DryRun {
				if _, err := p.m.Release(ctx, loVIP(a)); err != nil {
					return err
				}
			}
		}
		st.VIPs = slices.DeleteFunc(st.VIPs, func(s string) bool { return s == a.String() })
	}
	remaining := 0
	for _, s := range st.VIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		status, err := p.m.Status(ctx, a)
		if err != nil {
			return err
		}
		if _, on := status.On("lo"); on {
			remaining++
		}
	}
	if remaining > 0 {
		p.note("keeping the ARP sysctls: %d VIP(s) added by realserver up remain on lo", remaining)
		return p.save(st)
	}
	// Undo in reverse order: announce before ignore, lo before all.
	ss := Sysctls()
	slices.Reverse(ss)
	for _, s := range ss {
		if old, ok := st.Sysctls[s.Name]; ok {
			if err := p.setSysctl(s.Name, old); err != nil {
				return err
			}
		}
	}
	if p.opts.DryRun {
		return nil
	}
	if err := os.Remove(p.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (p *Preparer) statePath() string { return filepath.Join(p.opts.StateDir, StateFile) }

func (p *Preparer) load() (*state, error) {
	st := &state{}
	b, err := os.ReadFile(p.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it to start afresh)", p.statePath(), err)
	}
	return st, nil
}

// save writes the state atomically: a crash leaves the old file or the new.
func (p *Preparer) save(st *state) error {
	if p.opts.DryRun {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.opts.StateDir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(p.opts.StateDir, "."+StateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p.statePath())
}

func (p *Preparer) sysctlPath(name string) string {
	return filepath.Join(p.opts.SysctlRoot, strings.ReplaceAll(name, ".", "/"))
}

func (p *Preparer) readSysctl(name string) (string, error) {
	b, err := os.ReadFile(p.sysctlPath(name))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (p *Preparer) setSysctl(name, value string) error {
	old, err := p.readSysctl(name)
	if err != nil {
		return err
	}
	if old == value {
		p.note("%s = %s already", name, value)
		return nil
	}
	p.act("set %s = %s (was %s)", name, value, old)
	if p.opts.DryRun {
		return nil
	}
	if err := os.WriteFile(p.sysctlPath(name), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("setting %s: %w", name, err)
	}
	return nil
}
