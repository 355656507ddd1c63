package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func walkThrough() ipvs.Table {
	rs := func(a string, port uint16, w int32) ipvs.Destination {
		return ipvs.Destination{Addr: addr(a), Port: port, Forward: ipvs.Route, Weight: w}
	}
	return ipvs.Table{
		{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: addr("192.0.2.101"), Port: 80, Scheduler: "rr"},
			Destinations: []ipvs.Destination{rs("192.0.2.200", 80, 1), rs("192.0.2.201", 80, 1)}},
		{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: addr("192.0.2.101"), Port: 53, Scheduler: "rr"},
			Destinations: []ipvs.Destination{rs("192.0.2.200", 53, 1), rs("192.0.2.201", 53, 1)}},
		{Service: ipvs.Service{Protocol: ipvs.UDP, Addr: addr("192.0.2.101"), Port: 53, Scheduler: "rr"},
			Destinations: []ipvs.Destination{rs("192.0.2.200", 53, 1), rs("192.0.2.201", 53, 0)}},
		{Service: ipvs.Service{FWMark: 3, Scheduler: "wrr", Flags: ipvs.FlagPersistent, Timeout: 120, Netmask: 0xffff0000},
			Destinations: []ipvs.Destination{{Addr: addr("192.0.2.202"), Forward: ipvs.Route, Weight: 2, UpperThreshold: 50, LowerThreshold: 20}}},
		{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: addr("2001:db8::1"), Port: 443, Scheduler: "wlc"},
			Destinations: []ipvs.Destination{{Addr: addr("2001:db8::2"), Port: 443, Forward: ipvs.Masq, Weight: 7}}},
	}
}

