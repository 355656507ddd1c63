package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// file is one file of the package.
type file struct {
	dest     string // absolute path on the target system
	mode     int64
	data     []byte
	conffile bool
}

type pkg struct {
	version, arch string
	mtime         time.Time
	files         []file
}

const docDir = "/usr/share/doc/directord"

// collect gathers the package's files from the repository at root.
func (p *pkg) collect(root, binary string) error {
	add := func(src, dest string, mode int64, conffile bool) error {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			return err
		}
		p.files = append(p.files, file{dest: dest, mode: mode, data: b, conffile: conffile})
		return nil
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	p.files = append(p.files, file{dest: "/usr/sbin/directord", mode: 0o755, data: bin})
	for _, f := range []struct {
		src, dest string
		mode      int64
		conffile  bool
	}{
		{"deploy/systemd/directord.service", "/usr/lib/systemd/system/directord.service", 0o644, false},
		{"deploy/systemd/directord-realserver.service", "/usr/lib/systemd/system/directord-realserver.service", 0o644, false},
		{"deploy/modules-load/directord.conf", "/usr/lib/modules-load.d/directord.conf", 0o644, false},
		{"deploy/default/directord", "/etc/default/directord", 0o644, true},
		{"deploy/default/directord-realserver", "/etc/default/directord-realserver", 0o644, true},
		{"docs/configuration.md", docDir + "/configuration.md", 0o644, false},
		{"docs/operator-guide.md", docDir + "/operator-guide.md", 0o644, false},
		{"docs/lnoded-differences.md", docDir + "/lnoded-differences.md", 0o644, false},
	} {
		if err := add(f.src, f.dest, f.mode, f.conffile); err != nil {
			return err
		}
	}
	examples := filepath.Join(root, "deploy", "examples")
	err = filepath.WalkDir(examples, func(p2 string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p2)
		if err != nil {
			return err
		}
		sub, _ := filepath.Rel(examples, p2)
		return add(rel, docDir+"/examples/"+filepath.ToSlash(sub), 0o644, false)
	})
	if err != nil {
		return err
	}
	man, err := os.ReadFile(filepath.Join(root, "deploy", "man", "directord.8"))
	if err != nil {
		return err
	}
	p.files = append(p.files,
		file{dest: "/usr/share/man/man8/directord.8.gz", mode: 0o644, data: gz(man)},
		file{dest: docDir + "/copyright", mode: 0o644, data: []byte(copyright)},
		file{dest: docDir + "/" + p.changelogName(), mode: 0o644, data: gz([]byte(p.changelog()))},
	)
	sort.Slice(p.files, func(i, j int) bool { return p.files[i].dest < p.files[j].dest })
	return nil
}

