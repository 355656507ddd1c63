package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/directord/directord/config"
)

const baseYAML = `cluster:
  nodes: [node1, node2]
  media:
    - ucast: hb0
      peer: 198.51.100.2
  keepalive: 200ms
  deadtime: 2s
  auto_failback: on
auth:
  active: 1
  keys:
    - {num: 1, method: sha1, secret: s}
groups:
  - owner: node1
    resources:
      - vip: 192.0.2.100
`

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.ParseYAML(context.Background(), "/etc/directord/directord.yaml", []byte(src), &config.Options{NodeName: "node1"})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return c
}

// TestNeedsRestart: a reload applies what the running engine can take and
// refuses, naming it, what it cannot.
func TestNeedsRestart(t *testing.T) {
	base := parse(t, baseYAML)
	for _, c := range []struct {
		name, from, to, want string
	}{
		{"same", "", "", ""},
		{"a comment moves every line", "cluster:", "# a comment\ncluster:", ""},
		{"garp is not the engine's", "groups:", "directord:\n  garp: {count: 9}\ngroups:", ""},
		{"media", "peer: 198.51.100.2", "peer: 198.51.100.3", "the heartbeat media"},
		{"keys", "secret: s", "secret: t", "authkeys"},
		{"deadtime", "deadtime: 2s", "deadtime: 3s", "the heartbeat timings"},
		{"auto_failback", "auto_failback: on", "auto_failback: off", "auto_failback"},
		{"owner", "owner: node1", "owner: node2", "the set of resource groups"},
		{"group name", "vip: 192.0.2.100", "vip: 192.0.2.101", "the set of resource groups"},
		{"a resource added to a group", "vip: 192.0.2.100", "vip: 192.0.2.100\n      - vip: 192.0.2.101", ""},
	} {
		got := needsRestart(base, parse(t, strings.Replace(baseYAML, c.from, c.to, 1)))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: needsRestart = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestStopIfNotHeld(t *testing.T) {
	j := &journal{}
	left := &fakeRes{name: "vip", j: j, on: true} // left by a previous daemon
	g := NewGroup("vip", "node1", []Resource{left}, nil)
	ctx := context.Background()
	if stopped, err := g.StopIfNotHeld(ctx); !stopped || err != nil || left.on {
		t.Errorf("leftover not released: %v %v on=%v", stopped, err, left.on)
	}
	g.Start(ctx)
	if stopped, _ := g.StopIfNotHeld(ctx); stopped || !left.on {
		t.Error("a held group was stopped")
	}
}

// TestSameSettings: a reload that only moves lines (a comment added above)
// must not restart the sync daemon or count as a GARP change.
func TestSameSettings(t *testing.T) {
	src := baseYAML + "directord:\n  sync: {enabled: true, interface: hb0, syncid: 7}\n  garp: {count: 3}\n"
	a, b := parse(t, src), parse(t, "# moved\n# down\n"+src)
	if a.Directord.Sync.Pos == b.Directord.Sync.Pos {
		t.Fatal("test needs the positions to differ")
	}
	if !sameSync(a.Directord.Sync, b.Directord.Sync) || !sameGARP(a.Directord.GARP, b.Directord.GARP) {
		t.Error("moved lines count as a change")
	}
	c := parse(t, strings.Replace(src, "syncid: 7", "syncid: 8", 1))
	if sameSync(a.Directord.Sync, c.Directord.Sync) {
		t.Error("a new syncid is not a change")
	}
}