func saved(t *testing.T, tbl ipvs.Table) string {
	t.Helper()
	var b strings.Builder
	if err := ipvs.WriteSave(&b, tbl); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReconcile builds the table with our Reconcile and checks it with
// ipvsadm; then one weight change is exactly one netlink request, and a
// second reconcile is none.
func TestReconcile(t *testing.T) {
	h := open(t)
	desired := walkThrough()
	ops, err := ipvs.Reconcile(ctx(t), h, desired, nil)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if len(ops) != 5+8 {
		t.Errorf("%d ops for 5 services with 8 destinations", len(ops))
	}
	if got := ipvsadm(t, "", "-S", "-n"); got != saved(t, desired) {
		t.Errorf("ipvsadm -S -n after Reconcile:\n%s", diff(saved(t, desired), got))
	}
	// Thresholds are not in the save format; --thresholds shows them.
	if got := ipvsadm(t, "", "-L", "-n", "--thresholds"); !strings.Contains(got, "  -> 192.0.2.202:0                50         20         0          0") {
		t.Errorf("thresholds not set:\n%s", got)
	}
	compareAll(t, h)

	// Nothing to do: no change request at all (only the reads).
	before := h.Requests()
	ops, err = ipvs.Reconcile(ctx(t), h, desired, nil)
	if err != nil || len(ops) != 0 {
		t.Fatalf("second Reconcile: %v, ops %v", err, ops)
	}
	reads := h.Requests() - before // 1 service dump + 1 destination dump per service

	// One weight change: exactly one netlink request beyond the reads.
	desired[2].Destinations[1].Weight = 5
	before = h.Requests()
	ops, err = ipvs.Reconcile(ctx(t), h, desired, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.Requests() - before - reads; n != 1 || len(ops) != 1 {
		t.Errorf("weight change: %d netlink requests beyond %d reads, ops %v; want exactly 1", n, reads, ops)
	}
	if got := ipvsadm(t, "", "-S", "-n"); !strings.Contains(got, "-a -u 192.0.2.101:53 -r 192.0.2.201:53 -g -w 5\n") {
		t.Errorf("weight not changed:\n%s", got)
	}
	// Counted at Apply alone, too.
	desired[0].Destinations[0].Weight = 9
	tbl, err := h.Table(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ipvs.Plan(desired, tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	before = h.Requests()
	if err := h.Apply(ctx(t), plan); err != nil {
		t.Fatal(err)
	}
	if n := h.Requests() - before; n != 1 || len(plan) != 1 {
		t.Errorf("Apply of a one-weight plan sent %d requests (plan %v)", n, plan)
	}
}

// TestReconcileOwnership: services we do not own survive, even when our
// desired table is empty; owned ones not desired are deleted.
func TestReconcileOwnership(t *testing.T) {
	h := open(t)
	ipvsadm(t, "-A -t 198.51.100.99:22 -s wlc\n-a -t 198.51.100.99:22 -r 198.51.100.98:22 -g\n", "-R")
	desired := walkThrough()
	owned := []ipvs.ServiceKey{}
	for _, vs := range desired {
		owned = append(owned, vs.Key())
	}
	owns := ipvs.OwnKeys(owned...)
	if _, err := ipvs.Reconcile(ctx(t), h, desired, owns); err != nil {
		t.Fatal(err)
	}
	if _, err := ipvs.Reconcile(ctx(t), h, desired[:1], owns); err != nil {
		t.Fatal(err)
	}
	got := ipvsadm(t, "", "-S", "-n")
	want := saved(t, ipvs.Table{desired[0]}) + "-A -t 198.51.100.99:22 -s wlc\n-a -t 198.51.100.99:22 -r 198.51.100.98:22 -g -w 1\n"
	if got != want {
		t.Errorf("after shrinking the owned table:\n%s", diff(want, got))
	}
}

// TestEditKeepsService: a scheduler/persistence edit and a threshold edit
// are edits in the kernel (the service's and destination's counters and
// identity survive), and a forwarding-method change is applied.
func TestEditKeepsService(t *testing.T) {
	h := open(t)
	desired := walkThrough()[:1]
	if _, err := ipvs.Reconcile(ctx(t), h, desired, nil); err != nil {
		t.Fatal(err)
	}
	desired[0].Scheduler = "sh"
	desired[0].Flags = ipvs.FlagPersistent | ipvs.FlagSHPort
	desired[0].Timeout = 77
	desired[0].Destinations[0].UpperThreshold = 9
	desired[0].Destinations[1].Forward = ipvs.Tunnel
	ops, err := ipvs.Reconcile(ctx(t), h, desired, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ipvs.OpKind]int{}
	for _, o := range ops {
		kinds[o.Kind]++
	}
	if kinds[ipvs.EditService] != 1 || kinds[ipvs.EditDest] != 1 || kinds[ipvs.DeleteDest] != 1 || kinds[ipvs.AddDest] != 1 || len(ops) != 4 {
		t.Errorf("ops %v", ops)
	}
	want := "-A -t 192.0.2.101:80 -s sh -p 77 -b sh-port\n" +
		"-a -t 192.0.2.101:80 -r 192.0.2.200:80 -g -w 1\n" +
		"-a -t 192.0.2.101:80 -r 192.0.2.201:80 -i -w 1 --tun-type ipip\n"
	if got := ipvsadm(t, "", "-S", "-n"); got != want {
		t.Errorf("after edits:\n%s", diff(want, got))
	}
}

// TestMaxWeight: weights up to 2^31-1 round-trip through the kernel.
func TestMaxWeight(t *testing.T) {
	h := open(t)
	s := ipvs.Service{Protocol: ipvs.TCP, Addr: addr("203.0.113.1"), Port: 80, Scheduler: "wrr"}
	if err := h.NewService(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int32{0, 65535, 65536, ipvs.MaxWeight} {
		d := ipvs.Destination{Addr: addr("203.0.113.2"), Port: 80, Forward: ipvs.Route, Weight: w}
		var err error
		if w == 0 {
			err = h.NewDestination(ctx(t), s.Key(), d)
		} else {
			err = h.UpdateDestination(ctx(t), s.Key(), d)
		}
		if err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
		ds, err := h.Destinations(ctx(t), s.Key())
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].Weight != w {
			t.Errorf("weight %d read back as %+v", w, ds)
		}
		if got := ipvsadm(t, "", "-S", "-n"); !strings.Contains(got, fmt.Sprintf(" -g -w %d\n", w)) {
			t.Errorf("ipvsadm sees:\n%s", got)
		}
	}
	// The kernel rejects weights above INT_MAX; our model cannot express them.
	if err := (ipvs.Destination{Addr: addr("203.0.113.3"), Weight: -1}).Validate(ipvs.IPv4); err == nil {
		t.Error("negative weight validated")
	}
}

// TestErrors: kernel errors match errors.Is, with our sentinels and errnos.
func TestErrors(t *testing.T) {
	h := open(t)
	c := ctx(t)
	s := ipvs.Service{Protocol: ipvs.TCP, Addr: addr("203.0.113.1"), Port: 80, Scheduler: "rr"}
	d := ipvs.Destination{Addr: addr("203.0.113.2"), Port: 80, Forward: ipvs.Route, Weight: 1}
	missing := ipvs.Service{Protocol: ipvs.UDP, Addr: addr("203.0.113.1"), Port: 80}.Key()
	if err := h.NewService(c, s); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err, sentinel error, errno syscall.Errno) {
		t.Helper()
		if !errors.Is(err, sentinel) || !errors.Is(err, errno) {
			t.Errorf("%s: %v; want %v and %v", what, err, sentinel, errno)
		}
	}
	check("add existing service", h.NewService(c, s), ipvs.ErrServiceExists, syscall.EEXIST)
	check("edit missing service", h.UpdateService(c, ipvs.Service{Protocol: ipvs.UDP, Addr: addr("203.0.113.1"), Port: 80, Scheduler: "rr"}), ipvs.ErrNoService, syscall.ESRCH)
	check("delete missing service", h.DeleteService(c, missing), ipvs.ErrNoService, syscall.ESRCH)
	check("unknown scheduler", h.NewService(c, ipvs.Service{Protocol: ipvs.TCP, Addr: addr("203.0.113.9"), Port: 80, Scheduler: "nosuch"}), ipvs.ErrNoScheduler, syscall.ENOENT)
	check("add destination to missing service", h.NewDestination(c, missing, d), ipvs.ErrNoService, syscall.ESRCH)
	check("edit missing destination", h.UpdateDestination(c, s.Key(), d), ipvs.ErrNoDest, syscall.ENOENT)
	check("delete missing destination", h.DeleteDestination(c, s.Key(), d.Key()), ipvs.ErrNoDest, syscall.ENOENT)
	if err := h.NewDestination(c, s.Key(), d); err != nil {
		t.Fatal(err)
	}
	check("add existing destination", h.NewDestination(c, s.Key(), d), ipvs.ErrDestExists, syscall.EEXIST)
	check("zero missing service", h.ZeroService(c, missing), ipvs.ErrNoService, syscall.ESRCH)
	// The kernel answers a destination dump of a missing service with
	// nothing, not an error.
	if ds, err := h.Destinations(c, missing); err != nil || len(ds) != 0 {
		t.Errorf("destinations of a missing service: %v, %v", ds, err)
	}
	_, err := h.Service(c, missing)
	check("get missing service", err, ipvs.ErrNoService, syscall.ESRCH)

	// A failed request leaves the handle usable, and Apply reports every
	// failure of a batch while applying the rest.
	err = h.Apply(c, []ipvs.Op{
		{Kind: ipvs.AddService, Service: s},
		{Kind: ipvs.AddDest, Service: s, Dest: ipvs.Destination{Addr: addr("203.0.113.3"), Port: 80, Forward: ipvs.Route, Weight: 1}},
		{Kind: ipvs.DeleteDest, Service: s, Dest: ipvs.Destination{Addr: addr("203.0.113.99"), Port: 80}},
	})
	check("batch: existing service", err, ipvs.ErrServiceExists, syscall.EEXIST)
	check("batch: missing destination", err, ipvs.ErrNoDest, syscall.ENOENT)
	if got := ipvsadm(t, "", "-S", "-n"); !strings.Contains(got, "-r 203.0.113.3:80") {
		t.Errorf("the good op of a failing batch was not applied:\n%s", got)
	}
	got, err := h.Service(c, s.Key())
	if err != nil || got.Scheduler != "rr" || got.Netmask != 0xffffffff {
		t.Errorf("Service: %+v %v", got, err)
	}
	h.Close()
	if _, err := h.Services(c); err == nil {
		t.Error("request on a closed handle succeeded")
	}
}

// TestConcurrentHandle: one handle used by many goroutines at once.
func TestConcurrentHandle(t *testing.T) {
	h := open(t)
	const workers, dests = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*4)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ctx(t)
			s := ipvs.Service{Protocol: ipvs.TCP, Addr: addr("203.0.113.201"), Port: uint16(1000 + w), Scheduler: "rr"}
			if err := h.NewService(c, s); err != nil {
				errs <- err
				return
			}
			var ops []ipvs.Op
			for i := range dests {
				ops = append(ops, ipvs.Op{Kind: ipvs.AddDest, Service: s,
					Dest: ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 2, byte(w), byte(i + 1)}), Port: s.Port, Forward: ipvs.Route, Weight: int32(i)}})
			}
			for i := 0; i < len(ops); i += 5 {
				if err := h.Apply(c, ops[i:i+5]); err != nil {
					errs <- err
					return
				}
				if _, err := h.Table(c); err != nil {
					errs <- err
					return
				}
				if _, err := h.Info(c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tbl, err := h.Table(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl) != workers {
		t.Fatalf("%d services, want %d", len(tbl), workers)
	}
	for _, vs := range tbl {
		if len(vs.Destinations) != dests {
			t.Errorf("%v: %d destinations", vs.Key(), len(vs.Destinations))
		}
	}
	compareAll(t, h)
}

// TestTimeouts sets and reads the connection timeouts, checked by ipvsadm.
func TestTimeouts(t *testing.T) {
	h := open(t)
	old, err := h.Timeouts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Timeout (tcp tcpfin udp): %d %d %d\n", old.TCP, old.TCPFin, old.UDP)
	if got := ipvsadm(t, "", "-L", "--timeout"); got != want {
		t.Errorf("ipvsadm %q, ours %q", got, want)
	}
	if err := h.SetTimeouts(ctx(t), ipvs.Timeouts{TCP: 1000, UDP: 200}); err != nil {
		t.Fatal(err)
	}
	got, err := h.Timeouts(ctx(t))
	if err != nil || got != (ipvs.Timeouts{TCP: 1000, TCPFin: old.TCPFin, UDP: 200}) {
		t.Errorf("after set: %+v %v", got, err)
	}
	if out := ipvsadm(t, "", "-L", "--timeout"); out != fmt.Sprintf("Timeout (tcp tcpfin udp): 1000 %d 200\n", old.TCPFin) {
		t.Errorf("ipvsadm after set: %q", out)
	}
	if err := h.SetTimeouts(ctx(t), old); err != nil {
		t.Fatal(err)
	}
}

// TestZeroAndFlush: Zero and Flush act on the kernel (checked by ipvsadm).
func TestZeroAndFlush(t *testing.T) {
	h := open(t)
	ipvsadm(t, referenceTable, "-R")
	if err := h.Zero(ctx(t)); err != nil {
		t.Fatal(err)
	}
	k := ipvs.Service{Protocol: ipvs.TCP, Addr: addr("192.0.2.101"), Port: 80}.Key()
	if err := h.ZeroService(ctx(t), k); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := ipvsadm(t, "", "-S", "-n"); got != "" {
		t.Errorf("after Flush ipvsadm -S -n prints:\n%s", got)
	}
}

// TestCancel: a request bounded by a cancelled or expired context fails
// with the context's error, and the handle keeps working afterwards.
func TestCancel(t *testing.T) {
	h := open(t)
	ipvsadm(t, referenceTable, "-R")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Table(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Table with a cancelled context: %v", err)
	}
	expired, cancel2 := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel2()
	time.Sleep(time.Millisecond)
	if _, err := h.Services(expired); err == nil {
		t.Error("Services with an expired context succeeded")
	}
	// Many short deadlines racing the replies: whatever was interrupted,
	// later requests still get their own answers.
	for i := range 50 {
		c, cancel := context.WithTimeout(context.Background(), time.Duration(i*20)*time.Microsecond)
		h.Table(c)
		cancel()
	}
	compareAll(t, h)
}
