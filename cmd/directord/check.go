package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/directord/directord/config"
	lnoded "github.com/directord/directord/lnoded/config"
)

// Where the configuration is when neither --ha-dir nor --config is given:
// directord's own file first, then Heartbeat's directory being migrated.
const (
	defaultConfigFile = "/etc/directord/directord.yaml"
	defaultHADir      = "/etc/ha.d"
)

// loadTimeout bounds name lookups in lnoded.cf files, so that check never
// hangs on a dead resolver.
const loadTimeout = 30 * time.Second

// configFlags are the flags every command that reads the configuration has.
type configFlags struct {
	haDir, file, node *string
}

func addConfigFlags(fs interface {
	String(name, value, usage string) *string
}) configFlags {
	return configFlags{
		haDir: fs.String("ha-dir", "", "read the Heartbeat directory `DIR` (ha.cf, haresources, authkeys, lnoded.cf)"),
		file:  fs.String("config", "", "read the directord YAML `FILE` (default "+defaultConfigFile+" if it exists, else --ha-dir "+defaultHADir+")"),
		node:  fs.String("node", "", "this node's cluster `NAME` (default: uname -n)"),
	}
}

// load reads the configuration the flags name. It returns the source
// described for messages, and an error that is either a usage problem
// (errUsage) or the loader's ErrorList.
func (f configFlags) load(ctx context.Context, anyNode bool) (*config.Config, string, error) {
	if *f.haDir != "" && *f.file != "" {
		return nil, "", fmt.Errorf("%w: give --ha-dir or --config, not both", errUsage)
	}
	opts := &config.Options{NodeName: *f.node, AnyNode: anyNode}
	switch {
	case *f.haDir != "":
		c, err := config.LoadHADir(ctx, *f.haDir, opts)
		return c, *f.haDir, err
	case *f.file != "":
		c, err := config.LoadYAML(ctx, *f.file, opts)
		return c, *f.file, err
	}
	if _, err := os.Stat(defaultConfigFile); err == nil {
		c, err := config.LoadYAML(ctx, defaultConfigFile, opts)
		return c, defaultConfigFile, err
	}
	c, err := config.LoadHADir(ctx, defaultHADir, opts)
	return c, defaultHADir, err
}

// reportLoadError prints a loader's errors one per line, compiler style,
// and returns the exit code.
func reportLoadError(stderr io.Writer, cmd string, err error) int {
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "directord %s: %v\n", cmd, err)
		return exitUsage
	}
	if list, ok := config.AsErrorList(err); ok {
		for _, e := range list {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "directord %s: %d error%s; nothing was changed\n", cmd, len(list), plural(len(list)))
		return exitFailure
	}
	fmt.Fprintf(stderr, "directord %s: %v\n", cmd, err)
	return exitFailure
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "[--ha-dir DIR | --config FILE] [--node NAME] [-q]", stderr)
	cf := addConfigFlags(fs)
	quiet := fs.Bool("q", false, "print nothing when the configuration is valid")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord check: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	c, src, err := cf.load(ctx, false)
	if err != nil {
		return reportLoadError(stderr, "check", err)
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if !*quiet {
		writeSummary(stdout, src, c)
	}
	return exitOK
}

