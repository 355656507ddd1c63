package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The meaning test: ldirectord is started (in the foreground, -d) on each
// file under testdata/ipvsadm with a fake ipvsadm in its working directory
// (ldirectord uses ./ipvsadm in debug mode). The fake is this test binary,
// which keeps an IPVS table in a JSON file and prints it in ipvsadm's -L -n
// format, so ldirectord sees the effect of its own commands. Once ldirectord
// has set up its services and run its first round of checks (the files use
// checktype=on and off only, so no network is touched), the table it built
// is compared with the one lnoded's Config describes: addresses, ports,
// protocols, schedulers, persistence, netmasks, forwarding methods, weights,
// thresholds and fallback servers.
const ipvsadmCorpus = "testdata/ipvsadm"

// fakeIPVSADMEnv names the fake's state file; its presence turns the test
// binary into the fake.
const fakeIPVSADMEnv = "LNODED_FAKE_IPVSADM"

func TestMain(m *testing.M) {
	if state := os.Getenv(fakeIPVSADMEnv); state != "" {
		os.Exit(fakeIPVSADM(state, os.Args[1:], os.Stdout))
	}
	os.Exit(m.Run())
}

// fakeTable is the fake ipvsadm's IPVS table, keyed like ldirectord's
// get_real_service_str ("192.0.2.10:80 tcp", "100 fwm").
type fakeTable struct {
	Services map[string]*fakeService
	Log      []string
}

type fakeService struct {
	Scheduler  string
	Persistent string // "" when not persistent
	Mask       string
	OPS        bool
	SchedFlags string
	Reals      map[string]*fakeReal // "ADDR:PORT" as ldirectord wrote it
}

type fakeReal struct {
	Method               string
	Weight, Upper, Lower string
}

func fakeIPVSADM(state string, args []string, out io.Writer) int {
	var tab fakeTable
	if b, err := os.ReadFile(state); err == nil {
		if err := json.Unmarshal(b, &tab); err != nil {
			fmt.Fprintln(os.Stderr, "fake ipvsadm:", err)
			return 2
		}
	}
	if tab.Services == nil {
		tab.Services = map[string]*fakeService{}
	}
	if len(args) >= 2 && args[0] == "-L" {
		printFakeTable(out, &tab, len(args) > 2 && args[2] == "--thresholds")
		return 0
	}
	tab.Log = append(tab.Log, strings.Join(args, " "))
	opt := map[string]string{}
	var cmd, proto, vip string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-A", "-E", "-D", "-a", "-e", "-d":
			cmd = a
		case "-t", "-u", "-f":
			if i+1 < len(args) {
				proto, vip = map[string]string{"-t": "tcp", "-u": "udp", "-f": "fwm"}[a], args[i+1]
				i++
			}
		case "-6":
			proto += "6"
		case "-o":
			opt["o"] = "yes"
		case "-g", "-m", "-i":
			opt["fwd"] = a
		default:
			if strings.HasPrefix(a, "-") && i+1 < len(args) {
				opt[a[1:]] = args[i+1]
				i++
			}
		}
	}
	key := vip + " " + proto
	svc := tab.Services[key]
	switch cmd {
	case "-A", "-E":
		if svc == nil {
			svc = &fakeService{Reals: map[string]*fakeReal{}}
			tab.Services[key] = svc
		}
		svc.Scheduler, svc.Persistent, svc.Mask, svc.OPS, svc.SchedFlags = opt["s"], opt["p"], opt["M"], opt["o"] == "yes", opt["b"]
	case "-D":
		delete(tab.Services, key)
	case "-a", "-e":
		if svc != nil {
			svc.Reals[opt["r"]] = &fakeReal{Method: opt["fwd"], Weight: opt["w"], Upper: opt["x"], Lower: opt["y"]}
		}
	case "-d":
		if svc != nil {
			delete(svc.Reals, opt["r"])
		}
	}
	b, _ := json.Marshal(&tab)
	if err := os.WriteFile(state, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "fake ipvsadm:", err)
		return 2
	}
	return 0
}

