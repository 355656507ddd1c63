package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readAr is a minimal reader of the archives arWriter writes, independent
// of it: it checks the magic, the header layout and the padding.
func readAr(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		t.Fatalf("no ar magic")
	}
	b = b[8:]
	out := map[string][]byte{}
	for len(b) > 0 {
		if len(b) < 60 {
			t.Fatalf("truncated header")
		}
		h := b[:60]
		if string(h[58:60]) != "`\n" {
			t.Fatalf("bad header terminator in %q", h)
		}
		name := strings.TrimRight(string(h[:16]), " ")
		size, err := strconv.Atoi(strings.TrimRight(string(h[48:58]), " "))
		if err != nil {
			t.Fatalf("size of %s: %v", name, err)
		}
		if mode := strings.TrimRight(string(h[40:48]), " "); mode != "100644" {
			t.Errorf("%s: mode %q", name, mode)
		}
		b = b[60:]
		out[name] = b[:size]
		b = b[size:]
		if size%2 == 1 {
			if b[0] != '\n' {
				t.Fatalf("%s: odd member not padded with a newline", name)
			}
			b = b[1:]
		}
	}
	return out
}

func TestArWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newArWriter(&buf)
	members := []struct{ name, data string }{{"debian-binary", "2.0\n"}, {"odd", "abc"}, {"empty", ""}}
	for _, m := range members {
		if err := w.add(m.name, 1700000000, 0o100644, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	got := readAr(t, buf.Bytes())
	for _, m := range members {
		if string(got[m.name]) != m.data {
			t.Errorf("%s: %q, want %q", m.name, got[m.name], m.data)
		}
	}
	if err := w.add("a-name-longer-than-16", 0, 0o100644, nil); err == nil {
		t.Error("a 21-byte name was accepted")
	}
}

func TestTarballDirectoriesFirst(t *testing.T) {
	tb := newTarball(time.Unix(1700000000, 0))
	for _, name := range []string{"/usr/sbin/directord", "/usr/share/doc/x/y", "/etc/default/d", "control"} {
		if err := tb.file(name, 0o644, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := tb.close()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := map[string]bool{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !strings.HasPrefix(h.Name, "./") || h.Uname != "root" || h.Uid != 0 || !h.ModTime.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("entry %+v", h)
		}
		if h.Name != "./" {
			parent := h.Name[:strings.LastIndex(strings.TrimSuffix(h.Name, "/"), "/")+1]
			if !seen[parent] {
				t.Errorf("%s comes before its directory %s", h.Name, parent)
			}
		}
		if seen[h.Name] {
			t.Errorf("%s twice", h.Name)
		}
		seen[h.Name] = true
	}
	if want := "./ ./usr/ ./usr/sbin/ ./usr/sbin/directord ./usr/share/ ./usr/share/doc/ ./usr/share/doc/x/ ./usr/share/doc/x/y ./etc/ ./etc/default/ ./etc/default/d ./control"; strings.Join(names, " ") != want {
		t.Errorf("entries\n%s\nwant\n%s", strings.Join(names, " "), want)
	}
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"0.1.0": true, "1.2.3~rc1": true, "1:2.0-1": true, "": false, "v1.0": false, "1.0 beta": false, "1_0": false} {
		if err := checkVersion(v); (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v", v, err)
		}
	}
	for goarch, want := range map[string]string{"amd64": "amd64", "386": "i386", "arm": "armhf", "ppc64le": "ppc64el"} {
		if got, err := debianArch(goarch); err != nil || got != want {
			t.Errorf("debianArch(%q) = %q, %v", goarch, got, err)
		}
	}
	if _, err := debianArch("wasm"); err == nil {
		t.Error("wasm has a Debian architecture?")
	}
}
