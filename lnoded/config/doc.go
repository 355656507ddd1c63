// Package config reads lnoded.cf, the ldirectord.cf of Heartbeat's
// ldirectord, into a typed model.
//
// The grammar is ldirectord 4.12's (Debian's ldirectord package), quirks
// included: global directives start in column one; a virtual= or virtual6=
// line opens a block of the lines indented by at least four columns (a tab
// counts as four) that follow it, where comment lines are skipped and an
// empty line ends the block; inside a block everything from '#' on is cut,
// outside it nothing is. Values are matched with ldirectord's own regular
// expressions, so that a file ldirectord accepts is accepted here with the
// same meaning, and a file it rejects is rejected. The few deliberate
// differences (numbers out of range, a zero where ldirectord would use 0
// seconds, netmasks that are not netmasks) are in docs/lnoded-differences.md.
//
// Every default is resolved as ldirectord's code applies it (where its man
// page says otherwise, the code wins), so a consumer of Config never has to
// know a fallback rule: Virtual.CheckTimeout is the timeout that applies,
// Real.CheckPort the port that is checked, Virtual.Fallback the fallback
// server in force.
//
// A file with any error yields no Config and an ErrorList naming every bad
// line with what was expected.
package config
