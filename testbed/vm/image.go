package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// metaPackage is the Debian package whose dependency names the current cloud
// kernel image package.
const metaPackage = "linux-image-cloud-amd64"

// imageFormat is mixed into the base initramfs cache key; bump it whenever
// the layout of the base image changes.
const imageFormat = "directord-vm-base-6"

//go:embed init.sh
var initScript []byte

// ErrPrerequisite is wrapped by errors that mean the host lacks something the
// VM runner needs (qemu, apt, the kernel package); the message names what to
// install or run.
var ErrPrerequisite = errors.New("vm prerequisite missing")

// Image is a prepared guest: a kernel and the base initramfs that goes with it.
type Image struct {
	Package   string // Debian package the kernel came from, e.g. linux-image-6.1.0-56-cloud-amd64
	Release   string // kernel release (uname -r), e.g. 6.1.0-56-cloud-amd64
	Kernel    string // path of the bzImage
	Initramfs string // path of the cached base initramfs (uncompressed newc cpio)
	Modules   []string
}

// cacheDir returns the configured cache directory.
func (c *Config) cacheDir() string {
	if c.CacheDir != "" {
		return c.CacheDir
	}
	if d := os.Getenv("DIRECTORD_VM_CACHE"); d != "" {
		return d
	}
	return "/var/cache/directord/vm"
}

// lockCache takes an exclusive flock on the cache so that parallel test
// binaries do not download or build the same thing twice at once.
func lockCache(ctx context.Context, dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: create VM cache %s (set DIRECTORD_VM_CACHE to a writable directory): %v", ErrPrerequisite, dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		// A read-only cache prepared by root still serves: flock works on
		// a read-only descriptor.
		f, err = os.Open(filepath.Join(dir, "lock"))
	}
	if err != nil {
		return nil, fmt.Errorf("open VM cache lock: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock VM cache %s: %w", dir, err)
		}
	case <-ctx.Done():
		// Closing the file does not interrupt flock; the goroutine ends
		// when the other holder releases the lock, and the fd closes then.
		go func() { <-done; f.Close() }()
		return nil, fmt.Errorf("waiting for VM cache lock %s: %w", dir, ctx.Err())
	}
	return func() { f.Close() }, nil
}

// Prepare makes sure the kernel is downloaded and the base initramfs is built
// in the cache, and returns them. It reuses what the cache holds and asks apt
// only when the cache has no kernel yet or refresh is set (then it resolves
// linux-image-cloud-amd64 to its current versioned package again). Setting
// DIRECTORD_VM_KERNEL_DEB to the path of a linux-image-*-cloud-amd64 .deb uses
// that file instead of apt.
func (c *Config) Prepare(ctx context.Context, refresh bool) (*Image, error) {
	dir := c.cacheDir()
	unlock, err := lockCache(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	pkg, err := c.kernel(ctx, dir, refresh)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "kernels", pkg)
	img := &Image{Package: pkg}
	if img.Release, img.Kernel, err = findKernel(root); err != nil {
		return nil, err
	}
	modDir := filepath.Join(root, "lib", "modules", img.Release)
	mods, err := resolveModules(modDir, append(DefaultModules(), c.Modules...))
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		img.Modules = append(img.Modules, m.name)
	}
	img.Initramfs, err = c.baseInitramfs(dir, img, modDir, mods)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// kernel returns the name of the cached kernel package directory, fetching
// the package first when needed.
func (c *Config) kernel(ctx context.Context, dir string, refresh bool) (string, error) {
	current := filepath.Join(dir, "current")
	if !refresh {
		if b, err := os.ReadFile(current); err == nil {
			pkg := strings.TrimSpace(string(b))
			if _, _, err := findKernel(filepath.Join(dir, "kernels", pkg)); err == nil {
				return pkg, nil
			}
		}
	}
	deb := os.Getenv("DIRECTORD_VM_KERNEL_DEB")
	if deb == "" {
		pkg, err := resolveKernelPackage(ctx)
		if err != nil {
			return "", err
		}
		if _, _, err := findKernel(filepath.Join(dir, "kernels", pkg)); err == nil {
			return pkg, writeAtomic(current, []byte(pkg+"\n"), 0o644)
		}
		if deb, err = download(ctx, dir, pkg); err != nil {
			return "", err
		}
		defer os.RemoveAll(filepath.Dir(deb))
	}
	pkg, err := debPackage(ctx, deb)
	if err != nil {
		return "", err
	}
	root := filepath.Join(dir, "kernels", pkg)
	if _, _, err := findKernel(root); err != nil {
		tmp := root + ".tmp"
		os.RemoveAll(tmp)
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return "", fmt.Errorf("VM cache: %w", err)
		}
		if out, err := exec.CommandContext(ctx, "dpkg", "-x", deb, tmp).CombinedOutput(); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("dpkg -x %s: %w: %s", deb, err, bytes.TrimSpace(out))
		}
		if _, _, err := findKernel(tmp); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("%s: %w", deb, err)
		}
		os.RemoveAll(root)
		if err := os.Rename(tmp, root); err != nil {
			return "", fmt.Errorf("install kernel in cache: %w", err)
		}
	}
	return pkg, writeAtomic(current, []byte(pkg+"\n"), 0o644)
}

