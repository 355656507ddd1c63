package heartbeat_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/directord/directord/heartbeat/authkeys"
	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/media"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/wire"
)

const realHeartbeat = "/usr/libexec/heartbeat/heartbeat"

// TestLiveHeartbeat runs Debian's heartbeat 3.0.6 as "nodeA" in one
// network namespace and plays "nodeB" from another with this module's
// media, codec and message constructors: every datagram nodeA sends must
// verify, and nodeA must accept nodeB's keepalives ("Link nodeb:hb0 up").
func TestLiveHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real heartbeat daemon")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{realHeartbeat, "ip", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install heartbeat)", bin)
		}
	}
	const key = "live-test-key"
	nsA, nsB := fmt.Sprintf("ddlive-a-%d", os.Getpid()), fmt.Sprintf("ddlive-b-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", nsA).Run()
		exec.Command("ip", "netns", "del", nsB).Run()
	})
	ip("netns", "add", nsA)
	ip("netns", "add", nsB)
	ip("link", "add", "hb0", "netns", nsA, "type", "veth", "peer", "name", "hb0", "netns", nsB)
	ip("-n", nsA, "addr", "add", "198.51.100.1/24", "dev", "hb0")
	ip("-n", nsB, "addr", "add", "198.51.100.2/24", "dev", "hb0")
	for _, n := range []string{nsA, nsB} {
		ip("-n", n, "link", "set", "hb0", "up")
		ip("-n", n, "link", "set", "lo", "up")
	}

	// nodeA's private /etc/ha.d, /var/lib/heartbeat, /run and /var/log.
	dir := t.TempDir()
	for _, d := range []string{"etc", "lib", "run", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cp := exec.Command("sh", "-c", fmt.Sprintf("cp -a /etc/ha.d/. %[1]s/etc/ && cp -a /var/lib/heartbeat/. %[1]s/lib/ && (cp -a /run/heartbeat %[1]s/run/ || true)", dir))
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	hacfText := "logfile /var/log/ha-log\ndebugfile /var/log/ha-debug\nkeepalive 1\nwarntime 3\ndeadtime 5\ninitdead 10\n" +
		"udpport 694\nucast hb0 198.51.100.2\nauto_failback on\nnode nodeA\nnode nodeB\n"
	authText := "auth 1\n1 sha1 " + key + "\n"
	files := map[string]string{"ha.cf": hacfText, "authkeys": authText, "haresources": "nodeA 203.0.113.10\n"}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Our own parsers read the same files nodeB would use.
	cfg, err := hacf.Parse(strings.NewReader(strings.Replace(hacfText, "198.51.100.2", "198.51.100.1", 1)), "ha.cf")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := authkeys.Parse(strings.NewReader(authText), "authkeys")
	if err != nil {
		t.Fatal(err)
	}

	script := fmt.Sprintf(`hostname nodeA && mount --bind %[1]s/etc /etc/ha.d && mount --bind %[1]s/lib /var/lib/heartbeat &&
mount --bind %[1]s/run /run && mount --bind %[1]s/log /var/log && exec %[2]s -f`, dir, realHeartbeat)
	hb := exec.Command("ip", "netns", "exec", nsA, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--mount", "sh", "-c", script)
	var hbOut bytes.Buffer
	hb.Stdout, hb.Stderr = &hbOut, &hbOut
	if err := hb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hb.Process.Kill() // unshare --kill-child takes the namespace's processes with it
		hb.Wait()
	})

	m := openIn(t, nsB, cfg.Media[0])
	var uuid wire.UUID
	rand.Read(uuid[:])
	st := proto.NewStamper(proto.Identity{Name: "nodeB", UUID: uuid, Generation: uint64(time.Now().Unix()), TTL: cfg.HopFudge + len(cfg.Nodes)}, nil)
	send := func(msg *wire.Message) {
		t.Helper()
		if _, err := st.Stamp(msg); err != nil {
			t.Fatal(err)
		}
		pkt, err := ring.Seal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Send(pkt); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	buf := make([]byte, media.MaxDatagram)
	verified, types := 0, map[string]int{}
	nextKeepalive := time.Now()
	linkUp := false
	for ctx.Err() == nil && !(linkUp && verified >= 5) {
		if time.Now().After(nextKeepalive) {
			send(proto.Status(proto.StatusActive, uint64(cfg.DeadTime.Milliseconds())))
			nextKeepalive = time.Now().Add(cfg.Keepalive)
		}
		m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := m.ReadFrom(buf)
		if err == nil {
			msg, err := ring.Open(buf[:n])
			if err != nil {
				t.Fatalf("datagram from nodeA does not verify: %v\n%q", err, buf[:n])
			}
			if src, _ := msg.Get(wire.FieldSrc); src != "nodea" {
				t.Errorf("src = %q", src)
			}
			verified++
			types[msg.Type()]++
		}
		log, _ := os.ReadFile(filepath.Join(dir, "log", "ha-log"))
		linkUp = bytes.Contains(log, []byte("Link nodeb:hb0 up"))
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log", "ha-log"))
	if !linkUp {
		t.Errorf("nodeA never saw nodeB's link up; its log:\n%s\n%s", log, hbOut.String())
	}
	if verified < 5 || types["status"] == 0 {
		t.Errorf("verified %d datagrams from nodeA: %v", verified, types)
	}
	if bytes.Contains(log, []byte("authentication failed")) || bytes.Contains(log, []byte("authtoken does not match")) {
		t.Errorf("nodeA rejected our packets:\n%s", log)
	}
	t.Logf("verified %d datagrams from nodeA %v; nodeA logged:\n%s", verified, types, log)
}

// openIn opens m inside the named network namespace; the sockets stay
// there after the thread switches back.
func openIn(t *testing.T, name string, m hacf.Medium) *media.Medium {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	md, oerr := media.Open(context.Background(), m)
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	if oerr != nil {
		t.Fatal(oerr)
	}
	t.Cleanup(func() { md.Close() })
	return md
}
