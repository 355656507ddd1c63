package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/directord/directord/testbed/demo"
	"github.com/directord/directord/testbed/vm"
)

// guestSummary is where the guest leaves the summary for the host to collect.
const guestSummary = "/job/summary.json"

func runTestbed(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("testbed", "[--scenario NAME] [--json] [--list] [OPTIONS]", stderr)
	scenario := fs.String("scenario", demo.DefaultScenario, "scenario to run (see --list)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on stdout (progress goes to stderr)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	noSync := fs.Bool("no-sync", false, "turn the IPVS connection sync daemon off (the daemons run from the imported YAML with sync disabled), so established connections break on a takeover")
	keepalive := fs.Duration("keepalive", demo.DefaultTiming.Keepalive, "ha.cf keepalive")
	deadtime := fs.Duration("deadtime", demo.DefaultTiming.Deadtime, "ha.cf deadtime (warntime is 3/5 of it, initdead 4×, at least 2s)")
	hold := fs.Duration("hold", 2*time.Second, "traffic before the scenario's event and after the service settles")
	summaryFile := fs.String("summary-file", "", "also write the JSON summary to this file (used inside the VM)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: directord testbed [--scenario NAME] [--json] [--list] [OPTIONS]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Build the appliance in network namespaces and fail something while a client uses it:")
		fmt.Fprintln(w, "a client, two directors running real `directord run` daemons (seed-style /etc/ha.d,")
		fmt.Fprintln(w, "ucast heartbeats on the LAN and on a dedicated cable, IPVS connection sync on the cable),")
		fmt.Fprintln(w, "two LVS-DR real servers prepared with `directord realserver up` serving web, DNS over UDP")
		fmt.Fprintln(w, "and TCP, and echo. The client sends HTTP requests and DNS queries through the VIP and")
		fmt.Fprintln(w, "holds 10 long-lived connections; the summary says what it lost and for how long.")
		fmt.Fprintln(w, "Needs root. Runs in a qemu VM (Debian's cloud kernel) when this kernel has no IPVS:")
		fmt.Fprintln(w, "prepare it once with `go run ./testbed/vm/cmd/vmprep` (testbed/demo.sh does).")
		fmt.Fprintln(w, "Everything it creates is removed at the end, also on Ctrl-C.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Scenarios:")
		writeScenarios(w)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Options:")
		printOptions(fs)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Exit status: 0 when every expectation of the scenario held, 1 when one did not or the")
		fmt.Fprintln(w, "testbed failed, 2 on a usage error, 130 when interrupted.")
	}
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord testbed: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *list {
		writeScenarios(stdout)
		return exitOK
	}
	if _, ok := demo.Scenarios()[*scenario]; !ok {
		fmt.Fprintf(stderr, "directord testbed: unknown scenario %q; run 'directord testbed --list'\n", *scenario)
		return exitUsage
	}
	if *keepalive <= 0 || *deadtime <= 2**keepalive {
		fmt.Fprintln(stderr, "directord testbed: --deadtime must be more than twice --keepalive, which must be positive")
		return exitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "directord testbed: must run as root (it creates network namespaces and programs IPVS); try sudo")
		return exitFailure
	}
	timing := demo.Timing{Keepalive: *keepalive, Warntime: *deadtime * 3 / 5, Deadtime: *deadtime, Initdead: max(4**deadtime, 2*time.Second)}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	progress := stdout
	if *asJSON {
		progress = stderr
	}
	var sum demo.Summary
	if vm.HasIPVS() || vm.InGuest() {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "directord testbed: finding this program for the daemons: %v\n", err)
			return exitFailure
		}
		sum, err = demo.Run(ctx, *scenario, demo.Options{Binary: exe, Timing: timing, NoSync: *noSync, Hold: *hold, Progress: progress})
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(stderr, "directord testbed: interrupted; everything it created was removed")
				return 130
			}
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
		gargs := []string{"testbed", "--scenario", *scenario, "--keepalive", keepalive.String(),
			"--deadtime", deadtime.String(), "--hold", hold.String(), "--summary-file", guestSummary}
		if *noSync {
			gargs = append(gargs, "--no-sync")
		}
		var code int
		sum, code = testbedInVM(ctx, gargs, progress, stderr)
		if code != exitOK {
			return code
		}
	}

	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(sum); err != nil {
			fmt.Fprintf(stderr, "directord testbed: %v\n", err)
			return exitFailure
		}
	} else {
		writeTestbedSummary(stdout, sum)
	}
	if !sum.OK {
		return exitFailure
	}
	return exitOK
}

func writeScenarios(w io.Writer) {
	sc := demo.Scenarios()
	for _, n := range demo.ScenarioNames() {
		def := ""
		if n == demo.DefaultScenario {
			def = " (default)"
		}
		fmt.Fprintf(w, "  %-12s %s%s\n", n, sc[n], def)
	}
}

