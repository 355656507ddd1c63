package config

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// randomEnv asks TestLdirectordRandom for that many random files (it is off
// by default: each file costs a quarter of a second of ldirectord).
const randomEnv = "LNODED_LDIRECTORD_RANDOM"

// TestLdirectordRandom composes random files from directive fragments and
// tricky values and checks that lnoded and ldirectord accept and reject the
// same ones. Files whose only reason for disagreeing is a documented
// difference are recognised by isKnownDifference. Run it with
// LNODED_LDIRECTORD_RANDOM=500 (and LNODED_LDIRECTORD_SEED=N to vary it).
func TestLdirectordRandom(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(randomEnv))
	if n <= 0 {
		t.Skipf("set %s=N to compare N random files with ldirectord", randomEnv)
	}
	if _, err := os.Stat(ldirectordPath); err != nil {
		t.Skipf("%s is absent (apt-get install ldirectord)", ldirectordPath)
	}
	seed, _ := strconv.ParseUint(os.Getenv("LNODED_LDIRECTORD_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 0x6c6e6f646564))
	dir := t.TempDir()
	disagree, accepted := 0, 0
	for i := range n {
		src := randomFile(rng)
		path := filepath.Join(dir, "r"+strconv.Itoa(i)+".cf")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		ldAccept, out := runLdirectord(t, path)
		_, err := ParseFile(context.Background(), path, nil)
		if ldAccept {
			accepted++
		}
		if (err == nil) == ldAccept || (ldAccept && isKnownDifference(err)) {
			continue
		}
		disagree++
		t.Errorf("file %d: lnoded accept=%v, ldirectord accept=%v\n--- file\n%s--- lnoded: %v\n--- ldirectord:\n%s", i, err == nil, ldAccept, src, err, out)
		if disagree > 10 {
			t.Fatal("too many disagreements")
		}
	}
	t.Logf("%d random files, %d accepted by ldirectord, %d disagreements", n, accepted, disagree)
}

// isKnownDifference recognises the rejections docs/lnoded-differences.md
// lists for files ldirectord accepts.
func isKnownDifference(err error) bool {
	l, ok := AsErrorList(err)
	if !ok {
		return false
	}
	for _, e := range l {
		m := e.Error()
		known := false
		for _, k := range []string{"between 1 and 2147483647", "is larger than", "not a contiguous", "is not a netmask",
			"firewall mark must be", "holds more than", "syslog facility", "zone"} {
			known = known || strings.Contains(m, k)
		}
		if !known {
			return false
		}
	}
	return true
}

var (
	randValues = []string{
		"", "0", "00", "1", "5", " 5", "5 ", "x5", "99999999999", "-3", "yes", "no", "yes ", "Yes",
		`"x"`, `""`, `"a b"`, `"a"b"`, "a#b", "\t", "none", "all", "starting,running", "all,none",
		"tcp", "udp", "fwm", "rr", "WRR", "GET", "head", "http", "https", "dns", "ftp", "sip", "gopher",
		"connect", "negotiate", "on", "off", "ping", "external-perl", "3", "255.255.255.0", "24",
		"255.0.255.0", "/tmp", "local0", "mail.example.com", "@x", "ops@example.com",
		"192.0.2.9", "192.0.2.9:80", "192.0.2.9:80 masq", "192.0.2.9 route", "[2001:db8::9]:80",
		"localhost", ":80", "192.0.2.9:http ipip", "a b c",
	}
	randGlobals = []string{
		"checktimeout", "negotiatetimeout", "checkinterval", "checkcount", "failurecount", "fallback",
		"fallback6", "fallbackcommand", "autoreload", "callback", "logfile", "execute", "fork",
		"supervised", "quiescent", "readdquiescent", "emailalert", "emailalertfreq", "emailalertstatus",
		"emailalertfrom", "cleanstop", "smtp", "maintenancedir", "timeout", "connecttimeout", "bogus",
	}
	randVirtualDirs = []string{
		"request", "receive", "checktype", "checkcommand", "checktimeout", "negotiatetimeout",
		"checkcount", "failurecount", "checkinterval", "checkport", "login", "passwd", "database",
		"secret", "load", "scheduler", "persistent", "schedflags", "netmask", "protocol", "ops",
		"service", "httpmethod", "virtualhost", "fallback", "fallback6", "fallbackcommand", "quiescent",
		"emailalert", "emailalertfreq", "emailalertstatus", "cleanstop", "smtp", "servicename",
		"comment", "bogus",
	}
	randVirtuals = []string{
		"192.0.2.10:80", "192.0.2.10:53", "192.0.2.10:http", "192.0.2.10:domain", "192.0.2.10:0",
		"192.0.2.10:99999", "192.0.2.10", "7", "0", "[2001:db8::10]:80", "localhost:80", "127.1:80",
		"192.0.2.10:nosuch", "x", "", "192.0.2.10:80 junk", "192.0.2.10:080",
	}
	randRealAddrs = []string{
		"192.0.2.20", "192.0.2.20:80", "192.0.2.20:http", "192.0.2.20:0", "192.0.2.20:70000",
		"192.0.2.20->192.0.2.22:80", "192.0.2.22->192.0.2.20", "[2001:db8::20]:80", "localhost:80",
		"10", "@192.0.2.20", "192.0.2.20:www", "192.0.2.20:nosuch",
	}
	randRealRests = []string{
		"", " ", " gate", " masq", " ipip", " route", " gate 2", " gate 0", " gate junk 5", " gate 1 x",
		` gate "a", "b"`, ` gate "a" "b"`, ` gate 3 "/x", "y" l:1 u:2`, " gate l:5", " gate u:5 l:1",
		" -gate", " gate2", " gate 99999999999", "\tgate",
	}
	randIndents = []string{"    ", "\t", "  \t", "   ", "        ", ""}
)

func pickOne(rng *rand.Rand, s []string) string { return s[rng.IntN(len(s))] }

func randomFile(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return randomFocused(rng)
	}
	var b strings.Builder
	lines := 1 + rng.IntN(7)
	inV6 := false
	for range lines {
		switch rng.IntN(6) {
		case 0:
			b.WriteString(pickOne(rng, randGlobals) + pickOne(rng, []string{"=", " = ", "="}) + pickOne(rng, randValues) + "\n")
		case 1:
			inV6 = rng.IntN(4) == 0
			d := "virtual"
			if inV6 {
				d = "virtual6"
			}
			b.WriteString(d + "=" + pickOne(rng, randVirtuals) + "\n")
		case 2, 3:
			d := "real"
			if inV6 != (rng.IntN(8) == 0) {
				d = "real6"
			}
			b.WriteString(pickOne(rng, randIndents) + d + "=" + pickOne(rng, randRealAddrs) + pickOne(rng, randRealRests) + "\n")
		case 4:
			b.WriteString(pickOne(rng, randIndents) + pickOne(rng, randVirtualDirs) + "=" + pickOne(rng, randValues) + "\n")
		default:
			b.WriteString(pickOne(rng, []string{"", "# c", "    # c", "     ", "\t# c"}) + "\n")
		}
	}
	return b.String()
}

