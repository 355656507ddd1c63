// Package control is the protocol between `directord run` and the
// subcommands that talk to it (status, standby, takeover, reload): one JSON
// request and one JSON response per connection on a root-only Unix socket.
//
// The wire format is deliberately small so that an operator can speak it with
// socat:
//
//	$ echo '{"command":"status"}' | socat - UNIX-CONNECT:/run/directord/directord.sock
//
// A request is one JSON object on one line; the daemon answers with one JSON
// object and closes the connection. Unknown fields are ignored in both
// directions, so either side can be newer than the other; Version says which
// protocol the daemon speaks.
package control

import (
	"net/netip"
	"time"

	"github.com/directord/directord/ipvs"
)

// Version is the protocol version this package speaks. It changes only when a
// field changes meaning; new fields do not change it.
const Version = 1

// Commands a request may carry.
const (
	CmdStatus   = "status"
	CmdStandby  = "standby"
	CmdTakeover = "takeover"
	CmdReload   = "reload"
)

// Which resources standby and takeover move, as hb_standby and hb_takeover
// take them.
const (
	WhichAll      = "all"      // every group
	WhichForeign  = "foreign"  // groups whose owner is the other node
	WhichLocal    = "local"    // groups this node owns
	WhichFailback = "failback" // groups held here that the other node owns (standby) / that we own and the peer holds (takeover)
)

// ValidWhich reports whether w is one of the four resource selections.
func ValidWhich(w string) bool {
	switch w {
	case WhichAll, WhichForeign, WhichLocal, WhichFailback:
		return true
	}
	return false
}

// Request is what a client sends.
type Request struct {
	Command string `json:"command"`
	// Which is the resource selection of standby and takeover; empty means
	// "all".
	Which string `json:"which,omitempty"`
}

// Response is what the daemon answers.
type Response struct {
	Version int  `json:"version"`
	OK      bool `json:"ok"`
	// Error says why the command failed and, where it can, what to do.
	Error string `json:"error,omitempty"`
	// Message is a one-line account of what was done, for the operator.
	Message string `json:"message,omitempty"`
	// Status is set in the answer to status.
	Status *Status `json:"status,omitempty"`
}

// Status is the daemon's whole state in one document: what `directord
// status` prints.
type Status struct {
	Node    string    `json:"node"`
	PID     int       `json:"pid"`
	Version string    `json:"daemon_version"`
	Started time.Time `json:"started"`
	// Config names the files the running configuration came from.
	Config []string `json:"config,omitempty"`

	HA       HA            `json:"ha"`
	Groups   []Group       `json:"groups"`
	Reals    []Real        `json:"reals"`
	Sync     Sync          `json:"sync"`
	Watchdog Watchdog      `json:"watchdog"`
	IPVS     IPVS          `json:"ipvs"`
	Errors   []string      `json:"errors,omitempty"`
	Reload   *ReloadResult `json:"last_reload,omitempty"`
}

// HA is the membership part of the status, in Heartbeat's words.
type HA struct {
	// Engine is false while no heartbeat engine runs (this build has none,
	// or it failed to start): the resources are then held as configured
	// and nothing fails over.
	Engine bool `json:"engine"`
	// State is this node's status: "init", "up", "active", "standby" …
	State string `json:"state"`
	// Resources is what this node holds: "all", "local", "foreign", "none".
	Resources    string     `json:"resources"`
	AutoFailback string     `json:"auto_failback"`
	Peers        []Peer     `json:"peers"`
	PingNodes    []PingNode `json:"ping_nodes"`
	// Transitions counts this node's changes of held resources since start.
	Transitions uint64 `json:"transitions"`
	// Stable is false while a resource transition is under way (either
	// node acquiring or releasing).
	Stable bool `json:"stable"`
	// LastTransition says what last changed hands and why.
	LastTransition string `json:"last_transition,omitempty"`
}

// Peer is another cluster node as this node sees it.
type Peer struct {
	Name string `json:"name"`
	// Status is "active", "up", "dead", "init", "standby" …
	Status string `json:"status"`
	// LastHeartbeat is when a heartbeat last arrived; zero when never.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Links         []Link    `json:"links"`
}

// Link is one heartbeat path to a peer.
type Link struct {
	Name   string `json:"name"` // interface, as Heartbeat names links: "eth1"
	Status string `json:"status"`
}

// PingNode is an ipfail ping node.
type PingNode struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "up" or "dead"
}

// Group is a resource group and what this node does with it.
type Group struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// State is "stopped", "starting", "running", "stopping" or "failed".
	State     string     `json:"state"`
	Since     time.Time  `json:"since"`
	Error     string     `json:"error,omitempty"`
	Resources []Resource `json:"resources"`
}

// Resource is one resource of a group.
type Resource struct {
	Name  string `json:"name"` // as haresources writes it
	Kind  string `json:"kind"` // "vip", "lnoded", "script"
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// Real is one real server of one virtual service, with its check state.
type Real struct {
	Service ipvs.ServiceKey `json:"service"`
	Addr    netip.Addr      `json:"addr"`
	Port    uint16          `json:"port"`
	// Health is "up", "down", "unknown" or "maintenance".
	Health string `json:"health"`
	// Check says in words what is checked.
	Check string `json:"check,omitempty"`
	// Since is when the server entered its health.
	Since     time.Time `json:"since"`
	LastCheck time.Time `json:"last_check"`
	// Latency is how long the last check took.
	Latency time.Duration `json:"latency_ns"`
	// Failures is how many checks in a row have failed (0 after a pass).
	Failures int `json:"failures"`
	// LastFailure is the reason of the last failed check, kept after the
	// server comes back so that an operator can see why it went away.
	LastFailure     string    `json:"last_failure,omitempty"`
	LastFailureTime time.Time `json:"last_failure_time"`
}

// Sync is the IPVS connection synchronisation daemon.
type Sync struct {
	Enabled   bool   `json:"enabled"`
	State     string `json:"state"` // "master", "backup" or "none"
	Interface string `json:"interface,omitempty"`
	SyncID    int    `json:"sync_id"`
}

// Watchdog is the hardware (or softdog) watchdog and systemd's.
type Watchdog struct {
	Device   string        `json:"device,omitempty"`
	Interval time.Duration `json:"interval_ns,omitempty"`
	LastFeed time.Time     `json:"last_feed"`
	Systemd  time.Duration `json:"systemd_ns,omitempty"`
}

// IPVS is the kernel's table as the daemon last read it.
type IPVS struct {
	Info  ipvs.Info  `json:"info"`
	Table ipvs.Table `json:"table"`
	Error string     `json:"error,omitempty"`
}

// ReloadResult is what the last reload did.
type ReloadResult struct {
	Time    time.Time `json:"time"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Changes []string  `json:"changes,omitempty"`
}
