package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/testbed/vm"
)

// The scenarios program the kernel's IPVS: in the testbed VM when this host
// has none.
func TestMain(m *testing.M) { vm.Main(m) }

func TestBasicScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress, table strings.Builder
	sum, err := Run(ctx, "basic", Options{Requests: 40, Progress: &progress, Table: &table})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if sum.RequestsSent != 40 || sum.RequestsLost != 0 {
		t.Errorf("sent %d, lost %d (first error %q)", sum.RequestsSent, sum.RequestsLost, sum.FirstErrorText)
	}
	// Round robin over two real servers on fresh connections: an even split.
	if sum.AnsweredBy["rs1"] != 20 || sum.AnsweredBy["rs2"] != 20 {
		t.Errorf("answered by %v, want 20 each", sum.AnsweredBy)
	}
	if sum.IPVSOps != 3 {
		t.Errorf("%d IPVS ops to set up one service with two destinations, want 3", sum.IPVSOps)
	}
	for _, want := range []string{"TCP  192.0.2.100:80                     40", "  -> 192.0.2.11:80                      20", "  -> 192.0.2.12:80                      20"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	if _, err := Run(context.Background(), "nope", Options{}); err == nil || !strings.Contains(err.Error(), "basic") {
		t.Errorf("unknown scenario: %v", err)
	}
}
