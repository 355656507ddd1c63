package main

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
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/vip"
)

// The ARP settings of an LVS-DR real server (seed 003, §4.1). The VIP sits
// on lo so that the host accepts packets the director forwards to it; these
// keep the host from answering ARP for it (arp_ignore=1: answer only for
// addresses of the interface the request came in on) and from using it as
// the source of its own ARP requests (arp_announce=2: the best local address
// of the outgoing interface). Otherwise the real servers and the director
// would fight over the VIP's MAC address.
func realserverSysctls() []struct{ name, value string } {
	return []struct{ name, value string }{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.lo.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.lo.arp_announce", "2"},
	}
}

// realserverState is what `realserver up` remembers so that `down` can undo
// exactly what it did: the VIPs it put on lo and the sysctl values found
// before it first changed them.
type realserverState struct {
	VIPs    []string          `json:"vips"`
	Sysctls map[string]string `json:"sysctls,omitempty"`
}

const realserverStateFile = "realserver.json"

// realserverTimeout bounds the netlink work of one invocation.
const realserverTimeout = 30 * time.Second

func runRealserver(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("realserver", "up|down [VIP…] [--dry-run] [--state-dir DIR]", stderr)
	dryRun := fs.Bool("dry-run", false, "print what would be done and change nothing")
	stateDir := fs.String("state-dir", config.DefaultStateDir, "where to remember the VIPs added and the sysctl values to restore")
	sysctlRoot := fs.String("sysctl-root", "/proc/sys", "the sysctl tree (tests point it elsewhere)")
	// Accept flags after the operands too, as GNU tools do.
	var ops []string
	rest := args
	for {
		if code := parseFlags(fs, rest, stdout); code >= 0 {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		ops = append(ops, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(ops) == 0 || (ops[0] != "up" && ops[0] != "down") {
		fmt.Fprintf(stderr, "directord realserver: want up or down\n")
		fs.Usage()
		return exitUsage
	}
	up := ops[0] == "up"
	var vips []netip.Addr
	for _, s := range ops[1:] {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimSuffix(s, "/32"), "/128"))
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			fmt.Fprintf(stderr, "directord realserver: %q is not a unicast IP address\n", s)
			return exitUsage
		}
		vips = append(vips, a.Unmap())
	}
	if up && len(vips) == 0 {
		fmt.Fprintf(stderr, "directord realserver up: name at least one VIP\n")
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(context.Background(), realserverTimeout)
	defer cancel()
	rs := &realserver{out: stdout, dryRun: *dryRun, stateDir: *stateDir, sysctlRoot: *sysctlRoot}
	var err error
	if up {
		err = rs.up(ctx, vips)
	} else {
		err = rs.down(ctx, vips)
	}
	if err != nil {
		fmt.Fprintf(stderr, "directord realserver %s: %v\n", ops[0], err)
		return exitFailure
	}
	return exitOK
}

type realserver struct {
	out        io.Writer
	dryRun     bool
	stateDir   string
	sysctlRoot string
}

func (r *realserver) say(format string, a ...any) {
	if r.dryRun {
		format = "would " + format
	}
	fmt.Fprintf(r.out, format+"\n", a...)
}

// loVIP is a VIP as a real server holds it: on lo, host prefix, never
// announced.
func loVIP(a netip.Addr) vip.VIP {
	return vip.VIP{Addr: a, Prefix: a.BitLen(), Interface: "lo", ARPCount: -1}
}

func (r *realserver) up(ctx context.Context, vips []netip.Addr) error {
	st, err := r.loadState()
	if err != nil {
		return err
	}
	m, err := vip.New()
	if err != nil {
		return err
	}
	defer m.Close()

	// The sysctls go first: a VIP on lo with arp_ignore=0 would answer ARP
	// and steal the director's traffic, even if only for a moment.
	if slices.ContainsFunc(vips, netip.Addr.Is4) {
		if st.Sysctls == nil {
			st.Sysctls = map[string]string{}
			for _, s := range realserverSysctls() {
				v, err := r.readSysctl(s.name)
				if err != nil {
					return err
				}
				st.Sysctls[s.name] = v
			}
		}
		for _, s := range realserverSysctls() {
			if err := r.setSysctl(s.name, s.value); err != nil {
				return err
			}
		}
		// Saved before any VIP goes on, so a failure below still leaves a
		// record that down can undo.
		if err := r.saveState(st); err != nil {
			return err
		}
	}
	for _, a := range vips {
		v := loVIP(a)
		status, err := m.Status(ctx, a)
		if err != nil {
			return err
		}
		if _, on := status.On("lo"); on {
			r.say0("lo: %v already present", a)
		} else {
			if others := status.Interfaces(); len(others) > 0 {
				return fmt.Errorf("%v is configured on %s: a real server holds the VIP on lo only (is this the director?)", a, strings.Join(others, ", "))
			}
			r.say("add %v/%d to lo", a, v.Prefix)
			if !r.dryRun {
				if _, err := m.Acquire(ctx, v); err != nil {
					return err
				}
			}
		}
		if s := a.String(); !slices.Contains(st.VIPs, s) {
			st.VIPs = append(st.VIPs, s)
		}
	}
	return r.saveState(st)
}

// say0 reports a fact that is the same in a dry run.
func (r *realserver) say0(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

func (r *realserver) down(ctx context.Context, vips []netip.Addr) error {
	st, err := r.loadState()
	if err != nil {
		return err
	}
	if len(vips) == 0 {
		// No operand: undo everything up did.
		for _, s := range st.VIPs {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not an address", r.statePath(), s)
			}
			vips = append(vips, a)
		}
	}
	m, err := vip.New()
	if err != nil {
		return err
	}
	defer m.Close()
	for _, a := range vips {
		status, err := m.Status(ctx, a)
		if err != nil {
			return err
		}
		if _, on := status.On("lo"); !on {
			r.say0("lo: %v not present", a)
		} else {
			r.say("remove %v from lo", a)
			if !r.dryRun {
				if _, err := m.Release(ctx, loVIP(a)); err != nil {
					return err
				}
			}
		}
		st.VIPs = slices.DeleteFunc(st.VIPs, func(s string) bool { return s == a.String() })
	}
	// The ARP settings stay while any VIP we added remains on lo: taking
	// them away would make this host answer ARP for that VIP.
	remaining := 0
	for _, s := range st.VIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		status, err := m.Status(ctx, a)
		if err != nil {
			return err
		}
		if _, on := status.On("lo"); on {
			remaining++
		}
	}
	if remaining > 0 {
		r.say0("keeping the ARP sysctls: %d VIP%s remain on lo", remaining, plural(remaining))
		return r.saveState(st)
	}
	names := make([]string, 0, len(st.Sysctls))
	for _, s := range realserverSysctls() {
		if _, ok := st.Sysctls[s.name]; ok {
			names = append(names, s.name)
		}
	}
	// Restore in reverse order: lo before all, announce before ignore.
	slices.Reverse(names)
	for _, name := range names {
		if err := r.setSysctl(name, st.Sysctls[name]); err != nil {
			return err
		}
	}
	if r.dryRun {
		return nil
	}
	if err := os.Remove(r.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (r *realserver) statePath() string { return filepath.Join(r.stateDir, realserverStateFile) }

func (r *realserver) loadState() (*realserverState, error) {
	st := &realserverState{}
	b, err := os.ReadFile(r.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it to start afresh)", r.statePath(), err)
	}
	return st, nil
}

func (r *realserver) saveState(st *realserverState) error {
	if r.dryRun {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.stateDir, 0o755); err != nil {
		return err
	}
	return writeFileAtomic(r.statePath(), append(b, '\n'), 0o644)
}

func (r *realserver) sysctlPath(name string) string {
	return filepath.Join(r.sysctlRoot, strings.ReplaceAll(name, ".", "/"))
}

func (r *realserver) readSysctl(name string) (string, error) {
	b, err := os.ReadFile(r.sysctlPath(name))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (r *realserver) setSysctl(name, value string) error {
	old, err := r.readSysctl(name)
	if err != nil {
		return err
	}
	if old == value {
		r.say0("%s = %s already", name, value)
		return nil
	}
	r.say("set %s = %s (was %s)", name, value, old)
	if r.dryRun {
		return nil
	}
	if err := os.WriteFile(r.sysctlPath(name), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("setting %s: %w", name, err)
	}
	return nil
}
