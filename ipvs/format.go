package ipvs

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ListFormat selects the columns of WriteList, like ipvsadm's listing
// options.
type ListFormat int

// Listing formats. When ipvsadm is given several, it uses the first of
// this order: --stats, --rate, --thresholds, --persistent-conn, --tun-info.
const (
	ListDefault        ListFormat = iota // ipvsadm -L -n
	ListStats                            // ipvsadm -L -n --stats
	ListRate                             // ipvsadm -L -n --rate
	ListThresholds                       // ipvsadm -L -n --thresholds
	ListPersistentConn                   // ipvsadm -L -n --persistent-conn
	ListTunInfo                          // ipvsadm -L -n --tun-info
)

// ListOptions are the options of WriteList.
type ListOptions struct {
	Format ListFormat
	// Exact prints counters and rates in full (ipvsadm --exact) instead of
	// abbreviating large values with K, M, G and T.
	Exact bool
	// NoSort keeps the table's order (ipvsadm --nosort).
	NoSort bool
}

// WriteList writes t the way "ipvsadm -L -n" (with the options in o) prints
// it, byte for byte, starting with the version line made from info.
func WriteList(w io.Writer, info Info, t Table, o ListOptions) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "IP Virtual Server version %s (size=%d)\n", info.VersionString(), info.ConnTableSize)
	writeTitle(bw, o.Format)
	for _, vs := range ordered(t, o.NoSort) {
		writeListService(bw, vs, o)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ipvs: write list: %w", err)
	}
	return nil
}

// WriteSave writes t in the format of "ipvsadm -S -n", which ipvsadm -R
// and ParseSave read back. Like ipvsadm, it does not save thresholds.
func WriteSave(w io.Writer, t Table) error {
	bw := bufio.NewWriter(w)
	for _, vs := range ordered(t, false) {
		writeSaveService(bw, vs)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ipvs: write save: %w", err)
	}
	return nil
}

