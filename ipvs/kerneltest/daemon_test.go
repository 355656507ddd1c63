package kerneltest

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/directord/directord/ipvs"
)

// TestSyncDaemon starts, queries and stops the master and backup sync
// daemons, checked against ipvsadm -L --daemon.
func TestSyncDaemon(t *testing.T) {
	h := open(t)
	c := ctx(t)
	// The daemons need a multicast-capable interface with an address.
	ip(t, "link", "add", "ipvssync0", "type", "dummy")
	t.Cleanup(func() { ip(t, "link", "del", "ipvssync0") })
	ip(t, "addr", "add", "192.0.2.1/24", "dev", "ipvssync0")
	ip(t, "link", "set", "ipvssync0", "multicast", "on", "up")

	if ds, err := h.Daemons(c); err != nil || len(ds) != 0 {
		t.Fatalf("Daemons before start: %v %v", ds, err)
	}
	if err := h.StartDaemon(c, ipvs.Daemon{State: ipvs.DaemonMaster, Interface: "ipvssync0", SyncID: 7}); err != nil {
		t.Fatalf("start master: %v", err)
	}
	t.Cleanup(func() {
		h.StopDaemon(ctx(t), ipvs.DaemonMaster)
		h.StopDaemon(ctx(t), ipvs.DaemonBackup)
	})
	if err := h.StartDaemon(c, ipvs.Daemon{State: ipvs.DaemonBackup, Interface: "ipvssync0", SyncID: 8, Port: 8849}); err != nil {
		t.Fatalf("start backup: %v", err)
	}
	err := h.StartDaemon(c, ipvs.Daemon{State: ipvs.DaemonMaster, Interface: "ipvssync0", SyncID: 7})
	if !errors.Is(err, ipvs.ErrDaemonRunning) || !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second master: %v", err)
	}
	ds, err := h.Daemons(c)
	if err != nil {
		t.Fatal(err)
	}
	byState := map[ipvs.DaemonState]ipvs.Daemon{}
	for _, d := range ds {
		byState[d.State] = d
	}
	if m := byState[ipvs.DaemonMaster]; m.Interface != "ipvssync0" || m.SyncID != 7 || len(ds) != 2 ||
		m.MaxLen != 1472 || m.Group != addr("224.0.0.81") || m.Port != 8848 || m.TTL != 1 {
		t.Errorf("daemons %+v", ds)
	}
	if b := byState[ipvs.DaemonBackup]; b.Interface != "ipvssync0" || b.SyncID != 8 || b.Port != 8849 {
		t.Errorf("backup %+v", b)
	}
	out := ipvsadm(t, "", "-L", "--daemon")
	t.Logf("ipvsadm -L --daemon:\n%s", out)
	if !strings.Contains(out, "master sync daemon (mcast=ipvssync0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n") ||
		!strings.Contains(out, "backup sync daemon (mcast=ipvssync0, syncid=8, maxlen=1472, group=224.0.0.81, port=8849, ttl=1)\n") {
		t.Errorf("ipvsadm -L --daemon:\n%s", out)
	}

	// Takeover: the backup becomes master.
	if err := h.StopDaemon(c, ipvs.DaemonMaster); err != nil {
		t.Fatal(err)
	}
	if err := h.StopDaemon(c, ipvs.DaemonBackup); err != nil {
		t.Fatal(err)
	}
	err = h.StopDaemon(c, ipvs.DaemonBackup)
	if !errors.Is(err, ipvs.ErrNoDaemon) || !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stop stopped backup: %v", err)
	}
	if ds, err := h.Daemons(c); err != nil || len(ds) != 0 {
		t.Errorf("Daemons after stop: %v %v", ds, err)
	}
	if out := ipvsadm(t, "", "-L", "--daemon"); out != "" {
		t.Errorf("ipvsadm -L --daemon after stop:\n%s", out)
	}
}
