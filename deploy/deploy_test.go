// Tests of what deploy/ ships: the example configurations pass `directord
// check`, the systemd units are valid, and the .deb that mkdeb builds is a
// proper Debian package (and, with DIRECTORD_DEBOOTSTRAP=1, installs into a
// fresh Debian and runs there).
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/directord/directord/config"
	lnoded "github.com/directord/directord/lnoded/config"
)

// binary is the directord binary built for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "directord")
	build := exec.Command("go", "build", "-o", binary, "./cmd/directord")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// directord runs the binary and returns its output and exit code.
func directord(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("directord %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), 0
}

// installExamples copies deploy/examples as an operator installs them:
// files holding secrets mode 0600.
func installExamples(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("examples", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("examples", path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.Name() == "authkeys" || strings.HasSuffix(d.Name(), ".yaml") {
			mode = 0o600
		}
		return os.WriteFile(out, b, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// seed003Services are the virtual services of seed 003: web, and DNS over
// TCP and UDP, each on both real servers by direct routing.
var seed003Services = []string{
	"TCP 192.0.2.101:80 rr → 192.0.2.200:80 gate w1, 192.0.2.201:80 gate w1",
	"TCP 192.0.2.101:53 rr → 192.0.2.200:53 gate w1, 192.0.2.201:53 gate w1",
	"UDP 192.0.2.101:53 rr → 192.0.2.200:53 gate w1, 192.0.2.201:53 gate w1",
}

func TestExamplesPassCheck(t *testing.T) {
	dir := installExamples(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ha.d", []string{"--ha-dir", filepath.Join(dir, "ha.d"), "--node", "node1.a.com"}},
		{"yaml", []string{"--config", filepath.Join(dir, "directord", "directord.yaml"), "--node", "node2.a.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := directord(t, append([]string{"check"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("check exited %d:\n%s", code, errs)
			}
			if errs != "" {
				t.Errorf("the example draws warnings:\n%s", errs)
			}
			for _, want := range append([]string{"Nodes:     node1.a.com", "auto_failback on", "192.0.2.101 lnoded::"}, seed003Services...) {
				if !strings.Contains(out, want) {
					t.Errorf("summary lacks %q:\n%s", want, out)
				}
			}
			if lines := strings.Count(out, "\n"); lines > 24 {
				t.Errorf("the summary is %d lines, more than a screen", lines)
			}
		})
	}
}

// TestExamplesAgree checks that the two example configurations describe
// the same cluster: only directord's own settings (the YAML turns on
// connection sync) and where lnoded.cf lives may differ.
func TestExamplesAgree(t *testing.T) {
	dir := installExamples(t)
	ctx := context.Background()
	opts := &config.Options{NodeName: "node1.a.com"}
	ha, err := config.LoadHADir(ctx, filepath.Join(dir, "ha.d"), opts)
	if err != nil {
		t.Fatal(err)
	}
	y, err := config.LoadYAML(ctx, filepath.Join(dir, "directord", "directord.yaml"), opts)
	if err != nil {
		t.Fatal(err)
	}
	ignore := cmp.Options{
		cmpopts.IgnoreTypes(config.Pos{}, map[string]config.Pos{}),
		cmpopts.IgnoreFields(config.Config{}, "Sources", "Warnings", "Directord"),
		cmpopts.IgnoreFields(config.Lnoded{}, "Path"),
		cmpopts.IgnoreFields(lnoded.Config{}, "File", "Warnings"),
		cmpopts.EquateComparable(netip.Addr{}),
	}
	if d := cmp.Diff(ha, y, ignore); d != "" {
		t.Errorf("examples differ (-ha.d +yaml):\n%s", d)
	}
	if !y.Directord.Sync.Enabled || y.Directord.Sync.Interface != "eth1" {
		t.Errorf("the YAML example should show connection sync: %+v", y.Directord.Sync)
	}
}

func TestImportThenCheck(t *testing.T) {
	dir := installExamples(t)
	out := filepath.Join(t.TempDir(), "directord.yaml")
	_, errs, code := directord(t, "import", "--ha-dir", filepath.Join(dir, "ha.d"), "-o", out)
	if code != 0 {
		t.Fatalf("import exited %d:\n%s", code, errs)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("imported file has mode %v, want 0600 (it holds the key)", st.Mode().Perm())
	}
	fromHA, _, _ := directord(t, "check", "--ha-dir", filepath.Join(dir, "ha.d"), "--node", "node2.a.com")
	fromYAML, errs, code := directord(t, "check", "--config", out, "--node", "node2.a.com")
	if code != 0 {
		t.Fatalf("check of the imported file exited %d:\n%s", code, errs)
	}
	// The first line names the source; the rest must match.
	_, a, _ := strings.Cut(fromHA, "\n")
	_, b, _ := strings.Cut(fromYAML, "\n")
	if a != b {
		t.Errorf("summaries differ:\nha.d:\n%s\nimported:\n%s", a, b)
	}
}

func TestCheckExitCodes(t *testing.T) {
	dir := installExamples(t)
	ha := filepath.Join(dir, "ha.d")
	if err := os.WriteFile(filepath.Join(ha, "haresources"), []byte("node3.a.com 192.0.2.101 lnoded::lnoded.cf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(ha, "authkeys"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := directord(t, "check", "--ha-dir", ha, "--node", "node1.a.com")
	if code != 1 {
		t.Errorf("invalid configuration: exit %d, want 1", code)
	}
	for _, want := range []string{
		filepath.Join(ha, "authkeys") + ": bad permissions on authkeys",
		filepath.Join(ha, "haresources") + `:1: group owner "node3.a.com" is not a node`,
		"2 errors; nothing was changed",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if _, _, code := directord(t, "check", "--ha-dir", ha, "--config", "x.yaml"); code != 2 {
		t.Errorf("--ha-dir with --config: exit %d, want 2", code)
	}
	if out, _, code := directord(t, "check", "--help"); code != 0 || !strings.Contains(out, "--ha-dir") {
		t.Errorf("check --help: exit %d, output %q", code, out)
	}
	for _, args := range [][]string{{"realserver"}, {"realserver", "sideways"}, {"realserver", "up"}, {"realserver", "up", "not-an-ip"}, {"realserver", "up", "127.0.0.1"}} {
		if _, _, code := directord(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestUnits checks the systemd units with a small parser (always) and with
// systemd-analyze verify (when systemd is installed).
func TestUnits(t *testing.T) {
	units := map[string]map[string][]string{}
	for _, name := range []string{"directord.service", "directord-realserver.service"} {
		units[name] = parseUnit(t, filepath.Join("systemd", name))
	}
	d := units["directord.service"]
	for key, want := range map[string]string{
		"Service.Type":             "notify",
		"Service.Restart":          "on-failure",
		"Service.WatchdogSec":      "10s",
		"Service.ExecStart":        "/usr/sbin/directord run $DIRECTORD_ARGS $DIRECTORD_RUN_ARGS",
		"Service.StateDirectory":   "directord",
		"Service.RuntimeDirectory": "directord",
		"Service.ProtectSystem":    "strict",
		"Install.WantedBy":         "multi-user.target",
	} {
		if got := d[key]; len(got) != 1 || got[0] != want {
			t.Errorf("directord.service %s = %q, want %q", key, got, want)
		}
	}
	caps := strings.Fields(strings.Join(d["Service.CapabilityBoundingSet"], " "))
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW"} {
		if !contains(caps, c) {
			t.Errorf("CapabilityBoundingSet %v lacks %s", caps, c)
		}
	}
	for _, forbidden := range []string{"Service.ProtectKernelTunables", "Service.PrivateNetwork", "Service.PrivateDevices"} {
		if _, ok := d[forbidden]; ok {
			t.Errorf("%s would stop the daemon from doing its job (sysctls, the host's network, the watchdog)", forbidden)
		}
	}
	rs := units["directord-realserver.service"]
	for key, want := range map[string]string{
		"Service.Type":            "oneshot",
		"Service.RemainAfterExit": "yes",
		"Service.ExecStart":       "/usr/sbin/directord realserver up $VIPS",
		"Service.ExecStop":        "/usr/sbin/directord realserver down $VIPS",
		"Service.EnvironmentFile": "/etc/default/directord-realserver",
	} {
		if got := rs[key]; len(got) != 1 || got[0] != want {
			t.Errorf("directord-realserver.service %s = %q, want %q", key, got, want)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed; only the parser checked the units")
		return
	}
	// verify wants the programs to exist: point them at the test binary.
	dir := t.TempDir()
	var paths []string
	for name := range units {
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/sbin/directord"), []byte(binary)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify exits 0 on unknown keys and the like; it must say nothing
	// about our units (it may about others installed on the host).
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseUnit reads a unit file into "Section.Key" → values, refusing what
// systemd would not read: keys outside a section, lines without '=',
// unknown sections.
func parseUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			if !contains([]string{"Unit", "Service", "Install"}, section) || !strings.HasSuffix(line, "]") {
				t.Errorf("%s:%d: unknown section %s", path, n, line)
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) == "" {
				t.Errorf("%s:%d: not a KEY=VALUE line in a section: %q", path, n, line)
				continue
			}
			keys[section+"."+strings.TrimSpace(k)] = append(keys[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestModulesLoad holds the modules-load.d file to what the unit needs:
// ProtectKernelModules=yes stops the kernel from autoloading ip_vs (and a
// scheduler's module) on the daemon's first request, so every module the
// shipped examples need must be loaded at boot.
func TestModulesLoad(t *testing.T) {
	unit := parseUnit(t, filepath.Join("systemd", "directord.service"))
	if got := unit["Service.ProtectKernelModules"]; len(got) != 1 || got[0] != "yes" {
		t.Skipf("ProtectKernelModules=%q: the kernel may autoload modules", got)
	}
	b, err := os.ReadFile(filepath.Join("modules-load", "directord.conf"))
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, ";") {
			loaded[l] = true
		}
	}
	want := []string{"ip_vs"}
	for _, dir := range []string{"examples/ha.d", "examples/directord"} {
		b, err := os.ReadFile(filepath.Join(dir, "lnoded.cf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(l), "scheduler="); ok {
				want = append(want, "ip_vs_"+strings.TrimSpace(s))
			}
		}
	}
	if len(want) < 2 {
		t.Fatal("the examples name no scheduler: the test reads the wrong files")
	}
	for _, m := range want {
		if !loaded[m] {
			t.Errorf("modules-load.d/directord.conf does not load %s, which the examples need", m)
		}
	}
}
