package lnoded

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// maintenanceNames returns the file names that put real r (address a, port
// as written and as programmed) into maintenance, in ldirectord's order
// (_check_real_for_maintenance): "ADDR:PORT", "ADDR", then the reverse DNS
// name and its first label, each with ":PORT" and without. names are the
// address's reverse DNS names (nil when not looked up).
func maintenanceNames(a netip.Addr, ports []uint16, names []string) []string {
	hosts := []string{a.String()}
	if a.Is6() {
		hosts = append(hosts, "["+a.String()+"]")
	}
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		hosts = append(hosts, n)
		// ldirectord's short name: the first label of a name starting
		// with a letter, /^([a-z][a-z0-9\-]+)\./.
		if short, _, ok := strings.Cut(n, "."); ok && len(short) > 1 && short[0] >= 'a' && short[0] <= 'z' {
			hosts = append(hosts, short)
		}
	}
	var out []string
	for _, h := range hosts {
		for _, p := range ports {
			out = append(out, h+":"+strconv.Itoa(int(p)))
		}
		out = append(out, h)
	}
	return out
}

// scanMaintenance looks at maintenancedir and records which real servers
// it puts into maintenance. It reports whether that set changed.
func (m *Module) scanMaintenance(ctx context.Context) bool {
	m.mu.Lock()
	p := m.plan
	dir := p.cfg.Global.MaintenanceDir
	m.mu.Unlock()

	files := map[string]bool{}
	needNames := false
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			m.log.Warn("maintenancedir: " + err.Error())
		}
		for _, e := range entries {
			files[e.Name()] = true
			host := e.Name()
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil {
				needNames = true
			}
		}
	}
	in := map[RealKey]bool{}
	for _, ri := range p.reals {
		if len(files) == 0 {
			break
		}
		var names []string
		if needNames {
			names = m.reverseNames(ctx, ri.key.Dest.Addr)
		}
		ports := []uint16{ri.real.Port}
		if ri.key.Dest.Port != ri.real.Port {
			ports = append(ports, ri.key.Dest.Port)
		}
		for _, n := range maintenanceNames(ri.key.Dest.Addr, ports, names) {
			if files[n] {
				in[ri.key] = true
				break
			}
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.plan != p {
		return true // reloaded meanwhile: look again at once
	}
	changed := false
	now := time.Now()
	for k := range in {
		if _, ok := m.maint[k]; !ok {
			m.maint[k] = now
			changed = true
			m.log.Info("Server maintenance: " + k.String() + " forced down (file in " + dir + ")")
		}
	}
	for k := range m.maint {
		if !in[k] {
			delete(m.maint, k)
			changed = true
			m.log.Info("Server maintenance: " + k.String() + " back to its checks")
		}
	}
	return changed
}

// reverseNames looks up (once per configuration) the names of a, bounded
// by a second.
func (m *Module) reverseNames(ctx context.Context, a netip.Addr) []string {
	m.mu.Lock()
	names, ok := m.names[a.String()]
	m.mu.Unlock()
	if ok {
		return names
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	names, _ = net.DefaultResolver.LookupAddr(ctx, a.String())
	m.mu.Lock()
	m.names[a.String()] = names
	m.mu.Unlock()
	return names
}
