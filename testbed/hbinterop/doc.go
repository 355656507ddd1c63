// Package hbinterop tests directord against Debian's Heartbeat 3.0.6 as real
// processes owning real addresses: a `directord run` built from
// cmd/directord runs as nodeb in one network namespace, Debian's heartbeat
// daemon (testbed/heartbeatd) as nodea in another, joined by a dedicated
// heartbeat cable (ucast over hb0) and by a LAN switch on which a client
// namespace reaches the VIPs. haresources has two groups, one owned by each
// node, so every scenario covers both roles:
//
//	nodea IPaddr2::192.0.2.110/24/eth0   (Heartbeat's own IPaddr2 script, resource-agents' OCF agent)
//	nodeb IPaddr2::192.0.2.120/24/eth0   (directord's built-in IPaddr2)
//
// Each node runs a small TCP service that answers with its name, so the
// client sees which node answers a VIP; VIP ownership is read from each
// namespace's addresses over netlink. The scenarios are issue 4's: cold
// start, kill -9 of the holder, restart with auto_failback on and off,
// directord standby/takeover and hb_standby/hb_takeover, graceful stop
// (SIGTERM, heartbeat -k), a wrong key on either side, and heartbeats lost
// one way (a tc filter on the receiver's cable) and retransmitted.
//
// There is no IPVS here (no lnoded resource, the sync daemon off), so the
// tests run on the host's kernel without the testbed VM. They need root and
// the heartbeat package; without them they skip.
package hbinterop
