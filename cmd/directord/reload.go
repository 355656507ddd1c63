package main

import (
	"fmt"
	"io"

	"github.com/directord/directord/internal/control"
)

func runReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reload", "[--socket PATH]", stderr)
	socket := socketFlag(fs.String)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: directord reload [--socket PATH]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Make the daemon read its configuration again (as SIGHUP does) and print what changed.")
		fmt.Fprintln(w, "A configuration with errors is refused, the errors are printed and nothing running")
		fmt.Fprintln(w, "changes; a valid one is applied as the smallest change (one changed weight is one")
		fmt.Fprintln(w, "IPVS operation). Changes to nodes, media, authkeys, timings or the set of resource")
		fmt.Fprintln(w, "groups need a restart and are refused.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Options:")
		printOptions(fs)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Exit status: 0 reloaded, 1 refused or no daemon, 2 usage error.")
	}
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord reload: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	return doRequest("reload", *socket, control.Request{Command: control.CmdReload}, stdout, stderr)
}
