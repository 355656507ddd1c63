package vm

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// archive writes a newc cpio archive for the kernel's initramfs unpacker. The
// unpacker does not create missing parent directories, so archive emits every
// parent before the first entry below it.
type archive struct {
	w    *cpio.Writer
	dirs map[string]bool
}

func newArchive(w io.Writer) *archive {
	return &archive{w: cpio.NewWriter(w), dirs: map[string]bool{".": true, "/": true, "": true}}
}

// clean turns a guest path into an archive name (relative, no leading "/").
func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (a *archive) mkdirAll(p string) error {
	p = clean(p)
	if a.dirs[p] {
		return nil
	}
	if err := a.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	a.dirs[p] = true
	mode := cpio.FileMode(0o755)
	if p == "tmp" || p == "var/tmp" {
		mode = 0o1777
	}
	if err := a.w.WriteHeader(&cpio.Header{Name: p, Mode: cpio.TypeDir | mode, Links: 2}); err != nil {
		return fmt.Errorf("cpio: directory %s: %w", p, err)
	}
	return nil
}

// file adds a regular file with the given contents.
func (a *archive) file(p string, mode os.FileMode, data []byte) error {
	p = clean(p)
	if err := a.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	hdr := &cpio.Header{Name: p, Mode: cpio.FileMode(mode.Perm()), Size: int64(len(data))}
	if err := a.w.WriteHeader(hdr); err != nil {
		return fmt.Errorf("cpio: %s: %w", p, err)
	}
	if _, err := a.w.Write(data); err != nil {
		return fmt.Errorf("cpio: %s: %w", p, err)
	}
	return nil
}

// hostFile copies the host file src (following symlinks) to guest path dst,
// streaming it so large test binaries are not held in memory.
func (a *archive) hostFile(dst, src string, mode os.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initramfs: %s is not a regular file", src)
	}
	if mode == 0 {
		mode = st.Mode().Perm()
	}
	dst = clean(dst)
	if err := a.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	hdr := &cpio.Header{Name: dst, Mode: cpio.FileMode(mode.Perm()), Size: st.Size()}
	if err := a.w.WriteHeader(hdr); err != nil {
		return fmt.Errorf("cpio: %s: %w", dst, err)
	}
	if n, err := io.Copy(a.w, f); err != nil {
		return fmt.Errorf("cpio: copy %s: %w", src, err)
	} else if n != st.Size() {
		return fmt.Errorf("cpio: %s changed size while being copied", src)
	}
	return nil
}

// symlink adds a symbolic link at p pointing to target.
func (a *archive) symlink(p, target string) error {
	p = clean(p)
	if err := a.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	hdr := &cpio.Header{Name: p, Mode: cpio.TypeSymlink | 0o777, Size: int64(len(target))}
	if err := a.w.WriteHeader(hdr); err != nil {
		return fmt.Errorf("cpio: symlink %s: %w", p, err)
	}
	if _, err := a.w.Write([]byte(target)); err != nil {
		return fmt.Errorf("cpio: symlink %s: %w", p, err)
	}
	return nil
}

func (a *archive) close() error {
	if err := a.w.Close(); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}

// sharedLibs returns the shared objects (the dynamic loader included) that
// the ELF executable bin needs, as absolute host paths, using ldd. A static
// executable (no PT_INTERP) needs none; ldd is not consulted for it, so static
// Go test binaries work on hosts without ldd.
func sharedLibs(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("read executable %s: %w", bin, err)
	}
	dynamic := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			dynamic = true
		}
	}
	f.Close()
	if !dynamic {
		return nil, nil
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return nil, fmt.Errorf("ldd %s (install libc-bin, or build the binary with CGO_ENABLED=0): %w %s", bin, err, bytes.TrimSpace(stderr))
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)",
		// "/lib64/ld-linux-x86-64.so.2 (0x…)" or "linux-vdso.so.1 (0x…)".
		line := strings.TrimSpace(sc.Text())
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		p, _, _ := strings.Cut(line, " ")
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: a shared library is missing: %s", bin, sc.Text())
		}
		if strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		}
	}
	return libs, nil
}
