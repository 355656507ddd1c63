package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/ipvs"
)

// daemonStatus asks the daemon for its state; control.ErrNoDaemon when none
// runs.
func daemonStatus(ctx context.Context, socket string) (*control.Status, error) {
	resp, err := control.Do(ctx, socket, control.Request{Command: control.CmdStatus})
	if err != nil {
		return nil, err
	}
	if !resp.OK || resp.Status == nil {
		return nil, fmt.Errorf("the daemon refused status: %s", resp.Error)
	}
	return resp.Status, nil
}

// jsonDaemonStatus is `status -o json` with a daemon: the kernel's table in
// the same form as without one, plus the daemon's state.
type jsonDaemonStatus struct {
	IPVS   jsonIPVS        `json:"ipvs"`
	Daemon *control.Status `json:"daemon"`
}

func writeDaemonJSON(w io.Writer, st *control.Status) error {
	out := jsonDaemonStatus{IPVS: ipvsJSON(st.IPVS.Info, st.IPVS.Table)}
	d := *st
	// The table is already under "ipvs", in the documented form.
	d.IPVS = control.IPVS{Info: st.IPVS.Info, Error: st.IPVS.Error}
	out.Daemon = &d
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs ago", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String() + " ago"
	}
	return "since " + t.Format("2006-01-02 15:04:05")
}

// writeDaemonStatus prints the HA section and then the kernel's table in
// ipvsadm's layout, each real server's line followed by its check state.
func writeDaemonStatus(w io.Writer, st *control.Status, o ipvs.ListOptions, now time.Time) error {
	bw := bufio.NewWriter(w)
	ha := st.HA
	state := ha.State
	if !ha.Engine {
		state = "no heartbeat engine"
	}
	fmt.Fprintf(bw, "directord %s on node %s (pid %d), up %s\n", st.Version, st.Node, st.PID, now.Sub(st.Started).Round(time.Second))
	fmt.Fprintf(bw, "  status: %s, holding %s resources (auto_failback %s, %d transitions)\n", state, orNone(ha.Resources), ha.AutoFailback, ha.Transitions)
	if ha.Engine && !ha.Stable {
		fmt.Fprintln(bw, "  resource transition in progress")
	}
	if ha.LastTransition != "" {
		fmt.Fprintf(bw, "  last transition: %s\n", ha.LastTransition)
	}
	for _, p := range ha.Peers {
		fmt.Fprintf(bw, "  peer %s: %s, last heartbeat %s\n", p.Name, p.Status, ago(now, p.LastHeartbeat))
		for _, l := range p.Links {
			fmt.Fprintf(bw, "    link %s: %s\n", l.Name, l.Status)
		}
	}
	for _, pn := range ha.PingNodes {
		fmt.Fprintf(bw, "  ping node %s: %s\n", pn.Name, pn.Status)
	}
	if st.Sync.Enabled {
		fmt.Fprintf(bw, "  IPVS sync daemon: %s on %s (syncid %d)\n", st.Sync.State, st.Sync.Interface, st.Sync.SyncID)
	} else {
		fmt.Fprintf(bw, "  IPVS sync daemon: not configured (%s)\n", st.Sync.State)
	}
	if st.Watchdog.Device != "" {
		fmt.Fprintf(bw, "  watchdog %s: fed %s (timeout %v)\n", st.Watchdog.Device, ago(now, st.Watchdog.LastFeed), st.Watchdog.Interval)
	}
	if st.Reload != nil {
		r := "applied"
		if !st.Reload.OK {
			r = "refused: " + st.Reload.Error
		}
		fmt.Fprintf(bw, "  last reload %s: %s\n", st.Reload.Time.Format("15:04:05"), r)
	}
	for _, e := range st.Errors {
		fmt.Fprintf(bw, "  ERROR: %s\n", e)
	}
	fmt.Fprintln(bw, "Resource groups:")
	for _, g := range st.Groups {
		fmt.Fprintf(bw, "  %s (owner %s): %s since %s\n", g.Name, g.Owner, g.State, g.Since.Format("15:04:05"))
		if g.Error != "" {
			fmt.Fprintf(bw, "    error: %s\n", g.Error)
		}
		for _, r := range g.Resources {
			line := fmt.Sprintf("    %-40s %s", r.Name, r.State)
			if r.Error != "" {
				line += ": " + r.Error
			}
			fmt.Fprintln(bw, line)
		}
	}
	fmt.Fprintln(bw)
	if st.IPVS.Error != "" {
		fmt.Fprintf(bw, "IPVS: %s\n", st.IPVS.Error)
		return bw.Flush()
	}
	if err := writeTableWithChecks(bw, st, o); err != nil {
		return err
	}
	return bw.Flush()
}