var kernelPkgRE = regexp.MustCompile(`^linux-image-[0-9][^ ]*-cloud-amd64$`)

// resolveKernelPackage asks apt which versioned package linux-image-cloud-amd64
// currently depends on.
func resolveKernelPackage(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", fmt.Errorf("%w: no apt-cache in PATH to find the guest kernel; on a non-Debian host set DIRECTORD_VM_KERNEL_DEB to a downloaded linux-image-*-cloud-amd64 .deb", ErrPrerequisite)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", metaPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: apt-cache depends %s failed (run `apt-get update` first; Debian bookworm's main archive must be in the apt sources): %v: %s", ErrPrerequisite, metaPackage, err, bytes.TrimSpace(out))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && kernelPkgRE.MatchString(f[1]) {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%w: apt-cache depends %s names no linux-image-*-cloud-amd64 package (run `apt-get update` first): %s", ErrPrerequisite, metaPackage, bytes.TrimSpace(out))
}

// download fetches pkg with apt-get download into a fresh directory under
// dir and returns the .deb's path.
func download(ctx context.Context, dir, pkg string) (string, error) {
	tmp, err := os.MkdirTemp(dir, "download-")
	if err != nil {
		return "", fmt.Errorf("create download directory: %w", err)
	}
	// apt's _apt user cannot write into this root-owned directory, so apt
	// downloads as root and warns about it; the warning is harmless.
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("%w: apt-get download %s failed (run `apt-get update` first; this needs Debian's apt archive reachable): %v: %s", ErrPrerequisite, pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("apt-get download %s: expected one .deb, found %d", pkg, len(debs))
	}
	return debs[0], nil
}

// debPackage returns the package name recorded in a .deb.
func debPackage(ctx context.Context, deb string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Package").Output()
	if err != nil {
		return "", fmt.Errorf("%w: dpkg-deb -f %s (is dpkg installed?): %v", ErrPrerequisite, deb, err)
	}
	pkg := strings.TrimSpace(string(out))
	if !kernelPkgRE.MatchString(pkg) {
		return "", fmt.Errorf("%s holds package %q, not a linux-image-*-cloud-amd64 kernel", deb, pkg)
	}
	return pkg, nil
}

// findKernel locates the bzImage and the module release in an extracted
// kernel package.
func findKernel(root string) (release, kernel string, err error) {
	k, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(k) != 1 {
		return "", "", fmt.Errorf("kernel package at %s: want one boot/vmlinuz-*, found %d", root, len(k))
	}
	release = strings.TrimPrefix(filepath.Base(k[0]), "vmlinuz-")
	if _, err := os.Stat(filepath.Join(root, "lib", "modules", release, "kernel")); err != nil {
		return "", "", fmt.Errorf("kernel package at %s: no modules for %s: %w", root, release, err)
	}
	return release, k[0], nil
}

// hostTools are the host executables copied into every guest, with the guest
// path they get. ip and ipvsadm are looked up in a few places because Debian
// moved ip from /bin to /usr/sbin over time.
var hostTools = []struct {
	guest      string
	candidates []string
	install    string
}{
	{"/bin/busybox", []string{"/usr/bin/busybox", "/bin/busybox"}, "busybox-static"},
	{"/usr/sbin/ip", []string{"/usr/sbin/ip", "/sbin/ip", "/bin/ip", "/usr/bin/ip"}, "iproute2"},
	{"/usr/sbin/ipvsadm", []string{"/usr/sbin/ipvsadm", "/sbin/ipvsadm"}, "ipvsadm"},
}

// guestEtc holds the small /etc files Go programs and iproute2 expect.
var guestEtc = map[string]string{
	"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
	"etc/group":         "root:x:0:\nnogroup:x:65534:\n",
	"etc/hosts":         "127.0.0.1 localhost directord-vm\n::1 localhost ip6-localhost ip6-loopback\n",
	"etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
	"etc/resolv.conf":   "",
	"etc/hostname":      "directord-vm\n",
}

// baseInitramfs returns the cached base initramfs for img, building it when
// the cache has none for the current inputs.
func (c *Config) baseInitramfs(dir string, img *Image, modDir string, mods []module) (string, error) {
	type input struct{ guest, host string }
	var inputs []input
	for _, t := range hostTools {
		found := ""
		for _, cand := range t.candidates {
			if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() {
				found = cand
				break
			}
		}
		if found == "" {
			return "", fmt.Errorf("%w: %s not found (apt-get install %s)", ErrPrerequisite, t.candidates[0], t.install)
		}
		inputs = append(inputs, input{t.guest, found})
		if t.guest == "/bin/busybox" {
			if libs, err := sharedLibs(found); err != nil || len(libs) != 0 {
				return "", fmt.Errorf("%w: %s is not statically linked (apt-get install busybox-static)", ErrPrerequisite, found)
			}
			continue
		}
		libs, err := sharedLibs(found)
		if err != nil {
			return "", err
		}
		for _, l := range libs {
			inputs = append(inputs, input{l, l})
		}
	}
	seen := make(map[string]bool)
	uniq := inputs[:0]
	for _, in := range inputs {
		if !seen[in.guest] {
			seen[in.guest] = true
			uniq = append(uniq, in)
		}
	}
	inputs = uniq
	for _, f := range []string{"/etc/services", "/etc/protocols"} {
		if _, err := os.Stat(f); err == nil {
			inputs = append(inputs, input{f, f})
		}
	}

	// The cache key covers everything the image is made of, so an upgraded
	// host tool or another module list builds a new image.
	h := sha256.New()
	fmt.Fprintln(h, imageFormat, img.Package, img.Release)
	h.Write(initScript)
	for _, m := range mods {
		fmt.Fprintln(h, "mod", m.rel)
	}
	for _, in := range inputs {
		st, err := os.Stat(in.host)
		if err != nil {
			return "", fmt.Errorf("initramfs input: %w", err)
		}
		fmt.Fprintln(h, "file", in.guest, in.host, st.Size(), st.ModTime().UnixNano())
	}
	out := filepath.Join(dir, "base-"+hex.EncodeToString(h.Sum(nil))[:16]+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}

	f, err := os.CreateTemp(dir, "base-*.tmp")
	if err != nil {
		return "", fmt.Errorf("build base initramfs: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	a := newArchive(bw)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "mnt", "var/tmp", "job", "usr/bin", "usr/sbin", "sbin", "etc/directord-vm"} {
		if err := a.mkdirAll(d); err != nil {
			return "", err
		}
	}
	if err := a.file("init", 0o755, initScript); err != nil {
		return "", err
	}
	for _, in := range inputs {
		if err := a.hostFile(in.guest, in.host, 0); err != nil {
			return "", err
		}
	}
	// /bin/sh must exist before busybox --install runs, for the #! line.
	if err := a.symlink("bin/sh", "busybox"); err != nil {
		return "", err
	}
	// The kernel runs /sbin/modprobe to autoload modules (IPVS asks for
	// ip_vs_<scheduler>); busybox's reads the modules.dep written below.
	if err := a.symlink("sbin/modprobe", "/bin/busybox"); err != nil {
		return "", err
	}
	// Tools still use /var/run (iproute2's netns directory among them).
	if err := a.symlink("var/run", "../run"); err != nil {
		return "", err
	}
	for name, data := range guestEtc {
		if err := a.file(name, 0o644, []byte(data)); err != nil {
			return "", err
		}
	}
	guestMods := "lib/modules/" + img.Release + "/"
	var load bytes.Buffer
	for _, m := range mods {
		if err := a.hostFile(guestMods+m.rel, filepath.Join(modDir, m.rel), 0o644); err != nil {
			return "", err
		}
		load.WriteString(m.name + "\n")
	}
	if err := a.file(guestMods+"modules.dep", 0o644, modulesDep(mods)); err != nil {
		return "", err
	}
	if err := a.file("etc/directord-vm/modules", 0o644, load.Bytes()); err != nil {
		return "", err
	}
	if err := a.close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("write base initramfs: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write base initramfs: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", fmt.Errorf("build base initramfs: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return "", fmt.Errorf("install base initramfs: %w", err)
	}
	removeStaleBases(dir, out)
	return out, nil
}

// writeAtomic replaces path with data through a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// removeStaleBases deletes base initramfs files other than keep that were
// were built more than a day ago, so upgrades of host tools do not
// fill the cache. A run still copying one keeps its open file.
func removeStaleBases(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "base-*.cpio"))
	for _, p := range old {
		if st, err := os.Stat(p); err == nil && p != keep && time.Since(st.ModTime()) > 24*time.Hour {
			os.Remove(p)
		}
	}
}
