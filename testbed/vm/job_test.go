package vm

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
)

// readArchive returns the entries of a cpio archive: name → contents (or
// symlink target), with "/" appended to directory names.
func readArchive(t *testing.T, b []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	r := cpio.NewReader(bytes.NewReader(b))
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Mode.IsDir() {
			got[hdr.Name+"/"] = ""
			continue
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = string(data)
	}
}

func TestWriteJob(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "data")
	if err := os.WriteFile(host, []byte("from host"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	job := Job{
		Path:    "/usr/bin/busybox", // static: no shared libraries
		Args:    []string{"it's", "$x y"},
		Env:     []string{"DIRECTORD_A=1 2", "DIRECTORD_B='q'"},
		Dir:     "/srv/work",
		Files:   []File{{Guest: "/etc/x/inline", Data: []byte("inline")}, {Guest: "/srv/work/data", Host: host}},
		Dirs:    []string{"/var/out"},
		Collect: []string{"/var/out", "/tmp/p.out"},
	}
	if err := writeJob(&buf, job, "n0nce"); err != nil {
		t.Fatal(err)
	}
	got := readArchive(t, buf.Bytes())
	for name, want := range map[string]string{
		"etc/x/inline":  "inline",
		"srv/work/data": "from host",
		"job/nonce":     "n0nce\n",
		"job/collect":   "var/out\ntmp/p.out\n",
		"var/out/":      "",
		"etc/x/":        "",
		"srv/":          "",
	} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s = %q (present %v), want %q", name, g, ok, want)
		}
	}
	if _, ok := got["job/bin/busybox"]; !ok {
		t.Error("the executable is missing")
	}
	run := got["job/run.sh"]
	for _, want := range []string{
		"cd '/srv/work' || exit 125\n",
		"export DIRECTORD_A='1 2'\n",
		`export DIRECTORD_B=''\''q'\'''` + "\n",
		`exec '/job/bin/busybox' 'it'\''s' '$x y'` + "\n",
	} {
		if !strings.Contains(run, want) {
			t.Errorf("run.sh lacks %q:\n%s", want, run)
		}
	}
}

func TestWriteJobErrors(t *testing.T) {
	for name, job := range map[string]Job{
		"no path":        {},
		"relative file":  {Path: "/usr/bin/busybox", Files: []File{{Guest: "rel", Data: nil}}},
		"bad env":        {Path: "/usr/bin/busybox", Env: []string{"1X=2"}},
		"env without =":  {Path: "/usr/bin/busybox", Env: []string{"X"}},
		"relative dir":   {Path: "/usr/bin/busybox", Dir: "work"},
		"relative guest": {Path: "/usr/bin/busybox", GuestPath: "bin/x"},
	} {
		if err := writeJob(io.Discard, job, "n"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPassEnv(t *testing.T) {
	for kv, want := range map[string]bool{
		"DIRECTORD_X=1":        true,
		"DIRECTORD_VM_GUEST=1": false,
		"GOTRACEBACK=all":      true,
		"HOME=/root":           false,
		"PATH=/bin":            false,
	} {
		if got := passEnv(kv); got != want {
			t.Errorf("passEnv(%q) = %v, want %v", kv, got, want)
		}
	}
}

func TestSelfJob(t *testing.T) {
	args := []string{
		"-test.paniconexit0",
		"-test.testlogfile=/tmp/b001/testlog.txt",
		"-test.timeout=3m0s",
		"-test.gocoverdir=/tmp/b001/gocoverdir",
		"-test.coverprofile=/tmp/b001/_cover_.out",
		"-test.outputdir=/out",
		"-test.cpuprofile=cpu.prof",
		"-test.run=^TestX$",
	}
	env := []string{"HOME=/root", "DIRECTORD_K=v", "GOTRACEBACK=all"}
	job, timeout := selfJob("/tmp/b001/x.test", "/src/pkg", args, env)
	if timeout != 3*time.Minute {
		t.Errorf("timeout %v, want 3m", timeout)
	}
	wantArgs := slices.Delete(slices.Clone(args), 1, 2)
	if !slices.Equal(job.Args, wantArgs) {
		t.Errorf("args %q, want %q (without the testlogfile)", job.Args, wantArgs)
	}
	if want := []string{"/tmp/b001/gocoverdir", "/tmp/b001/_cover_.out", "/out/cpu.prof"}; !slices.Equal(job.Collect, want) {
		t.Errorf("collect %q, want %q", job.Collect, want)
	}
	for _, d := range []string{"/tmp/b001/gocoverdir", "/out", "/tmp/b001"} {
		if !slices.Contains(job.Dirs, d) {
			t.Errorf("dirs %q lack %s", job.Dirs, d)
		}
	}
	if want := []string{"DIRECTORD_K=v", "GOTRACEBACK=all"}; !slices.Equal(job.Env, want) {
		t.Errorf("env %q, want %q", job.Env, want)
	}
	if job.Dir != "/src/pkg" || job.Path != "/tmp/b001/x.test" {
		t.Errorf("dir %s path %s", job.Dir, job.Path)
	}
}
