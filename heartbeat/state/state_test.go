package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/wire"
)

func TestUUID(t *testing.T) {
	p := filepath.Join(t.TempDir(), UUIDFile)
	u, err := LoadOrCreateUUID(p)
	if err != nil || u.IsZero() || u[6]>>4 != 4 {
		t.Fatalf("created %v, %v", u, err)
	}
	again, err := LoadOrCreateUUID(p)
	if err != nil || again != u {
		t.Errorf("reloaded %v, %v; want %v", again, err, u)
	}
	b, _ := os.ReadFile(p)
	if len(b) != 16 || wire.UUID(b) != u {
		t.Errorf("file holds %x", b)
	}
	// Heartbeat's own file, from a real node.
	real := []byte{0xde, 0xc2, 0x18, 0x10, 0x4e, 0x31, 0x44, 0x54, 0x87, 0x98, 0x19, 0x3f, 0xdb, 0x6d, 0xa8, 0x11}
	os.WriteFile(p, real, 0o644)
	if u, err := LoadOrCreateUUID(p); err != nil || u != wire.UUID(real) {
		t.Errorf("real hb_uuid: %v, %v", u, err)
	}
	for _, bad := range [][]byte{{1, 2, 3}, make([]byte, 16), make([]byte, 17)} {
		os.WriteFile(p, bad, 0o644)
		if _, err := LoadOrCreateUUID(p); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}

func TestGeneration(t *testing.T) {
	p := filepath.Join(t.TempDir(), GenerationFile)
	now := func() time.Time { return time.Unix(1795307955, 0) }
	g, err := NextGeneration(p, now)
	if err != nil || g != 1795307955 {
		t.Fatalf("first generation %d, %v", g, err)
	}
	// The exact layout Heartbeat 3.0.6 writes.
	if b, _ := os.ReadFile(p); string(b) != "     1795307955\n" {
		t.Errorf("file = %q", b)
	}
	g, err = NextGeneration(p, now)
	if err != nil || g != 1795307956 {
		t.Errorf("second generation %d, %v", g, err)
	}
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := NextGeneration(p, now); err == nil {
		t.Error("accepted a bad file")
	}
	if _, err := NextGeneration(filepath.Join(t.TempDir(), "no", "dir"), now); err == nil {
		t.Error("wrote into a missing directory")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestGenerationReadsWithoutChanging(t *testing.T) {
	p := filepath.Join(t.TempDir(), GenerationFile)
	if _, err := Generation(p); err == nil {
		t.Error("no file: no error")
	}
	g, err := NextGeneration(p, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := Generation(p); err != nil || got != g {
			t.Fatalf("Generation = %d, %v; want %d", got, err, g)
		}
	}
}