// deb assembles the .deb: an ar archive of debian-binary, control.tar.gz
// and data.tar.gz, in that order as dpkg requires.
func (p *pkg) deb() ([]byte, error) {
	data, err := p.dataTar()
	if err != nil {
		return nil, err
	}
	control, err := p.controlTar()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	ar := newArWriter(&out)
	for _, m := range []struct {
		name string
		data []byte
	}{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.gz", control},
		{"data.tar.gz", data},
	} {
		if err := ar.add(m.name, p.mtime.Unix(), 0o100644, m.data); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

func (p *pkg) dataTar() ([]byte, error) {
	t := newTarball(p.mtime)
	for _, f := range p.files {
		if err := t.file(f.dest, f.mode, f.data); err != nil {
			return nil, err
		}
	}
	return t.close()
}

func (p *pkg) controlTar() ([]byte, error) {
	var md5sums, conffiles strings.Builder
	size := int64(0)
	for _, f := range p.files {
		size += int64(len(f.data))
		if f.conffile {
			fmt.Fprintln(&conffiles, f.dest)
			continue // dpkg tracks conffiles by their own checksums
		}
		fmt.Fprintf(&md5sums, "%x  %s\n", md5.Sum(f.data), strings.TrimPrefix(f.dest, "/"))
	}
	t := newTarball(p.mtime)
	for _, f := range []struct {
		name string
		mode int64
		data string
	}{
		{"control", 0o644, p.control((size + 1023) / 1024)},
		{"conffiles", 0o644, conffiles.String()},
		{"md5sums", 0o644, md5sums.String()},
		{"postinst", 0o755, postinst},
		{"prerm", 0o755, prerm},
		{"postrm", 0o755, postrm},
	} {
		if err := t.file(f.name, f.mode, []byte(f.data)); err != nil {
			return nil, err
		}
	}
	return t.close()
}

// control is the package's control file; installedKiB is Installed-Size.
func (p *pkg) control(installedKiB int64) string {
	return fmt.Sprintf(`Package: directord
Version: %s
Architecture: %s
Maintainer: directord maintainers <maintainers@directord.invalid>
Installed-Size: %d
Recommends: ipvsadm
Suggests: iputils-arping, tcpdump
Section: net
Priority: optional
Homepage: https://github.com/directord/directord
Description: highly available LVS-DR director: Heartbeat and ldirectord in one daemon
 directord turns two Linux machines into a highly available LVS direct-routing
 director pair. It replaces Heartbeat, ipvsadm and ldirectord with one static
 binary that speaks Heartbeat 3.0.6's protocol (so it pairs with a node still
 running Heartbeat during a migration), reads /etc/ha.d (ha.cf, haresources,
 authkeys, lnoded.cf/ldirectord.cf) unchanged or its own YAML, checks the real
 servers as ldirectord does and programs IPVS over netlink.
 .
 The same package prepares real servers: directord-realserver.service puts
 the VIPs on lo and sets arp_ignore/arp_announce.
 .
 Installing the package starts and enables nothing: see
 /usr/share/doc/directord/operator-guide.md.
`, p.version, p.arch, installedKiB)
}

// changelogName follows Debian policy 12.7: a version without a Debian
// revision is a native package, whose changelog is changelog.gz.
func (p *pkg) changelogName() string {
	if strings.Contains(p.version, "-") {
		return "changelog.Debian.gz"
	}
	return "changelog.gz"
}

func (p *pkg) changelog() string {
	return fmt.Sprintf(`directord (%s) unstable; urgency=medium

  * Built from the directord repository by deploy/mkdeb.

 -- directord maintainers <maintainers@directord.invalid>  %s
`, p.version, p.mtime.Format(time.RFC1123Z))
}

const copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: directord
Source: https://github.com/directord/directord

Files: *
Copyright: 2026 the directord authors
License: see the source repository
`

// The maintainer scripts never enable or start a service: a director that
// takes VIPs over because a package was installed, or a real server that
// changes its ARP behaviour, would surprise the operator, who enables them
// once `directord check` passes (operator guide).
const postinst = `#!/bin/sh
set -e
case "$1" in
configure)
	mkdir -p /var/lib/directord
	chmod 0700 /var/lib/directord
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	;;
esac
exit 0
`

// On removal (not on upgrade) the services stop: the director's groups go
// to its peer, the real server's VIPs leave lo. An upgrade leaves the
// running daemon alone; the operator restarts it when the peer is up.
const prerm = `#!/bin/sh
set -e
case "$1" in
remove|deconfigure)
	if [ -d /run/systemd/system ] && command -v deb-systemd-invoke >/dev/null; then
		deb-systemd-invoke stop directord.service directord-realserver.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
`

const postrm = `#!/bin/sh
set -e
case "$1" in
purge)
	rm -rf /var/lib/directord
	rm -f /etc/systemd/system/multi-user.target.wants/directord.service \
		/etc/systemd/system/multi-user.target.wants/directord-realserver.service
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
`

// tarball writes a gzipped tar as dpkg expects it: "./"-relative names,
// root-owned, every parent directory listed before its contents.
type tarball struct {
	buf   bytes.Buffer
	gz    *gzip.Writer
	tw    *tar.Writer
	mtime time.Time
	dirs  map[string]bool
}

func newTarball(mtime time.Time) *tarball {
	t := &tarball{mtime: mtime, dirs: map[string]bool{}}
	t.gz, _ = gzip.NewWriterLevel(&t.buf, gzip.BestCompression) // the level is valid
	t.gz.ModTime = mtime
	t.tw = tar.NewWriter(t.gz)
	return t
}

func (t *tarball) header(name string, mode int64, typ byte, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: t.mtime,
		Uname: "root", Gname: "root", Format: tar.FormatGNU,
	}
}

// dir writes the entry of directory rel ("usr/sbin", "." for the root)
// after those of its parents, once.
func (t *tarball) dir(rel string) error {
	if t.dirs[rel] {
		return nil
	}
	if rel != "." {
		if err := t.dir(path.Dir(rel)); err != nil {
			return err
		}
	}
	t.dirs[rel] = true
	name := "./"
	if rel != "." {
		name = "./" + rel + "/"
	}
	return t.tw.WriteHeader(t.header(name, 0o755, tar.TypeDir, 0))
}

// file writes a regular file; name is absolute or relative to the root.
func (t *tarball) file(name string, mode int64, data []byte) error {
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	if err := t.dir(path.Dir(rel)); err != nil {
		return err
	}
	if err := t.tw.WriteHeader(t.header("./"+rel, mode, tar.TypeReg, int64(len(data)))); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

func (t *tarball) close() ([]byte, error) {
	if err := t.tw.Close(); err != nil {
		return nil, err
	}
	if err := t.gz.Close(); err != nil {
		return nil, err
	}
	return t.buf.Bytes(), nil
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	_, _ = w.Write(b)                                       // writes to a bytes.Buffer do not fail
	_ = w.Close()
	return buf.Bytes()
}
