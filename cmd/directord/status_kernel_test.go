package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/directord/directord/testbed/vm"
)

// The tests of this package read and change the kernel's IPVS table: on a
// host without IPVS they run in a qemu guest (testbed/vm).
func TestMain(m *testing.M) { vm.Main(m) }

const ipvsadmPath = "/usr/sbin/ipvsadm"

func ipvsadm(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(ipvsadmPath, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ipvsadm %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func directord(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// seedTable is the reference table: TCP and UDP :53 services, rr and
// wrr, DR destinations, weight 0, a fwmark service, IPv6, persistence and
// thresholds, made by ipvsadm itself.
const seedTable = `-A -t 192.0.2.100:80 -s rr
-a -t 192.0.2.100:80 -r 198.51.100.10:80 -g -w 1
-a -t 192.0.2.100:80 -r 198.51.100.11:80 -g -w 0
-A -t 192.0.2.100:53 -s wrr
-a -t 192.0.2.100:53 -r 198.51.100.10:53 -g -w 3
-a -t 192.0.2.100:53 -r 198.51.100.11:53 -g -w 1
-A -u 192.0.2.100:53 -s wrr
-a -u 192.0.2.100:53 -r 198.51.100.10:53 -g -w 3
-a -u 192.0.2.100:53 -r 198.51.100.11:53 -g -w 0
-A -f 7 -s wlc -p 300 -M 255.255.255.0
-a -f 7 -r 198.51.100.12:0 -g -w 5 -x 100 -y 20
-A -t [2001:db8::100]:443 -s sh -b sh-port
-a -t [2001:db8::100]:443 -r [2001:db8::10]:443 -g -w 2
-a -t [2001:db8::100]:443 -r [2001:db8::11]:8443 -m -w 1
-A -u 203.0.113.5:514 -s lc -p 60 -o
-a -u 203.0.113.5:514 -r 203.0.113.6:514 -i -w 2147483647
`

func loadSeedTable(t *testing.T) {
	t.Helper()
	ipvsadm(t, "", "-C")
	ipvsadm(t, seedTable, "-R")
	t.Cleanup(func() { exec.Command(ipvsadmPath, "-C").Run() })
}

// TestStatusMatchesIpvsadm: every listing option prints byte for byte what
// ipvsadm prints for the same kernel table.
func TestStatusMatchesIpvsadm(t *testing.T) {
	loadSeedTable(t)
	cases := [][]string{
		{},
		{"--stats"},
		{"--rate"},
		{"--thresholds"},
		{"--persistent-conn"},
		{"--stats", "--exact"},
		{"--rate", "--exact"},
		{"--stats", "--rate"},
		{"--thresholds", "--persistent-conn"},
	}
	for _, opts := range cases {
		want := ipvsadm(t, "", append([]string{"-L", "-n"}, opts...)...)
		got, stderr, code := directord(t, append([]string{"status"}, opts...)...)
		if code != 0 {
			t.Fatalf("directord status %v: exit %d: %s", opts, code, stderr)
		}
		if got != want {
			t.Errorf("directord status %v differs from ipvsadm -L -n %v\n--- ipvsadm\n%s--- directord\n%s", opts, opts, want, got)
		}
	}
	want := ipvsadm(t, "", "-S", "-n")
	got, stderr, code := directord(t, "status", "--save")
	if code != 0 || got != want {
		t.Errorf("directord status --save (exit %d, %s) differs from ipvsadm -S -n\n--- ipvsadm\n%s--- directord\n%s", code, stderr, want, got)
	}
}

// TestStatusSaveRestores: what --save prints, ipvsadm -R loads back into the
// same table.
func TestStatusSaveRestores(t *testing.T) {
	loadSeedTable(t)
	saved, _, code := directord(t, "status", "--save")
	if code != 0 {
		t.Fatalf("status --save: exit %d", code)
	}
	before := ipvsadm(t, "", "-L", "-n", "--thresholds")
	ipvsadm(t, "", "-C")
	ipvsadm(t, saved, "-R")
	// Thresholds are not part of the save format (as with ipvsadm), so compare
	// the plain listing.
	after := ipvsadm(t, "", "-L", "-n")
	ipvsadm(t, "", "-C")
	ipvsadm(t, seedTable, "-R")
	if want := ipvsadm(t, "", "-L", "-n"); after != want {
		t.Errorf("table restored from status --save differs:\n--- want\n%s--- got\n%s\n(before: %s)", want, after, before)
	}
}

func TestStatusJSON(t *testing.T) {
	loadSeedTable(t)
	out, stderr, code := directord(t, "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status -o json: exit %d: %s", code, stderr)
	}
	var st jsonStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, out)
	}
	if len(st.IPVS.Services) != 6 {
		t.Fatalf("%d services in JSON, want 6:\n%s", len(st.IPVS.Services), out)
	}
	var found bool
	for _, s := range st.IPVS.Services {
		if s.Protocol == "UDP" && s.Address == "203.0.113.5" && s.Port == 514 {
			found = true
			if !s.Persistent || s.Timeout != 60 || s.Scheduler != "lc" {
				t.Errorf("UDP 203.0.113.5:514: %+v", s)
			}
			if len(s.Destinations) != 1 || s.Destinations[0].Weight != 2147483647 || s.Destinations[0].Forward != "Tunnel" {
				t.Errorf("UDP 203.0.113.5:514 destinations: %+v", s.Destinations)
			}
		}
		if s.FWMark == 7 && (s.Destinations[0].UpperThreshold != 100 || s.Destinations[0].LowerThreshold != 20) {
			t.Errorf("fwmark 7 thresholds: %+v", s.Destinations[0])
		}
	}
	if !found {
		t.Errorf("UDP 203.0.113.5:514 missing from JSON:\n%s", out)
	}
}

func TestStatusUsage(t *testing.T) {
	if _, stderr, code := directord(t, "status", "-o", "yaml"); code != exitUsage || !strings.Contains(stderr, "expected text or json") {
		t.Errorf("status -o yaml: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := directord(t, "status", "extra"); code != exitUsage {
		t.Errorf("status extra: exit %d, want %d", code, exitUsage)
	}
	if out, _, code := directord(t, "status", "--help"); code != 0 || !strings.Contains(out, "--persistent-conn") {
		t.Errorf("status --help: exit %d, stdout %q", code, out)
	}
	if out, _, code := directord(t, "--help"); code != 0 || !strings.Contains(out, "status") {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
	if _, _, code := directord(t, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

// TestTestbedCLI covers the testbed command's own paths; the scenarios
// themselves run the real directord binary and are tested in testbed/demo.
func TestTestbedCLI(t *testing.T) {
	out, stderr, code := directord(t, "testbed", "--list")
	if code != 0 {
		t.Fatalf("testbed --list: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"power-loss", "kill9", "graceful", "standby", "public-cut", "split-brain", "hb-link-cut", "rs-failure", "reload"} {
		if !strings.Contains(out, name+" ") {
			t.Errorf("testbed --list lacks scenario %q:\n%s", name, out)
		}
	}
	if _, stderr, code := directord(t, "testbed", "--scenario", "nope"); code != exitUsage || !strings.Contains(stderr, "nope") {
		t.Errorf("testbed --scenario nope: exit %d, stderr %q", code, stderr)
	}
	if out, _, code := directord(t, "testbed", "--help"); code != 0 || !strings.Contains(out, "--json") || !strings.Contains(out, "Exit status") {
		t.Errorf("testbed --help: exit %d, stdout %q", code, out)
	}
}
