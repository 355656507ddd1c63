package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/directord/directord/testbed/demo"
	"github.com/directord/directord/testbed/vm"
)

// guestSummary is where the guest leaves the summary for the host to collect.
const guestSummary = "/job/summary.json"

func runTestbed(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("testbed", "[--scenario NAME] [--requests N] [--interval D] [--json] [--list]", stderr)
	scenario := fs.String("scenario", "basic", "scenario to run (see --list)")
	requests := fs.Int("requests", 200, "HTTP requests the client sends through the VIP")
	interval := fs.Duration("interval", 10*time.Millisecond, "pause between two requests")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on stdout (progress goes to stderr)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	summaryFile := fs.String("summary-file", "", "also write the JSON summary to this file (used inside the VM)")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if *list {
		scenarios := demo.Scenarios()
		names := make([]string, 0, len(scenarios))
		for n := range scenarios {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stdout, "%-12s %s\n", n, scenarios[n])
		}
		return exitOK
	}
	if _, ok := demo.Scenarios()[*scenario]; !ok {
		fmt.Fprintf(stderr, "directord testbed: unknown scenario %q; run 'directord testbed --list'\n", *scenario)
		return exitUsage
	}
	if *requests <= 0 {
		fmt.Fprintln(stderr, "directord testbed: --requests must be at least 1")
		return exitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "directord testbed: must run as root (it creates network namespaces and programs IPVS)")
		return exitFailure
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var sum demo.Summary
	if vm.HasIPVS() || vm.InGuest() {
		progress := stdout
		if *asJSON {
			progress = stderr
		}
		var err error
		sum, err = demo.Run(ctx, *scenario, demo.Options{Requests: *requests, Interval: *interval, Progress: progress, Table: progress})
		if err != nil {
			fmt.Fprintf(stderr, "directord testbed: %v\n", err)
			return exitFailure
		}
		if *summaryFile != "" {
			data, _ := json.Marshal(sum)
			if err := os.WriteFile(*summaryFile, data, 0o644); err != nil {
				fmt.Fprintf(stderr, "directord testbed: %v\n", err)
				return exitFailure
			}
			// The host that started this guest prints the summary.
			return exitOK
		}
	} else {
		var code int
		sum, code = testbedInVM(ctx, *scenario, *requests, *interval, *asJSON, stdout, stderr)
		if code != exitOK {
			return code
		}
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "directord testbed: %v\n", err)
			return exitFailure
		}
	} else {
		writeTestbedSummary(stdout, sum)
	}
	if sum.RequestsLost > 0 {
		return exitFailure
	}
	return exitOK
}

// testbedInVM runs this same binary in the testbed VM, because the host
// kernel has no IPVS, and brings the summary back.
func testbedInVM(ctx context.Context, scenario string, requests int, interval time.Duration, asJSON bool, stdout, stderr io.Writer) (demo.Summary, int) {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "directord testbed: %v\n", err)
		return demo.Summary{}, exitFailure
	}
	console := stdout
	if asJSON {
		console = stderr
	}
	fmt.Fprintln(stderr, "testbed: this kernel has no IPVS: booting the testbed VM (Debian cloud kernel under qemu)")
	res, err := vm.Run(ctx, vm.Job{
		Path: exe,
		Args: []string{"testbed", "--scenario", scenario, "--requests", strconv.Itoa(requests),
			"--interval", interval.String(), "--summary-file", guestSummary},
		Collect: []string{guestSummary},
		Stdout:  console,
	})
	if err != nil {
		fmt.Fprintf(stderr, "directord testbed: %v\n", err)
		return demo.Summary{}, exitFailure
	}
	fmt.Fprintf(stderr, "testbed: VM booted in %v, ran for %v\n", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	var sum demo.Summary
	for _, f := range res.Files {
		if f.Guest == guestSummary {
			if err := json.Unmarshal(f.Data, &sum); err != nil {
				fmt.Fprintf(stderr, "directord testbed: summary from the VM: %v\n", err)
				return sum, exitFailure
			}
			return sum, exitOK
		}
	}
	fmt.Fprintf(stderr, "directord testbed: the run in the VM failed (exit %d) and left no summary\n", res.ExitCode)
	return sum, exitFailure
}

func writeTestbedSummary(w io.Writer, s demo.Summary) {
	fmt.Fprintf(w, "\nSummary (scenario %s)\n", s.Scenario)
	fmt.Fprintf(w, "  requests sent      %d\n", s.RequestsSent)
	fmt.Fprintf(w, "  requests lost      %d\n", s.RequestsLost)
	fmt.Fprintf(w, "  longest gap        %.1f ms\n", s.LongestGapMS)
	names := make([]string, 0, len(s.AnsweredBy))
	for n := range s.AnsweredBy {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  answered by %-6s %d\n", n, s.AnsweredBy[n])
	}
	fmt.Fprintf(w, "  IPVS ops to set up %d\n", s.IPVSOps)
	if s.FirstErrorText != "" {
		fmt.Fprintf(w, "  first error        %s\n", s.FirstErrorText)
	}
}
