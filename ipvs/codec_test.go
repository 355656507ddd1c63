package ipvs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// The byte layouts below are written out from linux/ip_vs.h and the
// netlink attribute format (u16 length, u16 type, payload padded to 4);
// host-order fields are little-endian, so the tests need a little-endian
// host.
func needLittleEndian(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("byte layouts are written for little-endian hosts")
	}
}

// nest wraps attributes in a nested attribute of type typ, without the
// nested flag, as the kernel's IPVS dumps do.
func nest(typ uint16, parts ...[]byte) []byte {
	inner := bytes.Join(parts, nil)
	b := binary.LittleEndian.AppendUint16(nil, uint16(4+len(inner)))
	b = binary.LittleEndian.AppendUint16(b, typ)
	return append(b, inner...)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeServiceFull(t *testing.T) {
	needLittleEndian(t)
	got, err := serviceAttrs(Service{Protocol: TCP, Addr: mustAddr("10.0.0.1"), Port: 80, Scheduler: "rr"}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		54000180
		06000100 02000000
		06000200 06000000
		14000300 0a000001 00000000 00000000 00000000
		06000400 00500000
		07000600 72720000
		0c000700 00000000 ffffffff
		08000800 00000000
		08000900 ffffffff`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func TestEncodeServiceIPv6PersistentNetmask(t *testing.T) {
	needLittleEndian(t)
	// IPv6 netmask is a prefix length in host order; flags carry persistence.
	got, err := serviceAttrs(Service{Protocol: UDP, Addr: mustAddr("2001:db8::1"), Port: 53, Scheduler: "wrr",
		Flags: FlagPersistent | FlagOnePacket, Timeout: 300, Netmask: 64}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		54000180
		06000100 0a000000
		06000200 11000000
		14000300 20010db8 00000000 00000000 00000001
		06000400 00350000
		08000600 77727200
		0c000700 05000000 ffffffff
		08000800 2c010000
		08000900 40000000`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func TestEncodeServiceKeyFWMark(t *testing.T) {
	needLittleEndian(t)
	got, err := serviceAttrs(Service{FWMark: 7, Family: IPv6, Scheduler: "rr"}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `14000180 06000100 0a000000 08000500 07000000`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func TestEncodeDestMaxWeight(t *testing.T) {
	needLittleEndian(t)
	k := Service{Protocol: TCP, Addr: mustAddr("10.0.0.1"), Port: 80}.Key()
	got, err := destAttrs(k, Destination{Addr: mustAddr("10.0.0.2"), Port: 80, Forward: Route, Weight: MaxWeight, UpperThreshold: 100, LowerThreshold: 10}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		30000180
		06000100 02000000
		06000200 06000000
		14000300 0a000001 00000000 00000000 00000000
		06000400 00500000
		48000280
		06000b00 02000000
		14000100 0a000002 00000000 00000000 00000000
		06000200 00500000
		08000300 03000000
		08000400 ffffff7f
		08000500 64000000
		08000600 0a000000`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func TestEncodeDaemon(t *testing.T) {
	needLittleEndian(t)
	got, err := daemonAttrs(Daemon{State: DaemonBackup, Interface: "eth0", SyncID: 9, Group: mustAddr("224.0.0.81"), Port: 8848, TTL: 2}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		38000380
		08000100 02000000
		09000200 65746830 00000000
		08000300 09000000
		08000500 e0000051
		06000700 90220000
		05000800 02000000`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

// A service as the kernel dumps it (ip_vs_genl_fill_service): no nested
// flag, both STATS (32-bit packet counters) and STATS64; STATS64 wins.
func TestDecodeServiceDump(t *testing.T) {
	needLittleEndian(t)
	b := nest(1, unhex(t, `
		06000100 0a000000
		06000200 06000000
		14000300 20010db8 00000000 00000000 00000001
		06000400 01bb0000
		07000600 73680000
		0c000700 1b000000 ffffffff
		08000800 3c000000
		08000900 80000000`),
		nest(10, unhex(t, `
		  08000100 01000000
		  0c000400 01000000 00000000
		  08000600 02000000`)),
		nest(12, unhex(t, `
		  0c000100 00000000 01000000
		  0c000200 05000000 00000000
		  0c000400 ffffffff ffffffff
		  0c000a00 07000000 00000000`)))
	s, err := decodeServiceMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Service{Family: IPv6, Protocol: TCP, Addr: mustAddr("2001:db8::1"), Port: 443, Scheduler: "sh",
		Flags: FlagPersistent | FlagHashed | FlagSched1 | FlagSched2, Timeout: 60, Netmask: 128,
		Stats: Stats{Conns: 1 << 32, InPkts: 5, InBytes: 1<<64 - 1}, Rates: Rates{OutBPS: 7}}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestDecodeServiceFWMarkIPv4(t *testing.T) {
	needLittleEndian(t)
	b := nest(1, unhex(t, `
		06000100 02000000
		08000500 01000000
		07000600 72720000
		0c000700 02000000 ffffffff
		08000800 00000000
		08000900 ffffff00`))
	s, err := decodeServiceMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Key() != (ServiceKey{Family: IPv4, FWMark: 1}) || s.Netmask != 0xffffff00 || s.Addr.IsValid() {
		t.Errorf("got %+v", s)
	}
}

func TestDecodeDestDump(t *testing.T) {
	needLittleEndian(t)
	b := nest(2, unhex(t, `
		14000100 0a000002 00000000 00000000 00000000
		06000200 00500000
		08000300 03000000
		08000400 ffffff7f
		08000500 00000000
		08000600 00000000
		08000700 03000000
		08000800 04000000
		08000900 05000000
		06000b00 02000000`),
		nest(12, unhex(t, `0c000500 00e40b54 02000000`)))
	d, err := decodeDestMsg(b, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	want := Destination{Addr: mustAddr("10.0.0.2"), Port: 80, Forward: Route, Weight: MaxWeight,
		ActiveConns: 3, InactConns: 4, PersistConns: 5, Stats: Stats{OutBytes: 10000000000}}
	if d != want {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
}

func TestDecodeInfoTimeoutsDaemon(t *testing.T) {
	needLittleEndian(t)
	in, err := decodeInfo(unhex(t, `08000100 01020100 08000200 00100000`))
	if err != nil || in != (Info{Version: 0x010201, ConnTableSize: 4096}) || in.VersionString() != "1.2.1" {
		t.Errorf("info %+v %v", in, err)
	}
	to, err := decodeTimeouts(unhex(t, `08000400 84030000 08000500 78000000 08000600 2c010000`))
	if err != nil || to != (Timeouts{TCP: 900, TCPFin: 120, UDP: 300}) {
		t.Errorf("timeouts %+v %v", to, err)
	}
	d, err := decodeDaemon(nest(3, unhex(t, `
		08000100 01000000
		09000200 65746830 00000000
		08000300 09000000
		06000700 90220000
		05000800 01000000`)))
	want := Daemon{State: DaemonMaster, Interface: "eth0", SyncID: 9, Port: 8848, TTL: 1}
	if err != nil || d != want {
		t.Errorf("daemon %+v %v", d, err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{
		{0xff, 0xff, 0x01, 0x00},               // length beyond the buffer
		unhex(t, `0c000100 06000100 0a000000`), // IPv6 service, no address: fine? no, has no addr -> ok
		unhex(t, `0c000200 08000100 01020304`), // dest with a 4-byte address of an IPv6 service
		unhex(t, `08000500 00000000`),          // no service attribute at all
	} {
		_, err1 := decodeServiceMsg(b)
		_, err2 := decodeDestMsg(b, IPv6)
		if err1 == nil && err2 == nil {
			t.Errorf("%x decoded as both service and destination", b)
		}
	}
	// Fuzz-style: no input may panic.
	for i := range 256 {
		b := bytes.Repeat([]byte{byte(i)}, i%40)
		decodeServiceMsg(b)
		decodeDestMsg(b, IPv4)
		decodeInfo(b)
		decodeDaemon(b)
	}
	_ = netip.Addr{}
}

// FuzzDecode: the decoders of kernel replies never panic, whatever the
// bytes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{8, 0, 1, 0, 1, 2, 1, 0})
	f.Add(nest(1, []byte{6, 0, 1, 0, 10, 0, 0, 0, 5, 0, 3, 0, 1, 0, 0, 0}))
	f.Add(nest(2, []byte{8, 0, 1, 0, 10, 0, 0, 2}, nest(12, []byte{12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0})))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeServiceMsg(b)
		decodeDestMsg(b, IPv4)
		decodeDestMsg(b, IPv6)
		decodeInfo(b)
		decodeTimeouts(b)
		decodeDaemon(b)
	})
}
