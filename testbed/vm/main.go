package vm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
)

// InGuest reports whether this process runs inside a guest booted by this
// package (the guest's init sets DIRECTORD_VM_GUEST=1 and the kernel command
// line carries directord.vm=1).
func InGuest() bool {
	if os.Getenv("DIRECTORD_VM_GUEST") == "1" {
		return true
	}
	b, err := os.ReadFile("/proc/cmdline")
	return err == nil && strings.Contains(" "+string(b)+" ", " directord.vm=1 ")
}

// HasIPVS reports whether the running kernel's IPVS can be used: the generic
// netlink family "IPVS" resolves. When it does not, HasIPVS tries
// `modprobe ip_vs` once (outside the guest, which loads its modules at boot)
// and asks again; it never guesses yes.
func HasIPVS() bool {
	if ipvsFamily() == nil {
		return true
	}
	if InGuest() {
		return false
	}
	if p, err := exec.LookPath("modprobe"); err == nil {
		if exec.Command(p, "-q", "ip_vs").Run() == nil {
			return ipvsFamily() == nil
		}
	}
	return false
}

// ipvsFamily resolves the IPVS generic netlink family.
func ipvsFamily() error {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("dial generic netlink: %w", err)
	}
	defer c.Close()
	if _, err := c.GetFamily("IPVS"); err != nil {
		return fmt.Errorf("generic netlink family IPVS: %w", err)
	}
	return nil
}

// Main is for a package's TestMain when its tests need a kernel with IPVS:
//
//	func TestMain(m *testing.M) { vm.Main(m) }
//
// When the running kernel has IPVS (on the host, or already inside the
// guest) Main runs the tests here. Otherwise it boots a guest that runs this
// same test binary with the same arguments, streams the guest's output to
// stdout as it comes, and exits with the guest's exit status. The guest
// starts in the same working directory, which holds a copy of ./testdata
// when there is one. Environment variables named DIRECTORD_* and the Go
// runtime's GO* tuning variables are passed in. Coverage data and profiles
// the binary writes (-cover, -coverprofile, -cpuprofile, …) are copied back
// to the host. The go command does not cache the results of a package run
// in the guest, so kernel tests always run.
//
// DIRECTORD_VM=always runs in the guest even when the host has IPVS;
// DIRECTORD_VM=never runs on the host regardless (tests then see no IPVS).
// DIRECTORD_VM_DEBUG=1 copies the guest's whole console, boot and kernel
// messages included, to stderr. A missing prerequisite (qemu, the kernel
// package) fails the run with a message on stderr naming what to install; it
// never skips.
//
// Main does not return.
func Main(m *testing.M) {
	os.Exit(mainCode(m, MainOptions{}))
}

// MainOptions add to what Main puts into the guest.
type MainOptions struct {
	// Files, when set, is called on the host before a guest boots (never
	// inside the guest, nor when the tests run on the host) and returns
	// extra files for the guest, e.g. a program the tests run and what it
	// needs; HostFiles makes them from host paths.
	Files func() ([]File, error)
	// Modules are kernel modules the guest loads at boot besides
	// DefaultModules (with their dependencies), e.g. "nf_nat" or
	// "ip_vs_ftp". Names the guest kernel lacks are skipped.
	Modules []string
}

// MainWith is Main with extra files in the guest.
func MainWith(m *testing.M, o MainOptions) {
	os.Exit(mainCode(m, o))
}

// HostFiles returns guest files for the given host paths, each copied to
// the same path in the guest: a file as it is (following symlinks), a
// directory with every regular file below it. Missing paths are an error.
func HostFiles(paths ...string) ([]File, error) {
	var files []File
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, File{Guest: p, Host: p})
			continue
		}
		// A trailing slash makes WalkDir follow a symlinked root, as
		// /usr/share/perl/5.36 -> 5.36.0 is.
		tf, err := treeFiles(strings.TrimSuffix(p, "/")+"/", 256<<20)
		if err != nil {
			return nil, err
		}
		for i := range tf {
			tf[i].Guest = filepath.Clean(tf[i].Guest)
		}
		files = append(files, tf...)
	}
	return files, nil
}

func mainCode(m *testing.M, o MainOptions) int {
	mode := os.Getenv("DIRECTORD_VM")
	switch {
	case InGuest():
		if !HasIPVS() {
			fmt.Fprintln(os.Stderr, "testbed/vm: running in the guest, but its kernel has no usable IPVS (generic netlink family IPVS missing)")
			return 1
		}
		return m.Run()
	case mode == "never":
		return m.Run()
	case mode != "" && mode != "always" && mode != "auto":
		fmt.Fprintf(os.Stderr, "testbed/vm: DIRECTORD_VM=%q: want always, never or auto\n", mode)
		return 2
	case mode != "always" && HasIPVS():
		return m.Run()
	case listOnly(os.Args[1:]):
		// `go test -list` only names tests; no kernel needed.
		return m.Run()
	}
	var extra []File
	if o.Files != nil {
		var err error
		if extra, err = o.Files(); err != nil {
			fmt.Fprintf(os.Stderr, "testbed/vm: files for the guest: %v\n", err)
			return 1
		}
	}
	code, err := runSelf(os.Args[0], os.Args[1:], extra, o.Modules)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed/vm: the kernel has no IPVS, and running the tests in a VM failed: %v\n", err)
		if errors.Is(err, ErrPrerequisite) {
			fmt.Fprintln(os.Stderr, "testbed/vm: prepare once with `go run ./testbed/vm/cmd/vmprep` (as root; needs qemu-system-x86, busybox-static, iproute2, ipvsadm, apt)")
		}
		return 1
	}
	return code
}

