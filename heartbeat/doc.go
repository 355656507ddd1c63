// Package heartbeat holds directord's membership and resource ownership
// logic, speaking Linux-HA Heartbeat 3.0.6's protocol so that a directord
// node pairs with a Heartbeat node. The engine is heartbeat/cluster
// (see docs/heartbeat.md); its foundations live in subpackages, each with
// one job:
//
//   - wire: the ha_msg codec (netstring and classic) and crc/md5/sha1 auth
//   - authkeys: /etc/ha.d/authkeys
//   - hacf: /etc/ha.d/ha.cf into a typed configuration with Heartbeat's defaults
//   - haresources: /etc/ha.d/haresources resource groups
//   - proto: control messages (status, NS_rexmit, NS_ackmsg, resource, …)
//     and the fields every message carries
//   - seqtrack: per-peer sequence/generation tracking (duplicates, gaps,
//     replays, restarts)
//   - media: UDP ucast/bcast/mcast sockets as Heartbeat opens them
//   - state: the node's uuid and generation in Heartbeat's own files
package heartbeat
