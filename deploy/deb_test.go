package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// buildDeb runs mkdeb on the test binary and returns the .deb's path.
func buildDeb(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./deploy/mkdeb", "-binary", binary, "-o", out, "-version", "1.2.3~test1")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mkdeb: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b))
	if !strings.HasPrefix(filepath.Base(deb), "directord_1.2.3~test1_") || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("mkdeb wrote %q", deb)
	}
	return deb
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDeb(t *testing.T) {
	needTool(t, "dpkg-deb")
	deb := buildDeb(t)

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Installed-Size", "Recommends", "Depends", "Section", "Priority", "Description"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, f))
	}
	for f, want := range map[string]string{
		"Package": "directord", "Version": "1.2.3~test1", "Recommends": "ipvsadm",
		"Section": "net", "Priority": "optional",
		// A static binary: nothing is needed, ipvsadm is only handy.
		"Depends": "",
	} {
		if fields[f] != want {
			t.Errorf("%s: %q, want %q", f, fields[f], want)
		}
	}
	if fields["Maintainer"] == "" || fields["Installed-Size"] == "" || !strings.Contains(fields["Description"], "\n") {
		t.Errorf("incomplete control file: %v", fields)
	}

	info := run(t, "dpkg-deb", "--info", deb)
	for _, want := range []string{"conffiles", "md5sums", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("control archive lacks %s:\n%s", want, info)
		}
	}
	contents := run(t, "dpkg-deb", "--contents", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/sbin/directord",
		"./usr/lib/systemd/system/directord.service",
		"./usr/lib/systemd/system/directord-realserver.service",
		"./usr/lib/modules-load.d/directord.conf",
		"./etc/default/directord", "./etc/default/directord-realserver",
		"./usr/share/doc/directord/configuration.md", "./usr/share/doc/directord/operator-guide.md",
		"./usr/share/doc/directord/lnoded-differences.md", "./usr/share/doc/directord/copyright",
		"./usr/share/doc/directord/examples/ha.d/ha.cf", "./usr/share/doc/directord/examples/directord/directord.yaml",
		"./usr/share/man/man8/directord.8.gz",
	} {
		if !strings.Contains(contents, want) {
			t.Errorf("contents lack %s", want)
		}
	}
	// Reproducible: every entry carries SOURCE_DATE_EPOCH's date.
	if strings.Count(contents, "2023-11-14") != strings.Count(contents, "\n") {
		t.Errorf("not every entry is dated SOURCE_DATE_EPOCH (2023-11-14):\n%s", contents)
	}

	if lintian, err := exec.LookPath("lintian"); err == nil {
		// The tags about the binary's linking depend on how it was built:
		// mkdeb builds a static PIE, this test packs the test binary.
		binaryTags := []string{"statically-linked-binary", "shared-library-lacks-prerequisites", "hardening-no-pie", "hardening-no-relro", "unstripped-binary-or-object", "undeclared-elf-prerequisites"}
		out, _ := exec.Command(lintian, "--tag-display-limit", "0", deb).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "E: ") && !strings.HasPrefix(line, "W: ") {
				continue
			}
			ignored := false
			for _, tag := range binaryTags {
				ignored = ignored || strings.Contains(line, " "+tag)
			}
			if !ignored {
				t.Errorf("lintian: %s", line)
			}
		}
	} else {
		t.Log("lintian not installed; package policy not checked")
	}

	root := t.TempDir()
	run(t, "dpkg", "-x", deb, root)
	ctrl := t.TempDir()
	run(t, "dpkg-deb", "--control", deb, ctrl)
	b, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Fields(string(b))
	sort.Strings(conf)
	if want := []string{"/etc/default/directord", "/etc/default/directord-realserver"}; strings.Join(conf, " ") != strings.Join(want, " ") {
		t.Errorf("conffiles %v, want %v", conf, want)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		b, err := os.ReadFile(filepath.Join(ctrl, script))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if strings.Contains(s, "systemctl start") || strings.Contains(s, "systemctl enable") || strings.Contains(s, "restart") {
			t.Errorf("%s starts or enables a service:\n%s", script, s)
		}
		if out, err := exec.Command("sh", "-n", filepath.Join(ctrl, script)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", script, err, out)
		}
	}
	// md5sums lists every file that is not a conffile, with its sum.
	sums := run(t, "sh", "-c", "cd "+root+" && md5sum -c "+filepath.Join(ctrl, "md5sums"))
	if strings.Count(sums, ": OK") < 10 {
		t.Errorf("md5sums checks too few files:\n%s", sums)
	}

	// The unpacked binary runs and passes its own examples.
	out := run(t, filepath.Join(root, "usr/sbin/directord"), "version")
	if strings.TrimSpace(out) == "" {
		t.Error("no version")
	}
	ex := filepath.Join(root, "usr/share/doc/directord/examples/ha.d")
	if err := os.Chmod(filepath.Join(ex, "authkeys"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Join(root, "usr/sbin/directord"), "check", "-q", "--ha-dir", ex, "--node", "node1.a.com")
}

