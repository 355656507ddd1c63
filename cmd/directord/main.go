// Command directord turns two Linux machines into a highly available LVS-DR director pair.
//
// One binary holds the daemon and the tools an operator uses around it; run
// `directord --help` for the list of subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes are part of the interface: scripts tell a usage error from a failure.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set at link time (-ldflags "-X main.version=…") by the package build.
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"lnoded", "run the check+IPVS module alone in the foreground on an lnoded.cf (like ldirectord -d)", runLnoded},
		{"check", "validate the configuration and print a summary of it", runCheck},
		{"import", "convert an /etc/ha.d directory into directord's YAML", runImport},
		{"realserver", "prepare this host as an LVS-DR real server (VIP on lo, ARP sysctls)", runRealserver},
		{"run", "run the director daemon: heartbeat, resource groups, IPVS sync, watchdog, control socket", runRun},
		{"status", "print the IPVS table (as ipvsadm -Ln does) and, with a daemon, HA and check state", runStatus},
		{"standby", "give resource groups up to the peer (hb_standby)", runStandby},
		{"takeover", "take resource groups over from the peer (hb_takeover)", runTakeover},
		{"reload", "make the daemon read its configuration again (as SIGHUP does)", runReload},
		{"testbed", "run the LVS-DR testbed in network namespaces (in a VM when this kernel has no IPVS)", runTestbed},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks errors caused by the command line rather than the system.
var errUsage = errors.New("usage error")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "directord: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: directord COMMAND [OPTIONS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "directord runs an LVS-DR director pair: heartbeat, VIPs, IPVS and real-server checks.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'directord COMMAND --help' for a command's options.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 failure, 2 usage error.")
}

// newFlagSet returns a flag set whose errors and help go to stderr and whose
// usage text starts with the command's synopsis.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("directord "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: directord %s %s\n\nOptions:\n", name, synopsis)
		printOptions(fs)
	}
	return fs
}

// printOptions lists the flags GNU-style: long names with two dashes, as
// operators type them and as ipvsadm documents its own options.
func printOptions(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		arg, help := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		line := fmt.Sprintf("  %s%s%s", dash, f.Name, arg)
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(fs.Output(), "%-26s %s%s\n", line, help, def)
	})
}

// parseFlags parses args and maps the outcome to an exit code: -1 means go on.
// Help asked for goes to stdout; help shown because of a mistake goes to stderr.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) int {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", stderr)
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "directord %s\n", version)
	return exitOK
}