// orNone words Heartbeat's rsc_hold for "holding X resources".
func orNone(s string) string {
	if s == "" || s == "none" {
		return "no"
	}
	return s
}

func destName(a netip.Addr, port uint16) string {
	if a.Is6() && !a.Is4In6() {
		return "[" + a.String() + "]:" + strconv.Itoa(int(port))
	}
	return a.Unmap().String() + ":" + strconv.Itoa(int(port))
}

func checkText(r control.Real) string {
	s := r.Health
	if !r.Since.IsZero() {
		s += " since " + r.Since.Format("15:04:05")
	}
	switch {
	case r.LastFailure != "" && r.Health != "up":
		s += ": " + r.LastFailure
		if r.Failures > 1 {
			s += fmt.Sprintf(" (%d checks in a row)", r.Failures)
		}
	case r.LastFailure != "":
		// Kept after recovery: why it last went away.
		s += ", last failure " + r.LastFailureTime.Format("15:04:05") + ": " + r.LastFailure
	}
	if r.Latency > 0 {
		s += ", check " + r.Latency.Round(time.Microsecond*100).String()
	}
	return s
}

// writeTableWithChecks prints the table exactly as ipvsadm would and appends
// the check state to each real server's line. Services are recognised by their
// own first line, rendered alone with the same options, so that the layout
// stays ipvs.WriteList's.
func writeTableWithChecks(w io.Writer, st *control.Status, o ipvs.ListOptions) error {
	var full bytes.Buffer
	if err := ipvs.WriteList(&full, st.IPVS.Info, st.IPVS.Table, o); err != nil {
		return err
	}
	type rkey struct {
		svc  ipvs.ServiceKey
		dest string
	}
	reals := map[rkey]control.Real{}
	shown := map[rkey]bool{}
	for _, r := range st.Reals {
		reals[rkey{r.Service, destName(r.Addr, r.Port)}] = r
	}
	svcByLine := map[string]ipvs.ServiceKey{}
	for _, vs := range st.IPVS.Table {
		var one bytes.Buffer
		one1 := vs
		one1.Destinations = nil
		ipvs.WriteList(&one, st.IPVS.Info, ipvs.Table{one1}, o)
		lines := strings.Split(strings.TrimRight(one.String(), "\n"), "\n")
		svcByLine[lines[len(lines)-1]] = vs.Key()
	}
	lines := strings.Split(strings.TrimRight(full.String(), "\n"), "\n")
	width := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "  -> ") && !strings.HasPrefix(l, "  -> RemoteAddress") && len(l) > width {
			width = len(l)
		}
	}
	var cur ipvs.ServiceKey
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "  -> RemoteAddress"):
			fmt.Fprintf(w, "%-*s  Check\n", width, l)
		case strings.HasPrefix(l, "  -> "):
			name, _, _ := strings.Cut(strings.TrimPrefix(l, "  -> "), " ")
			k := rkey{cur, name}
			if r, ok := reals[k]; ok {
				shown[k] = true
				fmt.Fprintf(w, "%-*s  %s\n", width, l, checkText(r))
			} else {
				fmt.Fprintln(w, l)
			}
		default:
			if k, ok := svcByLine[l]; ok {
				cur = k
			}
			fmt.Fprintln(w, l)
		}
	}
	// Real servers lnoded checks but the kernel does not have (down with
	// quiescent=no): an operator looking for one must see why it is absent.
	first := true
	for _, r := range st.Reals {
		k := rkey{r.Service, destName(r.Addr, r.Port)}
		if shown[k] {
			continue
		}
		if first {
			fmt.Fprintln(w, "Real servers not in the IPVS table:")
			first = false
		}
		fmt.Fprintf(w, "  -> %-28s %s  %s\n", k.dest, r.Service, checkText(r))
	}
	return nil
}
