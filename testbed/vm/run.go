package vm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says how guests are built and run. The zero value is ready to use.
type Config struct {
	// CacheDir holds the downloaded kernel and the base initramfs. Empty
	// means $DIRECTORD_VM_CACHE, or /var/cache/directord/vm.
	CacheDir string
	// QEMU is the qemu-system-x86_64 binary. Empty means look it up in PATH.
	QEMU string
	// MemoryMiB is the guest's memory; 0 means 1024.
	MemoryMiB int
	// CPUs is the number of vCPUs; 0 means 2.
	CPUs int
	// Modules are loaded at boot in addition to DefaultModules (with their
	// dependencies).
	Modules []string
	// KernelArgs are appended to the kernel command line. Normally the
	// guest silences kernel messages below KERN_ALERT once it is up, so they
	// cannot mix into the job's output; "directord.vm.debug=1 loglevel=7"
	// keeps them all (see them with Console).
	KernelArgs []string
	// Console, when set, receives every console line of the guest,
	// including the kernel's and init's before the job starts. For debugging.
	Console io.Writer
}

// File is an extra file put into the guest for a job.
type File struct {
	// Guest is the absolute path inside the guest.
	Guest string
	// Host is a host file to copy; when empty, Data is the content.
	Host string
	Data []byte
	// Mode is the permission bits; 0 means the host file's, or 0644.
	Mode fs.FileMode
}

// Job is one program to run in a fresh guest.
type Job struct {
	// Path is the host executable to run (static, or dynamic: its shared
	// libraries are found with ldd and copied along).
	Path string
	// GuestPath is where the executable goes in the guest; empty means
	// /job/bin/<base name of Path>.
	GuestPath string
	// Args are the arguments after the program name.
	Args []string
	// Env is the job's environment ("KEY=value"), on top of PATH, HOME,
	// TMPDIR and DIRECTORD_VM_GUEST=1, which the guest sets.
	Env []string
	// Dir is the working directory in the guest; it is created. Empty means /job.
	Dir string
	// Files are extra files to put in the guest.
	Files []File
	// Dirs are extra (empty) directories to create in the guest.
	Dirs []string
	// Collect are guest paths (files, or directories taken whole) to copy
	// back after the job exits, into Result.Files. Paths that do not exist
	// then are skipped. They travel over a second serial port, which is
	// slow: meant for profiles and small results, not bulk data.
	Collect []string
	// Stdout receives the job's console output (stdout and stderr
	// interleaved) line by line as it arrives. May be nil.
	Stdout io.Writer
}

// Result is what a job did.
type Result struct {
	// ExitCode is the job's exit status as the guest shell saw it
	// (128+n for a job killed by signal n).
	ExitCode int
	// Output is the job's console output (stdout and stderr interleaved).
	Output []byte
	// Boot is the time from starting qemu to the job starting.
	Boot time.Duration
	// Total is the time from starting qemu to the job's exit marker.
	Total time.Duration
	// Files are the regular files Job.Collect named, with their contents
	// in Data and their guest paths in Guest.
	Files []File
}

// consoleTail is how many console lines an error quotes.
const consoleTail = 40

// Run runs job in a fresh guest with the zero Config; see Config.Run.
func Run(ctx context.Context, job Job) (Result, error) {
	var c Config
	return c.Run(ctx, job)
}

