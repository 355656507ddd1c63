// Package watchdog keeps the kernel's watchdog device (ha.cf "watchdog
// /dev/watchdog") and systemd's service watchdog fed while the daemon is
// healthy, so that a daemon that dies or hangs gets its node reset (or
// restarted) before its peer takes the resources over.
//
// A kernel watchdog is disarmed only by the "magic close": writing 'V' just
// before closing the device. Close does that, and only a graceful stop calls
// it. A daemon killed with SIGKILL closes the device without it, the kernel
// logs "watchdog did not stop!" and resets the machine when the timeout
// expires: the node loses its VIPs with everything else, which is what keeps
// two directors from answering for one VIP after the peer has taken over.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Device is an open kernel watchdog device (/dev/watchdog, the softdog
// module or a hardware timer). Once open, the machine resets unless Feed is
// called more often than Timeout or Close disarms it.
type Device struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	timeout time.Duration
	last    time.Time
}

// OpenDevice opens the watchdog device at path, which arms it, and sets its
// timeout to timeout (rounded down to whole seconds, at least one) when
// timeout is positive. Drivers that cannot change their timeout keep their
// own; Timeout reports the one in force.
func OpenDevice(path string, timeout time.Duration) (*Device, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = " (load a watchdog driver, e.g. modprobe softdog, or remove the watchdog line from ha.cf)"
		} else if errors.Is(err, unix.EBUSY) {
			hint = " (another program, e.g. watchdog(8) or systemd's RuntimeWatchdogSec, holds it)"
		}
		return nil, fmt.Errorf("watchdog %s: %w%s", path, err, hint)
	}
	d := &Device{path: path, f: f, last: time.Now()}
	fd := int(f.Fd())
	if timeout > 0 {
		secs := max(int(timeout/time.Second), 1)
		// Errors are not fatal: some hardware has a fixed timeout, which
		// GETTIMEOUT then reports.
		unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, secs)
	}
	if secs, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT); err == nil && secs > 0 {
		d.timeout = time.Duration(secs) * time.Second
	} else {
		// The kernel's and softdog's default.
		d.timeout = 60 * time.Second
	}
	return d, nil
}

// Path returns the device's path.
func (d *Device) Path() string { return d.path }

// Timeout returns the device's timeout: the longest time between two Feeds
// before the machine resets.
func (d *Device) Timeout() time.Duration { return d.timeout }

// LastFeed returns when the device was last fed (or opened).
func (d *Device) LastFeed() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Feed restarts the device's timer.
func (d *Device) Feed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return fmt.Errorf("watchdog %s: closed", d.path)
	}
	// Any byte but 'V' (which would arm the magic close) feeds it.
	if _, err := d.f.Write([]byte{0}); err != nil {
		return fmt.Errorf("watchdog %s: %w", d.path, err)
	}
	d.last = time.Now()
	return nil
}

// Close disarms the device with the magic close and closes it. Call it only
// on a graceful stop. Calls after the first do nothing.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	_, werr := d.f.Write([]byte{'V'})
	cerr := d.f.Close()
	d.f = nil
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("watchdog %s: magic close: %w (the machine may reset when the timeout expires)", d.path, err)
	}
	return nil
}

// Notifier sends sd_notify(3) messages. The zero value sends to
// $NOTIFY_SOCKET, which is what systemd sets for a Type=notify service; a
// process that systemd did not start sends nothing.
type Notifier struct {
	// Send replaces sd_notify, for tests.
	Send func(state string) error
}

func (n Notifier) send(state string) error {
	if n.Send != nil {
		return n.Send(state)
	}
	_, err := sd.SdNotify(false, state)
	return err
}

// Ready tells systemd that start-up is done.
func (n Notifier) Ready() error { return n.send(sd.SdNotifyReady) }

// Stopping tells systemd that a graceful stop has begun.
func (n Notifier) Stopping() error { return n.send(sd.SdNotifyStopping) }

// Reloading tells systemd a reload is in progress; Ready ends it.
func (n Notifier) Reloading() error { return n.send(sd.SdNotifyReloading) }

// Status sets the one-line status `systemctl status` shows.
func (n Notifier) Status(s string) error { return n.send("STATUS=" + s) }

// SystemdInterval returns systemd's watchdog interval for this process
// (WatchdogSec=), 0 when systemd expects no keep-alives.
func SystemdInterval() time.Duration {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}

// Keeper feeds a Device and systemd's watchdog while Healthy says so.
type Keeper struct {
	// Device is the kernel watchdog, nil for none.
	Device *Device
	// Systemd is systemd's watchdog interval (WatchdogSec=), 0 for none.
	Systemd time.Duration
	// Notify sends systemd's WATCHDOG=1.
	Notify Notifier
	// Interval is how often to feed; 0 means a third of the shortest
	// deadline (the device's timeout, systemd's half interval, as
	// sd_watchdog_enabled(3) recommends), so that one late tick does not
	// reset the machine.
	Interval time.Duration
	// Healthy reports whether the daemon may feed; nil means always.
	// When it returns an error the watchdogs are starved, and the error is
	// logged once.
	Healthy func() error
	// Log receives the first error of each run of failures.
	Log *slog.Logger
}

// interval is the feeding period Run uses.
func (k *Keeper) interval() time.Duration {
	if k.Interval > 0 {
		return k.Interval
	}
	d := time.Duration(0)
	if k.Device != nil {
		d = k.Device.Timeout() / 3
	}
	if k.Systemd > 0 && (d == 0 || k.Systemd/2 < d) {
		d = k.Systemd / 2
	}
	if d <= 0 {
		return 0
	}
	return d
}

// Run feeds until ctx ends. It returns at once when there is nothing to
// feed. It does not close the device: the owner does, on a graceful stop.
func (k *Keeper) Run(ctx context.Context) {
	iv := k.interval()
	if iv == 0 {
		return
	}
	log := k.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	starving := false
	for {
		k.tick(log, &starving)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *Keeper) tick(log *slog.Logger, starving *bool) {
	if k.Healthy != nil {
		if err := k.Healthy(); err != nil {
			if !*starving {
				log.Error("ERROR: not feeding the watchdog: "+err.Error()+"; this node will be reset if this lasts", "err", err)
			}
			*starving = true
			return
		}
	}
	if *starving {
		log.Info("Healthy again: feeding the watchdog")
		*starving = false
	}
	if k.Device != nil {
		if err := k.Device.Feed(); err != nil {
			log.Error("ERROR: "+err.Error(), "err", err)
		}
	}
	if k.Systemd > 0 {
		k.Notify.send(sd.SdNotifyWatchdog)
	}
}
