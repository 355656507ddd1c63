// Package connsync hands this director's IPVS connections to the peer's
// backup sync daemon at once, in the kernel's own sync protocol (version 1).
//
// The kernel's master sync daemon sends a partly filled message only every
// 2 s (IPVS_SYNC_FLUSH_TIME), and stopping it discards what it has not
// sent. A graceful handover cannot wait for that: connections younger than
// the last flush would be unknown on the new active director, whose stack
// resets them. So the node giving its groups up reads its connection table
// (/proc/net/ip_vs_conn), encodes every live connection as the master
// would, and sends the messages to the sync group on the sync interface,
// where the peer's backup daemon installs them as its own sync messages.
//
// Limits: the table in /proc has no firewall mark and no flags, so
// connections of fwmark services and persistence templates are not sent
// (the forwarding method is taken from the destination in this node's
// table); the kernel's own sync still carries them, with its delay.
package connsync