func writeTitle(w *bufio.Writer, f ListFormat) {
	switch f {
	case ListStats:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case ListRate:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case ListThresholds:
		fmt.Fprintf(w, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case ListPersistentConn:
		fmt.Fprintf(w, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case ListTunInfo:
		w.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		w.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// tunInfo is the TunnelInfo column: "ipip", "gue:6080:+c", "gre:-c", or
// "n/a" for destinations that are not tunnels.
func tunInfo(d Destination) string {
	if d.Forward&7 != Tunnel {
		return "n/a"
	}
	flags := [...]string{"-c", "+c", "r+c"}
	fl := "(null)"
	if int(d.TunnelFlags) < len(flags) {
		fl = flags[d.TunnelFlags]
	}
	switch d.TunnelType {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return fmt.Sprintf("gue:%d:%s", d.TunnelPort, fl)
	case TunnelGRE:
		return "gre:" + fl
	}
	return "n/a"
}

// listName is the service column of the listing: "TCP  10.0.0.1:80",
// "FWM  1 IPv6". Like ipvsadm, it is cut to 33 bytes except for IPv6.
func listName(s Service) string {
	k := s.Key()
	if k.FWMark != 0 {
		// ipvsadm prints the mark with %d.
		if k.Family == IPv6 {
			return fmt.Sprintf("FWM  %d IPv6", int32(k.FWMark))
		}
		return fmt.Sprintf("FWM  %d", int32(k.FWMark))
	}
	// "%-4s %s": "TCP  10.0.0.1:80" but "SCTP 10.0.0.1:80".
	name := fmt.Sprintf("%-4s %s", protoName(k.Protocol), addrPort(k.Addr, k.Port))
	if k.Family != IPv6 && len(name) > 33 {
		name = name[:33]
	}
	return name
}

func saveName(s Service) string {
	k := s.Key()
	if k.FWMark != 0 {
		if k.Family == IPv6 {
			return fmt.Sprintf("-f %d -6", int32(k.FWMark))
		}
		return fmt.Sprintf("-f %d", int32(k.FWMark))
	}
	return k.String()
}

func protoName(p Protocol) string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "UNKNOWN"
}

// schedFlagNames renders scheduler flags the way ipvsadm does: the sh and
// mh schedulers name the first two flags, others print flag-N.
func schedFlagNames(s Service) string {
	var names []string
	switch s.Scheduler {
	case "sh", "mh":
		if s.Flags&FlagSched1 != 0 {
			names = append(names, s.Scheduler+"-fallback")
		}
		if s.Flags&FlagSched2 != 0 {
			names = append(names, s.Scheduler+"-port")
		}
		if s.Flags&FlagSched3 != 0 {
			names = append(names, "flag-3")
		}
	default:
		for i, f := range []ServiceFlags{FlagSched1, FlagSched2, FlagSched3} {
			if s.Flags&f != 0 {
				names = append(names, "flag-"+strconv.Itoa(i+1))
			}
		}
	}
	return strings.Join(names, ",")
}

// netmaskString renders a persistence netmask as ipvsadm does, or "" when
// it is the full mask and ipvsadm prints nothing.
func netmaskString(s Service) string {
	k := s.Key()
	m := s.Netmask
	if m == 0 {
		m = FullNetmask(k.Family)
	}
	if m == FullNetmask(k.Family) {
		return ""
	}
	if k.Family == IPv6 {
		return strconv.Itoa(int(int32(m)))
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func writeListService(w *bufio.Writer, vs VirtualService, o ListOptions) {
	s := vs.Service
	name := listName(s)
	switch o.Format {
	case ListStats:
		fmt.Fprintf(w, "%-33s", name)
		for _, v := range []uint64{s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts, s.Stats.InBytes, s.Stats.OutBytes} {
			writeLargeNum(w, v, o.Exact)
		}
	case ListRate:
		fmt.Fprintf(w, "%-33s", name)
		for _, v := range []uint64{s.Rates.CPS, s.Rates.InPPS, s.Rates.OutPPS, s.Rates.InBPS, s.Rates.OutBPS} {
			writeLargeNum(w, v, o.Exact)
		}
	default:
		w.WriteString(name + " " + s.Scheduler)
		if s.Flags&schedFlags != 0 {
			w.WriteString(" (" + schedFlagNames(s) + ")")
		}
		if s.Flags&FlagPersistent != 0 {
			fmt.Fprintf(w, " persistent %d", s.Timeout)
			if m := netmaskString(s); m != "" {
				w.WriteString(" mask " + m)
			}
			if s.PE != "" {
				w.WriteString(" pe " + s.PE)
			}
		}
		if s.Flags&FlagOnePacket != 0 {
			w.WriteString(" ops")
		}
	}
	w.WriteString("\n")

	ipv6 := s.Key().Family == IPv6
	for _, d := range orderedDests(vs.Destinations, o.NoSort) {
		dname := addrPort(d.Addr, d.Port)
		if !ipv6 && len(dname) > 28 {
			dname = dname[:28]
		}
		switch o.Format {
		case ListStats:
			fmt.Fprintf(w, "  -> %-28s", dname)
			for _, v := range []uint64{d.Stats.Conns, d.Stats.InPkts, d.Stats.OutPkts, d.Stats.InBytes, d.Stats.OutBytes} {
				writeLargeNum(w, v, o.Exact)
			}
			w.WriteString("\n")
		case ListRate:
			// ipvsadm prints the first three rates plainly, even with --exact.
			fmt.Fprintf(w, "  -> %-28s %8d %8d %8d", dname, d.Rates.CPS, d.Rates.InPPS, d.Rates.OutPPS)
			writeLargeNum(w, d.Rates.InBPS, o.Exact)
			writeLargeNum(w, d.Rates.OutBPS, o.Exact)
			w.WriteString("\n")
		case ListThresholds:
			fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname,
				d.UpperThreshold, d.LowerThreshold, d.ActiveConns, d.InactConns)
		case ListPersistentConn:
			fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname,
				uint32(d.Weight), d.PersistConns, d.ActiveConns, d.InactConns)
		case ListTunInfo:
			fmt.Fprintf(w, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname,
				fwdName(d.Forward), tunInfo(d), d.Weight, d.ActiveConns, d.InactConns)
		default:
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname,
				fwdName(d.Forward), d.Weight, d.ActiveConns, d.InactConns)
		}
	}
}

func fwdName(m ForwardMethod) string {
	switch m & 7 {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return "(null)"
}

func fwdSwitch(m ForwardMethod) string {
	switch m & 7 {
	case Masq:
		return "-m"
	case Tunnel:
		return "-i"
	case Local, Route:
		return "-g"
	}
	return "(null)"
}

func tunFlagOpt(f TunnelFlags) string {
	switch f {
	case 0:
		return "--tun-nocsum"
	case TunnelCsum:
		return "--tun-csum"
	case TunnelRemCsum:
		return "--tun-remcsum"
	}
	return "(null)"
}

// serviceOptions are the options of "ipvsadm -A" for s, in the order of
// ipvsadm 1.31's -S (scheduler flags last).
func serviceOptions(s Service) string {
	var b strings.Builder
	b.WriteString(" -s " + s.Scheduler)
	if s.Flags&FlagPersistent != 0 {
		fmt.Fprintf(&b, " -p %d", s.Timeout)
		if m := netmaskString(s); m != "" {
			b.WriteString(" -M " + m)
		}
		if s.PE != "" {
			b.WriteString(" --pe " + s.PE)
		}
	}
	if s.Flags&FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	if s.Flags&schedFlags != 0 {
		b.WriteString(" -b " + schedFlagNames(s))
	}
	return b.String()
}

func writeSaveService(w *bufio.Writer, vs VirtualService) {
	s := vs.Service
	name := saveName(s)
	w.WriteString("-A " + name + serviceOptions(s) + "\n")
	for _, d := range orderedDests(vs.Destinations, false) {
		prefix := fmt.Sprintf("-a %s -r %s %s -w %d", name, addrPort(d.Addr, d.Port), fwdSwitch(d.Forward), d.Weight)
		if d.Forward&7 != Tunnel {
			w.WriteString(prefix + "\n")
			continue
		}
		switch d.TunnelType {
		case TunnelGUE:
			fmt.Fprintf(w, "%s --tun-type %s --tun-port %d %s\n", prefix, d.TunnelType, d.TunnelPort, tunFlagOpt(d.TunnelFlags))
		case TunnelGRE:
			fmt.Fprintf(w, "%s --tun-type %s %s\n", prefix, d.TunnelType, tunFlagOpt(d.TunnelFlags))
		case TunnelIPIP:
			fmt.Fprintf(w, "%s --tun-type %s\n", prefix, d.TunnelType)
		default:
			w.WriteString(prefix + "\n")
		}
	}
}

// writeLargeNum is ipvsadm's print_largenum: a 9-column field, abbreviated
// above 99,999,999 unless exact.
func writeLargeNum(w *bufio.Writer, v uint64, exact bool) {
	if exact {
		s := strconv.FormatUint(v, 10)
		width := 9
		if len(s) > 8 {
			width = len(s) + 1
		}
		fmt.Fprintf(w, "%*s", width, s)
		return
	}
	switch {
	case v < 100000000:
		fmt.Fprintf(w, "%9d", v)
	case v < 1000000000:
		fmt.Fprintf(w, "%8dK", v/1000)
	case v < 100000000000:
		fmt.Fprintf(w, "%8dM", v/1000000)
	case v < 100000000000000:
		fmt.Fprintf(w, "%8dG", v/1000000000)
	default:
		fmt.Fprintf(w, "%8dT", v/1000000000000)
	}
}

// ordered returns the services in ipvsadm's order (or t's, with noSort).
func ordered(t Table, noSort bool) Table {
	out := append(Table(nil), t...)
	if !noSort {
		mergeSort(out, func(a, b VirtualService) int { return cmpServices(a.Service, b.Service) })
	}
	return out
}

func orderedDests(ds []Destination, noSort bool) []Destination {
	out := append([]Destination(nil), ds...)
	if !noSort {
		mergeSort(out, cmpDests)
	}
	return out
}

// The comparisons below reproduce libipvs's ipvs_cmp_services and
// ipvs_cmp_dests including their C arithmetic: differences of unsigned
// 32-bit values are taken modulo 2^32 and read as signed, so for example
// 10.0.0.1 sorts after 192.168.0.1 (their difference exceeds 2^31). The
// sort must then also be the same algorithm as glibc's qsort (a top-down
// merge sort), because such a comparison is not transitive.

func cdiff32(a, b uint32) int { return int(int32(a - b)) }

func addrWords(a netip.Addr) []uint32 {
	if FamilyOf(a) == IPv4 {
		b := a.Unmap().As4()
		return []uint32{uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])}
	}
	b := a.As16()
	w := make([]uint32, 4)
	for i := range w {
		w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
	}
	return w
}

func cmpAddr(a, b netip.Addr, f Family) int {
	if !a.IsValid() || !b.IsValid() {
		return 0
	}
	wa, wb := addrWords(a), addrWords(b)
	if f != IPv6 {
		return cdiff32(wa[len(wa)-1], wb[len(wb)-1])
	}
	if len(wa) != 4 || len(wb) != 4 {
		return 0
	}
	for i := range 4 {
		if r := cdiff32(wa[i], wb[i]); r != 0 {
			return r
		}
	}
	return 0
}

func cmpServices(a, b Service) int {
	ka, kb := a.Key(), b.Key()
	if r := cdiff32(ka.FWMark, kb.FWMark); r != 0 {
		return r
	}
	if r := int(ka.Family) - int(kb.Family); r != 0 {
		return r
	}
	if r := int(ka.Protocol) - int(kb.Protocol); r != 0 {
		return r
	}
	if r := cmpAddr(ka.Addr, kb.Addr, ka.Family); r != 0 {
		return r
	}
	return int(ka.Port) - int(kb.Port)
}

func cmpDests(a, b Destination) int {
	if r := cmpAddr(a.Addr, b.Addr, FamilyOf(a.Addr)); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// mergeSort is glibc's msort_with_tmp: split at n/2, sort both halves,
// merge taking from the left while cmp(left, right) <= 0.
func mergeSort[T any](s []T, cmp func(a, b T) int) {
	if len(s) < 2 {
		return
	}
	tmp := make([]T, len(s))
	msort(s, tmp, cmp)
}

func msort[T any](s, tmp []T, cmp func(a, b T) int) {
	n := len(s)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := s[:n1], s[n1:]
	msort(b1, tmp, cmp)
	msort(b2, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(b1[i], b2[j]) <= 0 {
			tmp[k] = b1[i]
			i++
		} else {
			tmp[k] = b2[j]
			j++
		}
		k++
	}
	k += copy(tmp[k:], b1[i:])
	// What remains of b2 is already in place.
	copy(s, tmp[:k])
}
