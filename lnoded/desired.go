package lnoded

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// Health is what lnoded believes of one real server of one virtual service.
type Health int

// The health of a real server. A real server is Unknown until its first
// check; Maintenance means a file in maintenancedir forces it down whatever
// its check says.
const (
	Unknown Health = iota
	Up
	Down
	Maintenance
)

// String returns "unknown", "up", "down" or "maintenance".
func (h Health) String() string {
	switch h {
	case Up:
		return "up"
	case Down:
		return "down"
	case Maintenance:
		return "maintenance"
	}
	return "unknown"
}

// RealKey identifies one real server of one virtual service, as the kernel
// does: the service's key and the destination's address and port.
type RealKey struct {
	Service ipvs.ServiceKey
	Dest    ipvs.DestKey
}

// String renders the key the way ldirectord logs a real server:
// "192.0.2.11:80 (192.0.2.100:80)".
func (k RealKey) String() string {
	return destString(k.Dest) + " (" + serviceString(k.Service) + ")"
}

func destString(d ipvs.DestKey) string {
	return netip.AddrPortFrom(d.Addr, d.Port).String()
}

// serviceString renders a service as ldirectord's get_virtual does: the
// address and port, or the firewall mark.
func serviceString(k ipvs.ServiceKey) string {
	if k.FWMark != 0 {
		return strconv.FormatUint(uint64(k.FWMark), 10)
	}
	return netip.AddrPortFrom(k.Addr, k.Port).String()
}

// ServiceOf returns the IPVS virtual service (without destinations) that
// v describes, as ldirectord's ld_setup builds the ipvsadm -A options. It is
// an error when the kernel would refuse the service.
func ServiceOf(v *config.Virtual) (ipvs.Service, error) {
	s := ipvs.Service{Scheduler: v.Scheduler}
	fam := ipvs.IPv4
	if v.IPv6 {
		fam = ipvs.IPv6
	}
	switch v.Protocol {
	case config.TCP:
		s.Protocol = ipvs.TCP
	case config.UDP:
		s.Protocol = ipvs.UDP
	case config.FWM:
		s.FWMark = v.FWMark
	default:
		return s, fmt.Errorf("virtual on line %d: unknown protocol %v", v.Line, v.Protocol)
	}
	if v.Protocol != config.FWM {
		s.Addr, s.Port = v.Addr, v.Port
		fam = ipvs.FamilyOf(v.Addr)
	}
	s.Family = fam
	s.Netmask = ipvs.FullNetmask(fam)
	if v.Persistent {
		s.Flags |= ipvs.FlagPersistent
		s.Timeout = uint32(min(v.PersistentTimeout.Seconds(), math.MaxUint32))
		if bits := v.PersistenceBits; bits > 0 {
			if fam == ipvs.IPv6 {
				s.Netmask = uint32(min(bits, 128))
			} else {
				s.Netmask = uint32(math.MaxUint32 << (32 - min(bits, 32)))
			}
		}
	}
	if v.OPS && v.Protocol == config.UDP {
		s.Flags |= ipvs.FlagOnePacket
	}
	if v.SchedFlags != "" {
		f, err := schedFlags(v.SchedFlags)
		if err != nil {
			return s, fmt.Errorf("virtual on line %d: %w", v.Line, err)
		}
		s.Flags |= f
	}
	// ldirectord accepts what the kernel then refuses (port 0 without
	// persistence, for one): refuse it here, naming the line, so that such
	// a file is rejected whole instead of half applied.
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("virtual on line %d: %w", v.Line, err)
	}
	return s, nil
}

// schedFlags maps ipvsadm -b's comma-separated flag names to flag bits.
func schedFlags(s string) (ipvs.ServiceFlags, error) {
	var f ipvs.ServiceFlags
	for _, name := range strings.Split(s, ",") {
		switch strings.TrimSpace(name) {
		case "flag-1", "sh-fallback", "mh-fallback":
			f |= ipvs.FlagSched1
		case "flag-2", "sh-port", "mh-port":
			f |= ipvs.FlagSched2
		case "flag-3":
			f |= ipvs.FlagSched3
		default:
			return 0, fmt.Errorf("schedflags: unknown scheduler flag %q (ipvsadm -b knows flag-1, flag-2, flag-3, sh-fallback, sh-port, mh-fallback, mh-port)", name)
		}
	}
	return f, nil
}

// forward maps lnoded.cf's forwarding method to IPVS's.
func forward(m config.Method) ipvs.ForwardMethod {
	switch m {
	case config.MethodMasq:
		return ipvs.Masq
	case config.MethodIPIP:
		return ipvs.Tunnel
	}
	return ipvs.Route
}

