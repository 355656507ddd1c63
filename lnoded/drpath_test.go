package lnoded

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/directord/directord/lnoded/config"
)

// TestDRPathCheckPlan: drpathcheck=yes gives each real server of that
// virtual service a DR-path check of its VIP and port, and only those.
func TestDRPathCheckPlan(t *testing.T) {
	src := "virtual=192.0.2.100:80\n\treal=192.0.2.11:80 gate\n\tchecktype=connect\n\tdrpathcheck=yes\n\n" +
		"virtual=192.0.2.101:80\n\treal=192.0.2.11:80 gate\n\tchecktype=connect\n"
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.reals) != 2 {
		t.Fatalf("%d real servers", len(p.reals))
	}
	if want := netip.MustParseAddrPort("192.0.2.100:80"); checkConfig(&cfg.Virtuals[0], &cfg.Virtuals[0].Reals[0]).DRPath != want {
		t.Errorf("DRPath not %v", want)
	}
	if !strings.HasPrefix(p.reals[0].check, "DR path: TCP SYN to 192.0.2.100:80 through 192.0.2.11") {
		t.Errorf("check of the drpathcheck service: %q", p.reals[0].check)
	}
	if strings.Contains(p.reals[1].check, "DR path") {
		t.Errorf("check of the other service: %q", p.reals[1].check)
	}
	if p.jobs[0].Key == p.jobs[1].Key {
		t.Error("the DR-path job shares the plain job's probe")
	}
}
