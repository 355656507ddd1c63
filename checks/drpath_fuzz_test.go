package checks

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	fuzzVIP   = netip.MustParseAddrPort("192.0.2.100:80")
	fuzzLocal = netip.MustParseAddrPort("192.0.2.1:40000")
	fuzzMAC1  = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	fuzzMAC2  = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// replyFrame encodes a TCP segment from the VIP to the prober, for seeds
// and table tests.
func replyFrame(t testing.TB, syn, ack, rst bool, ackNum uint32, fragment bool) []byte {
	eth := &layers.Ethernet{SrcMAC: fuzzMAC2, DstMAC: fuzzMAC1, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: fuzzVIP.Addr().AsSlice(), DstIP: fuzzLocal.Addr().AsSlice()}
	if fragment {
		ip.Flags = layers.IPv4MoreFragments
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(fuzzVIP.Port()), DstPort: layers.TCPPort(fuzzLocal.Port()),
		Seq: 77, Ack: ackNum, SYN: syn, ACK: ack, RST: rst, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload("x")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func arpFrame(t testing.TB, op uint16, sender netip.Addr, mac net.HardwareAddr) []byte {
	s := sender.As4()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: fuzzMAC1, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: op, SourceHwAddress: mac, SourceProtAddress: s[:], DstHwAddress: fuzzMAC1, DstProtAddress: []byte{192, 0, 2, 1}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, arp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseTCPReply(t *testing.T) {
	const seq = 1000
	cases := []struct {
		name  string
		frame []byte
		ok    bool
		want  tcpReply
	}{
		{"syn-ack", replyFrame(t, true, true, false, seq+1, false), true, tcpReply{SYN: true, ACK: true}},
		{"rst-ack", replyFrame(t, false, true, true, seq+1, false), true, tcpReply{RST: true, ACK: true}},
		{"wrong ack", replyFrame(t, true, true, false, seq, false), false, tcpReply{}},
		{"bare ack", replyFrame(t, false, true, false, seq+1, false), false, tcpReply{}},
		{"rst without ack", replyFrame(t, false, false, true, seq+1, false), false, tcpReply{}},
		{"fragment", replyFrame(t, true, true, false, seq+1, true), false, tcpReply{}},
		{"truncated", replyFrame(t, true, true, false, seq+1, false)[:40], false, tcpReply{}},
		{"arp", arpFrame(t, layers.ARPReply, fuzzVIP.Addr(), fuzzMAC2), false, tcpReply{}},
	}
	for _, c := range cases {
		got, ok := parseTCPReply(c.frame, fuzzVIP, fuzzLocal, seq)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if _, ok := parseTCPReply(replyFrame(t, true, true, false, seq+1, false), fuzzVIP, netip.MustParseAddrPort("192.0.2.1:40001"), seq); ok {
		t.Error("a SYN-ACK to another port was taken as the answer")
	}
}

func TestParseARPReply(t *testing.T) {
	rip := netip.MustParseAddr("192.0.2.11")
	r, ok := parseARPReply(arpFrame(t, layers.ARPReply, rip, fuzzMAC2))
	if !ok || r.Sender != rip || !bytes.Equal(r.SenderMAC, fuzzMAC2) {
		t.Errorf("reply: %+v, %v", r, ok)
	}
	if _, ok := parseARPReply(arpFrame(t, layers.ARPRequest, rip, fuzzMAC2)); ok {
		t.Error("a request was taken as a reply")
	}
	if _, ok := parseARPReply(replyFrame(t, true, true, false, 1, false)); ok {
		t.Error("a TCP frame was taken as an ARP reply")
	}
}

// FuzzParseTCPReply holds the hand-written decoder to gopacket's reading of
// the same frame: whatever it accepts, gopacket decodes to the same
// addresses, ports, acknowledgement and flags, and it never panics.
func FuzzParseTCPReply(f *testing.F) {
	f.Add(replyFrame(f, true, true, false, 1001, false), uint32(1000))
	f.Add(replyFrame(f, false, true, true, 1001, false), uint32(1000))
	f.Add(replyFrame(f, true, true, false, 1001, true), uint32(1000))
	f.Add(arpFrame(f, layers.ARPReply, fuzzVIP.Addr(), fuzzMAC2), uint32(0))
	f.Fuzz(func(t *testing.T, frame []byte, seq uint32) {
		r, ok := parseTCPReply(frame, fuzzVIP, fuzzLocal, seq)
		if !ok {
			return
		}
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			t.Fatalf("accepted %+v, but gopacket finds no IPv4/TCP: %v", r, p.ErrorLayer())
		}
		if !ip.SrcIP.Equal(fuzzVIP.Addr().AsSlice()) || !ip.DstIP.Equal(fuzzLocal.Addr().AsSlice()) ||
			uint16(tcp.SrcPort) != fuzzVIP.Port() || uint16(tcp.DstPort) != fuzzLocal.Port() {
			t.Fatalf("accepted a segment gopacket reads as %s:%d → %s:%d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
		}
		if tcp.Ack != seq+1 || tcp.SYN != r.SYN || tcp.ACK != r.ACK || tcp.RST != r.RST || !tcp.ACK || !(tcp.SYN || tcp.RST) {
			t.Fatalf("flags %+v; gopacket: ack %d SYN %v ACK %v RST %v", r, tcp.Ack, tcp.SYN, tcp.ACK, tcp.RST)
		}
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			t.Fatal("accepted a fragment")
		}
	})
}

// FuzzParseARPReply does the same for ARP replies, both ways: a frame
// gopacket reads as an Ethernet/IPv4 ARP reply is accepted with the same
// sender, and nothing else is.
func FuzzParseARPReply(f *testing.F) {
	f.Add(arpFrame(f, layers.ARPReply, netip.MustParseAddr("192.0.2.11"), fuzzMAC2))
	f.Add(arpFrame(f, layers.ARPRequest, netip.MustParseAddr("192.0.2.11"), fuzzMAC2))
	f.Add(replyFrame(f, true, true, false, 1001, false))
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, ok := parseARPReply(frame)
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		want := eth != nil && eth.EthernetType == layers.EthernetTypeARP && arp != nil &&
			arp.AddrType == layers.LinkTypeEthernet && arp.Protocol == layers.EthernetTypeIPv4 &&
			arp.HwAddressSize == 6 && arp.ProtAddressSize == 4 && arp.Operation == layers.ARPReply
		if ok != want {
			t.Fatalf("accepted = %v, gopacket reads an IPv4 ARP reply: %v (%v)", ok, want, p)
		}
		if ok && (!bytes.Equal(r.SenderMAC, arp.SourceHwAddress) || !bytes.Equal(r.Sender.AsSlice(), arp.SourceProtAddress)) {
			t.Fatalf("sender %s %s; gopacket %x %v", r.Sender, r.SenderMAC, arp.SourceHwAddress, arp.SourceProtAddress)
		}
	})
}
