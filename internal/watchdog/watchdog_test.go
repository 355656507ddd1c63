package watchdog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests use a regular file in place of /dev/watchdog: what the device
// receives (feeds, the magic 'V') is what is checked. That the kernel resets
// a machine whose daemon was killed is tested in the VM (internal/daemon's
// kernel tests with the softdog module).

func TestDeviceFeedAndMagicClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	os.WriteFile(path, nil, 0o600)
	d, err := OpenDevice(path, 7*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A regular file takes no ioctl: the kernel's default is reported.
	if d.Timeout() != 60*time.Second {
		t.Errorf("Timeout = %v", d.Timeout())
	}
	before := d.LastFeed()
	time.Sleep(time.Millisecond)
	if err := d.Feed(); err != nil {
		t.Fatal(err)
	}
	if !d.LastFeed().After(before) {
		t.Error("LastFeed did not move")
	}
	d.Feed()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Feed(); err == nil {
		t.Error("Feed after Close succeeded")
	}
	got, _ := os.ReadFile(path)
	// Two feeds, then the magic close; a 'V' anywhere else would disarm
	// the watchdog early.
	if string(got) != "\x00\x00V" {
		t.Errorf("device received %q, want two feeds and a 'V'", got)
	}
}

func TestOpenDeviceMissing(t *testing.T) {
	_, err := OpenDevice(filepath.Join(t.TempDir(), "none"), time.Second)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "modprobe softdog") {
		t.Errorf("OpenDevice of a missing device: %v", err)
	}
}

type notes struct {
	mu  sync.Mutex
	got []string
}

func (n *notes) send(s string) error {
	n.mu.Lock()
	n.got = append(n.got, s)
	n.mu.Unlock()
	return nil
}

func (n *notes) count(s string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, g := range n.got {
		if g == s {
			c++
		}
	}
	return c
}

func TestKeeperFeedsOnlyWhileHealthy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	os.WriteFile(path, nil, 0o600)
	d, err := OpenDevice(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n notes
	var mu sync.Mutex
	healthy := true
	k := &Keeper{
		Device:   d,
		Systemd:  20 * time.Millisecond,
		Notify:   Notifier{Send: n.send},
		Interval: 5 * time.Millisecond,
		Healthy: func() error {
			mu.Lock()
			defer mu.Unlock()
			if !healthy {
				return errors.New("main loop stuck")
			}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()

	time.Sleep(60 * time.Millisecond)
	if c := n.count("WATCHDOG=1"); c < 3 {
		t.Fatalf("healthy: %d WATCHDOG=1 in 60ms at 5ms intervals", c)
	}
	mu.Lock()
	healthy = false
	mu.Unlock()
	// Let a tick that passed Healthy before the flip finish feeding.
	time.Sleep(100 * time.Millisecond)
	fed := n.count("WATCHDOG=1")
	st, _ := os.Stat(path)
	size := st.Size()
	time.Sleep(60 * time.Millisecond)
	if c := n.count("WATCHDOG=1"); c != fed {
		t.Errorf("unhealthy: systemd fed %d more times", c-fed)
	}
	st, _ = os.Stat(path)
	if st.Size() != size {
		t.Errorf("unhealthy: device fed %d more times", st.Size()-size)
	}
	cancel()
	<-done
}

func TestKeeperInterval(t *testing.T) {
	for _, c := range []struct {
		k    Keeper
		want time.Duration
	}{
		{Keeper{}, 0},
		{Keeper{Systemd: 10 * time.Second}, 5 * time.Second},
		{Keeper{Device: &Device{timeout: 9 * time.Second}}, 3 * time.Second},
		{Keeper{Device: &Device{timeout: 60 * time.Second}, Systemd: 10 * time.Second}, 5 * time.Second},
		{Keeper{Device: &Device{timeout: 60 * time.Second}, Interval: time.Second}, time.Second},
	} {
		if got := c.k.interval(); got != c.want {
			t.Errorf("%+v: interval %v, want %v", c.k, got, c.want)
		}
	}
	// Nothing to feed: Run returns at once.
	done := make(chan struct{})
	go func() { (&Keeper{}).Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Error("Run with nothing to feed did not return")
	}
}
