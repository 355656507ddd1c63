// Command vmprep prepares the kernel-test VM of testbed/vm ahead of time: it
// downloads Debian's cloud kernel into the cache and builds the base
// initramfs, so that test runs (and parallel test binaries) find both ready.
// CI runs it once before `go test ./...`:
//
//	go run ./testbed/vm/cmd/vmprep            # fetch if the cache is empty
//	go run ./testbed/vm/cmd/vmprep -refresh   # re-resolve linux-image-cloud-amd64
//	go run ./testbed/vm/cmd/vmprep -boot      # also boot once and report timing
//	go run ./testbed/vm/cmd/vmprep -exec ./x.test -- -test.v   # run a binary in a guest
//
// The cache is $DIRECTORD_VM_CACHE, or /var/cache/directord/vm.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/directord/directord/testbed/vm"
)

func main() {
	refresh := flag.Bool("refresh", false, "ask apt for the current linux-image-cloud-amd64 kernel even when one is cached")
	boot := flag.Bool("boot", false, "boot the guest once, run ipvsadm -Ln in it, and report the boot time")
	cache := flag.String("cache", "", "cache directory (default $DIRECTORD_VM_CACHE or /var/cache/directord/vm)")
	execBin := flag.String("exec", "", "run this executable in a guest with the remaining arguments, and exit with its status")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *execBin != "" {
		code, err := runBinary(ctx, *cache, *execBin, flag.Args())
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmprep:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	if err := run(ctx, *cache, *refresh, *boot); err != nil {
		fmt.Fprintln(os.Stderr, "vmprep:", err)
		if errors.Is(err, vm.ErrPrerequisite) {
			fmt.Fprintln(os.Stderr, "vmprep: needs root, apt (with `apt-get update` done), dpkg, qemu-system-x86, busybox-static, iproute2 and ipvsadm")
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, cache string, refresh, boot bool) error {
	cfg := vm.Config{CacheDir: cache}
	start := time.Now()
	img, err := cfg.Prepare(ctx, refresh)
	if err != nil {
		return err
	}
	fmt.Printf("kernel     %s (%s)\n", img.Kernel, img.Package)
	fmt.Printf("initramfs  %s\n", img.Initramfs)
	fmt.Printf("modules    %s\n", strings.Join(img.Modules, " "))
	fmt.Printf("prepared in %v\n", time.Since(start).Round(time.Millisecond))
	if !boot {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := cfg.Run(ctx, vm.Job{Path: "/usr/sbin/ipvsadm", GuestPath: "/usr/sbin/ipvsadm", Args: []string{"-Ln"}, Stdout: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Printf("boot to job %v, total %v, exit status %d\n", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.ExitCode)
	if res.ExitCode != 0 {
		return fmt.Errorf("ipvsadm -Ln in the guest exited %d", res.ExitCode)
	}
	return nil
}

// runBinary runs bin with args in a guest, its working directory /job and its
// output streamed to stdout, passing DIRECTORD_* variables through.
func runBinary(ctx context.Context, cache, bin string, args []string) (int, error) {
	job := vm.Job{Path: bin, Args: args, Stdout: os.Stdout}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DIRECTORD_") {
			job.Env = append(job.Env, kv)
		}
	}
	cfg := vm.Config{CacheDir: cache}
	res, err := cfg.Run(ctx, job)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "vmprep: boot to job %v, total %v, exit status %d\n", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.ExitCode)
	return res.ExitCode, nil
}