func printFakeTable(out io.Writer, tab *fakeTable, thresholds bool) {
	fmt.Fprintln(out, "IP Virtual Server version 1.2.1 (size=4096)")
	fmt.Fprintln(out, "Prot LocalAddress:Port Scheduler Flags")
	fmt.Fprintln(out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
	keys := make([]string, 0, len(tab.Services))
	for k := range tab.Services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := tab.Services[k]
		vip, proto, _ := strings.Cut(k, " ")
		v6 := ""
		if strings.HasSuffix(proto, "6") {
			proto, v6 = strings.TrimSuffix(proto, "6"), " IPv6"
		}
		line := fmt.Sprintf("%s  %s%s %s", strings.ToUpper(proto), vip, v6, s.Scheduler)
		if s.Persistent != "" {
			line += " persistent " + s.Persistent
			if s.Mask != "" {
				line += " mask " + s.Mask
			}
		}
		fmt.Fprintln(out, line)
		rk := make([]string, 0, len(s.Reals))
		for r := range s.Reals {
			rk = append(rk, r)
		}
		sort.Strings(rk)
		for _, r := range rk {
			x := s.Reals[r]
			if thresholds {
				fmt.Fprintf(out, "  -> %-28s %-10s %-10s 0          0\n", r, x.Upper, x.Lower)
				continue
			}
			fwd := map[string]string{"-g": "Route", "-m": "Masq", "-i": "Tunnel"}[x.Method]
			fmt.Fprintf(out, "  -> %-28s %-7s %-6s 0          0\n", r, fwd, x.Weight)
		}
	}
}

func TestLdirectordBuildsTheSameTable(t *testing.T) {
	if _, err := os.Stat(ldirectordPath); err != nil {
		t.Skipf("%s is absent (apt-get install ldirectord): the table comparison with ldirectord 4.12 did not run", ldirectordPath)
	}
	if testing.Short() {
		t.Skip("starts ldirectord once per file; skipped in -short mode")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(ipvsadmCorpus, "*.cf"))
	if err != nil || len(files) < 5 {
		t.Fatalf("ipvsadm corpus: %d files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := ParseFile(context.Background(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := tableOf(cfg)
			got := runLdirectordStart(t, self, filepath.Base(f), src, func(tab *fakeTable) bool { return cmp.Equal(want, tab.Services) })
			if d := cmp.Diff(want, got.Services); d != "" {
				t.Errorf("IPVS table (-lnoded +ldirectord):\n%s\nldirectord's commands:\n%s", d, strings.Join(got.Log, "\n"))
			}
		})
	}
}

// runLdirectordStart runs "ldirectord -d FILE start" against the fake
// ipvsadm until ready accepts its table and the table has been quiet for a
// second (or, failing that, until a generous deadline), then kills it
// (SIGKILL: a TERM would make it tear the table down first). Waiting for
// ready rather than for a quiet spell alone matters on a loaded machine,
// where ldirectord's first checks can start seconds after its services.
func runLdirectordStart(t *testing.T, self, name string, src []byte, ready func(*fakeTable) bool) *fakeTable {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, name)
	state := filepath.Join(dir, "ipvs.json")
	script := "#!/bin/sh\nexec " + strconv.Quote(self) + " \"$@\"\n"
	if err := os.WriteFile(cf, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ipvsadm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ldirectordPath, "-d", cf, "start")
	cmd.Dir = dir
	// Under -race the stand-in (this test binary) would sleep 1 s at every
	// exit (the race runtime's atexit_sleep_ms), which slows ldirectord's
	// loop enough to change what it does; races are still reported.
	cmd.Env = append(os.Environ(), fakeIPVSADMEnv+"="+state, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var last []byte
	start := time.Now()
	quietSince := start
	for {
		select {
		case err := <-done:
			t.Fatalf("ldirectord exited early: %v\n%s", err, out.String())
		case <-time.After(250 * time.Millisecond):
		}
		cur, _ := os.ReadFile(state)
		if !bytes.Equal(cur, last) {
			last, quietSince = cur, time.Now()
			continue
		}
		if len(cur) > 0 && time.Since(quietSince) > time.Second && ready(decodeFakeTable(cur)) {
			break
		}
		if time.Since(start) > 45*time.Second {
			break
		}
	}
	_ = cmd.Process.Kill()
	<-done
	var tab fakeTable
	if err := json.Unmarshal(last, &tab); err != nil {
		t.Fatalf("fake ipvsadm state: %v\nldirectord output:\n%s", err, out.String())
	}
	if tab.Services == nil {
		tab.Services = map[string]*fakeService{}
	}
	return &tab
}

