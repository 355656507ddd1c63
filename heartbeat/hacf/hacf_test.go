package hacf

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	good := map[string]time.Duration{
		"1": time.Second, "1000ms": time.Second, "1000000us": time.Second,
		"0.1": 100 * time.Millisecond, "100ms": 100 * time.Millisecond, "100000us": 100 * time.Millisecond,
		"0.001": time.Millisecond, "1ms": time.Millisecond, "1000us": time.Millisecond,
		"499us": 0, "501us": time.Millisecond, "500MS": 500 * time.Millisecond, "500msec": 500 * time.Millisecond,
		"2usec": 0, "500 ms": 500 * time.Millisecond, ".5": 500 * time.Millisecond, "30": 30 * time.Second, "0": 0,
	}
	for in, want := range good {
		got, err := ParseTime(in)
		if err != nil || got != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "5s", "-1", "1.2.3", "abc", "5msx", "ms", "1e3", "99999999999"} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want error", in, got)
		}
	}
}

// seed000 is the ha.cf of "Getting Started with Linux-HA" (seed 000).
const seed000 = `serial /dev/ttyS0
watchdog /dev/watchdog
bcast eth1
keepalive 2
warntime 10
deadtime 30
initdead 120
baud 19200
udpport 694
auto_failback on
node linuxha1.linux-ha.org
node linuxha2.linux-ha.org
respawn hacluster /usr/lib/heartbeat/ipfail
ping ping1.linux-ha.org ping2.linux-ha.org
ping_group group1 192.0.2.1 192.0.2.2
`

// seed002 is the ha.cf of the Heartbeat 2.1.3 notes (seed 002), with the
// lines its web page had broken rejoined.
const seed002 = `## ha log file
logfile /var/log/ha-log
logfacility local0 # syslog
keepalive 2 #多长时间检测一次
warntime 5
deadtime 20 # seconds
initdead 120
#bcast bond0
ucast bond0 172.18.57.154

udpport 694
auto_failback off
node alsme_probe3
node alssme_probe4
ping 172.18.158.254
hopfudge 1
deadping 5
#respawn hacluster /usr/local/lib64/heartbeat/ipfail
apiauth ipfail gid=haclient uid=hacluster
#crm on
`

