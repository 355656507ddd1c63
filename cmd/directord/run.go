package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/internal/daemon"
)

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "[--ha-dir DIR | --config FILE.yaml] [--node NAME] [--state-dir DIR] [--socket PATH] [--metrics ADDR]", stderr)
	haDir := fs.String("ha-dir", "/etc/ha.d", "Heartbeat configuration directory: ha.cf, haresources, authkeys, lnoded.cf")
	cfgFile := fs.String("config", "", "YAML configuration file, used instead of --ha-dir")
	node := fs.String("node", "", "this node's name in the cluster (default: the host name, lowercased)")
	stateDir := fs.String("state-dir", "", "where the node's uuid and generation are kept (default: the configuration's, "+config.DefaultStateDir+")")
	socket := fs.String("socket", "", "control socket (default: the configuration's, "+config.DefaultControlSocket+")")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this host:port (default: the configuration's, none)")
	initDir := fs.String("init-dir", "/etc/init.d", "where resource scripts not in HA-DIR/resource.d are looked for")
	scriptTimeout := fs.Duration("script-timeout", daemon.DefaultScriptTimeout, "longest run of a resource script's start, stop or status")
	debug := fs.Bool("debug", false, "log debug messages too")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: directord run [--ha-dir DIR | --config FILE.yaml] [OPTIONS]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Run the director daemon in the foreground: heartbeat with the peer, the resource")
		fmt.Fprintln(w, "groups of haresources (VIPs, lnoded, scripts), the IPVS sync daemon, the watchdog,")
		fmt.Fprintln(w, "the control socket and the metrics. Logs go to standard error.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Signals:")
		fmt.Fprintln(w, "  SIGTERM, SIGINT  graceful stop: hand the resources over to the peer at once, then exit")
		fmt.Fprintln(w, "  SIGHUP           reload the configuration; one with errors is refused and nothing changes")
		fmt.Fprintln(w, "  SIGUSR1          restart in place (same pid, e.g. after an upgrade of the binary): the")
		fmt.Fprintln(w, "                   new daemon resumes the heartbeat and adopts the VIPs, IPVS table and")
		fmt.Fprintln(w, "                   sync daemon: the peer sees no restart, nothing fails over (refused")
		fmt.Fprintln(w, "                   while the configuration has errors)")
		fmt.Fprintln(w, "  SIGUSR2          exit leaving everything in place, for a new daemon started by someone")
		fmt.Fprintln(w, "                   else within the deadtime (not under systemd, which would not start one)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Options:")
		printOptions(fs)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Exit status: 0 after a graceful stop, 1 on a failure, 2 on a usage error.")
	}
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord run: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	opts := daemon.Options{
		HADir: *haDir, ConfigFile: *cfgFile, NodeName: *node, StateDir: *stateDir, Socket: *socket,
		MetricsListen: *metrics, InitDir: *initDir, ScriptTimeout: *scriptTimeout,
		Version: version, Logger: logger,
	}
	if *cfgFile != "" {
		opts.HADir = ""
	}

	// Signals are taken before anything starts, so that a SIGTERM during
	// start-up is a graceful stop too, not the default (death).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	loadCtx, cancelLoad := context.WithTimeout(context.Background(), time.Minute)
	d, err := daemon.New(loadCtx, opts)
	cancelLoad()
	if err != nil {
		if l, ok := config.AsErrorList(err); ok {
			for _, e := range l {
				fmt.Fprintf(stderr, "directord run: %v\n", e)
			}
			fmt.Fprintf(stderr, "directord run: configuration has %d error(s); nothing was started\n", len(l))
		} else {
			fmt.Fprintf(stderr, "directord run: %v\n", err)
		}
		return exitFailure
	}
	defer d.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	reexec := false
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(stderr, "directord run: %v\n", err)
				return exitFailure
			}
			if reexec {
				d.Close()
				signal.Stop(sigs)
				return reexecSelf(stderr)
			}
			return exitOK
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				go func() {
					rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					// Reload logs its own outcome.
					d.Reload(rctx)
				}()
			case syscall.SIGUSR1:
				if reexec {
					continue
				}
				cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := d.CheckConfig(cctx)
				cancel()
				if err == nil {
					_, err = os.Stat(executable())
				}
				if err != nil {
					logger.Error("Received " + s.String() + ": not restarting in place, the new daemon could not start: " + err.Error())
					continue
				}
				logger.Info("Received " + s.String() + ": restarting in place")
				reexec = true
				d.DetachForReexec()
			case syscall.SIGUSR2:
				d.Detach()
			default:
				logger.Info("Received " + s.String() + ": stopping gracefully")
				stop()
			}
		}
	}
}

// reexecSelf replaces this process with a fresh start of the same program
// (the binary now at its path, which may have been upgraded) and the same
// arguments. It returns only on failure.
func reexecSelf(stderr io.Writer) int {
	err := syscall.Exec(executable(), os.Args, os.Environ())
	fmt.Fprintf(stderr, "directord run: restarting in place: %v; VIPs and IPVS were left running: start directord again within the deadtime\n", err)
	return exitFailure
}

// executable is the program's path: an upgrade replaces the file there, and
// os.Executable names it even after the running one was deleted.
func executable() string {
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return os.Args[0]
}

// errNoDaemon is what the client commands print when no daemon answers.
var errNoDaemon = errors.New("no directord daemon answers on the control socket (is `directord run` running? see --socket)")
