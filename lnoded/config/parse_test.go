package config

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()}

// testServices is a small services(5) database so that tests do not depend
// on the host's /etc/services.
const testServices = `
# name port/proto aliases
ftp		21/tcp
domain		53/tcp
domain		53/udp
http		80/tcp		www
https		443/tcp
https		443/udp
sip		5060/udp
onlyudp		999/udp
`

// testOptions resolves the names tests use without touching the network.
func testOptions() *Options {
	hosts := map[string]netip.Addr{
		"www.example.com":  netip.MustParseAddr("192.0.2.80"),
		"v6.example.com":   netip.MustParseAddr("2001:db8::80"),
		"dual.example.com": netip.MustParseAddr("198.51.100.80"),
	}
	return &Options{
		Services: []byte(testServices),
		Hostname: "director1",
		LookupHost: func(_ context.Context, host string, ipv6 bool) (netip.Addr, error) {
			a, ok := hosts[host]
			if !ok || a.Is6() != ipv6 {
				return netip.Addr{}, fmt.Errorf("lookup %s: no such host", host)
			}
			return a, nil
		},
	}
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse(context.Background(), "lnoded.cf", []byte(src), testOptions())
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", src, err)
	}
	return cfg
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

const baseVirtual = "virtual=192.0.2.10:80\n    real=192.0.2.20:80 gate\n"

