package e2etest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/directord/directord/testbed/vm"
)

// Paths of Debian's ldirectord 4.12 and the perl that runs it.
const (
	ldirectordPath = "/usr/sbin/ldirectord"
	perlPath       = "/usr/bin/perl"
)

// incDump is a Perl module that writes %INC (the files of every module
// loaded so far) to $INC_DUMP once compilation ends.
const incDump = `package IncDump;
CHECK { open(my $f, ">", $ENV{INC_DUMP}) or die; print $f "$_=$INC{$_}\n" for sort keys %INC; close $f; }
1;
`

// runtimeModules are the modules ldirectord loads only when it runs an
// HTTP or DNS check (LWP picks its protocol module, Net::DNS its record
// classes, when they are first needed).
var runtimeModules = []string{
	"Net::DNS", "Net::DNS::Resolver", "Net::DNS::RR::A", "Net::DNS::RR::AAAA", "Net::DNS::RR::PTR",
	"Net::DNS::RR::CNAME", "Net::DNS::RR::SOA", "Net::DNS::RR::OPT", "Net::DNS::RR::NS",
	"LWP::UserAgent", "LWP::Protocol::http", "HTTP::Request", "HTTP::Response", "HTTP::Headers::Util",
	"Time::HiRes", "Encode", "Encode::Locale", "Digest::MD5",
}

// wholeTrees are module directories taken whole, because their modules
// load siblings by name at run time.
var wholeTrees = []string{"Net/DNS", "LWP", "HTTP", "URI"}

// ldirectordFiles returns what the guest needs to run Debian's ldirectord
// for HTTP and DNS checks: perl and its shared libraries, the Perl modules
// ldirectord loads (found by asking perl for %INC after compiling
// ldirectord, and after loading the modules its checks load at run time),
// their XS libraries, and /etc/protocols and /etc/services. It returns no
// files where ldirectord is not installed; the differential test then
// skips in the guest, saying so.
func ldirectordFiles() ([]vm.File, error) {
	if _, err := os.Stat(ldirectordPath); err != nil {
		return nil, nil
	}
	tmp, err := os.MkdirTemp("", "lnoded-inc")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "IncDump.pm"), []byte(incDump), 0o644); err != nil {
		return nil, err
	}
	inc := map[string]string{} // module file (Net/DNS.pm) → path
	dump := func(args ...string) error {
		out := filepath.Join(tmp, "inc.txt")
		cmd := exec.Command(perlPath, append([]string{"-I" + tmp, "-MIncDump", "-c"}, args...)...)
		cmd.Env = append(os.Environ(), "INC_DUMP="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("perl -c %q: %v\n%s", args, err, b)
		}
		f, err := os.Open(out)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(v, "/") && !strings.HasPrefix(v, tmp) {
				inc[k] = v
			}
		}
		return sc.Err()
	}
	if err := dump(ldirectordPath); err != nil {
		return nil, err
	}
	var use []string
	for _, m := range runtimeModules {
		use = append(use, "use "+m+";")
	}
	if err := dump("-e", strings.Join(use, " ")); err != nil {
		return nil, err
	}

	paths := []string{ldirectordPath, perlPath, "/etc/protocols", "/etc/services"}
	roots := map[string]bool{}
	for k, v := range inc {
		paths = append(paths, v)
		root := strings.TrimSuffix(v, "/"+k)
		if root == v {
			continue
		}
		roots[root] = true
		// XS modules keep their shared object (and autosplit files)
		// under auto/Module/Name/ (not below: auto/Encode/JP/ and the
		// like belong to other modules).
		auto := filepath.Join(root, "auto", strings.TrimSuffix(k, ".pm"))
		if entries, err := os.ReadDir(auto); err == nil {
			for _, e := range entries {
				if e.Type().IsRegular() {
					paths = append(paths, filepath.Join(auto, e.Name()))
				}
			}
		}
	}
	for root := range roots {
		for _, t := range wholeTrees {
			if d := filepath.Join(root, t); isDir(d) {
				paths = append(paths, d)
			}
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	files, err := vm.HostFiles(paths...)
	if err != nil {
		return nil, err
	}
	// Shared libraries of perl and of every XS object.
	libs := map[string]bool{}
	for _, f := range files {
		if f.Host == perlPath || strings.HasSuffix(f.Host, ".so") {
			l, err := ldd(f.Host)
			if err != nil {
				return nil, err
			}
			for _, p := range l {
				libs[p] = true
			}
		}
	}
	for p := range libs {
		files = append(files, vm.File{Guest: p, Host: p})
	}
	return files, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

var lddRE = regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`)

// ldd lists the shared libraries bin needs, by absolute path.
func ldd(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, nil // not dynamic
		}
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	for _, m := range lddRE.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs, nil
}
