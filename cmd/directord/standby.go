package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/internal/control"
)

// clientTimeout bounds a command sent to the daemon. Standby and takeover
// return once the request is made, not when the resources have moved.
const clientTimeout = 2 * time.Minute

// socketFlag adds --socket to a client command's flags.
func socketFlag(fsAdd func(name, value, usage string) *string) *string {
	return fsAdd("socket", config.DefaultControlSocket, "the daemon's control socket (directord run --socket)")
}

// runMove is standby and takeover: hb_standby and hb_takeover.
func runMove(cmd, what string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(cmd, "[--socket PATH] [all|foreign|local|failback]", stderr)
	socket := socketFlag(fs.String)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: directord %s [--socket PATH] [all|foreign|local|failback]\n\n", cmd)
		fmt.Fprintln(w, what)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "  all       every resource group (the default)")
		fmt.Fprintln(w, "  local     the groups this node owns in haresources")
		fmt.Fprintln(w, "  foreign   the groups the other node owns")
		fmt.Fprintln(w, "  failback  the foreign groups (the auto_failback handover)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "The command returns once the daemon has sent the request; watch `directord status`")
		fmt.Fprintln(w, "for the resources to move.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Options:")
		printOptions(fs)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Exit status: 0 request accepted, 1 refused or no daemon, 2 usage error.")
	}
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	which := control.WhichAll
	switch fs.NArg() {
	case 0:
	case 1:
		which = fs.Arg(0)
		if !control.ValidWhich(which) {
			fmt.Fprintf(stderr, "directord %s: %q: expected all, foreign, local or failback\n", cmd, which)
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "directord %s: unexpected argument %q\n", cmd, fs.Arg(1))
		return exitUsage
	}
	return doRequest(cmd, *socket, control.Request{Command: cmd, Which: which}, stdout, stderr)
}

// doRequest sends one command to the daemon and prints its message.
func doRequest(cmd, socket string, req control.Request, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	resp, err := control.Do(ctx, socket, req)
	if err != nil {
		if errors.Is(err, control.ErrNoDaemon) {
			fmt.Fprintf(stderr, "directord %s: %v\n", cmd, errNoDaemon)
		} else {
			fmt.Fprintf(stderr, "directord %s: %v\n", cmd, err)
		}
		return exitFailure
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "directord %s: %s\n", cmd, resp.Error)
		return exitFailure
	}
	if resp.Message != "" {
		fmt.Fprintln(stdout, resp.Message)
	}
	return exitOK
}

func runStandby(args []string, stdout, stderr io.Writer) int {
	return runMove(control.CmdStandby, "Give resource groups up to the peer, as Heartbeat's hb_standby does.", args, stdout, stderr)
}
