// Package vm runs programs, above all Go test binaries, in a throw-away qemu
// guest whose kernel has IPVS, for hosts (and CI) whose kernel has none.
//
// A package whose tests need the kernel's IPVS starts them with
//
//	func TestMain(m *testing.M) { vm.Main(m) }
//
// and is tested with plain `go test` as root. Main runs the tests on the host
// when its kernel has IPVS and otherwise re-runs the same test binary, with
// the same flags, inside a guest; see Main for the details.
//
// The guest is Debian's linux-image-*-cloud-amd64 kernel booted by
// qemu-system-x86_64 under TCG (no KVM needed), 2 vCPUs and 1 GiB, with an
// initramfs made of two concatenated cpio archives: a cached base (busybox,
// iproute2's ip, ipvsadm and their shared libraries, the kernel modules of
// DefaultModules and their dependencies, a shell /init) and a small one per
// job (the program, its shared libraries, its files). The guest has /proc,
// /sys, /dev, a tmpfs /tmp, loopback up and the modules loaded, and runs the
// job as root. Its console is the first serial port: the job's output
// streams from it, and /init ends it with a marker carrying a per-run nonce
// and the job's exit status. The second serial port brings Job.Collect's
// files back as a tar stream.
//
// Inside the guest, busybox's shell runs its own applets before PATH, so
// shell scripts must call iproute2 as /usr/sbin/ip (busybox's ip cannot make
// veth pairs). Go code that execs "ip" or "ipvsadm" gets iproute2's and the
// real ipvsadm, as PATH starts with /usr/sbin.
//
// The kernel and the base initramfs live in a cache (DIRECTORD_VM_CACHE,
// default /var/cache/directord/vm), filled by Config.Prepare under an flock
// and reused by every run; `go run ./testbed/vm/cmd/vmprep` fills it ahead of
// time.
package vm
