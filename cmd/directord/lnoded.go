package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded"
	"github.com/directord/directord/lnoded/config"
)

func runLnoded(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lnoded", "[--config FILE] [--check] [--debug]", stderr)
	cfgPath := fs.String("config", "/etc/ha.d/lnoded.cf", "the lnoded.cf (ldirectord.cf syntax) to run; a bare name is looked for in /etc/ha.d first, as ldirectord does")
	checkOnly := fs.Bool("check", false, "only parse the file: print its errors and warnings, exit 0 when it is valid")
	debug := fs.Bool("debug", false, "log at debug level too")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord lnoded: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	path := findConfig(*cfgPath)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.ParseFile(ctx, path, nil)
	if err != nil {
		if list, ok := config.AsErrorList(err); ok {
			for _, e := range list {
				fmt.Fprintln(stderr, e)
			}
		} else {
			fmt.Fprintf(stderr, "directord lnoded: %v\n", err)
		}
		return exitFailure
	}
	if *checkOnly {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "Warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "%s: %d virtual services, valid\n", path, len(cfg.Virtuals))
		return exitOK
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	h, err := ipvs.Open()
	if err != nil {
		logger.Error("Can not open IPVS: " + err.Error())
		return exitFailure
	}
	defer h.Close()
	logger.Info(fmt.Sprintf("Starting directord lnoded %s with pid: %d", version, os.Getpid()), "config", path)

	// SIGHUP reloads, as ldirectord's; SIGTERM and SIGINT stop (cleanstop).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(term)
	reload := make(chan struct{}, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			case s := <-term:
				logger.Info("lnoded terminated on signal: " + signalName(s))
			}
		}
	}()
	if err := lnoded.RunFile(ctx, path, h, logger, reload); err != nil {
		logger.Error(err.Error())
		return exitFailure
	}
	return exitOK
}

// findConfig resolves a bare file name the way ldirectord does: in
// /etc/ha.d when it is there, else as given.
func findConfig(p string) string {
	if !strings.Contains(p, "/") {
		for _, dir := range []string{"/etc/ha.d", "/etc/ha.d/conf"} {
			if st, err := os.Stat(filepath.Join(dir, p)); err == nil && st.Mode().IsRegular() {
				return filepath.Join(dir, p)
			}
		}
	}
	return p
}

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case os.Interrupt:
		return "INT"
	}
	return s.String()
}
