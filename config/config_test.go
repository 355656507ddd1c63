package config

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	lnoded "github.com/directord/directord/lnoded/config"
)

// hermetic keeps lnoded.cf parsing off the network and off /etc/services.
func hermetic(node string) *Options {
	return &Options{
		NodeName: node,
		Lnoded: &lnoded.Options{
			Services: []byte("http 80/tcp\ndomain 53/tcp\ndomain 53/udp\n"),
			Hostname: "test",
			LookupHost: func(ctx context.Context, host string, ipv6 bool) (netip.Addr, error) {
				return netip.Addr{}, errors.New("no lookups in tests")
			},
		},
	}
}

// copyTestdata copies testdata/name to a temporary directory, replacing
// @DIR@ with that directory, and gives the files holding secrets mode
// 0600 (git keeps only the executable bit, and authkeys.Load refuses more).
func copyTestdata(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b = []byte(strings.ReplaceAll(string(b), "@DIR@", dst))
		mode := os.FileMode(0o644)
		if d.Name() == "authkeys" || strings.HasSuffix(d.Name(), ".yaml") {
			mode = 0o600
		}
		return os.WriteFile(out, b, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// sameModel compares two configurations as the daemon sees them: where a
// setting was written, and the warnings that name those places, do not
// matter.
var sameModel = cmp.Options{
	cmpopts.IgnoreTypes(Pos{}, map[string]Pos{}),
	cmpopts.IgnoreFields(Config{}, "Sources", "Warnings"),
	cmpopts.EquateComparable(netip.Addr{}),
}

func loadBoth(t *testing.T, dir, node string) (fromHA, fromYAML *Config) {
	t.Helper()
	ctx := context.Background()
	fromHA, err := LoadHADir(ctx, filepath.Join(dir, "ha.d"), hermetic(node))
	if err != nil {
		t.Fatalf("LoadHADir: %v", err)
	}
	fromYAML, err = LoadYAML(ctx, filepath.Join(dir, "directord.yaml"), hermetic(node))
	if err != nil {
		t.Fatalf("LoadYAML: %v", err)
	}
	return fromHA, fromYAML
}

func TestFrontEndsAgree(t *testing.T) {
	for _, tc := range []struct{ name, node string }{
		{"seed003", "node1.a.com"},
		{"full", "beta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ha, y := loadBoth(t, copyTestdata(t, tc.name), tc.node)
			if d := cmp.Diff(ha, y, sameModel); d != "" {
				t.Errorf("ha.d and YAML differ (-ha.d +yaml):\n%s", d)
			}
		})
	}
}

func TestSeed003Model(t *testing.T) {
	dir := copyTestdata(t, "seed003")
	c, _ := loadBoth(t, dir, "NODE2.a.com")
	cl := c.Cluster
	if got, want := cl.Nodes, []string{"node1.a.com", "node2.a.com"}; !cmp.Equal(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	if cl.ThisNode != "node2.a.com" {
		t.Errorf("this node %q, want node2.a.com (lowercased)", cl.ThisNode)
	}
	if cl.Keepalive != 2*time.Second || cl.WarnTime != 10*time.Second || cl.DeadTime != 30*time.Second || cl.InitDead != 120*time.Second || cl.DeadPing != 30*time.Second {
		t.Errorf("timings %v %v %v %v %v", cl.Keepalive, cl.WarnTime, cl.DeadTime, cl.InitDead, cl.DeadPing)
	}
	if cl.AutoFailback != FailbackOn || !cl.IPFail || len(cl.PingNodes) != 1 {
		t.Errorf("auto_failback %v ipfail %v ping %v", cl.AutoFailback, cl.IPFail, cl.PingNodes)
	}
	if len(cl.Media) != 3 || cl.Media[0].Type != Ucast || cl.Media[0].Peer != "198.51.100.1" || cl.Media[2].Type != Bcast || cl.Media[2].Port != 694 {
		t.Errorf("media %+v", cl.Media)
	}
	if cl.Media[0].Pos != (Pos{filepath.Join(dir, "ha.d", "ha.cf"), 11}) {
		t.Errorf("first medium at %v, want ha.cf:11", cl.Media[0].Pos)
	}
	k, ok := c.Auth.ActiveKey()
	if !ok || k.Method != AuthSHA1 || k.Secret != "0123456789abcdef-example-key" {
		t.Errorf("active key %+v %v", k, ok)
	}
	if len(c.Groups) != 1 {
		t.Fatalf("%d groups, want 1", len(c.Groups))
	}
	g := c.Groups[0]
	if g.Owner != "node1.a.com" || len(g.Resources) != 2 || g.Name() != "192.0.2.101" {
		t.Fatalf("group %+v", g)
	}
	v := g.Resources[0].VIP
	if v == nil || v.Addr != netip.MustParseAddr("192.0.2.101") || v.Prefix != -1 || v.Agent != IPaddr {
		t.Errorf("VIP %+v", v)
	}
	l := g.Resources[1].Lnoded
	if l == nil || l.Path != filepath.Join(dir, "ha.d", "lnoded.cf") || l.Config == nil {
		t.Fatalf("lnoded %+v", l)
	}
	var services []string
	for _, vs := range c.Virtuals() {
		services = append(services, vs.Protocol.String()+" "+netip.AddrPortFrom(vs.Addr, vs.Port).String())
	}
	if want := []string{"tcp 192.0.2.101:80", "tcp 192.0.2.101:53", "udp 192.0.2.101:53"}; !cmp.Equal(services, want) {
		t.Errorf("virtual services %v, want %v", services, want)
	}
	d := c.Directord
	if d.ControlSocket != DefaultControlSocket || d.StateDir != DefaultStateDir || d.GARP.Count != 5 || d.GARP.Interval != 200*time.Millisecond {
		t.Errorf("directord defaults %+v", d)
	}
	// An lnoded resource turns connection sync on, on the first heartbeat
	// medium's interface.
	if want := (Sync{Enabled: true, Interface: c.Cluster.Media[0].Interface}); d.Sync != want || want.Interface == "" {
		t.Errorf("sync %+v, want %+v", d.Sync, want)
	}
}

// TestSyncDefaults: connection sync is on by default exactly when a group
// has an lnoded resource, in both front ends alike; YAML can move it to
// another interface or syncid, or turn it off.
func TestSyncDefaults(t *testing.T) {
	base := `cluster:
  nodes: [node1, node2]
  this_node: node1
  media:
    - ucast: eth1
      peer: 198.51.100.2
    - ucast: eth0
      peer: 192.0.2.2
auth:
  active: 1
  keys:
    - {num: 1, method: sha1, secret: a-long-enough-test-secret}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lnoded.cf"), []byte("virtual=192.0.2.100:80\n\treal=192.0.2.21:80 gate\n\tchecktype=on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withLnoded := "groups:\n  - owner: node1\n    resources:\n      - vip: {address: 192.0.2.100}\n      - lnoded: lnoded.cf\n"
	vipOnly := "groups:\n  - owner: node1\n    resources:\n      - vip: {address: 192.0.2.100}\n"
	for _, tc := range []struct {
		name, src string
		want      Sync
	}{
		{"lnoded", base + withLnoded, Sync{Enabled: true, Interface: "eth1"}},
		{"no lnoded", base + vipOnly, Sync{}},
		{"interface and syncid", base + withLnoded + "directord:\n  sync: {interface: eth0, syncid: 9}\n", Sync{Enabled: true, Interface: "eth0", SyncID: 9}},
		{"disabled", base + withLnoded + "directord:\n  sync: {enabled: false}\n", Sync{}},
		{"enabled without lnoded", base + vipOnly + "directord:\n  sync: {enabled: true}\n", Sync{Enabled: true, Interface: "eth1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseYAML(context.Background(), filepath.Join(dir, "d.yaml"), []byte(tc.src), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Directord.Sync
			got.Pos = Pos{}
			if got != tc.want {
				t.Errorf("sync %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFullModel(t *testing.T) {
	dir := copyTestdata(t, "full")
	c, _ := loadBoth(t, dir, "alpha")
	cl := c.Cluster
	if got := cl.Nodes; !cmp.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("nodes %v", got)
	}
	m := cl.Media[0]
	if m.Type != Mcast || m.Group != netip.MustParseAddr("239.0.0.43") || m.Port != 694 || m.TTL != 2 || m.Loop {
		t.Errorf("mcast %+v", m)
	}
	if cl.Media[1].Port != 695 || cl.UDPPort != 695 {
		t.Errorf("bcast port %d, udpport %d; want 695", cl.Media[1].Port, cl.UDPPort)
	}
	if cl.Stonith == nil || strings.Join(cl.Stonith.Command, " ") != "/usr/sbin/stonith -t external/ipmi -p beta 192.0.2.50 admin secret lan -T reset" {
		t.Errorf("stonith %+v", cl.Stonith)
	}
	if cl.Logging != (Logging{File: "/var/log/ha-log", DebugFile: "/var/log/ha-debug", Facility: "daemon", Debug: 1}) {
		t.Errorf("logging %+v", cl.Logging)
	}
	if c.Auth.Active != 2 || len(c.Auth.Keys) != 3 || c.Auth.Keys[0].Num != 1 || c.Auth.Keys[2].Method != AuthCRC {
		t.Errorf("auth %+v", c.Auth)
	}
	g := c.Groups[0]
	v := g.Resources[0].VIP
	if v.Prefix != 24 || v.Interface != "eth0" || v.Label != "web" || v.Broadcast != netip.MustParseAddr("192.0.2.255") {
		t.Errorf("labelled VIP %+v", v)
	}
	if g.Resources[1].VIP.Agent != IPaddr2 {
		t.Errorf("second VIP agent %q, want IPaddr2", g.Resources[1].VIP.Agent)
	}
	if s := g.Resources[4].Script; s == nil || s.Name != "maid" || !cmp.Equal(s.Args, []string{"vacuum", "now"}) {
		t.Errorf("script %+v", s)
	}
	// A virtual6 service whose address no group holds is legal but useless.
	found := false
	for _, w := range c.Warnings {
		found = found || strings.Contains(w.Msg, "2001:db8::10 is not a VIP of this group")
	}
	if !found {
		t.Errorf("no warning about the virtual service without a VIP; warnings: %v", c.Warnings)
	}
}

// TestImportRoundTrip is `directord import`: ha.d → YAML → the same model.
func TestImportRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, node string }{{"seed003", "node1.a.com"}, {"full", "alpha"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTestdata(t, tc.name)
			ha, err := LoadHADir(context.Background(), filepath.Join(dir, "ha.d"), hermetic(tc.node))
			if err != nil {
				t.Fatal(err)
			}
			y, err := MarshalYAML(ha)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "imported.yaml")
			if err := os.WriteFile(out, y, 0o600); err != nil {
				t.Fatal(err)
			}
			back, err := LoadYAML(context.Background(), out, hermetic(tc.node))
			if err != nil {
				t.Fatalf("loading the imported YAML: %v\n%s", err, y)
			}
			if d := cmp.Diff(ha, back, sameModel); d != "" {
				t.Errorf("round trip changed the model (-ha.d +yaml):\n%s\nYAML:\n%s", d, y)
			}
		})
	}
}

// TestTimingDefaults checks that YAML that leaves the timings out gets
// Heartbeat's defaults, as the same ha.cf does, for each of config.c's
// initdead rules.
func TestTimingDefaults(t *testing.T) {
	for _, deadtime := range []string{"", "5", "8", "12"} {
		t.Run("deadtime="+deadtime, func(t *testing.T) {
			dir := t.TempDir()
			hacf := "bcast eth0\nbcast eth1\nauto_failback on\nnode a b\nkeepalive 1\n"
			yml := "cluster:\n  nodes: [a, b]\n  media: [{bcast: eth0}, {bcast: eth1}]\n  auto_failback: on\n  keepalive: 1s\n"
			if deadtime != "" {
				hacf += "deadtime " + deadtime + "\n"
				yml += "  deadtime: " + deadtime + "s\n"
			}
			yml += "auth: {method: crc}\n"
			writeFiles(t, dir, map[string]string{
				"ha.d/ha.cf": hacf, "ha.d/haresources": "", "ha.d/authkeys": "auth 1\n1 crc\n",
				"directord.yaml": yml,
			})
			ha, y := loadBoth(t, dir, "a")
			if d := cmp.Diff(ha, y, sameModel); d != "" {
				t.Errorf("defaults differ (-ha.d +yaml):\n%s", d)
			}
			if ha.Cluster.InitDead < ha.Cluster.DeadTime || ha.Cluster.WarnTime != ha.Cluster.DeadTime/2 {
				t.Errorf("initdead %v warntime %v for deadtime %v", ha.Cluster.InitDead, ha.Cluster.WarnTime, ha.Cluster.DeadTime)
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// wantErrors checks that err is an ErrorList holding each of want (a
// "file:line: text" fragment, file relative to dir) and nothing else.
func wantErrors(t *testing.T, dir string, err error, want ...string) {
	t.Helper()
	list, ok := AsErrorList(err)
	if !ok {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, strings.ReplaceAll(e.Error(), dir+string(filepath.Separator), ""))
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, w)
		}
		if !found {
			t.Errorf("no error containing %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

const goodHACF = "keepalive 2\ndeadtime 30\ninitdead 60\nucast eth1 198.51.100.2\nbcast eth0\nauto_failback on\nnode a\nnode b\n"

func TestHADirErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "every file broken, all reported",
			files: map[string]string{
				"ha.cf":       goodHACF + "frobnicate 1\n",
				"haresources": "a 192.0.2.10/40\n",
				"authkeys":    "auth 1\n1 sha1\n",
			},
			want: []string{"ha.cf:9: frobnicate: unknown directive", "haresources:1: resource", "authkeys:2: method sha1 needs a key"},
		},
		{
			name: "several bad lines in each file",
			files: map[string]string{
				"ha.cf":       goodHACF + "frobnicate 1\nkeepalive 3\nnode a\nmcast eth0 192.0.2.1 694 1 0\n",
				"haresources": "a 192.0.2.10/40 \\\n\thttpd\nb IPaddr::2001:db8::1\nb 192.0.2.11 x::\n",
				"authkeys":    "auth 1\n1 sha1\n2 rot13 x\n17 crc\n",
			},
			want: []string{
				"ha.cf:9: frobnicate: unknown directive", "ha.cf:10: keepalive: already set on line 1",
				`ha.cf:11: node: node "a" declared twice`, "ha.cf:12: mcast:",
				"haresources:1: resource", "haresources:3: resource", "haresources:4: resource",
				"authkeys:2: method sha1 needs a key", "authkeys:3:", "authkeys:4: key number",
			},
		},
		{
			name: "owner not a node, duplicate VIP across groups",
			files: map[string]string{
				"ha.cf":       goodHACF,
				"haresources": "c 192.0.2.10 httpd\nb IPaddr2::192.0.2.10/24 smb\n",
				"authkeys":    "auth 1\n1 crc\n",
			},
			want: []string{`haresources:1: group owner "c" is not a node`, "haresources:2: VIP 192.0.2.10 is already a resource at ha.d/haresources:1"},
		},
		{
			name: "ipfail with legacy auto_failback and no ping nodes",
			files: map[string]string{
				"ha.cf":       strings.Replace(goodHACF, "auto_failback on\n", "respawn hacluster /usr/lib/heartbeat/ipfail\n", 1),
				"haresources": "",
				"authkeys":    "auth 1\n1 crc\n",
			},
			want: []string{"ipfail needs auto_failback on or off", "ipfail needs ping nodes"},
		},
		{
			name: "virtual service in two lnoded files",
			files: map[string]string{
				"ha.cf":       goodHACF,
				"haresources": "a 192.0.2.10 lnoded::one.cf\nb 192.0.2.11 lnoded::two.cf\n",
				"authkeys":    "auth 1\n1 crc\n",
				"one.cf":      "virtual=192.0.2.10:80\n\treal=192.0.2.20:80 gate\n",
				"two.cf":      "\nvirtual=192.0.2.10:80\n\treal=192.0.2.21:80 gate\n",
			},
			want: []string{"two.cf:2: virtual service tcp 192.0.2.10:80 is also defined in ha.d/one.cf:1"},
		},
		{
			name: "lnoded.cf errors and a missing one",
			files: map[string]string{
				"ha.cf":       goodHACF,
				"haresources": "a 192.0.2.10 lnoded::one.cf\nb 192.0.2.11 lnoded::missing.cf\n",
				"authkeys":    "auth 1\n1 crc\n",
				"one.cf":      "virtual=192.0.2.10:80\n\treal=192.0.2.20:80 gate\n\tscheduler=\n\tfrob=1\n",
			},
			want: []string{"one.cf:3:", "one.cf:4:", "haresources:2: lnoded resource missing.cf"},
		},
		{
			name:  "no files at all",
			files: map[string]string{},
			want:  []string{"ha.d/ha.cf: missing: ha.cf names", "ha.d/haresources: missing: haresources", "ha.d/authkeys: missing: authkeys"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{}
			for n, text := range tc.files {
				files["ha.d/"+n] = text
			}
			if err := os.MkdirAll(filepath.Join(dir, "ha.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, dir, files)
			c, err := LoadHADir(context.Background(), filepath.Join(dir, "ha.d"), hermetic("a"))
			if c != nil {
				t.Errorf("got a Config with errors")
			}
			wantErrors(t, dir, err, tc.want...)
		})
	}
}

func TestNotADirectory(t *testing.T) {
	_, err := LoadHADir(context.Background(), filepath.Join(t.TempDir(), "nowhere"), hermetic("a"))
	wantErrors(t, "", err, "nowhere: not a directory")
}

func TestThisNode(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ha.d/ha.cf": goodHACF, "ha.d/haresources": "", "ha.d/authkeys": "auth 1\n1 crc\n",
		"directord.yaml": "cluster:\n  nodes: [a, b]\n  this_node: b\n  media: [{bcast: eth0}]\n  deadtime: 30s\n  auto_failback: on\nauth: {method: crc}\n",
	})
	ctx := context.Background()
	_, err := LoadHADir(ctx, filepath.Join(dir, "ha.d"), hermetic("z"))
	wantErrors(t, dir, err, `this node "z" is not one of the nodes (a, b)`)

	c, err := LoadHADir(ctx, filepath.Join(dir, "ha.d"), &Options{AnyNode: true})
	if err != nil || c.Cluster.ThisNode != "" {
		t.Errorf("AnyNode: %v, this node %q", err, c.Cluster.ThisNode)
	}
	// this_node in the file is used when no name is given …
	c, err = LoadYAML(ctx, filepath.Join(dir, "directord.yaml"), &Options{Lnoded: hermetic("").Lnoded})
	if err != nil || c.Cluster.ThisNode != "b" {
		t.Fatalf("this_node: %v, got %q", err, c.Cluster.ThisNode)
	}
	// … and a name given wins over it.
	c, err = LoadYAML(ctx, filepath.Join(dir, "directord.yaml"), hermetic("a"))
	if err != nil || c.Cluster.ThisNode != "a" {
		t.Fatalf("NodeName: %v, got %q", err, c.Cluster.ThisNode)
	}
}

func TestYAMLErrors(t *testing.T) {
	const head = "cluster:\n  nodes: [a, b]\n  media: [{bcast: eth0}, {bcast: eth1}]\n  auto_failback: on\nauth: {method: sha1, secret: s3cret}\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", head + "frob: 1\n", []string{`x.yaml:6: configuration: unknown key "frob"`}},
		{"unknown nested key", "cluster:\n  nodes: [a, b]\n  media: [{bcast: eth0, colour: red}]\n" + head[strings.Index(head, "  auto"):],
			[]string{`x.yaml:3: media entry: unknown key "colour"`}},
		{"key twice", head + "groups: []\ngroups: []\n", []string{"x.yaml:7: configuration: groups given twice (first on line 6)"}},
		{"alias", head + "groups:\n  - &g {owner: a, resources: [{script: x}]}\n  - *g\n", []string{"x.yaml:7: anchors and aliases", "x.yaml:8: anchors and aliases"}},
		{"two documents", head + "---\ncluster: {}\n", []string{"x.yaml:6: a second YAML document"}},
		{"syntax", head + "groups: [\n", []string{"x.yaml:6: YAML syntax"}},
		{"duration as a number", head[:strings.Index(head, "auth")] + "  deadtime: 30\n" + head[strings.Index(head, "auth"):],
			[]string{`x.yaml:5: cluster.deadtime: want a duration such as 2s or 500ms, got "30" (write 30s for seconds)`}},
		{"integer out of range", head + "directord: {sync: {enabled: true, interface: eth1, syncid: 256}}\n", []string{"x.yaml:6: sync.syncid: want an integer in 0..255"}},
		{"ttl on bcast", strings.Replace(head, "{bcast: eth1}", "{bcast: eth1, ttl: 0}", 1), []string{"x.yaml:3: media entry: group, ttl and loop does not apply to bcast"}},
		{"two media types", strings.Replace(head, "{bcast: eth1}", "{bcast: eth1, ucast: eth1}", 1), []string{"x.yaml:3: media entry: want exactly one of ucast, bcast or mcast"}},
		{"both auth forms", strings.Replace(head, "auth: {method: sha1, secret: s3cret}", "auth: {method: sha1, secret: s3cret, keys: [{num: 1, method: crc}]}", 1), []string{"x.yaml:5: auth: write either"}},
		{"resource with two kinds", head + "groups: [{owner: a, resources: [{vip: 192.0.2.1, script: x}]}]\n", []string{"x.yaml:6: resource: want one of"}},
		{"resource of unknown kind", head + "groups: [{owner: a, resources: [{disk: /dev/sda}]}]\n", []string{`x.yaml:6: resource: unknown key "disk"`}},
		{"missing sections", "directord: {}\n", []string{"x.yaml:1: no cluster section", "x.yaml:1: no auth section"}},
		{"empty", "", []string{"x.yaml: empty configuration"}},
		{"not a mapping", "- 1\n", []string{"x.yaml:1: configuration: want a mapping", "no cluster", "no auth"}},
		{"IPv6 VIP with IPaddr", head + "groups: [{owner: a, resources: [{vip: {address: 2001:db8::1, agent: IPaddr}}]}]\n", []string{"x.yaml:6: VIP 2001:db8::1: IPv6 needs agent IPaddr2"}},
		{"semantic errors after a syntax-level one", head + "groups: [{owner: c, resources: [{vip: 192.0.2.1/99}]}]\ndirectord: {state_dir: relative, garp: {interval: 0s}}\n",
			[]string{"x.yaml:6: vip: prefix length", `x.yaml:6: group owner "c" is not a node`, `x.yaml:7: state_dir "relative" is not an absolute path`, "x.yaml:7: garp: interval 0s must be more than 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseYAML(context.Background(), "x.yaml", []byte(tc.yaml), hermetic("a"))
			if c != nil {
				t.Errorf("got a Config with errors")
			}
			wantErrors(t, "", err, tc.want...)
		})
	}
}

func TestYAMLPermissions(t *testing.T) {
	dir := t.TempDir()
	const base = "cluster:\n  nodes: [a, b]\n  media: [{bcast: eth0}]\n  auto_failback: on\n"
	secret := filepath.Join(dir, "secret.yaml")
	crc := filepath.Join(dir, "crc.yaml")
	if err := os.WriteFile(secret, []byte(base+"auth: {method: sha1, secret: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crc, []byte(base+"auth: {method: crc}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadYAML(context.Background(), secret, hermetic("a"))
	wantErrors(t, "", err, "secret.yaml:5: the file holds authentication secrets but its mode 0644")
	if _, err := LoadYAML(context.Background(), crc, hermetic("a")); err != nil {
		t.Errorf("a file without secrets may be readable: %v", err)
	}
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadYAML(context.Background(), secret, hermetic("a")); err != nil {
		t.Errorf("mode 0600: %v", err)
	}
}

func TestMcastTTL(t *testing.T) {
	for ttl, want := range map[string]int{"": 1, "ttl: 0, ": 0, "ttl: 5, ": 5} {
		y := "cluster: {nodes: [a, b], media: [{mcast: eth0, " + ttl + "group: 239.0.0.1}, {bcast: eth1}], auto_failback: on}\nauth: {method: crc}\n"
		c, err := ParseYAML(context.Background(), "t.yaml", []byte(y), hermetic("a"))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Cluster.Media[0].TTL; got != want {
			t.Errorf("%q: ttl %d, want %d", ttl, got, want)
		}
		if got := c.Cluster.Media[1].TTL; got != 0 {
			t.Errorf("bcast ttl %d", got)
		}
	}
}

func TestValidateWarnings(t *testing.T) {
	y := "cluster:\n  nodes: [a]\n  media: [{bcast: eth0}]\n  deadtime: 30s\n  initdead: 30s\n  warntime: 40s\nauth: {method: crc}\n"
	c, err := ParseYAML(context.Background(), "w.yaml", []byte(y), hermetic("a"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.String())
	}
	for _, want := range []string{
		"w.yaml:2: only one node",
		"w.yaml:3: only one heartbeat link",
		"w.yaml:5: initdead 30s is less than twice deadtime",
		"w.yaml:6: warntime 40s is not between keepalive",
		"w.yaml:1: auto_failback is legacy",
		"w.yaml:7: key 1 is crc, which authenticates nothing",
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, want)
		}
		if !found {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 6 {
		t.Errorf("%d warnings, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}
}
