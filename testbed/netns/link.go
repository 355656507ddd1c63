package netns

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// Switch is a Linux bridge acting as a LAN switch. All of a topology's
// switches live in one namespace of their own ("<prefix>switch"), so hosts
// see only their own end of each cable.
type Switch struct {
	name string
	host *Host // the switch namespace
}

// Name returns the switch's name, which is also its bridge's name.
func (s *Switch) Name() string { return s.name }

// Bridge returns the namespace the bridge lives in, e.g. to capture on it.
func (s *Switch) Bridge() *Host { return s.host }

// Switch creates a switch: a bridge named name (at most 15 characters) with
// STP off, so ports forward as soon as they are up.
func (t *Topology) Switch(name string) (*Switch, error) {
	if !validName(name) || len(name) > 15 {
		return nil, fmt.Errorf("netns: invalid switch name %q (an interface name: at most 15 characters)", name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("netns: topology is closed")
	}
	if _, ok := t.switches[name]; ok {
		return nil, fmt.Errorf("netns: switch %q already exists", name)
	}
	if t.switchNS == nil {
		h, err := newHost("switch", t.prefix+"switch")
		if err != nil {
			return nil, err
		}
		t.switchNS = h
	}
	sw := t.switchNS
	la := netlink.NewLinkAttrs()
	la.Name = name
	br := &netlink.Bridge{LinkAttrs: la}
	if err := sw.nl.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("netns: switch %s: add bridge: %w", name, err)
	}
	if err := sw.setUp(name); err != nil {
		return nil, err
	}
	s := &Switch{name: name, host: sw}
	t.switches[name] = s
	return s, nil
}

// Plug connects host h to switch s with a veth cable whose host end is the
// interface ifname (at most 15 characters) in h. Both ends are up when Plug
// returns. It returns the host end's MAC address.
func (t *Topology) Plug(h *Host, ifname string, s *Switch) (net.HardwareAddr, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errors.New("netns: topology is closed")
	}
	t.ports++
	port := fmt.Sprintf("p%d", t.ports)
	t.mu.Unlock()

	if err := veth(h, ifname, s.host, port); err != nil {
		return nil, fmt.Errorf("netns: plug %s:%s into %s: %w", h.name, ifname, s.name, err)
	}
	sw := s.host.nl
	p, err := sw.LinkByName(port)
	if err != nil {
		return nil, fmt.Errorf("netns: plug %s:%s into %s: %w", h.name, ifname, s.name, err)
	}
	br, err := sw.LinkByName(s.name)
	if err != nil {
		return nil, fmt.Errorf("netns: plug %s:%s into %s: %w", h.name, ifname, s.name, err)
	}
	if err := sw.LinkSetMaster(p, br); err != nil {
		return nil, fmt.Errorf("netns: plug %s:%s into %s: attach port: %w", h.name, ifname, s.name, err)
	}
	if err := s.host.setUp(port); err != nil {
		return nil, err
	}
	if err := h.setUp(ifname); err != nil {
		return nil, err
	}
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netns: %s: link %s: %w", h.name, ifname, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// Cable connects two hosts directly with a veth pair: interface aif in a and
// bif in b, both up.
func (t *Topology) Cable(a *Host, aif string, b *Host, bif string) error {
	if err := veth(a, aif, b, bif); err != nil {
		return fmt.Errorf("netns: cable %s:%s <-> %s:%s: %w", a.name, aif, b.name, bif, err)
	}
	if err := a.setUp(aif); err != nil {
		return err
	}
	return b.setUp(bif)
}

// veth creates a veth pair with one end (aif) in a and the other (bif) in b.
func veth(a *Host, aif string, b *Host, bif string) error {
	if len(aif) == 0 || len(aif) > 15 || len(bif) == 0 || len(bif) > 15 {
		return fmt.Errorf("interface names %q, %q: want 1 to 15 characters", aif, bif)
	}
	la := netlink.NewLinkAttrs()
	la.Name = aif
	v := &netlink.Veth{LinkAttrs: la, PeerName: bif, PeerNamespace: netlink.NsFd(b.ns)}
	if err := a.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	return nil
}

// AddDummy adds a dummy interface named ifname to the host and brings it up,
// e.g. to hold a VIP on a real server.
func (h *Host) AddDummy(ifname string) error {
	la := netlink.NewLinkAttrs()
	la.Name = ifname
	if err := h.nl.LinkAdd(&netlink.Dummy{LinkAttrs: la}); err != nil {
		return fmt.Errorf("netns: %s: add dummy %s: %w", h.name, ifname, err)
	}
	return h.setUp(ifname)
}