// randomFocused is a good file with one or two random lines, so that the
// verdict is about those lines alone.
func randomFocused(rng *rand.Rand) string {
	v6 := rng.IntN(5) == 0
	head, real := "virtual=192.0.2.10:80\n", "    real=192.0.2.20:80 gate\n"
	if v6 {
		head, real = "virtual6=[2001:db8::10]:80\n", "    real6=[2001:db8::20]:80 gate\n"
	}
	var b strings.Builder
	b.WriteString(head + real)
	for range 1 + rng.IntN(2) {
		switch rng.IntN(4) {
		case 0:
			b.WriteString("checkinterval=5\n" + pickOne(rng, randGlobals) + "=" + pickOne(rng, randValues) + "\n" + head + real)
			head = "virtual=192.0.2.11:80\n"
			if v6 {
				head = "virtual6=[2001:db8::11]:80\n"
			}
		case 1:
			d := "real"
			if v6 {
				d = "real6"
			}
			b.WriteString("    " + d + "=" + pickOne(rng, randRealAddrs) + pickOne(rng, randRealRests) + "\n")
		default:
			d := pickOne(rng, randVirtualDirs)
			val := pickOne(rng, randValues)
			if own, ok := randOwnValues[d]; ok && rng.IntN(10) < 7 {
				val = pickOne(rng, own)
			}
			b.WriteString("    " + d + pickOne(rng, []string{"=", " = ", "= "}) + val + "\n")
		}
	}
	return b.String()
}

