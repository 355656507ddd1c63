// Package vip adds, removes and announces virtual IP addresses (VIPs) the
// way Heartbeat's IPaddr and IPaddr2 resource agents do, through netlink and
// AF_PACKET instead of ip(8), ifconfig(8) and send_arp.
//
// # Choosing the interface (findif)
//
// When a VIP names no interface, [Manager.Resolve] picks one from the main
// routing table as Heartbeat's findif does: among the routes of the VIP's
// family that are directly connected (no gateway; for IPv4 also scope link,
// which is what findif's "ip route list match IP scope link" keeps) and that
// cover the VIP (or VIP/prefix when a prefix is given), it takes the most
// specific one; ties go to the lowest metric, then to the route the kernel
// lists first. The VIP gets that route's interface and, when no prefix is
// given, that route's prefix length. An IPv4 broadcast address not given is
// the highest address of the VIP's subnet (findif.c's rule, and what
// "ip addr add ... brd +" does); /31 and /32 get none.
//
// Where this differs from resource-agents' findif.sh, and why:
//   - findif.sh breaks ties between equally specific routes by taking the
//     last line "ip route" prints, which for one prefix is the highest
//     metric. We take the lowest metric, which is the route the kernel
//     itself would use and what the Linux-HA guide promises ("the lowest-cost
//     route; if several, the first one found").
//   - findif.sh (IPv6) also accepts routes through a gateway and then puts
//     the VIP in the gateway route's prefix; we accept only on-link routes
//     for both families, because a VIP is useless on a link where its subnet
//     is not attached.
//   - findif.sh copies the broadcast address from the interface address that
//     is the route's preferred source; we compute it from the VIP's prefix.
//     In the usual case (VIP in the subnet of a static address) they agree.
//   - findif.sh falls back to the local table for 127.0.0.0/8; we require an
//     explicit interface for loopback VIPs (a director never needs one).
//   - A default route is never used to choose an interface (findif.c: "Cannot
//     use default route w/o netmask"; findif.sh fails the same way).
//   - IPv6 link-local VIPs (fe80::/10) need an explicit interface, as in
//     findif.sh.
//
// # Announcing
//
// After adding an IPv4 VIP, [Manager.Acquire] sends gratuitous ARP the way
// Heartbeat's libnet send_arp does when IPaddr/IPaddr2 run it with
// "-i interval -r count": count pairs of an ARP request (target hardware
// address 00:00:00:00:00:00) and an ARP reply (target hardware address = our
// MAC), both with sender and target protocol address = the VIP, broadcast to
// ff:ff:ff:ff:ff:ff, half an interval apart. Some hosts only heed one of the
// two, which is why send_arp sends both; Linux neighbours treat a reply as
// gratuitous (and so override a recently confirmed entry) only when its
// target hardware address equals the sender's, which is why the reply
// carries our MAC there. The default is 5 pairs at 200 ms, IPaddr2's
// arp_count and arp_interval (the older IPaddr used 10 at 500 ms; set
// [VIP.ARPCount] and [VIP.ARPInterval] to match it). Links that do not ARP
// (loopback, NOARP) get no announcements, as IPaddr2 skips lo.
//
// An IPv6 VIP is announced with count unsolicited neighbour advertisements
// (override flag set, solicited flag clear, target link-layer address
// option) to the all-nodes group ff02::1, one per interval, as IPaddr2's
// send_ua does.
//
// # IPv6 duplicate address detection
//
// IPv6 VIPs are added with IFA_F_NODAD by default, as keepalived does for its
// VIPs, while IPaddr2 waits for DAD. Ownership of a VIP is decided by the
// cluster (Heartbeat's resource arbitration), not by the wire: during a
// takeover the old owner can still answer for a moment, DAD would then mark
// our address "dadfailed" and leave the service down, and even when it
// succeeds it delays the takeover by one to two seconds during which the
// address cannot receive traffic. Set [VIP.DAD] to wait for DAD instead; a
// duplicate then fails Acquire and the address is removed again.
//
// # Other differences from IPaddr2
//
//   - IPaddr2 runs "ip link set <nic> up" after adding the address; Acquire
//     instead fails on an administratively down interface, because bringing
//     up a link an operator took down is not the VIP's business.
//   - lvs_support (moving a VIP between lo and the NIC on directors that
//     are also real servers), preferred_lft, Cluster IP (CLUSTERIP) and
//     flush_routes are not implemented.
//
// # Idempotence
//
// Acquiring a VIP that is already on its interface (a daemon restart adopting
// the running VIP) changes nothing and still announces. Releasing a VIP that
// is not there succeeds. Release removes the address and nothing else: when
// the VIP is a primary IPv4 address and the kernel (promote_secondaries off)
// flushes the secondaries of its subnet with it, Release puts them back.
package vip
