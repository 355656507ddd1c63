package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary double as a job: with DIRECTORD_VMTEST_EXIT
// set it prints a line and exits with that status, which exercises a
// dynamically linked Go binary in the guest.
func TestMain(m *testing.M) {
	if code := os.Getenv("DIRECTORD_VMTEST_EXIT"); code != "" {
		var n int
		fmt.Sscan(code, &n)
		fmt.Printf("helper in guest=%v args=%q\n", InGuest(), os.Args[1:])
		os.Exit(n)
	}
	os.Exit(m.Run())
}

// needVM skips in -short mode (with a reason); otherwise a missing qemu or
// kernel fails the test, as it would fail vm.Main.
func needVM(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a qemu guest; skipped in -short mode")
	}
}

func TestRunExitStatus(t *testing.T) {
	needVM(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprint("exit", code), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var live bytes.Buffer
			res, err := Run(ctx, Job{
				Path:   self,
				Args:   []string{"a b", "it's"},
				Env:    []string{fmt.Sprintf("DIRECTORD_VMTEST_EXIT=%d", code)},
				Stdout: &live,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("boot %v, total %v", res.Boot, res.Total)
			if res.ExitCode != code {
				t.Errorf("exit code %d, want %d; output:\n%s", res.ExitCode, code, res.Output)
			}
			want := "helper in guest=true args=[\"a b\" \"it's\"]\n"
			if string(res.Output) != want {
				t.Errorf("output %q, want %q", res.Output, want)
			}
			if live.String() != string(res.Output) {
				t.Errorf("streamed %q, captured %q", live.String(), res.Output)
			}
		})
	}
}

func TestRunIPVSAdm(t *testing.T) {
	needVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := `set -e
/usr/sbin/ipvsadm -A -t 192.0.2.1:80 -s rr
/usr/sbin/ipvsadm -a -t 192.0.2.1:80 -r 198.51.100.10:80 -g -w 2
/usr/sbin/ipvsadm -Ln
for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh; do
	/usr/sbin/ipvsadm -A -u 192.0.2.2:53 -s $s
	/usr/sbin/ipvsadm -D -u 192.0.2.2:53
done
/usr/sbin/ip link add vm-a type veth peer name vm-b
/usr/sbin/ip link add vm-br type bridge
/usr/sbin/ip link add vm-d type dummy
/usr/sbin/ip link add vm-m link vm-d type macvlan
grep -q '^tmpfs /tmp tmpfs' /proc/mounts
test "$(cat /tmp/in/x)" = x
/usr/sbin/ipvsadm -Sn > /tmp/out/rules
mkdir -p /tmp/out/sub && echo deep > /tmp/out/sub/f
echo all-ok
`
	res, err := Run(ctx, Job{
		Path:      "/usr/bin/busybox",
		GuestPath: "/job/bin/sh",
		Args:      []string{"-c", script},
		Files:     []File{{Guest: "/tmp/in/x", Data: []byte("x")}},
		Dirs:      []string{"/tmp/out"},
		Collect:   []string{"/tmp/out", "/tmp/missing"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Output)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d; output:\n%s", res.ExitCode, out)
	}
	for _, want := range []string{"TCP  192.0.2.1:80 rr", "-> 198.51.100.10:80", "Route   2", "all-ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	got := map[string]string{}
	for _, f := range res.Files {
		got[f.Guest] = string(f.Data)
	}
	if len(got) != 2 || !strings.Contains(got["/tmp/out/rules"], "-A -t 192.0.2.1:80 -s rr") || got["/tmp/out/sub/f"] != "deep\n" {
		t.Errorf("collected %q", got)
	}
}

func TestRunTimeout(t *testing.T) {
	needVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := Run(ctx, Job{Path: "/usr/bin/busybox", GuestPath: "/job/bin/sh", Args: []string{"-c", "sleep 600"}})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestConsole(t *testing.T) {
	var live bytes.Buffer
	c := &console{nonce: "n1", job: &live, start: time.Now(), marker: make(chan struct{})}
	in := "boot noise\r\nDIRECTORD-VM-EXIT-n1 9\r\n" + // before start: ignored
		"DIRECTORD-VM-START-n1\r\n" +
		"line one\n" +
		"DIRECTORD-VM-EXIT-bad 1\n" + // wrong nonce: job output
		"partialDIRECTORD-VM-EXIT-n1 7\n" +
		"after\n"
	if err := c.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if !c.exited || c.code != 7 {
		t.Fatalf("exited=%v code=%d, want exit 7", c.exited, c.code)
	}
	want := "line one\nDIRECTORD-VM-EXIT-bad 1\npartial"
	if got := c.output.String(); got != want || live.String() != want {
		t.Errorf("output %q, streamed %q, want %q", got, live.String(), want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":      "''",
		"a b":   "'a b'",
		"it's":  `'it'\''s'`,
		"$HOME": "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestModulesDep(t *testing.T) {
	mods := []module{
		{name: "a", rel: "kernel/a.ko"},
		{name: "b", rel: "kernel/b.ko", depends: []string{"a"}},
		{name: "c", rel: "kernel/c.ko"},
		{name: "d", rel: "kernel/d.ko", depends: []string{"b", "c"}},
	}
	want := "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\nkernel/c.ko:\nkernel/d.ko: kernel/c.ko kernel/b.ko kernel/a.ko\n"
	if got := string(modulesDep(mods)); got != want {
		t.Errorf("modules.dep:\n%s\nwant:\n%s", got, want)
	}
}

func TestRunKernelPanic(t *testing.T) {
	needVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Run(ctx, Job{Path: "/usr/bin/busybox", GuestPath: "/job/bin/sh", Args: []string{"-c", "echo c >/proc/sysrq-trigger"}})
	if err == nil {
		t.Fatal("a guest kernel panic was not an error")
	}
	if !strings.Contains(err.Error(), "without the job's exit marker") || !strings.Contains(err.Error(), "Kernel panic") {
		t.Errorf("error does not report the panic with console lines:\n%v", err)
	}
}

// HostFiles maps host files and directories to the same guest paths,
// through a symlinked directory as given.
func TestHostFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"real/a.pm", "real/sub/b.so", "single"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	files, err := HostFiles(filepath.Join(dir, "link"), filepath.Join(dir, "single"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		if f.Guest != f.Host {
			t.Errorf("guest path %s differs from host path %s", f.Guest, f.Host)
		}
		got = append(got, strings.TrimPrefix(f.Guest, dir+"/"))
	}
	want := []string{"link/a.pm", "link/sub/b.so", "single"}
	if !slices.Equal(got, want) {
		t.Errorf("HostFiles = %q, want %q", got, want)
	}
	if _, err := HostFiles(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing path is not an error")
	}
}

func TestRunExtraModules(t *testing.T) {
	needVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Modules: []string{"ip_vs_ftp", "no_such_module"}}
	res, err := cfg.Run(ctx, Job{Path: "/usr/bin/busybox", GuestPath: "/job/bin/sh", Args: []string{"-c", "grep -c '^ip_vs_ftp \\|^nf_nat ' /proc/modules"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || strings.TrimSpace(string(res.Output)) != "2" {
		t.Errorf("ip_vs_ftp and its dependency nf_nat not loaded: exit %d, output %q", res.ExitCode, res.Output)
	}
}
