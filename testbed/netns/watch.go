package netns

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// AddrChange is an address appearing on or leaving an interface, timed when
// the kernel's notification was read.
type AddrChange struct {
	At      time.Time
	Present bool
}

// WatchAddr reports, on the returned channel, whether addr is on ifname now
// and then each time it comes or goes, until done is closed (the channel is
// closed then). The kernel tells (address notifications): no polling, which
// in an emulated guest would take CPU from what is being measured, and no
// sampling interval in the times. Consecutive changes can repeat a state
// (after a notification overrun it reads the state again); the receiver
// keeps the changes. The interface must exist when it is called.
func (h *Host) WatchAddr(ifname string, addr netip.Addr, done <-chan struct{}) (<-chan AddrChange, error) {
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netns: %s: link %s: %w", h.name, ifname, err)
	}
	index, addr := l.Attrs().Index, addr.Unmap()
	out := make(chan AddrChange, 64)
	subscribe := func() (chan netlink.AddrUpdate, error) {
		ns := h.ns
		// The library closes updates when its socket fails (an overrun):
		// notifications were lost then.
		updates := make(chan netlink.AddrUpdate, 256)
		return updates, netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
			Namespace:         &ns,
			ReceiveBufferSize: 1 << 20,
		})
	}
	updates, err := subscribe()
	if err != nil {
		return nil, fmt.Errorf("netns: %s: watching the addresses of %s: %w", h.name, ifname, err)
	}
	go func() {
		defer close(out)
		send := func(c AddrChange) bool {
			select {
			case out <- c:
				return true
			case <-done:
				return false
			}
		}
		// Read after subscribing: a change from now on is also notified.
		if !send(AddrChange{time.Now(), h.HasAddr(ifname, addr)}) {
			return
		}
		for {
			select {
			case <-done:
				return
			case u, ok := <-updates:
				if ok {
					ip, _ := netip.AddrFromSlice(u.LinkAddress.IP)
					if u.LinkIndex == index && ip.Unmap() == addr && !send(AddrChange{time.Now(), u.NewAddr}) {
						return
					}
					continue
				}
				// Subscribe again and read the state once more.
				for updates, err = subscribe(); err != nil; updates, err = subscribe() {
					select {
					case <-done:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
				if !send(AddrChange{time.Now(), h.HasAddr(ifname, addr)}) {
					return
				}
			}
		}
	}()
	return out, nil
}
