package vm

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// defaultModules are the kernel modules every guest loads at boot: IPVS with
// all its schedulers, the tc parts of the reset guard, and the link types that testbed/netns builds topologies
// from. Names missing from the kernel are skipped (ip_vs_twos only exists in
// kernels newer than 6.1).
var defaultModules = []string{
	"ip_vs",
	"ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf",
	"ip_vs_mh", "ip_vs_twos",
	"veth", "bridge", "macvlan", "dummy", "8021q",
	// tc clsact, u32 and drop: the reset guard of a takeover (vip/rstguard).
	"sch_ingress", "cls_u32", "act_gact",
	// nf_tables and its dup expression: the forwarder of a graceful
	// handover (vip/handoff).
	"nf_tables", "nft_dup_ipv4", "nft_dup_ipv6",
}

// DefaultModules returns the names of the kernel modules a guest loads at boot
// (their dependencies are added automatically).
func DefaultModules() []string {
	return append([]string(nil), defaultModules...)
}

// module is one loadable kernel module of the guest kernel.
type module struct {
	name    string   // canonical name, '-' replaced by '_'
	rel     string   // path relative to /lib/modules/<release>
	depends []string // canonical names from .modinfo
}

// modName canonicalises a module name the way the kernel does: '-' and '_'
// are interchangeable.
func modName(s string) string {
	s = strings.TrimSuffix(filepath.Base(s), ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// indexModules maps every module under modDir (…/lib/modules/<release>) to its
// path. Debian's package ships no modules.dep (depmod runs at install time), so
// the dependency graph is read from each module's .modinfo section instead.
func indexModules(modDir string) (map[string]string, error) {
	idx := make(map[string]string)
	err := filepath.WalkDir(filepath.Join(modDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return nil
		}
		rel, err := filepath.Rel(modDir, p)
		if err != nil {
			return err
		}
		idx[modName(p)] = rel
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index kernel modules in %s: %w", modDir, err)
	}
	return idx, nil
}

// readDepends returns the "depends=" list of a module's .modinfo section.
func readDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", path, err)
	}
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, modName(d))
			}
		}
	}
	return deps, nil
}

// resolveModules returns the wanted modules and all their dependencies in a
// load order (every module after the modules it depends on). Wanted names the
// kernel does not have are skipped, except ip_vs, without which the guest is
// useless; a missing dependency is an error.
func resolveModules(modDir string, wanted []string) ([]module, error) {
	idx, err := indexModules(modDir)
	if err != nil {
		return nil, err
	}
	var (
		order []module
		state = make(map[string]int) // 1 visiting, 2 done
		visit func(name string, chain []string) error
	)
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		case 2:
			return nil
		}
		rel, ok := idx[name]
		if !ok {
			return fmt.Errorf("module %s (needed by %s) not found under %s", name, strings.Join(chain, " -> "), modDir)
		}
		state[name] = 1
		deps, err := readDepends(filepath.Join(modDir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, module{name: name, rel: rel, depends: deps})
		return nil
	}
	for _, w := range wanted {
		name := modName(w)
		if _, ok := idx[name]; !ok {
			if name == "ip_vs" {
				return nil, fmt.Errorf("kernel modules in %s have no ip_vs.ko", modDir)
			}
			continue
		}
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// modulesDep renders a modules.dep for the given modules (which must be in
// load order) so busybox modprobe works inside the guest for every module the
// image carries. Like depmod, each line lists all transitive dependencies,
// the one to load last first.
func modulesDep(mods []module) []byte {
	pos := make(map[string]int, len(mods))
	for i, m := range mods {
		pos[m.name] = i
	}
	var b bytes.Buffer
	for i, m := range mods {
		need := make(map[string]bool)
		var mark func(string)
		mark = func(n string) {
			for _, d := range mods[pos[n]].depends {
				if !need[d] {
					need[d] = true
					mark(d)
				}
			}
		}
		mark(m.name)
		b.WriteString(m.rel + ":")
		for j := i - 1; j >= 0; j-- {
			if need[mods[j].name] {
				b.WriteString(" " + mods[j].rel)
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