// decodeFakeTable reads the fake ipvsadm's state; a torn or empty read is an
// empty table (the caller polls again).
func decodeFakeTable(data []byte) *fakeTable {
	var tab fakeTable
	if json.Unmarshal(data, &tab) != nil || tab.Services == nil {
		tab.Services = map[string]*fakeService{}
	}
	return &tab
}

// tableOf is the table ldirectord should build for cfg once every real
// server with checktype=on is up and those with checktype=off are not added:
// the ipvsadm arguments that the lnoded model implies.
func tableOf(cfg *Config) map[string]*fakeService {
	tab := map[string]*fakeService{}
	for _, v := range cfg.Virtuals {
		key := ""
		switch {
		case v.Protocol == FWM && v.IPv6:
			key = strconv.FormatUint(uint64(v.FWMark), 10) + " fwm6"
		case v.Protocol == FWM:
			key = strconv.FormatUint(uint64(v.FWMark), 10) + " fwm"
		default:
			key = hostPort(v.Addr, v.Port) + " " + v.Protocol.String()
		}
		s := &fakeService{Scheduler: v.Scheduler, SchedFlags: v.SchedFlags, OPS: v.OPS && v.Protocol == UDP, Reals: map[string]*fakeReal{}}
		if v.Persistent {
			s.Persistent = strconv.Itoa(int(v.PersistentTimeout / time.Second))
			full := 32
			if v.IPv6 {
				full = 128
			}
			if v.PersistenceBits != full {
				s.Mask = maskText(v.PersistenceBits, v.IPv6)
			}
		}
		up := 0
		for _, r := range v.Reals {
			if v.CheckType == CheckOff {
				continue
			}
			up++
			s.Reals[hostPort(r.Addr, r.Port)] = &fakeReal{
				Method: map[Method]string{MethodGate: "-g", MethodMasq: "-m", MethodIPIP: "-i"}[r.Method],
				Weight: strconv.Itoa(r.Weight), Upper: strconv.FormatUint(uint64(r.UpperThreshold), 10), Lower: strconv.FormatUint(uint64(r.LowerThreshold), 10),
			}
		}
		if up == 0 && v.Fallback != nil {
			s.Reals[hostPort(v.Fallback.Addr, v.Fallback.Port)] = &fakeReal{
				Method: map[Method]string{MethodGate: "-g", MethodMasq: "-m", MethodIPIP: "-i"}[v.Fallback.Method],
				Weight: "1", Upper: "0", Lower: "0",
			}
		}
		tab[key] = s
	}
	return tab
}

func hostPort(a netip.Addr, port uint16) string {
	if a.Is6() {
		return "[" + a.String() + "]:" + strconv.Itoa(int(port))
	}
	return a.String() + ":" + strconv.Itoa(int(port))
}

// maskText writes a persistence mask as it appears in lnoded.cf.
func maskText(bits int, ipv6 bool) string {
	if ipv6 {
		return strconv.Itoa(bits)
	}
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}