// writeSummary prints one screen about c: who, over which links, holding
// what, balancing which services.
func writeSummary(w io.Writer, src string, c *config.Config) {
	cl := c.Cluster
	fmt.Fprintf(w, "%s: valid (%s)\n\n", src, strings.Join(c.Sources, ", "))

	var nodes []string
	for _, n := range cl.Nodes {
		if n == cl.ThisNode {
			n += " (this node)"
		}
		nodes = append(nodes, n)
	}
	fmt.Fprintf(w, "Nodes:     %s\n", strings.Join(nodes, ", "))
	fmt.Fprintf(w, "Timing:    keepalive %v, warntime %v, deadtime %v, initdead %v; auto_failback %s\n",
		cl.Keepalive, cl.WarnTime, cl.DeadTime, cl.InitDead, cl.AutoFailback)
	var links []string
	for _, m := range cl.Media {
		switch m.Type {
		case config.Ucast:
			links = append(links, fmt.Sprintf("ucast %s → %s:%d", m.Interface, m.Peer, m.Port))
		case config.Mcast:
			links = append(links, fmt.Sprintf("mcast %s %v:%d ttl %d", m.Interface, m.Group, m.Port, m.TTL))
		default:
			links = append(links, fmt.Sprintf("%s %s:%d", m.Type, m.Interface, m.Port))
		}
	}
	fmt.Fprintf(w, "Links:     %s\n", strings.Join(links, "; "))
	if k, ok := c.Auth.ActiveKey(); ok {
		fmt.Fprintf(w, "Auth:      key %d, %s (%d key%s)\n", k.Num, k.Method, len(c.Auth.Keys), plural(len(c.Auth.Keys)))
	}
	var pings []string
	for _, p := range cl.PingNodes {
		pings = append(pings, p.Host)
	}
	for _, g := range cl.PingGroups {
		pings = append(pings, fmt.Sprintf("%s(%s)", g.Name, strings.Join(g.Hosts, " ")))
	}
	if len(pings) > 0 {
		ipfail := "off"
		if cl.IPFail {
			ipfail = "on"
		}
		fmt.Fprintf(w, "Ping:      %s; ipfail %s\n", strings.Join(pings, ", "), ipfail)
	}
	var fencing []string
	if cl.Watchdog != "" {
		fencing = append(fencing, "watchdog "+cl.Watchdog)
	}
	if cl.Stonith != nil {
		fencing = append(fencing, "stonith "+strings.Join(cl.Stonith.Command, " "))
	}
	if len(fencing) > 0 {
		fmt.Fprintf(w, "Fencing:   %s\n", strings.Join(fencing, "; "))
	}

	fmt.Fprintf(w, "\nResource groups (started left to right, stopped right to left):\n")
	if len(c.Groups) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, g := range c.Groups {
		var rs []string
		for _, r := range g.Resources {
			rs = append(rs, r.String())
		}
		fmt.Fprintf(w, "  %-20s %s\n", g.Owner+":", strings.Join(rs, " "))
	}

	vs := c.Virtuals()
	fmt.Fprintf(w, "\nVirtual services:\n")
	if len(vs) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, v := range vs {
		fmt.Fprintf(w, "  %s\n", describeVirtual(v))
	}

	d := c.Directord
	sync := "off"
	if d.Sync.Enabled {
		sync = fmt.Sprintf("on %s syncid %d", d.Sync.Interface, d.Sync.SyncID)
	}
	metrics := "off"
	if d.MetricsListen != "" {
		metrics = d.MetricsListen
	}
	fmt.Fprintf(w, "\nDirectord: socket %s, state %s, metrics %s, conn sync %s, GARP %d×%v",
		d.ControlSocket, d.StateDir, metrics, sync, d.GARP.Count, d.GARP.Interval)
	if d.GARP.Refresh > 0 {
		fmt.Fprintf(w, " every %v", d.GARP.Refresh)
	}
	fmt.Fprintln(w)
}

// describeVirtual renders a virtual service on one line, ipvsadm style:
// "TCP 192.0.2.101:80 rr → 192.0.2.200:80 gate w1, … (negotiate http)".
func describeVirtual(v lnoded.Virtual) string {
	var b strings.Builder
	if v.Protocol == lnoded.FWM {
		fmt.Fprintf(&b, "FWM %d", v.FWMark)
		if v.IPv6 {
			b.WriteString(" IPv6")
		}
	} else {
		fmt.Fprintf(&b, "%s %s", strings.ToUpper(v.Protocol.String()), netip.AddrPortFrom(v.Addr, v.Port).String())
	}
	fmt.Fprintf(&b, " %s", v.Scheduler)
	if v.Persistent {
		fmt.Fprintf(&b, " persistent %v", v.PersistentTimeout)
	}
	reals := make([]string, 0, len(v.Reals))
	for _, r := range v.Reals {
		port := r.Port
		if port == 0 {
			port = v.Port
		}
		reals = append(reals, fmt.Sprintf("%s %s w%d", netip.AddrPortFrom(r.Addr, port).String(), r.Method, r.Weight))
	}
	sort.Strings(reals)
	fmt.Fprintf(&b, " → %s", strings.Join(reals, ", "))
	check := v.CheckType.String()
	if v.CheckType == lnoded.CheckNegotiate {
		check += " " + v.Service.String()
	}
	quiescent := ""
	if v.Quiescent {
		quiescent = ", quiescent"
	}
	fmt.Fprintf(&b, " (check %s every %v%s)", check, v.CheckInterval, quiescent)
	return b.String()
}