// Run boots a fresh guest, runs job in it and returns its result once the job
// exits. A guest that panics, hangs until ctx is done (the error then wraps
// ctx.Err()), or stops without reporting the job's exit status is an error
// quoting the console's last lines. A job that exits non-zero is not an
// error: see Result.ExitCode.
func (c *Config) Run(ctx context.Context, job Job) (Result, error) {
	qemu, err := c.qemuPath()
	if err != nil {
		return Result{}, err
	}
	img, err := c.Prepare(ctx, false)
	if err != nil {
		return Result{}, err
	}
	nonce, err := newNonce()
	if err != nil {
		return Result{}, err
	}

	tmp, err := os.MkdirTemp("", "directord-vm-")
	if err != nil {
		return Result{}, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initrd.cpio")
	if err := buildInitrd(initrd, img.Initramfs, job, nonce); err != nil {
		return Result{}, err
	}

	mem, cpus := c.MemoryMiB, c.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	args := []string{
		"-accel", "tcg,thread=multi", "-cpu", "max",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "stdio",
		// ttyS1 carries Job.Collect's files back as a tar stream.
		"-serial", "file:" + filepath.Join(tmp, "collect.tar"),
		"-kernel", img.Kernel, "-initrd", initrd,
		"-append", strings.Join(append([]string{kernelCmdline}, c.KernelArgs...), " "),
	}
	cmd := exec.Command(qemu, args...)
	cmd.Stdin = nil
	// If this process dies (go test's own timeout kills test binaries),
	// the guest must not linger.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, fmt.Errorf("vm: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("vm: start %s: %w", qemu, err)
	}

	// The console reader owns stdout; it ends when qemu closes it.
	con := &console{nonce: nonce, job: job.Stdout, debug: c.Console, start: start, marker: make(chan struct{})}
	readDone := make(chan error, 1)
	go func() { readDone <- con.read(stdout) }()

	// Wait for the console to end (qemu exited after poweroff or a panic)
	// or ctx to end. Once the exit marker is seen, poweroff gets a few
	// seconds before qemu is killed.
	var ctxErr error
	select {
	case <-readDone:
	case <-con.marker:
		select {
		case <-readDone:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-readDone
		}
	case <-ctx.Done():
		ctxErr = ctx.Err()
		cmd.Process.Kill()
		<-readDone
	}
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-waitDone:
	case <-time.After(10 * time.Second):
		// qemu closed the serial port but did not exit: kill it.
		cmd.Process.Kill()
		waitErr = <-waitDone
	}

	res := Result{Output: con.output.Bytes(), Boot: con.boot, Total: con.total}
	if con.exited && ctxErr == nil {
		res.ExitCode = con.code
		if len(job.Collect) > 0 {
			if res.Files, err = readCollected(filepath.Join(tmp, "collect.tar")); err != nil {
				return res, err
			}
		}
		return res, nil
	}
	var cause error
	switch {
	case ctxErr != nil:
		cause = fmt.Errorf("guest did not finish: %w", ctxErr)
	case waitErr != nil:
		cause = fmt.Errorf("qemu failed without the job's exit marker: %w", waitErr)
	default:
		cause = errors.New("guest stopped without the job's exit marker (kernel panic or init failure?)")
	}
	detail := fmt.Sprintf(" after %v", time.Since(start).Round(time.Millisecond))
	if crash := con.crashLine(); crash != "" {
		detail += "\nguest kernel: " + crash
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		detail += "\nqemu stderr:\n" + s
	}
	detail += "\nlast console lines:\n" + strings.Join(con.lastLines(), "\n")
	return res, fmt.Errorf("vm: %w%s", cause, detail)
}

// kernelCmdline keeps boot short and quiet: no mitigation work that is slow
// under TCG, no keyboard/mouse probing, reboot (and thus qemu exit, with
// -no-reboot) on panic or oops. directord.vm=1 lets InGuest recognise the
// guest.
const kernelCmdline = "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic " +
	"mitigations=off i8042.noaux i8042.nokbd i8042.nopnp 8250.nr_uarts=2 " +
	"random.trust_cpu=on tsc=reliable no_timer_check audit=0 directord.vm=1"

func (c *Config) qemuPath() (string, error) {
	q := c.QEMU
	if q == "" {
		q = "qemu-system-x86_64"
	}
	p, err := exec.LookPath(q)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (apt-get install qemu-system-x86): %v", ErrPrerequisite, q, err)
	}
	return p, nil
}

func newNonce() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vm: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// buildInitrd writes the base initramfs followed by a second cpio archive
// with the job; the kernel unpacks concatenated archives in order.
func buildInitrd(out, base string, job Job, nonce string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("vm: initrd: %w", err)
	}
	defer f.Close()
	b, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("vm: initrd: %w", err)
	}
	_, err = io.Copy(f, b)
	b.Close()
	if err != nil {
		return fmt.Errorf("vm: initrd: copy base: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := writeJob(bw, job, nonce); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("vm: initrd: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vm: initrd: %w", err)
	}
	return nil
}

