package daemon

import (
	"fmt"
	"log/slog"

	"github.com/directord/directord/config"
	"github.com/directord/directord/heartbeat/cluster"
	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/wire"
)

// clusterConfig maps the config model to the heartbeat engine's Config.
func clusterConfig(c *config.Config, stateDir string, log *slog.Logger, onEvent func(cluster.Event)) (cluster.Config, error) {
	cc := cluster.Config{
		Node:  c.Cluster.ThisNode,
		Peers: c.Cluster.Peers(),
		Timing: cluster.Timing{
			Keepalive: c.Cluster.Keepalive,
			WarnTime:  c.Cluster.WarnTime,
			DeadTime:  c.Cluster.DeadTime,
			InitDead:  c.Cluster.InitDead,
			DeadPing:  c.Cluster.DeadPing,
		},
		StateDir: stateDir,
		HopFudge: 1,
		Logger:   log,
		OnEvent:  onEvent,
	}
	for _, m := range c.Cluster.Media {
		cc.Media = append(cc.Media, hacf.Medium{
			Line: m.Line, Type: hacf.MediaType(m.Type), Interface: m.Interface, Peer: m.Peer,
			Group: m.Group, Port: m.Port, TTL: m.TTL, Loop: m.Loop,
		})
	}
	ring := &wire.Keyring{Active: c.Auth.Active, Keys: map[int]wire.Key{}}
	for _, k := range c.Auth.Keys {
		m, err := wire.ParseMethod(string(k.Method))
		if err != nil {
			return cc, fmt.Errorf("%s: auth key %d: %w", k.Pos, k.Num, err)
		}
		ring.Keys[k.Num] = wire.Key{Num: k.Num, Method: m, Secret: []byte(k.Secret)}
	}
	cc.Keyring = ring
	for _, g := range c.Groups {
		cc.Groups = append(cc.Groups, cluster.Group{Name: g.Name(), Owner: g.Owner})
	}
	switch c.Cluster.AutoFailback {
	case config.FailbackOn:
		cc.AutoFailback = hacf.FailbackOn
	case config.FailbackOff:
		cc.AutoFailback = hacf.FailbackOff
	default:
		cc.AutoFailback = hacf.FailbackLegacy
	}
	for _, p := range c.Cluster.PingNodes {
		cc.PingNodes = append(cc.PingNodes, p.Host)
	}
	for _, g := range c.Cluster.PingGroups {
		cc.PingGroups = append(cc.PingGroups, hacf.PingGroup{Line: g.Line, Name: g.Name, Hosts: g.Hosts})
	}
	if c.Cluster.Stonith != nil {
		cc.StonithCmd = c.Cluster.Stonith.Command
	}
	return cc, nil
}
