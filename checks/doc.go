// Package checks probes real servers the way ldirectord 4.12 does.
//
// Every kind of probe is a [Checker]: one type per file (http.go, dns.go,
// tcp.go, …), each bounded by a deadline and describing itself in words
// through String. [New] maps an ldirectord virtual service's checktype=,
// service= and protocol= to the checker ldirectord would run, from a plain
// [Config] that lnoded fills in from lnoded.cf. A [Scheduler] runs thousands
// of checkers with bounded concurrency, applies failurecount, probes each
// distinct (checker, target) once per pass however many virtual services
// share it, and reports up/down transitions.
//
// Where ldirectord's Perl code and its manual disagree, this package follows
// the code; the few places where it deliberately does better (a check that
// could never fail, a port that is ignored, a Perl regular expression quirk)
// are documented on the checker concerned. The differential tests
// (oracle_test.go) run ldirectord's own check functions, loaded from Debian's
// package at test time, against the same loopback servers as these checkers
// and require the same verdicts.
//
// One check goes beyond ldirectord: with Config.DRPath set, New wraps the
// real server's check in a DRPathChecker, which first probes the virtual
// service through the real server as IPVS direct routing reaches it (a raw
// TCP SYN to the VIP in a frame to the real server's MAC, and an ARP probe
// for the VIP), so that a real server without the VIP on its loopback, or
// one that answers ARP for the VIP, is down although it answers on its own
// address.
package checks