// testbedInVM runs this same binary in the testbed VM, because the host
// kernel has no IPVS, and brings the summary back.
func testbedInVM(ctx context.Context, args []string, console, stderr io.Writer) (demo.Summary, int) {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "directord testbed: %v\n", err)
		return demo.Summary{}, exitFailure
	}
	fmt.Fprintln(console, "testbed: this kernel has no IPVS: booting the testbed VM (Debian cloud kernel under qemu, TCG)")
	res, err := vm.Run(ctx, vm.Job{Path: exe, Args: args, Collect: []string{guestSummary}, Stdout: console})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "directord testbed: interrupted; the VM and everything in it are gone")
			return demo.Summary{}, 130
		}
		fmt.Fprintf(stderr, "directord testbed: %v\n", err)
		if errors.Is(err, vm.ErrPrerequisite) {
			fmt.Fprintln(stderr, "directord testbed: `sudo bash testbed/demo.sh` installs and prepares what the VM needs")
		}
		return demo.Summary{}, exitFailure
	}
	fmt.Fprintf(console, "testbed: VM booted in %v, ran for %v\n", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	for _, f := range res.Files {
		if f.Guest == guestSummary {
			var sum demo.Summary
			if err := json.Unmarshal(f.Data, &sum); err != nil {
				fmt.Fprintf(stderr, "directord testbed: summary from the VM: %v\n", err)
				return sum, exitFailure
			}
			return sum, exitOK
		}
	}
	fmt.Fprintf(stderr, "directord testbed: the run in the VM failed (exit %d) and left no summary; its output is above\n", res.ExitCode)
	return demo.Summary{}, exitFailure
}

func writeTestbedSummary(w io.Writer, s demo.Summary) {
	fmt.Fprintf(w, "\nSummary: %s — %s\n", s.Scenario, s.Description)
	sync := "IPVS connection sync on"
	if !s.ConnSync {
		sync = "no connection sync"
	}
	fmt.Fprintf(w, "  timing                 %s; %s\n", s.Timing, sync)
	opt := func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f ms", *p)
	}
	fmt.Fprintf(w, "  time to takeover       %s\n", opt(s.TakeoverMS))
	if s.FailbackMS != nil {
		fmt.Fprintf(w, "  time to failback/heal  %s\n", opt(s.FailbackMS))
	}
	fmt.Fprintf(w, "  VIP held by nobody     %.0f ms at most; by both %.0f ms at most\n", s.VIPAbsentMS, s.VIPBothMS)
	fmt.Fprintf(w, "  longest gap            %.0f ms (longest time a request stream went unanswered)\n", s.LongestGapMS)
	fmt.Fprintf(w, "  gap in the disruption  %.0f ms (the longest of those from the event to the service settling, plus 1 s)\n", s.WindowGapMS)
	fmt.Fprintf(w, "  gap outside it         %.0f ms (the longest at other times: this machine's own noise)\n", s.QuietGapMS)
	fmt.Fprintf(w, "  requests lost          %d of %d (%d outside the disruption)\n", s.RequestsLost, s.RequestsSent, s.RequestsLostOutsideWindow)
	if s.HandoffForwarded != nil && s.ResetsHeldBack != nil {
		fmt.Fprintf(w, "  handoff                %.0f segments passed back to node1, %.0f resets held back\n", *s.HandoffForwarded, *s.ResetsHeldBack)
	}
	for _, st := range []struct {
		name string
		s    demo.Stream
	}{{"HTTP", s.HTTP}, {"DNS over UDP", s.DNSUDP}, {"DNS over TCP", s.DNSTCP}} {
		fmt.Fprintf(w, "    %-13s %5d sent, %3d lost, longest gap %6.0f ms", st.name, st.s.Sent, st.s.Lost, st.s.LongestGapMS)
		if st.s.FirstError != "" {
			fmt.Fprintf(w, " (first error: %s)", st.s.FirstError)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  connections broken     %d of %d long-lived\n", s.ConnectionsBroken, s.ConnectionsHeld)
	for _, r := range s.BrokenReasons {
		fmt.Fprintf(w, "    %s\n", r)
	}
	on := strings.Join(s.VIPOn, " and ")
	if on == "" {
		on = "nobody"
	}
	fmt.Fprintf(w, "  VIP at the end on      %s\n", on)
	fmt.Fprintln(w, "  checks:")
	for _, c := range s.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "    %s %s: %s\n", mark, c.What, c.Detail)
	}
	verdict := "every expectation held"
	if !s.OK {
		verdict = "SOME EXPECTATIONS DID NOT HOLD"
	}
	fmt.Fprintf(w, "  %s (setup %.1f s, traffic %.1f s)\n", verdict, s.SetupMS/1000, s.TrafficMS/1000)
}
