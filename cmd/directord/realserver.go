package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/deploy/realserver"
)

// realserverTimeout bounds the netlink work of one invocation.
const realserverTimeout = 30 * time.Second

func runRealserver(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("realserver", "up|down [VIP…] [--dry-run] [--state-dir DIR]", stderr)
	dryRun := fs.Bool("dry-run", false, "print what would be done and change nothing")
	stateDir := fs.String("state-dir", config.DefaultStateDir, "`DIR` where the VIPs added and the sysctl values to restore are kept")
	// Flags may follow the operands, as with GNU tools.
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
	var vips []netip.Addr
	for _, s := range ops[1:] {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimSuffix(s, "/32"), "/128"))
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() {
			fmt.Fprintf(stderr, "directord realserver: %q is not a VIP (a unicast IP address)\n", s)
			return exitUsage
		}
		vips = append(vips, a.Unmap())
	}
	if ops[0] == "up" && len(vips) == 0 {
		fmt.Fprintf(stderr, "directord realserver up: name at least one VIP\n")
		return exitUsage
	}

	p, err := realserver.New(realserver.Options{StateDir: *stateDir, DryRun: *dryRun, Report: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "directord realserver: %v\n", err)
		return exitFailure
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), realserverTimeout)
	defer cancel()
	if ops[0] == "up" {
		err = p.Up(ctx, vips)
	} else {
		err = p.Down(ctx, vips)
	}
	if err != nil {
		fmt.Fprintf(stderr, "directord realserver %s: %v\n", ops[0], err)
		return exitFailure
	}
	return exitOK
}