func listOnly(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-test.list=") {
			return true
		}
	}
	return false
}

// passEnv says which host environment variables a guest test run gets.
func passEnv(kv string) bool {
	k, _, _ := strings.Cut(kv, "=")
	switch k {
	case "GOTRACEBACK", "GODEBUG", "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GOCOVERDIR", "TZ":
		return true
	}
	return strings.HasPrefix(k, "DIRECTORD_") && k != "DIRECTORD_VM_GUEST"
}

// outputFlags are the testing flags naming a file the test binary writes.
// Relative names are relative to -test.outputdir, or the working directory.
var outputFlags = []string{"coverprofile", "cpuprofile", "memprofile", "blockprofile", "mutexprofile", "trace"}

// runSelf runs the test binary bin with args in a guest and returns its exit
// status. Files the binary writes for the go command (profiles, coverage)
// are copied back to the same host paths.
func runSelf(bin string, args []string, extra []File, modules []string) (int, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return 0, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	job, timeout := selfJob(bin, wd, args, os.Environ())
	job.Stdout = os.Stdout
	files, err := treeFiles(filepath.Join(wd, "testdata"), 256<<20)
	if err != nil {
		return 0, err
	}
	job.Files = append(job.Files, files...)
	job.Files = append(job.Files, extra...)
	if timeout > 0 {
		// The test binary enforces -test.timeout itself; this only catches
		// a guest that hangs outside it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+2*time.Minute)
		defer cancel()
	}
	cfg := Config{Modules: modules}
	if os.Getenv("DIRECTORD_VM_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "testbed/vm: running %s %q in a guest, collecting %q\n", bin, job.Args, job.Collect)
		cfg.Console = os.Stderr
		cfg.KernelArgs = []string{"directord.vm.debug=1", "loglevel=7"}
	}
	res, err := cfg.Run(ctx, job)
	if err != nil {
		return 0, err
	}
	for _, f := range res.Files {
		if err := os.MkdirAll(filepath.Dir(f.Guest), 0o755); err != nil {
			return 0, fmt.Errorf("copy back %s: %w", f.Guest, err)
		}
		if err := os.WriteFile(f.Guest, f.Data, 0o644); err != nil {
			return 0, fmt.Errorf("copy back %s: %w", f.Guest, err)
		}
	}
	if os.Getenv("DIRECTORD_VM_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "testbed/vm: guest booted in %v, job exited %d after %v\n", res.Boot.Round(time.Millisecond), res.ExitCode, res.Total.Round(time.Millisecond))
	}
	return res.ExitCode, nil
}

// selfJob turns a test binary's command line into a guest job: the same
// arguments (bar -test.testlogfile), the working directory wd, the
// passed-through environment, directories for and collection of the files the
// binary writes, and the -test.timeout.
func selfJob(bin, wd string, args, environ []string) (Job, time.Duration) {
	job := Job{Path: bin, Dir: wd}
	var (
		timeout   time.Duration
		outputDir string
		outputs   []string
	)
	for _, a := range args {
		name, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.TrimPrefix(name, "test.")
		switch {
		case name == "testlogfile":
			// Only the go command's result cache reads it, from the host;
			// without it the result is just not cached, which suits
			// kernel tests.
			continue
		case name == "timeout":
			timeout, _ = time.ParseDuration(val)
		case name == "outputdir" && val != "":
			outputDir = val
			job.Dirs = append(job.Dirs, absIn(wd, val))
		case name == "gocoverdir" && val != "":
			d := absIn(wd, val)
			job.Dirs = append(job.Dirs, d)
			job.Collect = append(job.Collect, d)
		case slices.Contains(outputFlags, name) && val != "":
			outputs = append(outputs, val)
		}
		job.Args = append(job.Args, a)
	}
	for _, o := range outputs {
		p := o
		if !filepath.IsAbs(p) && outputDir != "" {
			p = filepath.Join(outputDir, p)
		}
		p = absIn(wd, p)
		job.Dirs = append(job.Dirs, filepath.Dir(p))
		job.Collect = append(job.Collect, p)
	}
	for _, kv := range environ {
		if passEnv(kv) {
			job.Env = append(job.Env, kv)
		}
	}
	return job, timeout
}

// treeFiles lists the regular files under root as guest files at the same
// paths, refusing more than limit bytes in all. A missing root is no files.
func treeFiles(root string, limit int64) ([]File, error) {
	var (
		files []File
		total int64
	)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		st, err := os.Stat(p) // follow symlinks
		if err != nil || !st.Mode().IsRegular() {
			return nil
		}
		total += st.Size()
		if total > limit {
			return fmt.Errorf("%s holds more than %d MiB; too much for the VM's initramfs", root, limit>>20)
		}
		files = append(files, File{Guest: p, Host: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collect testdata: %w", err)
	}
	return files, nil
}

// absIn makes p absolute relative to dir.
func absIn(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}
