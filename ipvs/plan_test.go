package ipvs

import (
	"strconv"
	"strings"
	"testing"
)

func web(dests ...Destination) VirtualService {
	return VirtualService{Service: Service{Protocol: TCP, Addr: mustAddr("192.168.145.101"), Port: 80, Scheduler: "rr"}, Destinations: dests}
}

func dns(dests ...Destination) VirtualService {
	return VirtualService{Service: Service{Protocol: UDP, Addr: mustAddr("192.168.145.101"), Port: 53, Scheduler: "rr"}, Destinations: dests}
}

func rs(addr string, port uint16, w int32) Destination {
	return Destination{Addr: mustAddr(addr), Port: port, Forward: Route, Weight: w}
}

// kernelView is what the kernel reports for a service that was added with
// the defaults: the full netmask and the hashed flag set.
func kernelView(vs VirtualService) VirtualService {
	if vs.Netmask == 0 {
		vs.Netmask = FullNetmask(vs.Key().Family)
	}
	vs.Flags |= FlagHashed
	return vs
}

func TestPlan(t *testing.T) {
	other := VirtualService{Service: Service{Protocol: TCP, Addr: mustAddr("10.9.9.9"), Port: 22, Scheduler: "wlc"},
		Destinations: []Destination{rs("10.9.9.10", 22, 1)}}
	tests := []struct {
		name    string
		desired Table
		actual  Table
		owns    func(ServiceKey) bool
		want    []string // Op.String() of each op, in order
	}{
		{
			name:    "empty to walk-through",
			desired: Table{web(rs("192.168.145.200", 80, 1), rs("192.168.145.201", 80, 1)), dns(rs("192.168.145.200", 53, 1))},
			want: []string{
				"-A -t 192.168.145.101:80 -s rr",
				"-a -t 192.168.145.101:80 -r 192.168.145.200:80 -g -w 1 -x 0 -y 0",
				"-a -t 192.168.145.101:80 -r 192.168.145.201:80 -g -w 1 -x 0 -y 0",
				"-A -u 192.168.145.101:53 -s rr",
				"-a -u 192.168.145.101:53 -r 192.168.145.200:53 -g -w 1 -x 0 -y 0",
			},
		},
		{
			name:    "no change, kernel defaults filled in",
			desired: Table{web(rs("192.168.145.200", 80, 1))},
			actual:  Table{kernelView(web(rs("192.168.145.200", 80, 1)))},
		},
		{
			name:    "one weight change is one edit",
			desired: Table{web(rs("192.168.145.200", 80, 1), rs("192.168.145.201", 80, 0))},
			actual:  Table{kernelView(web(rs("192.168.145.200", 80, 1), rs("192.168.145.201", 80, 1)))},
			want:    []string{"-e -t 192.168.145.101:80 -r 192.168.145.201:80 -g -w 0 -x 0 -y 0"},
		},
		{
			name:    "weight up to 2^31-1 and thresholds are edits",
			desired: Table{web(Destination{Addr: mustAddr("192.168.145.200"), Port: 80, Forward: Route, Weight: MaxWeight, UpperThreshold: 50, LowerThreshold: 5})},
			actual:  Table{kernelView(web(rs("192.168.145.200", 80, 1)))},
			want:    []string{"-e -t 192.168.145.101:80 -r 192.168.145.200:80 -g -w 2147483647 -x 50 -y 5"},
		},
		{
			name: "scheduler, persistence and netmask are one service edit",
			desired: Table{{Service: Service{Protocol: TCP, Addr: mustAddr("192.168.145.101"), Port: 80, Scheduler: "wrr",
				Flags: FlagPersistent, Timeout: 600, Netmask: 0xffffff00}, Destinations: []Destination{rs("192.168.145.200", 80, 1)}}},
			actual: Table{kernelView(web(rs("192.168.145.200", 80, 1)))},
			want:   []string{"-E -t 192.168.145.101:80 -s wrr -p 600 -M 255.255.255.0"},
		},
		{
			name:    "forwarding method change is delete and add",
			desired: Table{web(Destination{Addr: mustAddr("192.168.145.200"), Port: 80, Forward: Masq, Weight: 1})},
			actual:  Table{kernelView(web(rs("192.168.145.200", 80, 1)))},
			want: []string{
				"-d -t 192.168.145.101:80 -r 192.168.145.200:80",
				"-a -t 192.168.145.101:80 -r 192.168.145.200:80 -m -w 1 -x 0 -y 0",
			},
		},
		{
			name:    "destination port change is another destination",
			desired: Table{web(Destination{Addr: mustAddr("192.168.145.200"), Port: 8080, Forward: Masq, Weight: 1})},
			actual:  Table{kernelView(web(Destination{Addr: mustAddr("192.168.145.200"), Port: 80, Forward: Masq, Weight: 1}))},
			want: []string{
				"-d -t 192.168.145.101:80 -r 192.168.145.200:80",
				"-a -t 192.168.145.101:80 -r 192.168.145.200:8080 -m -w 1 -x 0 -y 0",
			},
		},
		{
			name:    "removed real server (quiescent=no) is one delete",
			desired: Table{web(rs("192.168.145.200", 80, 1))},
			actual:  Table{kernelView(web(rs("192.168.145.200", 80, 1), rs("192.168.145.201", 80, 1)))},
			want:    []string{"-d -t 192.168.145.101:80 -r 192.168.145.201:80"},
		},
		{
			name:    "service protocol change is delete and add, others untouched",
			desired: Table{dns()},
			actual:  Table{kernelView(web()), kernelView(other)},
			owns:    OwnKeys(web().Key(), dns().Key()),
			want: []string{
				"-D -t 192.168.145.101:80",
				"-A -u 192.168.145.101:53 -s rr",
			},
		},
		{
			name:    "unowned services are left alone even when not desired",
			desired: Table{},
			actual:  Table{kernelView(web()), kernelView(other)},
			owns:    func(k ServiceKey) bool { return k.Addr == mustAddr("192.168.145.101") },
			want:    []string{"-D -t 192.168.145.101:80"},
		},
		{
			name:    "nil owner owns everything",
			desired: Table{},
			actual:  Table{kernelView(other)},
			want:    []string{"-D -t 10.9.9.9:22"},
		},
		{
			name: "fwmark and IPv6 services",
			desired: Table{
				{Service: Service{FWMark: 1, Scheduler: "rr"}, Destinations: []Destination{rs("10.0.0.2", 0, 1)}},
				{Service: Service{FWMark: 1, Family: IPv6, Scheduler: "rr"}},
				{Service: Service{Protocol: TCP, Addr: mustAddr("2001:db8::1"), Port: 80, Scheduler: "sh", Flags: FlagSHPort}},
			},
			actual: Table{kernelView(VirtualService{Service: Service{FWMark: 1, Scheduler: "rr"}, Destinations: []Destination{rs("10.0.0.2", 0, 1)}})},
			want: []string{
				"-A -f 1 -6 -s rr",
				"-A -t [2001:db8::1]:80 -s sh -b sh-port",
			},
		},
		{
			name:    "tunnel options are edits",
			desired: Table{web(Destination{Addr: mustAddr("192.168.145.200"), Port: 80, Forward: Tunnel, Weight: 1, TunnelType: TunnelGUE, TunnelPort: 6080})},
			actual:  Table{kernelView(web(Destination{Addr: mustAddr("192.168.145.200"), Port: 80, Forward: Tunnel, Weight: 1}))},
			want:    []string{"-e -t 192.168.145.101:80 -r 192.168.145.200:80 -i -w 1 -x 0 -y 0"},
		},
		{
			name:    "counters and connection counts are not differences",
			desired: Table{web(rs("192.168.145.200", 80, 1))},
			actual: Table{kernelView(VirtualService{Service: Service{Protocol: TCP, Addr: mustAddr("192.168.145.101"), Port: 80, Scheduler: "rr", Stats: Stats{Conns: 5}},
				Destinations: []Destination{{Addr: mustAddr("192.168.145.200"), Port: 80, Forward: Route, Weight: 1, ActiveConns: 3, Stats: Stats{InBytes: 9}}}})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Plan(tt.desired, tt.actual, tt.owns)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range ops {
				got = append(got, o.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("ops (%d):\n%s\nwant (%d):\n%s", len(got), strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			// Every planned op must encode to exactly one request.
			for _, o := range ops {
				if _, err := o.request(); err != nil {
					t.Errorf("%s: %v", o, err)
				}
			}
			// Applying the plan to actual gives desired: planning again is empty.
			after := simulate(t, tt.actual, ops)
			again, err := Plan(tt.desired, after, tt.owns)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Errorf("second plan not empty: %v", again)
			}
		})
	}
}

// simulate applies ops to a copy of tbl the way the kernel would. It is a
// fake of the kernel for checking plans only; kerneltest checks the real one.
func simulate(t *testing.T, tbl Table, ops []Op) Table {
	t.Helper()
	out := Table{}
	for _, vs := range tbl {
		vs.Destinations = append([]Destination(nil), vs.Destinations...)
		out = append(out, vs)
	}
	find := func(k ServiceKey) int {
		for i, vs := range out {
			if vs.Key() == k {
				return i
			}
		}
		return -1
	}
	for _, o := range ops {
		i := find(o.Service.Key())
		switch o.Kind {
		case AddService:
			if i >= 0 {
				t.Fatalf("%s: service exists", o)
			}
			out = append(out, kernelView(VirtualService{Service: o.Service}))
		case EditService:
			if i < 0 {
				t.Fatalf("%s: no service", o)
			}
			ds := out[i].Destinations
			out[i] = kernelView(VirtualService{Service: o.Service.normalized(), Destinations: ds})
		case DeleteService:
			if i < 0 {
				t.Fatalf("%s: no service", o)
			}
			out = append(out[:i], out[i+1:]...)
		default:
			if i < 0 {
				t.Fatalf("%s: no service", o)
			}
			ds := out[i].Destinations
			j := -1
			for n, d := range ds {
				if d.Key() == o.Dest.Key() {
					j = n
				}
			}
			switch {
			case o.Kind == AddDest && j < 0:
				ds = append(ds, o.Dest)
			case o.Kind == EditDest && j >= 0:
				ds[j] = o.Dest
			case o.Kind == DeleteDest && j >= 0:
				ds = append(ds[:j], ds[j+1:]...)
			default:
				t.Fatalf("%s: destination state wrong", o)
			}
			out[i].Destinations = ds
		}
	}
	return out
}

func TestPlanRejects(t *testing.T) {
	tests := []struct {
		name    string
		desired Table
		owns    func(ServiceKey) bool
		msg     string
	}{
		{"duplicate service", Table{web(), web()}, nil, "desired twice"},
		{"duplicate destination", Table{web(rs("10.0.0.1", 80, 1), rs("10.0.0.1", 80, 2))}, nil, "desired twice"},
		{"unowned desired", Table{web()}, OwnKeys(), "not owned"},
		{"negative weight", Table{web(rs("10.0.0.1", 80, -1))}, nil, "negative weight"},
		{"no scheduler", Table{{Service: Service{Protocol: TCP, Addr: mustAddr("10.0.0.1"), Port: 80}}}, nil, "scheduler"},
		{"mixed family without tunnel", Table{web(rs("2001:db8::1", 80, 1))}, nil, "only for tunnels"},
	}
	for _, tt := range tests {
		_, err := Plan(tt.desired, nil, tt.owns)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.msg)
		}
	}
}

