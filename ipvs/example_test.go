package ipvs_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"strings"

	"github.com/directord/directord/ipvs"
)

// Printing a table the way "ipvsadm -L -n" does; a status command gets
// info and table from Handle.Info and Handle.Table.
func ExampleWriteList() {
	info := ipvs.Info{Version: 0x010201, ConnTableSize: 4096}
	tbl := ipvs.Table{{
		Service: ipvs.Service{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("192.168.145.101"), Port: 80, Scheduler: "rr"},
		Destinations: []ipvs.Destination{
			{Addr: netip.MustParseAddr("192.168.145.201"), Port: 80, Forward: ipvs.Route, Weight: 1},
			{Addr: netip.MustParseAddr("192.168.145.200"), Port: 80, Forward: ipvs.Route, Weight: 0},
		},
	}}
	if err := ipvs.WriteList(os.Stdout, info, tbl, ipvs.ListOptions{}); err != nil {
		log.Fatal(err)
	}
	// The destination lines end in spaces, as ipvsadm's do:
	// IP Virtual Server version 1.2.1 (size=4096)
	// Prot LocalAddress:Port Scheduler Flags
	//   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
	// TCP  192.168.145.101:80 rr
	//   -> 192.168.145.200:80           Route   0      0          0
	//   -> 192.168.145.201:80           Route   1      0          0
}

// Saving a table in the format of "ipvsadm -S -n" (/etc/sysconfig/ipvsadm).
func ExampleWriteSave() {
	tbl := ipvs.Table{{
		Service: ipvs.Service{Protocol: ipvs.UDP, Addr: netip.MustParseAddr("192.168.145.101"), Port: 53, Scheduler: "rr"},
		Destinations: []ipvs.Destination{
			{Addr: netip.MustParseAddr("192.168.145.201"), Port: 53, Forward: ipvs.Route, Weight: 1},
			{Addr: netip.MustParseAddr("192.168.145.200"), Port: 53, Forward: ipvs.Route, Weight: 1},
		},
	}}
	if err := ipvs.WriteSave(os.Stdout, tbl); err != nil {
		log.Fatal(err)
	}
	// Output:
	// -A -u 192.168.145.101:53 -s rr
	// -a -u 192.168.145.101:53 -r 192.168.145.200:53 -g -w 1
	// -a -u 192.168.145.101:53 -r 192.168.145.201:53 -g -w 1
}

// Planning the changes from one table to another, owning only some
// services.
func ExamplePlan() {
	saved := `-A -t 192.168.145.101:80 -s rr
-a -t 192.168.145.101:80 -r 192.168.145.200:80 -g -w 1
-a -t 192.168.145.101:80 -r 192.168.145.201:80 -g -w 1
`
	actual, err := ipvs.ParseSave(strings.NewReader(saved))
	if err != nil {
		log.Fatal(err)
	}
	desired, _ := ipvs.ParseSave(strings.NewReader(saved))
	desired[0].Destinations[1].Weight = 0 // quiesce one real server
	ops, err := ipvs.Plan(desired, actual, ipvs.OwnKeys(desired[0].Key()))
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range ops {
		fmt.Println(o)
	}
	// Output:
	// -e -t 192.168.145.101:80 -r 192.168.145.201:80 -g -w 0 -x 0 -y 0
}

// Keeping the kernel's table equal to a desired one.
func ExampleReconcile() {
	h, err := ipvs.Open()
	if err != nil {
		log.Fatal(err) // errors.Is(err, ipvs.ErrUnavailable) without IPVS
	}
	defer h.Close()
	desired := ipvs.Table{{
		Service:      ipvs.Service{Protocol: ipvs.UDP, Addr: netip.MustParseAddr("192.168.145.101"), Port: 53, Scheduler: "rr"},
		Destinations: []ipvs.Destination{{Addr: netip.MustParseAddr("192.168.145.200"), Port: 53, Forward: ipvs.Route, Weight: 1}},
	}}
	owned := map[ipvs.ServiceKey]bool{desired[0].Key(): true}
	ops, err := ipvs.Reconcile(context.Background(), h, desired, func(k ipvs.ServiceKey) bool { return owned[k] })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ops), "changes")
}