// TestDebInDebootstrap installs the package into a fresh Debian made with
// debootstrap, checks that nothing is enabled or started, runs `directord
// check` on the examples there, and removes and purges the package. It
// downloads a Debian base system, so it runs only with
// DIRECTORD_DEBOOTSTRAP=1 (and DIRECTORD_DEBOOTSTRAP_MIRROR to choose the
// mirror); DIRECTORD_DEBOOTSTRAP_ROOT reuses a root made earlier.
func TestDebInDebootstrap(t *testing.T) {
	if os.Getenv("DIRECTORD_DEBOOTSTRAP") != "1" {
		t.Skip("set DIRECTORD_DEBOOTSTRAP=1 to install the .deb into a debootstrap root (slow, downloads Debian)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("debootstrap and chroot need root")
	}
	deb := buildDeb(t)
	root := os.Getenv("DIRECTORD_DEBOOTSTRAP_ROOT")
	if root == "" {
		debootstrap := needTool(t, "debootstrap")
		root = filepath.Join(t.TempDir(), "root")
		mirror := os.Getenv("DIRECTORD_DEBOOTSTRAP_MIRROR")
		if mirror == "" {
			mirror = "http://deb.debian.org/debian"
		}
		run(t, debootstrap, "--variant=minbase", "bookworm", root, mirror)
	}
	chroot := func(args ...string) string {
		t.Helper()
		return run(t, "chroot", append([]string{root}, args...)...)
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "directord.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	chroot("dpkg", "-i", "/tmp/directord.deb")
	status := chroot("dpkg-query", "-W", "-f", "${Status} ${Version}", "directord")
	if status != "install ok installed 1.2.3~test1" {
		t.Errorf("dpkg-query: %q", status)
	}
	for _, p := range []string{"etc/systemd/system/multi-user.target.wants/directord.service", "etc/systemd/system/multi-user.target.wants/directord-realserver.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("installing enabled a service: /%s exists", p)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "var/lib/directord")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/directord: %v %v, want a 0700 directory", st, err)
	}
	chroot("sh", "-c", "mkdir -p /etc/ha.d && cp /usr/share/doc/directord/examples/ha.d/* /etc/ha.d/ && chmod 600 /etc/ha.d/authkeys")
	out := chroot("/usr/sbin/directord", "check", "--ha-dir", "/etc/ha.d", "--node", "node1.a.com")
	for _, want := range seed003Services {
		if !strings.Contains(out, want) {
			t.Errorf("check in the chroot lacks %q:\n%s", want, out)
		}
	}
	chroot("sh", "-c", "mkdir -p /etc/directord && cp /usr/share/doc/directord/examples/directord/* /etc/directord/ && chmod 600 /etc/directord/directord.yaml")
	chroot("/usr/sbin/directord", "check", "-q", "--config", "/etc/directord/directord.yaml", "--node", "node2.a.com")

	// A changed conffile survives removal; purge takes everything.
	chroot("sh", "-c", "echo '# edited' >> /etc/default/directord")
	chroot("dpkg", "-r", "directord")
	if _, err := os.Stat(filepath.Join(root, "etc/default/directord")); err != nil {
		t.Errorf("remove deleted the conffile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/directord")); err == nil {
		t.Error("remove left the binary")
	}
	chroot("dpkg", "-P", "directord")
	for _, p := range []string{"etc/default/directord", "var/lib/directord"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("purge left /%s", p)
		}
	}
}