// TestPlanOneWeightChangeCount is the plan-level half of the "one weight
// change is one netlink op" requirement (kerneltest has the netlink half):
// in a 100-service table, changing one weight plans exactly one op.
func TestPlanOneWeightChangeCount(t *testing.T) {
	var actual, desired Table
	for i := range 100 {
		vs := VirtualService{Service: Service{Protocol: TCP, Addr: mustAddr("10.1.0.1"), Port: uint16(1000 + i), Scheduler: "wrr"}}
		for j := range 10 {
			vs.Destinations = append(vs.Destinations, rs("10.2.0."+strconv.Itoa(j+1), uint16(1000+i), 1))
		}
		actual = append(actual, kernelView(vs))
		d := vs
		d.Destinations = append([]Destination(nil), vs.Destinations...)
		desired = append(desired, d)
	}
	desired[42].Destinations[7].Weight = 5
	ops, err := Plan(desired, actual, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Kind != EditDest || ops[0].Dest.Weight != 5 {
		t.Fatalf("ops %v, want one destination edit", ops)
	}
}

// An IPv4-mapped IPv6 address is the IPv4 service the kernel reports.
func TestPlanMappedAddress(t *testing.T) {
	mapped := VirtualService{Service: Service{Protocol: TCP, Addr: mustAddr("::ffff:192.168.145.101"), Port: 80, Scheduler: "rr"},
		Destinations: []Destination{{Addr: mustAddr("::ffff:192.168.145.200"), Port: 80, Forward: Route, Weight: 1}}}
	ops, err := Plan(Table{mapped}, Table{kernelView(web(rs("192.168.145.200", 80, 1)))}, nil)
	if err != nil || len(ops) != 0 {
		t.Errorf("ops %v, err %v", ops, err)
	}
}