func TestSeed000(t *testing.T) {
	c, err := Parse(strings.NewReader(seed000), "ha.cf")
	if err != nil {
		t.Fatal(err)
	}
	if c.Keepalive != 2*time.Second || c.WarnTime != 10*time.Second || c.DeadTime != 30*time.Second || c.InitDead != 120*time.Second {
		t.Errorf("times %v %v %v %v", c.Keepalive, c.WarnTime, c.DeadTime, c.InitDead)
	}
	wantMedia := []Medium{
		{Line: 1, Type: Serial, Interface: "/dev/ttyS0"},
		{Line: 3, Type: Bcast, Interface: "eth1", Port: 694},
	}
	if !reflect.DeepEqual(c.Media, wantMedia) {
		t.Errorf("media = %+v", c.Media)
	}
	if c.Watchdog != "/dev/watchdog" || c.Baud != 19200 || c.AutoFailback != FailbackOn || c.UDPPort != 694 {
		t.Errorf("watchdog %q baud %d failback %v port %d", c.Watchdog, c.Baud, c.AutoFailback, c.UDPPort)
	}
	if !reflect.DeepEqual(c.Nodes, []string{"linuxha1.linux-ha.org", "linuxha2.linux-ha.org"}) {
		t.Errorf("nodes = %q", c.Nodes)
	}
	if !reflect.DeepEqual(c.Respawn, []Respawn{{Line: 13, User: "hacluster", Command: "/usr/lib/heartbeat/ipfail"}}) {
		t.Errorf("respawn = %+v", c.Respawn)
	}
	if !reflect.DeepEqual(c.PingNodes, []string{"ping1.linux-ha.org", "ping2.linux-ha.org"}) {
		t.Errorf("ping = %q", c.PingNodes)
	}
	if !reflect.DeepEqual(c.PingGroups, []PingGroup{{Line: 15, Name: "group1", Hosts: []string{"192.0.2.1", "192.0.2.2"}}}) {
		t.Errorf("ping_group = %+v", c.PingGroups)
	}
	if len(c.Unsupported) != 2 || c.Unsupported[0].Line != 1 || c.Unsupported[1].Line != 8 {
		t.Errorf("unsupported = %+v, want serial (1) and baud (8)", c.Unsupported)
	}
	// Defaults Heartbeat applies.
	if c.HopFudge != 1 || c.MsgFmt != "classic" || c.DeadPing != 30*time.Second || c.MaxRexmitDelay != 250*time.Millisecond ||
		c.CompressionThreshold != 2 || c.AutoJoin != "none" || c.UUIDFrom != "file" || !c.Realtime || c.Cluster != "linux-ha" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestSeed002(t *testing.T) {
	c, err := Parse(strings.NewReader(seed002), "ha.cf")
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFile != "/var/log/ha-log" || c.LogFacility != "local0" || c.DeadPing != 5*time.Second || c.HopFudge != 1 {
		t.Errorf("%q %q %v %d", c.LogFile, c.LogFacility, c.DeadPing, c.HopFudge)
	}
	if !reflect.DeepEqual(c.Media, []Medium{{Line: 9, Type: Ucast, Interface: "bond0", Peer: "172.18.57.154", Port: 694}}) {
		t.Errorf("media = %+v", c.Media)
	}
	if c.AutoFailback != FailbackOff || c.WarnTime != 5*time.Second || c.DeadTime != 20*time.Second {
		t.Errorf("failback %v warn %v dead %v", c.AutoFailback, c.WarnTime, c.DeadTime)
	}
	if !reflect.DeepEqual(c.APIAuth, []APIAuth{{Line: 19, Client: "ipfail", UIDs: []string{"hacluster"}, GIDs: []string{"haclient"}}}) {
		t.Errorf("apiauth = %+v", c.APIAuth)
	}
	if !c.HasNode("ALSME_PROBE3") || c.HasNode("nodeX") {
		t.Error("HasNode")
	}
	// udpport 694 after ucast is harmless: it does not change the port.
	if len(c.Warnings) != 0 {
		t.Errorf("warnings = %+v", c.Warnings)
	}
}

func TestDefaultsAndTimes(t *testing.T) {
	tests := []struct {
		times                    string
		warn, initdead, deadping time.Duration
	}{
		{"", 15 * time.Second, 30 * time.Second, 30 * time.Second},
		{"deadtime 5", 2500 * time.Millisecond, 12 * time.Second, 5 * time.Second},
		{"deadtime 8", 4 * time.Second, 16 * time.Second, 8 * time.Second},
		{"deadtime 10", 5 * time.Second, 20 * time.Second, 10 * time.Second},
		{"deadtime 11", 5500 * time.Millisecond, 11 * time.Second, 11 * time.Second},
		{"keepalive 500ms\ndeadtime 2\nwarntime 1500ms\ninitdead 10", 1500 * time.Millisecond, 10 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		c, err := Parse(strings.NewReader("ucast eth0 192.0.2.2\nnode a\n"+tt.times+"\n"), "ha.cf")
		if err != nil {
			t.Errorf("%q: %v", tt.times, err)
			continue
		}
		if c.WarnTime != tt.warn || c.InitDead != tt.initdead || c.DeadPing != tt.deadping {
			t.Errorf("%q: warn %v initdead %v deadping %v", tt.times, c.WarnTime, c.InitDead, c.DeadPing)
		}
	}
}

func TestVarious(t *testing.T) {
	in := "udpport 7000\nbcast eth0, eth1\nucast hb0 198.51.100.2\nudpport 7001\n" +
		"mcast eth2 239.0.0.1 694 1 0\nnode NodeA,nodeB\tnodeC\nstonith_host * null nodea nodeb\n" +
		"stonith baytech /etc/ha.d/conf/stonith.baytech\ncrm off\nmsgfmt netstring\ntraditional_compression yes\n" +
		"compression bz2\ncompression_threshold 16\nuse_logd no\nautojoin other\nrealtime off\ndebug 2\n" +
		"conn_logd_time 500ms\nuuidfrom nodename\nfailfast hacluster /usr/lib/heartbeat/ccm -x\nudp eth3\n" +
		"env OCF_FOO=a=b\nauto_failback legacy\n"
	c, err := Parse(strings.NewReader(in), "ha.cf")
	if err != nil {
		t.Fatal(err)
	}
	want := []Medium{
		{Line: 2, Type: Bcast, Interface: "eth0", Port: 7000},
		{Line: 2, Type: Bcast, Interface: "eth1", Port: 7000},
		{Line: 3, Type: Ucast, Interface: "hb0", Peer: "198.51.100.2", Port: 7000},
		{Line: 5, Type: Mcast, Interface: "eth2", Group: netip.MustParseAddr("239.0.0.1"), Port: 694, TTL: 1},
		{Line: 21, Type: Bcast, Interface: "eth3", Port: 7000},
	}
	if !reflect.DeepEqual(c.Media, want) {
		t.Errorf("media = %+v", c.Media)
	}
	// The late udpport is recorded but does not move media already bound.
	if c.UDPPort != 7001 {
		t.Errorf("udpport = %d", c.UDPPort)
	}
	if !reflect.DeepEqual(c.Nodes, []string{"nodea", "nodeb", "nodec"}) {
		t.Errorf("nodes = %q", c.Nodes)
	}
	if len(c.Stonith) != 2 || c.Stonith[0].Host != "*" || c.Stonith[0].Params != "nodea nodeb" || c.Stonith[1].ConfigFile != "/etc/ha.d/conf/stonith.baytech" {
		t.Errorf("stonith = %+v", c.Stonith)
	}
	if c.MsgFmt != "netstring" || !c.TraditionalCompression || c.Compression != "bz2" || c.CompressionThreshold != 16 ||
		c.UseLogd == nil || *c.UseLogd || c.AutoJoin != "other" || c.Realtime || c.Debug != 2 ||
		c.ConnLogdTime != 500*time.Millisecond || c.UUIDFrom != "nodename" || c.AutoFailback != FailbackLegacy {
		t.Errorf("config = %+v", c)
	}
	if len(c.Respawn) != 1 || !c.Respawn[0].Failfast || c.Respawn[0].Command != "/usr/lib/heartbeat/ccm -x" {
		t.Errorf("respawn = %+v", c.Respawn)
	}
	if !reflect.DeepEqual(c.Env, []string{"OCF_FOO=a=b"}) {
		t.Errorf("env = %q", c.Env)
	}
	var lines []int
	for _, w := range c.Warnings {
		lines = append(lines, w.Line)
	}
	if !reflect.DeepEqual(lines, []int{4, 4, 21, 23}) { // late udpport (bcast, ucast), udp alias, legacy
		t.Errorf("warnings = %+v", c.Warnings)
	}
}

// Each of the bcast and ucast plugins reads udpport when its first medium
// is declared.
func TestUDPPortPerPlugin(t *testing.T) {
	c, err := Parse(strings.NewReader("bcast eth0\nudpport 7000\nucast eth1 192.0.2.2\nbcast eth2\nnode a\n"), "ha.cf")
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, m := range c.Media {
		ports = append(ports, m.Port)
	}
	if !reflect.DeepEqual(ports, []int{694, 7000, 694}) {
		t.Errorf("ports = %v", ports)
	}
	if len(c.Warnings) != 2 || c.Warnings[0].Line != 2 || !strings.Contains(c.Warnings[0].Text, "bcast statements, which keep port 694") {
		t.Errorf("warnings = %+v", c.Warnings)
	}
}

func TestErrors(t *testing.T) {
	base := "ucast eth0 192.0.2.2\nnode a\n"
	tests := []struct{ in, want string }{
		{base + "frobnicate 1\n", "ha.cf:3: frobnicate: unknown directive"},
		{base + "keepalive\n", "ha.cf:3: keepalive: want exactly one value"},
		{base + "keepalive 1 2\n", "ha.cf:3: keepalive: want exactly one value"},
		{base + "keepalive 5s\n", "ha.cf:3: keepalive: bad time \"5s\""},
		{base + "keepalive 0\n", "ha.cf:3: keepalive: \"0\" must be more than 0"},
		{base + "keepalive 1\nkeepalive 2\n", "ha.cf:4: keepalive: already set on line 3"},
		{base + "deadtime 2\n", "ha.cf: deadtime 2s is too small compared to keepalive 1s"},
		{base + "deadtime 30\ninitdead 20\n", "ha.cf: initdead 20s is smaller than deadtime 30s"},
		{base + "deadping 2\n", "ha.cf: line 3: deadping 2s is too small"},
		{"node a\n", "ha.cf: no heartbeat media"},
		{"node a\nserial /dev/ttyS0\n", "ha.cf: no heartbeat media"},
		{"ucast eth0 192.0.2.2\n", "ha.cf: no nodes defined"},
		{base + "udpport 0\n", "ha.cf:3: udpport: \"0\" is not an integer in 1..65535"},
		{base + "udpport 694x\n", "ha.cf:3: udpport: \"694x\""},
		{base + "ucast eth0\n", "ha.cf:3: ucast: want \"ucast INTERFACE PEER\""},
		{base + "ucast eth0 192.0.2.3 192.0.2.4\n", "ha.cf:3: ucast: one peer per ucast line"},
		{base + "bcast\n", "ha.cf:3: bcast: want one or more interfaces"},
		{base + "mcast eth0 192.0.2.1 694 1 0\n", "ha.cf:3: mcast: \"192.0.2.1\" is not an IPv4 multicast group"},
		{base + "mcast eth0 239.0.0.1 694 256 0\n", "ha.cf:3: mcast: ttl:"},
		{base + "mcast eth0 239.0.0.1 694 1 2\n", "ha.cf:3: mcast: loop:"},
		{base + "mcast eth0 239.0.0.1 694 1\n", "ha.cf:3: mcast: want"},
		{base + "baud 12345\n", "ha.cf:3: baud: invalid baud rate"},
		{base + "baud 9600\nbaud 9600\n", "ha.cf:4: baud: already set on line 3"},
		{base + "watchdog /dev/a\nwatchdog /dev/b\n", "ha.cf:4: watchdog: already set on line 3"},
		{base + "auto_failback maybe\n", "ha.cf:3: auto_failback: want on, off or legacy"},
		{base + "node A\n", "ha.cf:3: node: node \"a\" declared twice"},
		{base + "crm on\n", "ha.cf:3: crm: crm on: Pacemaker (CRM) resource management is not supported"},
		{base + "pacemaker respawn\n", "ha.cf:3: pacemaker: pacemaker respawn: Pacemaker"},
		{base + "crm off\npacemaker off\n", "ha.cf:4: pacemaker: crm/pacemaker already given on line 3"},
		{base + "respawn hacluster ipfail\n", "ha.cf:3: respawn: command \"ipfail\" is not a full pathname"},
		{base + "respawn hacluster\n", "ha.cf:3: respawn: want"},
		{base + "apiauth ipfail\n", "ha.cf:3: apiauth: want"},
		{base + "apiauth ipfail foo=1\n", "ha.cf:3: apiauth: \"foo=1\" is not"},
		{base + "apiauth ipfail uid=a uid=b\n", "ha.cf:3: apiauth: \"uid=b\""},
		{base + "hopfudge 256\n", "ha.cf:3: hopfudge: \"256\""},
		{base + "logfacility bogus\n", "ha.cf:3: logfacility: unknown syslog facility"},
		{base + "msgfmt xml\n", "ha.cf:3: msgfmt: want classic or netstring"},
		{base + "autojoin all\n", "ha.cf:3: autojoin: want none, other or any"},
		{base + "uuidfrom disk\n", "ha.cf:3: uuidfrom: want file or nodename"},
		{base + "compression_threshold 0\n", "ha.cf:3: compression_threshold:"},
		{base + "traditional_compression maybe\n", "ha.cf:3: traditional_compression: \"maybe\" is not a boolean"},
		{base + "ping_group g\n", "ha.cf:3: ping_group: want"},
		{base + "ping_group g h\nping_group g i\n", "ha.cf:4: ping_group: ping group \"g\" declared twice"},
		{base + "stonith_host *\n", "ha.cf:3: stonith_host: want"},
		{base + "env =x\n", "ha.cf:3: env: want"},
		{base + "nice_failback on\nauto_failback on\n", "ha.cf:4: auto_failback: already set on line 3"},
		{base + strings.Repeat("x", maxLine+10) + "\n", "ha.cf:3: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in), "ha.cf")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q)\n = %v\nwant prefix %q", tt.in[len(base):min(len(tt.in), len(base)+60)], err, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ha.cf")
	if err := os.WriteFile(p, []byte(seed002), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.File != p {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Error("missing file loaded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(seed000)
	f.Add(seed002)
	f.Add("ucast eth0 192.0.2.2\nnode a\nkeepalive 500ms\ndeadtime 2\n")
	f.Add("mcast eth0 239.0.0.1 694 1 0\nnode a, b\nudpport 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "ha.cf")
		if err != nil {
			return
		}
		if c.DeadTime <= 2*c.Keepalive || c.InitDead < c.DeadTime || len(c.Media) == 0 {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
		for _, n := range c.Nodes {
			if n != lower(n) || n == "" {
				t.Fatalf("node %q not lowercased", n)
			}
		}
	})
}
