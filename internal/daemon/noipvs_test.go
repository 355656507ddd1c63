package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directord/directord/ipvs"
)

// TestOpenIPVSWithoutKernelIPVS: a kernel without IPVS refuses only a
// configuration that needs it (an lnoded resource, the sync daemon); a pair
// of VIPs and scripts runs, as it does under Heartbeat.
func TestOpenIPVSWithoutKernelIPVS(t *testing.T) {
	unavailable := func() (*ipvs.Handle, error) { return nil, fmt.Errorf("ipvs: %w: no such file", ipvs.ErrUnavailable) }
	other := func() (*ipvs.Handle, error) { return nil, errors.New("ipvs: netlink: permission denied") }
	cf := filepath.Join(t.TempDir(), "lnoded.cf")
	if err := os.WriteFile(cf, []byte("virtual=192.0.2.100:80\n\treal=192.0.2.21:80 gate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lnodedYAML := strings.Replace(baseYAML, "      - vip: 192.0.2.100\n", "      - vip: 192.0.2.100\n      - lnoded: "+cf+"\n", 1)
	syncYAML := baseYAML + "directord:\n  sync: {enabled: true, interface: hb0}\n"
	for _, c := range []struct {
		name, yaml string
		open       func() (*ipvs.Handle, error)
		want       string // in the error; "" for none
	}{
		{"VIP only", baseYAML, unavailable, ""},
		{"lnoded", lnodedYAML, unavailable, "an lnoded resource needs it"},
		{"sync on", syncYAML, unavailable, "the IPVS sync daemon is enabled"},
		{"another error", baseYAML, other, "permission denied"},
	} {
		cfg := parse(t, c.yaml)
		h, k, err := openIPVS(cfg, c.open, slog.New(slog.DiscardHandler))
		if c.want == "" {
			if err != nil || h != nil || k == nil {
				t.Errorf("%s: openIPVS = %v, %v, %v; want no handle, a kernel, no error", c.name, h, k, err)
				continue
			}
			if _, err := k.Daemons(t.Context()); !errors.Is(err, ipvs.ErrUnavailable) {
				t.Errorf("%s: Daemons on no IPVS: %v", c.name, err)
			}
			s := newSyncControl(k, cfg.Directord.Sync, slog.New(slog.DiscardHandler))
			if err := errors.Join(s.Start(t.Context()), s.Hold(t.Context()), s.Unhold(t.Context()), s.Stop(t.Context())); err != nil {
				t.Errorf("%s: the sync controller (off) touched the missing IPVS: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: openIPVS error %v, want one with %q", c.name, err, c.want)
		}
	}
}