// writeJob writes the per-job archive: the executable, its shared libraries,
// the extra files, the nonce and /job/run.sh.
func writeJob(w io.Writer, job Job, nonce string) error {
	if job.Path == "" {
		return errors.New("vm: job has no Path")
	}
	guestBin := job.GuestPath
	if guestBin == "" {
		guestBin = "/job/bin/" + filepath.Base(job.Path)
	}
	if !path.IsAbs(guestBin) {
		return fmt.Errorf("vm: job GuestPath %q is not absolute", guestBin)
	}
	dir := job.Dir
	if dir == "" {
		dir = "/job"
	}
	libs, err := sharedLibs(job.Path)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	a := newArchive(w)
	if err := a.hostFile(guestBin, job.Path, 0o755); err != nil {
		return err
	}
	for _, l := range libs {
		if err := a.hostFile(l, l, 0o755); err != nil {
			return err
		}
	}
	for _, f := range job.Files {
		if !path.IsAbs(f.Guest) {
			return fmt.Errorf("vm: job file %q: guest path is not absolute", f.Guest)
		}
		if f.Host != "" {
			err = a.hostFile(f.Guest, f.Host, f.Mode)
		} else {
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			err = a.file(f.Guest, mode, f.Data)
		}
		if err != nil {
			return err
		}
	}
	for _, d := range append(job.Dirs, dir) {
		if !path.IsAbs(d) {
			return fmt.Errorf("vm: job directory %q is not absolute", d)
		}
		if err := a.mkdirAll(d); err != nil {
			return err
		}
	}
	var s strings.Builder
	s.WriteString("# generated by testbed/vm for one job\n")
	fmt.Fprintf(&s, "cd %s || exit 125\n", shellQuote(dir))
	for _, kv := range job.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !validEnvName(k) {
			return fmt.Errorf("vm: job environment entry %q is not KEY=value", kv)
		}
		fmt.Fprintf(&s, "export %s=%s\n", k, shellQuote(v))
	}
	s.WriteString("exec " + shellQuote(guestBin))
	for _, arg := range job.Args {
		s.WriteString(" " + shellQuote(arg))
	}
	s.WriteString("\n")
	if err := a.file("/job/run.sh", 0o755, []byte(s.String())); err != nil {
		return err
	}
	if err := a.file("/job/nonce", 0o644, []byte(nonce+"\n")); err != nil {
		return err
	}
	var collect strings.Builder
	for _, p := range job.Collect {
		if !path.IsAbs(p) || strings.Contains(p, "\n") {
			return fmt.Errorf("vm: job collect path %q is not absolute", p)
		}
		// Relative to /, as busybox tar is run from there.
		collect.WriteString(clean(p) + "\n")
	}
	if err := a.file("/job/collect", 0o644, []byte(collect.String())); err != nil {
		return err
	}
	return a.close()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if r != '_' && !(r >= 'A' && r <= 'Z') && !(r >= 'a' && r <= 'z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// console parses the guest's serial console: lines before the start marker
// are boot noise, lines after it are the job's, and the exit marker carries
// the job's status. Both markers include a per-run nonce so that job output
// cannot fake them.
type console struct {
	nonce string
	job   io.Writer
	debug io.Writer
	start time.Time
	// marker is closed when the exit marker has been read.
	marker chan struct{}

	mu   sync.Mutex
	tail []string
	// crash is the guest kernel's first "Kernel panic" or "Oops" line: a
	// panic's stack trace is often longer than tail, and the error must
	// still say what happened.
	crash   string
	output  bytes.Buffer
	started bool
	exited  bool
	code    int
	boot    time.Duration
	total   time.Duration
}

func (c *console) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	startMark := "DIRECTORD-VM-START-" + c.nonce
	exitMark := "DIRECTORD-VM-EXIT-" + c.nonce + " "
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			c.line(line, startMark, exitMark)
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func (c *console) line(line []byte, startMark, exitMark string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.debug != nil {
		c.debug.Write(line)
	}
	// The guest turns off CR/LF translation, but not before the kernel's
	// first lines; drop a CR before LF either way.
	text := string(bytes.TrimRight(line, "\r\n"))
	if c.crash == "" && (strings.Contains(text, "Kernel panic - ") || strings.Contains(text, "Oops: ")) {
		c.crash = strings.TrimSpace(text)
	}
	c.tail = append(c.tail, text)
	if len(c.tail) > consoleTail {
		c.tail = c.tail[len(c.tail)-consoleTail:]
	}
	switch {
	case c.exited:
	case !c.started:
		if strings.Contains(text, startMark) {
			c.started = true
			c.boot = time.Since(c.start)
		}
	default:
		i := strings.Index(text, exitMark)
		if i < 0 {
			if bytes.HasSuffix(line, []byte("\n")) {
				c.emit([]byte(text + "\n"))
			} else {
				c.emit([]byte(text))
			}
			return
		}
		// Output without a final newline ends up before the marker.
		if i > 0 {
			c.emit([]byte(text[:i]))
		}
		code, err := strconv.Atoi(strings.TrimSpace(text[i+len(exitMark):]))
		if err != nil {
			return
		}
		c.exited, c.code = true, code
		c.total = time.Since(c.start)
		close(c.marker)
	}
}

func (c *console) emit(b []byte) {
	c.output.Write(b)
	if c.job != nil {
		c.job.Write(b)
	}
}

// crashLine returns the guest kernel's panic or oops line, if it printed one.
func (c *console) crashLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crash
}

func (c *console) lastLines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.tail...)
}

// readCollected reads the tar stream the guest wrote to its second serial
// port. The guest closes the port before powering off, so the stream is
// complete unless the guest died.
func readCollected(name string) ([]File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("vm: collected files: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		return nil, nil // nothing existed to collect
	}
	var files []File
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("vm: collected files: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return files, fmt.Errorf("vm: collected file %s: %w", hdr.Name, err)
		}
		files = append(files, File{Guest: "/" + clean(hdr.Name), Data: data, Mode: fs.FileMode(hdr.Mode).Perm()})
	}
}