// defaultVirtual is what baseVirtual parses to: every per-virtual default.
func defaultVirtual() Virtual {
	return Virtual{
		Line: 1, Addr: addr("192.0.2.10"), Port: 80, Protocol: TCP,
		Scheduler: "wrr", PersistenceBits: 32,
		CheckType: CheckNegotiate, Service: ServiceHTTP, CheckCommand: "/bin/true",
		Request: "/", HTTPMethod: "GET",
		CheckInterval: 10 * time.Second, CheckTimeout: 5 * time.Second, NegotiateTimeout: 30 * time.Second,
		CheckCount: 1, FailureCount: 1, Quiescent: false, CleanStop: true, EmailAlertStatus: AlertAll,
		Reals: []Real{{
			Line: 2, Addr: addr("192.0.2.20"), Port: 80, Method: MethodGate, Weight: 1,
			Request: "/", CheckPort: 80, URL: "http://192.0.2.20:80/",
		}},
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, baseVirtual)
	want := &Config{
		File: "lnoded.cf",
		Global: Global{
			CheckInterval: 10 * time.Second, CheckCount: 1, FailureCount: 1,
			LogFile: "/var/log/ldirectord.log", EmailAlertStatus: AlertAll, CleanStop: true,
		},
		Virtuals: []Virtual{defaultVirtual()},
	}
	if d := cmp.Diff(want, cfg, cmpOpts); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestGlobalDirectives(t *testing.T) {
	tests := []struct {
		line string
		want func(g *Global)
	}{
		{"checkinterval=3", func(g *Global) { g.CheckInterval = 3 * time.Second }},
		{"checkinterval = 3 # seconds", func(g *Global) { g.CheckInterval = 3 * time.Second }},
		{"checktimeout=4", func(g *Global) { g.CheckTimeout = 4 * time.Second }},
		{"negotiatetimeout=40", func(g *Global) { g.NegotiateTimeout = 40 * time.Second }},
		{"checkcount=2", func(g *Global) { g.CheckCount = 2 }},
		{"failurecount=4", func(g *Global) { g.FailureCount = 4 }},
		{"autoreload=yes", func(g *Global) { g.AutoReload = true }},
		{`callback="/bin/cb arg"`, func(g *Global) { g.Callback = "/bin/cb arg" }},
		{`logfile="/tmp/ld.log"`, func(g *Global) { g.LogFile = "/tmp/ld.log" }},
		{`logfile="daemon"`, func(g *Global) { g.LogFile = "daemon" }},
		{`logfile="LOG_LOCAL3"`, func(g *Global) { g.LogFile = "LOG_LOCAL3" }},
		{"execute=b.cf", func(g *Global) { g.Execute = []string{"b.cf"} }},
		{"fork=yes", func(g *Global) { g.Fork = true }},
		{"supervised=yes", func(g *Global) { g.Supervised = true }},
		{"supervised", func(g *Global) { g.Supervised = true }},
		{"quiescent=yes", func(g *Global) { g.Quiescent = true }},
		{"readdquiescent=yes", func(g *Global) { g.ReaddQuiescent = true }},
		{`emailalert="a@example.com"`, func(g *Global) { g.EmailAlert = "a@example.com" }},
		{"emailalert=a@example.com", func(g *Global) { g.EmailAlert = "a@example.com" }},
		{"emailalertfreq=0", func(g *Global) { g.EmailAlertFreq = 0 }},
		{"emailalertfreq=90", func(g *Global) { g.EmailAlertFreq = 90 * time.Second }},
		{"emailalertstatus=none", func(g *Global) { g.EmailAlertStatus = AlertNone }},
		{"emailalertstatus=starting , reloading", func(g *Global) { g.EmailAlertStatus = AlertStarting | AlertReloading }},
		{"emailalertstatus=running,", func(g *Global) { g.EmailAlertStatus = AlertRunning }},
		{"emailalertfrom=d@example.com", func(g *Global) { g.EmailAlertFrom = "d@example.com" }},
		{"cleanstop=no", func(g *Global) { g.CleanStop = false }},
		{"smtp=mail.example.com:25", func(g *Global) { g.SMTP = "mail.example.com" }},
		{"maintenancedir=/", func(g *Global) { g.MaintenanceDir = "/" }},
		{`fallbackcommand="/bin/fb"`, func(g *Global) { g.FallbackCommand = `"/bin/fb"` }},
		{"fallback=192.0.2.250:80 masq", func(g *Global) {
			f := Fallback{Addr: addr("192.0.2.250"), Port: 80, Method: MethodMasq, Weight: 1}
			g.Fallback = &GlobalFallback{Line: 1, TCP: f, UDP: f}
		}},
		{"fallback=192.0.2.250", func(g *Global) {
			f := Fallback{Addr: addr("192.0.2.250"), Method: MethodGate, Weight: 1}
			g.Fallback = &GlobalFallback{Line: 1, TCP: f, UDP: f}
		}},
		{"fallback=192.0.2.250:https ipip", func(g *Global) {
			f := Fallback{Addr: addr("192.0.2.250"), Port: 443, Method: MethodIPIP, Weight: 1}
			g.Fallback = &GlobalFallback{Line: 1, TCP: f, UDP: f}
		}},
		{"fallback6=[2001:db8::250]:80", func(g *Global) {
			f := Fallback{Addr: addr("2001:db8::250"), Port: 80, Method: MethodGate, Weight: 1}
			g.Fallback6 = &GlobalFallback{Line: 1, TCP: f, UDP: f}
		}},
		{"fallback=", func(g *Global) {
			f := Fallback{Addr: addr("127.0.0.1"), Method: MethodGate, Weight: 1}
			g.Fallback = &GlobalFallback{Line: 1, TCP: f, UDP: f}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cfg := mustParse(t, tt.line+"\n")
			want := defaultGlobal()
			tt.want(&want)
			if d := cmp.Diff(want, cfg.Global, cmpOpts); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestGlobalFallbackBothProtocols: ldirectord resolves a global fallback's
// port name for TCP and for UDP, and rejects the line if either fails.
func TestGlobalFallbackBothProtocols(t *testing.T) {
	_, err := Parse(context.Background(), "lnoded.cf", []byte("fallback=www.example.com:www\n"), testOptions())
	if err == nil || !strings.Contains(err.Error(), `lnoded.cf:1: fallback: unknown port or udp service name "www"`) {
		t.Fatalf("want the UDP resolution of a TCP-only name to fail, got %v", err)
	}
	cfg := mustParse(t, "fallback=www.example.com:https\n")
	if f := cfg.Global.Fallback; f.TCP.Port != 443 || f.UDP.Port != 443 || f.TCP.Addr != addr("192.0.2.80") {
		t.Errorf("fallback %+v", f)
	}
}

func TestExecuteRepeats(t *testing.T) {
	cfg := mustParse(t, "execute=a.cf\nexecute=b.cf\nexecute=a.cf\n")
	if d := cmp.Diff([]string{"a.cf", "b.cf"}, cfg.Global.Execute); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestVirtualDirectives(t *testing.T) {
	tests := []struct {
		line string
		want func(v *Virtual)
	}{
		{"checktype=connect", func(v *Virtual) { v.CheckType = CheckConnect }},
		{"checktype=ping", func(v *Virtual) { v.CheckType = CheckPing }},
		{"checktype=on", func(v *Virtual) { v.CheckType = CheckOn }},
		{"checktype=off", func(v *Virtual) { v.CheckType = CheckOff }},
		{"checktype=external", func(v *Virtual) { v.CheckType = CheckExternal }},
		{"checktype=external-perl", func(v *Virtual) { v.CheckType = CheckExternalPerl }},
		{"checktype=3", func(v *Virtual) { v.CheckType, v.NumConnects = CheckCombined, 3 }},
		{"checktype=0", func(v *Virtual) { v.CheckType, v.NumConnects = CheckCombined, 0 }},
		{`checkcommand="/bin/chk -x"`, func(v *Virtual) { v.CheckCommand = "/bin/chk -x" }},
		{"checkcommand=/bin/chk -x", func(v *Virtual) { v.CheckCommand = "/bin/chk -x" }},
		{"checktimeout=2", func(v *Virtual) { v.CheckTimeout, v.NegotiateTimeout = 2*time.Second, 2*time.Second }},
		{"negotiatetimeout=7", func(v *Virtual) { v.CheckTimeout, v.NegotiateTimeout = 7*time.Second, 7*time.Second }},
		{"checkcount=3", func(v *Virtual) { v.CheckCount = 3 }},
		{"failurecount=3", func(v *Virtual) { v.FailureCount = 3 }},
		{"checkinterval=2", func(v *Virtual) {}}, // ignored without fork=yes
		{"checkport=8080", func(v *Virtual) {
			v.CheckPort = 8080
			v.Reals[0].CheckPort = 8080
			v.Reals[0].URL = "http://192.0.2.20:8080/"
		}},
		{`request="status"`, func(v *Virtual) {
			v.Request = "/status"
			v.Reals[0].Request = "/status"
			v.Reals[0].URL = "http://192.0.2.20:80/status"
		}},
		{`request="/a "b" c"`, func(v *Virtual) {
			v.Request = `/a "b" c`
			v.Reals[0].Request = v.Request
			v.Reals[0].URL = `http://192.0.2.20:80/a "b" c`
		}},
		{`receive="ok"`, func(v *Virtual) { v.Receive = "ok"; v.Reals[0].Receive = "ok" }},
		{`receive="ok" trailing`, func(v *Virtual) { v.Receive = "ok"; v.Reals[0].Receive = "ok" }},
		{"httpmethod=head", func(v *Virtual) { v.HTTPMethod = "HEAD" }},
		{`virtualhost="www.a.com"`, func(v *Virtual) { v.VirtualHost = "www.a.com" }},
		{"virtualhost=www.a.com", func(v *Virtual) { v.VirtualHost = "www.a.com" }},
		{`login="u"`, func(v *Virtual) { v.Login = "u" }},
		{`passwd="p"`, func(v *Virtual) { v.Passwd = "p" }},
		{`database="d"`, func(v *Virtual) { v.Database = "d" }},
		{`secret="s"`, func(v *Virtual) { v.Secret = "s" }},
		{`load="cpu idle"`, func(v *Virtual) { v.Load = "cpu" }},
		{"scheduler=wlc", func(v *Virtual) { v.Scheduler = "wlc" }},
		{"scheduler=Xsed", func(v *Virtual) { v.Scheduler = "sed" }},
		{"persistent=600", func(v *Virtual) { v.Persistent, v.PersistentTimeout = true, 600*time.Second }},
		{"persistent=0", func(v *Virtual) { v.Persistent = true }},
		{"netmask=255.255.255.0", func(v *Virtual) { v.PersistenceBits = 24 }},
		{"netmask=0.0.0.0", func(v *Virtual) { v.PersistenceBits = 0 }},
		{"schedflags=sh-fallback,sh-port", func(v *Virtual) { v.SchedFlags = "sh-fallback,sh-port" }},
		{"protocol=udp", func(v *Virtual) { v.Protocol = UDP }},
		{"protocol=tcp", func(v *Virtual) {}},
		{"ops=yes", func(v *Virtual) { v.OPS = true }},
		{"service=none", func(v *Virtual) { v.Service = ServiceNone; v.Reals[0].URL = "none://192.0.2.20:80/" }},
		{"service=https", func(v *Virtual) { v.Service = ServiceHTTPS; v.Reals[0].URL = "https://192.0.2.20:80/" }},
		{"service=ftp", func(v *Virtual) {
			v.Service, v.Login, v.Passwd = ServiceFTP, "anonymous", "ldirectord@director1"
			v.Reals[0].URL = "ftp://192.0.2.20:80/"
		}},
		{"service=sip", func(v *Virtual) {
			v.Service, v.Login = ServiceSIP, "ldirectord@director1"
			v.Reals[0].URL = "sip://192.0.2.20:80/"
		}},
		{"service=http_proxy", func(v *Virtual) { v.Service = ServiceHTTPProxy; v.Reals[0].URL = "" }},
		{"fallback=192.0.2.250", func(v *Virtual) {
			v.Fallback = &Fallback{Addr: addr("192.0.2.250"), Port: 80, Method: MethodGate, Weight: 1}
		}},
		{"fallback=192.0.2.250:8080 masq", func(v *Virtual) {
			v.Fallback = &Fallback{Addr: addr("192.0.2.250"), Port: 8080, Method: MethodMasq, Weight: 1}
		}},
		{"fallback=www.example.com:https", func(v *Virtual) {
			v.Fallback = &Fallback{Addr: addr("192.0.2.80"), Port: 443, Method: MethodGate, Weight: 1}
		}},
		{`fallbackcommand="/bin/fb x"`, func(v *Virtual) { v.FallbackCommand = "/bin/fb x" }},
		{"quiescent=yes", func(v *Virtual) { v.Quiescent = true }},
		{"emailalert=w@example.com", func(v *Virtual) { v.EmailAlert = "w@example.com" }},
		{"emailalertfreq=30", func(v *Virtual) { v.EmailAlertFreq = 30 * time.Second }},
		{"emailalertstatus=stopping", func(v *Virtual) { v.EmailAlertStatus = AlertStopping }},
		{`monitorfile="/tmp/m.log"`, func(v *Virtual) { v.MonitorFile = "/tmp/m.log" }},
		{"cleanstop=no", func(v *Virtual) { v.CleanStop = false }},
		{"smtp=192.0.2.25", func(v *Virtual) { v.SMTP = "192.0.2.25" }},
		{"servicename=web front", func(v *Virtual) { v.ServiceName = "web front" }},
		{"comment=call ops", func(v *Virtual) { v.Comment = "call ops" }},
		{"comment=call ops # not part of it", func(v *Virtual) { v.Comment = "call ops " }},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cfg := mustParse(t, baseVirtual+"    "+tt.line+"\n")
			want := defaultVirtual()
			tt.want(&want)
			if len(cfg.Virtuals) != 1 {
				t.Fatalf("got %d virtuals", len(cfg.Virtuals))
			}
			if d := cmp.Diff(want, cfg.Virtuals[0], cmpOpts); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestLoginBeforeService(t *testing.T) {
	// The FTP defaults only fill what is still empty when service= is read.
	cfg := mustParse(t, baseVirtual+"    login=\"bob\"\n    service=ftp\n")
	if v := cfg.Virtuals[0]; v.Login != "bob" || v.Passwd != "ldirectord@director1" {
		t.Errorf("login, passwd = %q, %q", v.Login, v.Passwd)
	}
	// A service guessed from port 21 sets no login at all.
	cfg = mustParse(t, "virtual=192.0.2.10:21\n    real=192.0.2.20:21 gate\n")
	if v := cfg.Virtuals[0]; v.Service != ServiceFTP || v.Login != "" || v.Passwd != "" {
		t.Errorf("service, login, passwd = %q, %q, %q", v.Service, v.Login, v.Passwd)
	}
}

func TestTimeoutFallbacks(t *testing.T) {
	tests := []struct {
		global, virtual string
		check, negot    time.Duration
	}{
		{"", "", 5 * time.Second, 30 * time.Second},
		{"checktimeout=3\n", "", 3 * time.Second, 3 * time.Second},
		{"negotiatetimeout=40\n", "", 40 * time.Second, 40 * time.Second},
		{"checktimeout=3\nnegotiatetimeout=40\n", "", 3 * time.Second, 40 * time.Second},
		{"checktimeout=3\nnegotiatetimeout=40\n", "    checktimeout=9\n", 9 * time.Second, 9 * time.Second},
		{"checktimeout=3\nnegotiatetimeout=40\n", "    negotiatetimeout=9\n", 9 * time.Second, 9 * time.Second},
		{"negotiatetimeout=40\n", "    checktimeout=2\n", 2 * time.Second, 2 * time.Second},
		{"", "    checktimeout=2\n    negotiatetimeout=8\n", 2 * time.Second, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.global+"|"+tt.virtual, "\n", ";"), func(t *testing.T) {
			// Globals after the block count as much as globals before it.
			for _, src := range []string{tt.global + baseVirtual + tt.virtual, baseVirtual + tt.virtual + tt.global} {
				v := mustParse(t, src).Virtuals[0]
				if v.CheckTimeout != tt.check || v.NegotiateTimeout != tt.negot {
					t.Errorf("%q: checktimeout %v negotiatetimeout %v, want %v %v", src, v.CheckTimeout, v.NegotiateTimeout, tt.check, tt.negot)
				}
			}
		})
	}
}

func TestGlobalOverrides(t *testing.T) {
	src := "quiescent=yes\ncleanstop=no\nemailalert=g@example.com\nemailalertfreq=60\nemailalertstatus=running\nsmtp=g.example.com\nfallbackcommand=/bin/gfb\nfailurecount=3\ncheckcount=2\ncheckinterval=4\n" +
		baseVirtual + "virtual=192.0.2.11:80\n    real=192.0.2.20:80 gate\n    quiescent=no\n    cleanstop=yes\n    emailalert=v@example.com\n    emailalertfreq=0\n    emailalertstatus=none\n    smtp=v.example.com\n    fallbackcommand=/bin/vfb\n    failurecount=1\n    checkcount=1\n    checkinterval=1\n"
	cfg := mustParse(t, src)
	g, o := cfg.Virtuals[0], cfg.Virtuals[1]
	if !g.Quiescent || g.CleanStop || g.EmailAlert != "g@example.com" || g.EmailAlertFreq != time.Minute ||
		g.EmailAlertStatus != AlertRunning || g.SMTP != "g.example.com" || g.FallbackCommand != "/bin/gfb" ||
		g.FailureCount != 3 || g.CheckCount != 2 || g.CheckInterval != 4*time.Second {
		t.Errorf("global values not inherited: %+v", g)
	}
	if o.Quiescent || !o.CleanStop || o.EmailAlert != "v@example.com" || o.EmailAlertFreq != 0 ||
		o.EmailAlertStatus != AlertNone || o.SMTP != "v.example.com" || o.FallbackCommand != "/bin/vfb" ||
		o.FailureCount != 1 || o.CheckCount != 1 {
		t.Errorf("virtual overrides not applied: %+v", o)
	}
	// checkinterval in a block is honoured only with fork=yes.
	if o.CheckInterval != 4*time.Second {
		t.Errorf("checkinterval without fork = %v, want the global 4s", o.CheckInterval)
	}
	if !hasWarning(cfg, "ignored when fork = no") {
		t.Errorf("no warning for the ignored checkinterval: %v", cfg.Warnings)
	}
	cfg = mustParse(t, "fork=yes\n"+src)
	if o := cfg.Virtuals[1]; o.CheckInterval != time.Second {
		t.Errorf("checkinterval with fork = %v, want 1s", o.CheckInterval)
	}
}

func hasWarning(cfg *Config, sub string) bool {
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Msg, sub) {
			return true
		}
	}
	return false
}

func TestGlobalFallbackApplies(t *testing.T) {
	cfg := mustParse(t, "fallback=192.0.2.250\nfallback6=[2001:db8::250]:8080 masq\n"+
		baseVirtual+
		"virtual=192.0.2.10:53\n    real=192.0.2.20:53 gate\n"+
		"virtual6=[2001:db8::10]:443\n    real6=[2001:db8::20]:443 gate\n"+
		"virtual=5\n    real=192.0.2.20 gate\n"+
		"virtual=192.0.2.12:80\n    real=192.0.2.20:80 gate\n    fallback=192.0.2.251:81\n")
	want := []*Fallback{
		{Addr: addr("192.0.2.250"), Port: 80, Method: MethodGate, Weight: 1},
		{Addr: addr("192.0.2.250"), Port: 53, Method: MethodGate, Weight: 1},
		{Addr: addr("2001:db8::250"), Port: 8080, Method: MethodMasq, Weight: 1},
		nil, // firewall marks get no global fallback
		{Addr: addr("192.0.2.251"), Port: 81, Method: MethodGate, Weight: 1},
	}
	for i, v := range cfg.Virtuals {
		if d := cmp.Diff(want[i], v.Fallback, cmpOpts); d != "" {
			t.Errorf("virtual %d (line %d) fallback (-want +got):\n%s", i, v.Line, d)
		}
	}
}

func TestVirtualForms(t *testing.T) {
	tests := []struct {
		line     string
		addr     netip.Addr
		port     uint16
		fwm      uint32
		proto    Protocol
		service  Service
		ipv6     bool
		warnFWM  bool
		realLine string
	}{
		{line: "virtual=192.0.2.10:80", addr: addr("192.0.2.10"), port: 80, proto: TCP, service: ServiceHTTP},
		{line: "virtual = 192.0.2.10:443", addr: addr("192.0.2.10"), port: 443, proto: TCP, service: ServiceHTTPS},
		{line: "virtual=192.0.2.10:53", addr: addr("192.0.2.10"), port: 53, proto: UDP, service: ServiceDNS},
		{line: "virtual=192.0.2.10:domain", addr: addr("192.0.2.10"), port: 53, proto: UDP, service: ServiceDNS},
		{line: "virtual=192.0.2.10:http", addr: addr("192.0.2.10"), port: 80, proto: TCP, service: ServiceHTTP},
		{line: "virtual=192.0.2.10:080", addr: addr("192.0.2.10"), port: 80, proto: TCP, service: ServiceNone},
		{line: "virtual=192.0.2.10:8080", addr: addr("192.0.2.10"), port: 8080, proto: TCP, service: ServiceNone},
		{line: "virtual=192.0.2.10:3306", addr: addr("192.0.2.10"), port: 3306, proto: TCP, service: ServiceMySQL},
		{line: "virtual=www.example.com:80", addr: addr("192.0.2.80"), port: 80, proto: TCP, service: ServiceHTTP},
		{line: "virtual=127.1:80", addr: addr("127.0.0.1"), port: 80, proto: TCP, service: ServiceHTTP},
		{line: "virtual=42", fwm: 42, proto: FWM, service: ServiceNone, realLine: "real=192.0.2.20 gate"},
		{line: "virtual=192.0.2.10", fwm: 192, proto: FWM, service: ServiceNone, warnFWM: true, realLine: "real=192.0.2.20 gate"},
		{line: "virtual6=[2001:db8::10]:80", addr: addr("2001:db8::10"), port: 80, proto: TCP, service: ServiceHTTP, ipv6: true, realLine: "real6=[2001:db8::20]:80 gate"},
		{line: "virtual6=v6.example.com:80", addr: addr("2001:db8::80"), port: 80, proto: TCP, service: ServiceHTTP, ipv6: true, realLine: "real6=[2001:db8::20]:80 gate"},
		{line: "virtual6=7", fwm: 7, proto: FWM, service: ServiceNone, ipv6: true, realLine: "real6=[2001:db8::20] gate"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			rl := tt.realLine
			if rl == "" {
				rl = "real=192.0.2.20 gate"
			}
			cfg := mustParse(t, tt.line+"\n    "+rl+"\n")
			v := cfg.Virtuals[0]
			if v.Addr != tt.addr || v.Port != tt.port || v.FWMark != tt.fwm || v.Protocol != tt.proto || v.Service != tt.service || v.IPv6 != tt.ipv6 {
				t.Errorf("got addr %v port %d fwm %d proto %v service %v ipv6 %v", v.Addr, v.Port, v.FWMark, v.Protocol, v.Service, v.IPv6)
			}
			if got := hasWarning(cfg, "firewall mark"); got != tt.warnFWM {
				t.Errorf("firewall-mark warning = %v, want %v (%v)", got, tt.warnFWM, cfg.Warnings)
			}
			if v.PersistenceBits != map[bool]int{false: 32, true: 128}[tt.ipv6] {
				t.Errorf("persistence bits %d", v.PersistenceBits)
			}
		})
	}
}

func TestRealLines(t *testing.T) {
	r := func(a string, port uint16, m Method, w int) Real {
		return Real{Line: 2, Addr: addr(a), Port: port, Method: m, Weight: w, Request: "/", CheckPort: port, URL: fmt.Sprintf("http://%s:%d/", a, port)}
	}
	tests := []struct {
		value string
		want  []Real
	}{
		{"192.0.2.20:80 gate", []Real{r("192.0.2.20", 80, MethodGate, 1)}},
		{"192.0.2.20:80 masq 3", []Real{r("192.0.2.20", 80, MethodMasq, 3)}},
		{"192.0.2.20:80 ipip 0", []Real{r("192.0.2.20", 80, MethodIPIP, 0)}},
		{"192.0.2.20:www gate", []Real{r("192.0.2.20", 80, MethodGate, 1)}},
		{"192.0.2.20:onlyudp gate", []Real{func() Real {
			x := r("192.0.2.20", 999, MethodGate, 1)
			return x
		}()}},
		{"192.0.2.20 gate", []Real{func() Real {
			// No port: the service's well-known port is checked.
			x := r("192.0.2.20", 0, MethodGate, 1)
			x.CheckPort, x.URL = 80, "http://192.0.2.20:80/"
			return x
		}()}},
		{"192.0.2.20->192.0.2.22:80 gate 2", []Real{r("192.0.2.20", 80, MethodGate, 2), r("192.0.2.21", 80, MethodGate, 2), r("192.0.2.22", 80, MethodGate, 2)}},
		{"192.0.2.255->192.0.3.0:80 gate", []Real{r("192.0.2.255", 80, MethodGate, 1), r("192.0.3.0", 80, MethodGate, 1)}},
		{`192.0.2.20:80 gate 2 "health", "up"`, []Real{func() Real {
			x := r("192.0.2.20", 80, MethodGate, 2)
			x.Request, x.Receive, x.URL = "/health", "up", "http://192.0.2.20:80/health"
			return x
		}()}},
		{`192.0.2.20:80 gate "http://192.0.2.99/x", "up"`, []Real{func() Real {
			x := r("192.0.2.20", 80, MethodGate, 1)
			x.Request, x.Receive, x.URL = "/http://192.0.2.99/x", "up", "http://192.0.2.99/x"
			return x
		}()}},
		{`192.0.2.20:80 gate "a" "b"`, []Real{func() Real {
			x := r("192.0.2.20", 80, MethodGate, 1)
			x.Request, x.Receive, x.URL = "/a", "b", "http://192.0.2.20:80/a"
			return x
		}()}},
		{"192.0.2.20:80 gate 5 l:10 u:200", []Real{func() Real {
			x := r("192.0.2.20", 80, MethodGate, 5)
			x.LowerThreshold, x.UpperThreshold = 10, 200
			return x
		}()}},
		{"192.0.2.20:80 gate u:200", []Real{func() Real {
			x := r("192.0.2.20", 80, MethodGate, 1)
			x.UpperThreshold = 200
			return x
		}()}},
		{`192.0.2.20:80 gate 2 "/health", "up" l:5 junk`, []Real{func() Real {
			// ldirectord drops the receive string and the rest of the line
			// when the request starts with "/", and checks the virtual's URL.
			x := r("192.0.2.20", 80, MethodGate, 2)
			x.Request = "/health"
			return x
		}()}},
		{"192.0.2.20:80 gate junk 7", []Real{r("192.0.2.20", 80, MethodGate, 7)}},
		{"192.0.2.20:80 -gate", []Real{r("192.0.2.20", 80, MethodGate, 1)}},
		{"www.example.com:80 gate", []Real{r("192.0.2.80", 80, MethodGate, 1)}},
		{"192.0.2.20:80 gate   ", []Real{r("192.0.2.20", 80, MethodGate, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			cfg := mustParse(t, "virtual=192.0.2.10:80\n    real="+tt.value+"\n")
			if d := cmp.Diff(tt.want, cfg.Virtuals[0].Reals, cmpOpts); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestRangeDigitBoundaryWarning(t *testing.T) {
	cfg := mustParse(t, "virtual=192.0.2.10:80\n    real=5.245.224.254->5.245.225.1:80 gate\n")
	if len(cfg.Virtuals[0].Reals) != 4 || !hasWarning(cfg, "crosses a decimal-digit boundary") {
		t.Errorf("reals %d, warnings %v", len(cfg.Virtuals[0].Reals), cfg.Warnings)
	}
	cfg = mustParse(t, "virtual=192.0.2.10:80\n    real=192.0.2.1->192.0.2.9:80 gate\n")
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings %v", cfg.Warnings)
	}
}

func TestRealRequestSlashWarning(t *testing.T) {
	cfg := mustParse(t, baseVirtual+"    real=192.0.2.21:80 gate \"/health\", \"up\"\n    receive=\"v\"\n")
	r := cfg.Virtuals[0].Reals[1]
	if r.Request != "/health" || r.Receive != "v" || r.URL != "http://192.0.2.21:80/" || !hasWarning(cfg, `ignores the receive string`) {
		t.Errorf("real %+v, warnings %v", r, cfg.Warnings)
	}
}

func TestCheckPortRules(t *testing.T) {
	// checkport wins; then the real's own port; then the service's port,
	// not the virtual's (ldirectord's ld_checkport).
	cfg := mustParse(t, "virtual=192.0.2.10:8080\n    real=192.0.2.20 gate\n    real=192.0.2.21:81 gate\n    service=http\n"+
		"virtual=192.0.2.10:8081\n    real=192.0.2.20 gate\n"+
		"virtual=192.0.2.10:8082\n    real=192.0.2.20 gate\n    checkport=9000\n")
	got := []uint16{cfg.Virtuals[0].Reals[0].CheckPort, cfg.Virtuals[0].Reals[1].CheckPort, cfg.Virtuals[1].Reals[0].CheckPort, cfg.Virtuals[2].Reals[0].CheckPort}
	if d := cmp.Diff([]uint16{80, 81, 0, 9000}, got); d != "" {
		t.Errorf("check ports (-want +got):\n%s", d)
	}
	if u := cfg.Virtuals[1].Reals[0].URL; u != "none://192.0.2.20:/" {
		t.Errorf("URL with no check port = %q", u)
	}
}

func TestIPv6Reals(t *testing.T) {
	cfg := mustParse(t, "virtual6=[2001:db8::10]:80\n    real6=[2001:db8::20]:80 gate\n    real6=v6.example.com:80 masq\n    fallback6=[2001:db8::250]\n")
	v := cfg.Virtuals[0]
	if v.Reals[0].Addr != addr("2001:db8::20") || v.Reals[1].Addr != addr("2001:db8::80") || v.Reals[1].Method != MethodMasq {
		t.Errorf("reals %+v", v.Reals)
	}
	if v.Reals[0].URL != "http://[2001:db8::20]:80/" {
		t.Errorf("URL %q", v.Reals[0].URL)
	}
	if v.Fallback == nil || v.Fallback.Addr != addr("2001:db8::250") || v.Fallback.Port != 80 {
		t.Errorf("fallback %+v", v.Fallback)
	}
}

func TestBlockStructure(t *testing.T) {
	cfg := mustParse(t, "# top\nvirtual=192.0.2.10:80\n\treal=192.0.2.20:80 gate\n  \treal=192.0.2.21:80 gate\n# a comment at column one does not end the block\n    real=192.0.2.22:80 gate\nvirtual=192.0.2.11:80\n    real=192.0.2.20:80 gate\n\nquiescent=yes\n")
	if len(cfg.Virtuals) != 2 || len(cfg.Virtuals[0].Reals) != 3 || len(cfg.Virtuals[1].Reals) != 1 {
		t.Fatalf("blocks: %+v", cfg.Virtuals)
	}
	if !cfg.Virtuals[0].Quiescent || cfg.Virtuals[1].Reals[0].Line != 8 {
		t.Errorf("quiescent %v, line %d", cfg.Virtuals[0].Quiescent, cfg.Virtuals[1].Reals[0].Line)
	}
	// A virtual may have no real servers at all, but it must not be the
	// last line of the file.
	cfg = mustParse(t, "virtual=192.0.2.10:80\n# the end\n")
	if len(cfg.Virtuals) != 1 || len(cfg.Virtuals[0].Reals) != 0 {
		t.Errorf("empty block: %+v", cfg.Virtuals)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		src  string
		want []string // one per error, in order
	}{
		{"quiescent=yes # x\n", []string{`lnoded.cf:1: quiescent: expected yes or no, got "yes # x"`}},
		{"bogus=1\n", []string{`lnoded.cf:1: unknown directive "bogus=1"`}},
		{"  quiescent=yes\n", []string{`lnoded.cf:1: indented line outside a virtual block`}},
		{"virtual=192.0.2.10:80\n\n    real=192.0.2.20:80 gate\n", []string{`lnoded.cf:3: indented line outside a virtual block`}},
		{"virtual=192.0.2.10:80\n    real=192.0.2.20:80\n", []string{`lnoded.cf:2: real: expected ADDRESS[->END][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"] [l:LOWER] [u:UPPER], got "192.0.2.20:80"`}},
		{"virtual=192.0.2.10:80\n    real=192.0.2.20:80 gate 1 x\n", []string{`lnoded.cf:2: real: expected ADDRESS[->END][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"] [l:LOWER] [u:UPPER]: unexpected " x"`}},
		{"virtual=192.0.2.10:80\n    real=192.0.2.20:80 drop\n", []string{`lnoded.cf:2: real: forwarding method must be gate, masq or ipip, got "drop"`}},
		{"virtual=192.0.2.10:80\n    real=192.0.2.20:99999 gate\n", []string{`lnoded.cf:2: real: unknown port or service name "99999"`}},
		{"virtual=192.0.2.10:80\n    real=nosuch.example.com:80 gate\n", []string{`lnoded.cf:2: real: cannot resolve real server "nosuch.example.com": lookup nosuch.example.com: no such host`}},
		{"virtual=192.0.2.10:80\n    real=192.0.0.0->192.1.0.0:80 gate\n", []string{`lnoded.cf:2: real: range 192.0.0.0->192.1.0.0 holds more than 65536 addresses`}},
		{"virtual=192.0.2.10:80\n    real6=[2001:db8::1]:80 gate\n", []string{`lnoded.cf:2: real6: cannot specify "real6" in this virtual block, use "real"`}},
		{"virtual=192.0.2.10:80\n", []string{`lnoded.cf:1: virtual: a virtual service needs at least one line after it`}},
		{"virtual=[2001:db8::1]:80\n", []string{`lnoded.cf:1: virtual: cannot specify an IPv6 address here, use virtual6`}},
		{"virtual=192.0.2.10:nosuch\n# end\n", []string{`lnoded.cf:1: virtual: unknown port or tcp service name "nosuch"`}},
		{"virtual=192.0.2.10:80\nvirtual=192.0.2.10:80\n\n", []string{`lnoded.cf:2: virtual: duplicate virtual service (also at line 1)`}},
		{"virtual=99999999999\n", []string{`lnoded.cf:1: virtual: firewall mark must be between 1 and 4294967295`}},
		{"virtual=192.0.2.10:80\n    checkport=0\n", []string{`lnoded.cf:2: checkport: expected a port from 1 to 65535, got "0"`}},
		{"virtual=192.0.2.10:80\n    request=index.html\n", []string{`lnoded.cf:2: request: expected request="VALUE" (double quotes required)`}},
		{"virtual=192.0.2.10:80\n    request=\"\"\n", []string{`lnoded.cf:2: request: expected request="NON-EMPTY", got an empty string`}},
		{"virtual=192.0.2.10:80\n    protocol=fwm\n", []string{`lnoded.cf:2: protocol: must be tcp or udp for an ADDRESS:PORT virtual service, got "fwm"`}},
		{"virtual=192.0.2.10:80\n    netmask=255.0.255.0\n", []string{`lnoded.cf:2: netmask: "255.0.255.0" is not a contiguous IPv4 netmask`}},
		{"virtual=192.0.2.10:80\n    netmask=255.255.300.0\n", []string{`lnoded.cf:2: netmask: "255.255.300.0" is not a netmask: an octet is above 255`}},
		{"virtual=192.0.2.10:80\n    persistent=99999999999\n", []string{`lnoded.cf:2: persistent: timeout 99999999999 is larger than 2147483647`}},
		{"virtual6=[2001:db8::1]:80\n    fallback6=[fe80::1%eth0]:80\n", []string{`lnoded.cf:2: fallback6: expected ADDRESS[:PORT] [gate|masq|ipip], cannot resolve "[fe80::1%eth0]": "fe80::1%eth0": an interface zone is not allowed`}},
		{"virtual=192.0.2.10:80\n    fallback=192.0.2.9:80 drop\n", []string{`lnoded.cf:2: fallback: forwarding method must be gate, masq or ipip, got "drop"`}},
		{"checktimeout=0\n", []string{`lnoded.cf:1: checktimeout: expected a number between 1 and 2147483647, got "0"`}},
		{"checktimeout=00\n", []string{`lnoded.cf:1: checktimeout: expected a number between 1 and 2147483647, got "00"`}},
		{"connecttimeout=3\n", []string{`lnoded.cf:1: connecttimeout: deprecated in favour of negotiatetimeout`}},
		{"timeout=3\n", []string{`lnoded.cf:1: timeout: deprecated in favour of checktimeout and negotiatetimeout`}},
		{"logfile=/x\n", []string{`lnoded.cf:1: logfile: expected logfile="VALUE" (double quotes required)`}},
		{"logfile=\"nofacility\"\n", []string{`lnoded.cf:1: logfile: expected "/ABSOLUTE/PATH" or a syslog facility, got "nofacility"`}},
		{"emailalertstatus=all,none\n", []string{`lnoded.cf:1: emailalertstatus: "all" given together with none`}},
		{"supervised=1\n", []string{`lnoded.cf:1: supervised: expected yes or no, got "supervised=1"`}},
		// Every error is reported, not only the first.
		{"quiescent=maybe\nvirtual=192.0.2.10:80\n    real=192.0.2.20:80 drop\n    checkport=0\n    bogus\nfrobnicate\n", []string{
			`lnoded.cf:1: quiescent:`, `lnoded.cf:3: real: forwarding method`, `lnoded.cf:4: checkport:`, `lnoded.cf:5: unknown directive in a virtual block: "bogus"`, `lnoded.cf:6: unknown directive "frobnicate"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			cfg, err := Parse(context.Background(), "lnoded.cf", []byte(tt.src), testOptions())
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if cfg != nil {
				t.Errorf("a config came back with the error")
			}
			l, ok := AsErrorList(err)
			if !ok {
				t.Fatalf("not an ErrorList: %T", err)
			}
			if len(l) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(l), len(tt.want), err)
			}
			for i, e := range l {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, e, tt.want[i])
				}
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	sentinel := errors.New("resolver down")
	opts := testOptions()
	opts.LookupHost = func(context.Context, string, bool) (netip.Addr, error) { return netip.Addr{}, sentinel }
	_, err := Parse(context.Background(), "lnoded.cf", []byte("virtual=www.example.com:80\n\n"), opts)
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, sentinel) = false", err)
	}
}

func TestLookupHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := testOptions()
	opts.LookupHost = func(ctx context.Context, host string, _ bool) (netip.Addr, error) {
		<-ctx.Done()
		return netip.Addr{}, ctx.Err()
	}
	_, err := Parse(ctx, "lnoded.cf", []byte("virtual=www.example.com:80\n\n"), opts)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestInetAton(t *testing.T) {
	tests := map[string]string{
		"192.0.2.1": "192.0.2.1", "127.1": "127.0.0.1", "10": "0.0.0.10", "010.0.0.1": "8.0.0.1",
		"0x7f.1": "127.0.0.1", "1.2.65535": "1.2.255.255", "4294967295": "255.255.255.255",
		"256.1.1.1": "", "1.2.3.4.5": "", "08.1.1.1": "", "1..2": "", "": "", "1.2.3.256": "", "a.b": "",
	}
	for in, want := range tests {
		a, ok := inetAton(in)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != want {
			t.Errorf("inetAton(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServicesDB(t *testing.T) {
	db := parseServices([]byte(testServices))
	for _, tt := range []struct {
		name, proto string
		port        uint16
		ok          bool
	}{
		{"http", "tcp", 80, true}, {"www", "tcp", 80, true}, {"http", "udp", 0, false},
		{"http", "", 80, true}, {"onlyudp", "", 999, true}, {"HTTP", "tcp", 0, false}, {"nosuch", "", 0, false},
	} {
		if p, ok := db.lookup(tt.name, tt.proto); p != tt.port || ok != tt.ok {
			t.Errorf("lookup(%q, %q) = %d %v", tt.name, tt.proto, p, ok)
		}
	}
}

// TestSeed003 parses the lnoded.cf of seed 003 (the LVS-DR + Heartbeat +
// ldirectord walk-through) and checks the whole resulting model.
func TestSeed003(t *testing.T) {
	cfg, err := ParseFile(context.Background(), filepath.Join(ldirectordCorpus, "accept-seed003.cf"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	real := func(a string) Real {
		return Real{Line: 0, Addr: addr(a), Port: 80, Method: MethodGate, Weight: 1, Request: "/.test.html", Receive: "ok", CheckPort: 80, URL: "http://" + a + ":80/.test.html"}
	}
	r1, r2 := real("192.0.2.200"), real("192.0.2.201")
	r1.Line, r2.Line = 7, 8
	want := []Virtual{{
		Line: 6, Addr: addr("192.0.2.101"), Port: 80, Protocol: TCP, Scheduler: "rr", PersistenceBits: 32,
		CheckType: CheckNegotiate, Service: ServiceHTTP, CheckCommand: "/bin/true",
		Request: "/.test.html", Receive: "ok", HTTPMethod: "GET", VirtualHost: "www.a.com",
		CheckInterval: 10 * time.Second, CheckTimeout: 5 * time.Second, NegotiateTimeout: 30 * time.Second,
		CheckCount: 1, FailureCount: 1, Quiescent: true, CleanStop: true, EmailAlertStatus: AlertAll,
		Reals: []Real{r1, r2},
	}}
	if d := cmp.Diff(want, cfg.Virtuals, cmpOpts); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !cfg.Global.Quiescent || cfg.File != "accept-seed003.cf" {
		t.Errorf("global %+v", cfg.Global)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(context.Background(), filepath.Join(t.TempDir(), "nope.cf"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want ErrNotExist", err)
	}
}

func TestDiagnosticString(t *testing.T) {
	if s := (Diagnostic{File: "a.cf", Line: 3, Msg: "m"}).String(); s != "a.cf:3: m" {
		t.Errorf("%q", s)
	}
	if s := (Diagnostic{File: "a.cf", Msg: "m"}).String(); s != "a.cf: m" {
		t.Errorf("%q", s)
	}
}

func TestStringers(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{MethodGate.String(), "gate"}, {MethodMasq.String(), "masq"}, {MethodIPIP.String(), "ipip"},
		{TCP.String(), "tcp"}, {UDP.String(), "udp"}, {FWM.String(), "fwm"},
		{CheckCombined.String(), "combined"}, {CheckExternalPerl.String(), "external-perl"},
		{AlertAll.String(), "all"}, {AlertNone.String(), "none"}, {(AlertStarting | AlertStopping).String(), "starting,stopping"},
		{ServiceForPort(443).String(), "https"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if ServiceHTTPS.DefaultPort() != 443 || ServiceNone.DefaultPort() != 0 || ServiceForPort(8080) != ServiceNone {
		t.Error("service/port table")
	}
}

// TestDRPathCheck: directord's drpathcheck extension is read per virtual
// service, only where the DR-path probe can run, and not at all with
// NoExtensions (ldirectord's "unknown directive").
func TestDRPathCheck(t *testing.T) {
	parse := func(src string, o *Options) (*Config, error) {
		return Parse(context.Background(), "lnoded.cf", []byte(src), o)
	}
	const ok = "virtual=192.0.2.100:80\n\treal=192.0.2.11:80 gate\n\tdrpathcheck=yes\n\nvirtual=192.0.2.100:81\n\treal=192.0.2.11:81 gate\n"
	cfg, err := parse(ok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Virtuals[0].DRPathCheck || cfg.Virtuals[1].DRPathCheck {
		t.Errorf("DRPathCheck = %v, %v; want true, false", cfg.Virtuals[0].DRPathCheck, cfg.Virtuals[1].DRPathCheck)
	}
	_, err = parse(ok, &Options{NoExtensions: true})
	if l, isList := AsErrorList(err); !isList || len(l) != 1 || l[0].Line != 3 || !strings.Contains(l[0].Msg, "unknown directive") {
		t.Errorf("NoExtensions: %v; want line 3 unknown directive", err)
	}
	bad := map[string]struct {
		src  string
		line int
		msg  string
	}{
		"udp":     {"virtual=192.0.2.100:80\n\treal=192.0.2.11:80 gate\n\tprotocol=udp\n\tdrpathcheck=yes\n", 4, "only for TCP"},
		"fwmark":  {"virtual=7\n\treal=192.0.2.11:80 gate\n\tdrpathcheck=yes\n", 3, "only for TCP"},
		"ipv6":    {"virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11]:80 gate\n\tdrpathcheck=yes\n", 3, "only for IPv4"},
		"masq":    {"virtual=192.0.2.100:80\n\treal=192.0.2.11:80 masq\n\tdrpathcheck=yes\n", 2, "gate"},
		"not yes": {"virtual=192.0.2.100:80\n\treal=192.0.2.11:80 gate\n\tdrpathcheck=on\n", 3, "expected yes or no"},
	}
	for name, c := range bad {
		_, err := parse(c.src+"\n", nil)
		l, isList := AsErrorList(err)
		if !isList || len(l) == 0 || l[0].Line != c.line || !strings.Contains(l[0].Msg, c.msg) {
			t.Errorf("%s: %v; want line %d %q", name, err, c.line, c.msg)
		}
	}
}
