package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The files under testdata/ldirectord are run through both parsers. Each
// starts with a line saying what lnoded must do with it:
//
//	# want: accept
//	# want: reject
//	# want: reject (ldirectord: accept) WHY
//	# want: accept (ldirectord: reject) extension WHICH
//
// The third form marks a documented difference (docs/lnoded-differences.md):
// the test then asserts that ldirectord really does accept the file, so a
// difference that stops being one is noticed. The last marks a file that
// uses one of directord's extensions: lnoded accepts it, ldirectord rejects
// it, and so must lnoded with Options.NoExtensions.
const ldirectordCorpus = "testdata/ldirectord"

// ldirectordPath is Debian's ldirectord (package "ldirectord", which pulls in
// ipvsadm, which it needs to start at all).
const ldirectordPath = "/usr/sbin/ldirectord"

type corpusCase struct {
	name       string
	path       string
	wantAccept bool
	// ldAccept is what ldirectord is expected to do.
	ldAccept bool
	// extension marks a file using directord's extensions.
	extension bool
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ldirectordCorpus, "*.cf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("corpus has %d files, expected at least 50", len(files))
	}
	var cases []corpusCase
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := bufio.NewReader(fh).ReadString('\n')
		fh.Close()
		c := corpusCase{name: filepath.Base(f), path: f}
		switch {
		case strings.HasPrefix(first, "# want: accept (ldirectord: reject) extension"):
			c.wantAccept, c.ldAccept, c.extension = true, false, true
		case strings.HasPrefix(first, "# want: accept"):
			c.wantAccept, c.ldAccept = true, true
		case strings.HasPrefix(first, "# want: reject (ldirectord: accept)"):
			c.wantAccept, c.ldAccept = false, true
		case strings.HasPrefix(first, "# want: reject"):
			c.wantAccept, c.ldAccept = false, false
		default:
			t.Fatalf("%s: first line must be '# want: accept|reject', got %q", f, first)
		}
		cases = append(cases, c)
	}
	return cases
}

// TestCorpus checks lnoded's verdict on every corpus file; it needs no
// ldirectord.
func TestCorpus(t *testing.T) {
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseFile(context.Background(), c.path, nil)
			if c.wantAccept && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !c.wantAccept {
				if err == nil {
					t.Fatalf("accepted, want an error")
				}
				if cfg != nil {
					t.Errorf("a config came back with the error")
				}
				l, ok := AsErrorList(err)
				if !ok || len(l) == 0 {
					t.Fatalf("error is not an ErrorList: %v", err)
				}
				for _, e := range l {
					if e.Line <= 0 || e.File != c.name {
						t.Errorf("error does not name %s and a line: %v", c.name, e)
					}
				}
			}
			if c.extension {
				_, err := ParseFile(context.Background(), c.path, &Options{NoExtensions: true})
				l, ok := AsErrorList(err)
				if !ok || len(l) == 0 || l[0].Line <= 0 || !strings.Contains(l[0].Error(), "unknown directive") {
					t.Errorf("with NoExtensions: %v; want an unknown directive, as ldirectord says", err)
				}
			}
		})
	}
}

// TestLdirectordAgrees runs Debian's ldirectord on each corpus file in its
// "status" mode, which reads the whole configuration and exits 2 on a
// configuration error, or 3 ("stopped") when the file is good, without
// touching IPVS.
func TestLdirectordAgrees(t *testing.T) {
	if _, err := os.Stat(ldirectordPath); err != nil {
		t.Skipf("%s is absent (apt-get install ldirectord): the differential test against ldirectord 4.12 did not run", ldirectordPath)
	}
	if testing.Short() {
		t.Skip("runs ldirectord once per corpus file; skipped in -short mode")
	}
	dir := t.TempDir()
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			src, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			// A private copy: ldirectord's pid file is named after the
			// file's base name, and it must find no running instance.
			path := filepath.Join(dir, c.name)
			if err := os.WriteFile(path, src, 0o644); err != nil {
				t.Fatal(err)
			}
			ldAccept, out := runLdirectord(t, path)
			if ldAccept != c.ldAccept {
				t.Fatalf("ldirectord accept=%v, the corpus says %v; its output:\n%s", ldAccept, c.ldAccept, out)
			}
			_, err = ParseFile(context.Background(), path, nil)
			if c.extension {
				// Only without the extensions must lnoded agree.
				if err != nil {
					t.Fatalf("lnoded rejects a file with directord's extension: %v", err)
				}
				_, err = ParseFile(context.Background(), path, &Options{NoExtensions: true})
				if (err == nil) != ldAccept {
					t.Fatalf("lnoded with NoExtensions accept=%v, ldirectord accept=%v; lnoded: %v; ldirectord:\n%s", err == nil, ldAccept, err, out)
				}
				return
			}
			if (err == nil) != c.wantAccept {
				t.Fatalf("lnoded accept=%v, ldirectord accept=%v (want %v); lnoded: %v; ldirectord:\n%s", err == nil, ldAccept, c.wantAccept, err, out)
			}
		})
	}
}

func runLdirectord(t *testing.T, path string) (accepted bool, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ldirectordPath, path, "status")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 3:
		return true, out.String()
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		return false, out.String()
	}
	t.Fatalf("ldirectord %s status: %v (want exit 2 or 3):\n%s", path, err, out.String())
	return false, ""
}
