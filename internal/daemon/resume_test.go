package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/heartbeat/cluster"
)

// TestResumeFile: the engine state a detached daemon leaves is root-only,
// read back whole by the next daemon, used once, and ignored when older than
// the deadtime.
func TestResumeFile(t *testing.T) {
	dir := t.TempDir()
	d := &Daemon{opts: Options{StateDir: dir}, log: slog.New(slog.DiscardHandler),
		cfg: &config.Config{Cluster: config.Cluster{DeadTime: 2 * time.Second}}}
	r := cluster.Resume{Node: "node1", Generation: 1795307955, NextSeq: 0x2a, Held: []string{"192.0.2.100"}, PeerStatus: "active", At: time.Now()}
	if err := d.saveResume(r); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, resumeFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got := d.takeResume()
	if got == nil || got.Generation != r.Generation || got.NextSeq != r.NextSeq || len(got.Held) != 1 || !got.At.Equal(r.At) {
		t.Fatalf("takeResume = %+v, want %+v", got, r)
	}
	if again := d.takeResume(); again != nil {
		t.Error("the state was used twice")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left in the state directory: %v", entries)
	}

	r.At = time.Now().Add(-3 * time.Second)
	if err := d.saveResume(r); err != nil {
		t.Fatal(err)
	}
	if got := d.takeResume(); got != nil {
		t.Error("a state older than the deadtime was resumed")
	}
	os.WriteFile(filepath.Join(dir, resumeFile), []byte("{"), 0o600)
	if got := d.takeResume(); got != nil {
		t.Error("a broken state file was resumed")
	}
}