// DestOf returns the destination real r of v is in the kernel, at its
// configured weight. A real server written without a port gets the virtual
// service's port, as ipvsadm gives it.
func DestOf(v *config.Virtual, r *config.Real) ipvs.Destination {
	port := r.Port
	if port == 0 && v.Protocol != config.FWM {
		port = v.Port
	}
	return ipvs.Destination{
		Addr:           r.Addr,
		Port:           port,
		Forward:        forward(r.Method),
		Weight:         int32(min(max(r.Weight, 0), ipvs.MaxWeight)),
		UpperThreshold: r.UpperThreshold,
		LowerThreshold: r.LowerThreshold,
	}
}

// fallbackDest returns v's fallback server as a destination (weight 1, as
// ldirectord always gives it), and false when v has none.
func fallbackDest(v *config.Virtual) (ipvs.Destination, bool) {
	fb := v.Fallback
	if fb == nil || !fb.Addr.IsValid() {
		return ipvs.Destination{}, false
	}
	port := fb.Port
	if port == 0 && v.Protocol != config.FWM {
		port = v.Port
	}
	return ipvs.Destination{Addr: fb.Addr, Port: port, Forward: forward(fb.Method), Weight: 1}, true
}

// Input is what Desired decides from besides the configuration.
type Input struct {
	// Health is each real server's health; a real server missing from the
	// map is Unknown.
	Health map[RealKey]Health
	// Actual is the kernel's table as last read. It matters in two cases,
	// both ldirectord's: a real server of Unknown health keeps its place if
	// the kernel has it with a weight above 0 (so that restarting lnoded
	// with cleanstop=no does not drain a working service while the first
	// checks run), and a quiescent real server that is down and absent from
	// the kernel is only added back (at weight 0) when ReAdd is set.
	Actual ipvs.Table
	// ReAdd adds quiescent real servers that are down and absent from the
	// kernel at weight 0. lnoded sets it at start, on every reload, and
	// always with readdquiescent=yes; ldirectord does the same.
	ReAdd bool
}

// Desired returns the IPVS table that cfg asks for given in: one service per
// virtual, each real server that is up at its configured weight, each real
// server that is down (or Unknown, or in maintenance) at weight 0 when
// quiescent=yes and absent when quiescent=no, and the fallback server (weight
// 1) exactly when no real server of the service is up. It is a pure
// function: lnoded reconciles the kernel to its result.
//
// Services whose description is invalid (see ServiceOf) are left out and
// returned as errors; the rest of the table is still returned.
func Desired(cfg *config.Config, in Input) (ipvs.Table, []error) {
	t, _, errs := desired(cfg, in)
	return t, errs
}

// desired is Desired that also says, per service, whether a real server is
// up (which decides the fallback command's start and stop).
func desired(cfg *config.Config, in Input) (ipvs.Table, map[ipvs.ServiceKey]bool, []error) {
	actual := make(map[RealKey]ipvs.Destination)
	for _, vs := range in.Actual {
		k := vs.Key()
		for _, d := range vs.Destinations {
			actual[RealKey{k, d.Key()}] = d
		}
	}
	var (
		table ipvs.Table
		errs  []error
		seen  = make(map[ipvs.ServiceKey]bool)
		upBy  = make(map[ipvs.ServiceKey]bool)
	)
	for i := range cfg.Virtuals {
		v := &cfg.Virtuals[i]
		svc, err := ServiceOf(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sk := svc.Key()
		if seen[sk] {
			// ldirectord would program the same service twice; the first
			// block wins here, the way the kernel keeps the first -A.
			errs = append(errs, fmt.Errorf("virtual on line %d: service %s is already defined", v.Line, sk))
			continue
		}
		seen[sk] = true
		vs := ipvs.VirtualService{Service: svc}
		dests := make(map[ipvs.DestKey]bool)
		anyUp := false
		for j := range v.Reals {
			r := &v.Reals[j]
			d := DestOf(v, r)
			dk := d.Key()
			if dests[dk] {
				continue // a duplicate real line: the first one counts
			}
			dests[dk] = true
			rk := RealKey{sk, dk}
			h := in.Health[rk]
			cur, present := actual[rk]
			up := h == Up || (h == Unknown && present && cur.Weight > 0)
			switch {
			case up:
				anyUp = true
				vs.Destinations = append(vs.Destinations, d)
			case !v.Quiescent:
				// removed
			case present || in.ReAdd:
				d.Weight = 0
				vs.Destinations = append(vs.Destinations, d)
			}
		}
		if fb, ok := fallbackDest(v); ok && !anyUp && !dests[fb.Key()] {
			vs.Destinations = append(vs.Destinations, fb)
		}
		upBy[sk] = anyUp
		table = append(table, vs)
	}
	return table, upBy, errs
}