// randOwnValues are values close to what each virtual directive takes, so
// that more random files get past the first error.
var randOwnValues = map[string][]string{
	"request":          {`"/"`, `"index.html"`, `"a"b"`, `"/x y"`, `""`, `"http://192.0.2.1/"`, "/x"},
	"receive":          {`"ok"`, `".*"`, `""`, `"a" b`},
	"checktype":        {"connect", "negotiate", "on", "off", "ping", "external", "external-perl", "3", "0", "combined", "Connect", "connect x", "x-connect"},
	"checkcommand":     {`"/bin/true"`, "/bin/true", `""`, "", `"/bin/x" y`},
	"checktimeout":     {"1", "5", "0", "00", "x", "3s", "99999999999"},
	"negotiatetimeout": {"1", "30", "0", "00", "x"},
	"checkport":        {"1", "80", "65535", "65536", "0", "x80", "00080"},
	"scheduler":        {"rr", "wlc", "sh", "RR", "x1", "Wrr", "mh "},
	"persistent":       {"0", "300", "x", "30s", "99999999999"},
	"netmask":          {"255.255.255.0", "255.255.255.255", "0.0.0.0", "255.0.255.0", "24", "64", "128", "129", "0", "255.255.255.256"},
	"protocol":         {"tcp", "udp", "fwm", "TCP", "tcp6", " udp", "-udp"},
	"ops":              {"yes", "no", "Yes", "yes "},
	"service":          {"http", "https", "dns", "ftp", "sip", "none", "simpletcp", "http_proxy", "mysql", "HTTP", "http x", "gopher"},
	"httpmethod":       {"GET", "HEAD", "get", "head", "POST", "GET x"},
	"virtualhost":      {`"www.example.com"`, "www.example.com", `""`, "", `"a"b`},
	"fallback":         {"192.0.2.9", "192.0.2.9:80", "192.0.2.9:80 masq", "192.0.2.9 ipip", "192.0.2.9:http", "localhost", "", "192.0.2.9:80 route", "a b gate", ":80"},
	"fallback6":        {"[2001:db8::9]", "[2001:db8::9]:80", "[2001:db8::9]:80 masq", "2001:db8::9"},
	"fallbackcommand":  {`"/bin/fb"`, "/bin/fb", `""`, ""},
	"quiescent":        {"yes", "no", "1"},
	"emailalert":       {"a@example.com", `"a@example.com"`, `""`, ""},
	"emailalertfreq":   {"0", "60", "x", " 5", "5x"},
	"emailalertstatus": {"all", "none", "starting,stopping", "running, reloading", "all,none", "", ",all", "all,"},
	"cleanstop":        {"yes", "no", "maybe"},
	"smtp":             {"mail.example.com", "192.0.2.25:25", "@x", ""},
	"login":            {`"u"`, `""`, "u"},
	"passwd":           {`"p"`, `""`},
	"database":         {`"d"`, `""`},
	"secret":           {`"s"`, `""`},
	"load":             {`"cpu"`, `"-"`, `""`, `"a b"`},
	"schedflags":       {"sh-port", "", "a b"},
}
