package ipvs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// batchSize bounds how many requests Apply sends before reading their
// acknowledgements, so that the acknowledgements fit in the socket's
// receive buffer (the kernel drops what does not fit, and we would wait
// forever for it).
const batchSize = 64

// Handle is a generic netlink socket to the kernel's IPVS. One Handle is
// safe for concurrent use by many goroutines: requests are serialised on
// the one socket. Close it when done.
type Handle struct {
	mu     sync.Mutex
	nc     *netlink.Conn // nil once closed
	family uint16
	broken bool // the socket may hold stale replies: redial before use

	requests atomic.Uint64
}

// Open connects to the kernel's IPVS. It returns an error matching
// ErrUnavailable when the kernel has no IPVS; it never loads modules.
func Open() (*Handle, error) {
	nc, fam, err := dial()
	if err != nil {
		return nil, err
	}
	return &Handle{nc: nc, family: fam}, nil
}

func dial() (*netlink.Conn, uint16, error) {
	nc, err := netlink.Dial(unix.NETLINK_GENERIC, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("ipvs: open generic netlink socket: %w", err)
	}
	f, err := genetlink.NewConn(nc).GetFamily(genlName)
	if err != nil {
		nc.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("ipvs: %w: %w", ErrUnavailable, err)
		}
		return nil, 0, fmt.Errorf("ipvs: resolve generic netlink family %s: %w", genlName, err)
	}
	if f.Version < genlVersion {
		nc.Close()
		return nil, 0, fmt.Errorf("ipvs: kernel IPVS netlink version %d, need %d", f.Version, genlVersion)
	}
	// Room for a full batch of acknowledgements, errors included.
	_ = nc.SetReadBuffer(1 << 20)
	return nc, f.ID, nil
}

// Close closes the socket. Calls after Close fail.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nc == nil {
		return nil
	}
	err := h.nc.Close()
	h.nc = nil
	return err
}

// Requests returns how many netlink requests the handle has sent (every
// add, edit, delete, dump and query counts one). Tests use it to check that
// a reconcile issues exactly the operations it planned.
func (h *Handle) Requests() uint64 { return h.requests.Load() }

// lock takes the socket for one exchange bounded by ctx. The returned
// function releases it.
func (h *Handle) lock(ctx context.Context) (*netlink.Conn, func(failed bool), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("ipvs: %w", err)
	}
	h.mu.Lock()
	if h.nc == nil {
		h.mu.Unlock()
		return nil, nil, errors.New("ipvs: handle is closed")
	}
	if h.broken {
		nc, fam, err := dial()
		if err != nil {
			h.mu.Unlock()
			return nil, nil, err
		}
		h.nc.Close()
		h.nc, h.family, h.broken = nc, fam, false
	}
	nc := h.nc
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	// Cancellation interrupts a blocked read by moving the deadline.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	return nc, func(failed bool) {
		if !stop() || failed {
			// A cancelled or failed exchange may leave replies queued, or
			// the deadline moved: start on a fresh socket next time.
			h.broken = true
		}
		h.mu.Unlock()
	}, nil
}

func (h *Handle) message(cmd uint8, flags netlink.HeaderFlags, attrs []byte) (netlink.Message, error) {
	b, err := genetlink.Message{Header: genetlink.Header{Command: cmd, Version: genlVersion}, Data: attrs}.MarshalBinary()
	if err != nil {
		return netlink.Message{}, err
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(h.family), Flags: flags}, Data: b}, nil
}

// Request modes: a change is acknowledged; a query is answered with one
// reply (asking for an acknowledgement too would leave it queued); a dump
// is answered with a multipart reply.
type mode int

const (
	modeChange mode = iota
	modeQuery
	modeDump
)

// exec sends one request and returns the generic netlink payloads (the
// attributes) of the replies.
func (h *Handle) exec(ctx context.Context, cmd uint8, m0 mode, attrs []byte, op string) ([][]byte, error) {
	nc, unlock, err := h.lock(ctx)
	if err != nil {
		return nil, err
	}
	flags := netlink.Request | netlink.Acknowledge
	switch m0 {
	case modeQuery:
		flags = netlink.Request
	case modeDump:
		flags = netlink.Request | netlink.Dump
	}
	m, err := h.message(cmd, flags, attrs)
	if err != nil {
		unlock(false)
		return nil, fmt.Errorf("ipvs: %s: %w", op, err)
	}
	h.requests.Add(1)
	replies, err := nc.Execute(m)
	unlock(err != nil && !isKernelErr(err))
	if err != nil {
		return nil, kernelErr(cmd, op, err)
	}
	var out [][]byte
	for _, r := range replies {
		if r.Header.Type == netlink.Error || r.Header.Type == netlink.Done {
			continue
		}
		var gm genetlink.Message
		if err := gm.UnmarshalBinary(r.Data); err != nil {
			return nil, fmt.Errorf("ipvs: %s: %w", op, err)
		}
		out = append(out, gm.Data)
	}
	return out, nil
}

// isKernelErr reports whether err is an error code the kernel answered
// with, after which the socket is in a clean state.
func isKernelErr(err error) bool {
	var oe *netlink.OpError
	if !errors.As(err, &oe) || oe.Op != "receive" {
		return false
	}
	// A system call's error is wrapped in *os.SyscallError; an error code
	// from a netlink message is a bare errno.
	_, ok := oe.Err.(unix.Errno)
	return ok
}

// request is one acknowledged command of a batch.
type request struct {
	cmd   uint8
	attrs []byte
	op    string
}

// batch sends requests batchSize at a time in one write each and then
// reads their acknowledgements, which the kernel sends in order. Every
// request is attempted; the errors of those that failed are returned,
// joined.
func (h *Handle) batch(ctx context.Context, reqs []request) error {
	var errs []error
	for len(reqs) > 0 {
		n := min(len(reqs), batchSize)
		chunk := reqs[:n]
		reqs = reqs[n:]
		if err := h.batchOnce(ctx, chunk, &errs); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	return errors.Join(errs...)
}

func (h *Handle) batchOnce(ctx context.Context, chunk []request, errs *[]error) error {
	nc, unlock, err := h.lock(ctx)
	if err != nil {
		return err
	}
	msgs := make([]netlink.Message, len(chunk))
	for i, r := range chunk {
		if msgs[i], err = h.message(r.cmd, netlink.Request|netlink.Acknowledge, r.attrs); err != nil {
			unlock(false)
			return fmt.Errorf("ipvs: %s: %w", r.op, err)
		}
	}
	h.requests.Add(uint64(len(msgs)))
	sent, err := nc.SendMessages(msgs)
	if err != nil {
		unlock(true)
		return fmt.Errorf("ipvs: send %d requests: %w", len(msgs), err)
	}
	for i := range sent {
		replies, err := nc.Receive()
		if err != nil {
			if !isKernelErr(err) {
				unlock(true)
				return fmt.Errorf("ipvs: %s: %w", chunk[i].op, err)
			}
			var oe *netlink.OpError
			if errors.As(err, &oe) && oe.Sequence != sent[i].Header.Sequence {
				unlock(true)
				return fmt.Errorf("ipvs: %s: acknowledgement out of order: %w", chunk[i].op, err)
			}
			*errs = append(*errs, kernelErr(chunk[i].cmd, chunk[i].op, err))
			continue
		}
		if err := netlink.Validate(sent[i], replies); err != nil {
			unlock(true)
			return fmt.Errorf("ipvs: %s: %w", chunk[i].op, err)
		}
	}
	unlock(false)
	return nil
}

// Info returns the kernel's IPVS version and connection table size.
func (h *Handle) Info(ctx context.Context) (Info, error) {
	r, err := h.exec(ctx, cmdGetInfo, modeQuery, nil, "get info")
	if err != nil {
		return Info{}, err
	}
	if len(r) == 0 {
		return Info{}, errors.New("ipvs: get info: no reply")
	}
	return decodeInfo(r[0])
}

// Services returns the virtual services (without destinations), in the
// kernel's order.
func (h *Handle) Services(ctx context.Context) ([]Service, error) {
	r, err := h.exec(ctx, cmdGetService, modeDump, nil, "list services")
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(r))
	for _, b := range r {
		s, err := decodeServiceMsg(b)
		if err != nil {
			return nil, fmt.Errorf("ipvs: list services: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Service returns one virtual service.
func (h *Handle) Service(ctx context.Context, k ServiceKey) (Service, error) {
	attrs, err := serviceAttrs(Service{Family: k.Family, Protocol: k.Protocol, Addr: k.Addr, Port: k.Port, FWMark: k.FWMark}, false)
	if err != nil {
		return Service{}, fmt.Errorf("ipvs: get service %s: %w", k, err)
	}
	r, err := h.exec(ctx, cmdGetService, modeQuery, attrs, "get service "+k.String())
	if err != nil {
		return Service{}, err
	}
	if len(r) == 0 {
		return Service{}, &OpError{Op: "get service " + k.String(), Err: errors.New("no reply"), kind: ErrNoService}
	}
	s, err := decodeServiceMsg(r[0])
	if err != nil {
		return Service{}, fmt.Errorf("ipvs: get service %s: %w", k, err)
	}
	return s, nil
}

// Destinations returns the destinations of a service, in the kernel's
// order. For a service that does not exist the kernel returns none, and so
// does Destinations (without an error).
func (h *Handle) Destinations(ctx context.Context, k ServiceKey) ([]Destination, error) {
	attrs, err := serviceAttrs(Service{Family: k.Family, Protocol: k.Protocol, Addr: k.Addr, Port: k.Port, FWMark: k.FWMark}, false)
	if err != nil {
		return nil, fmt.Errorf("ipvs: list destinations of %s: %w", k, err)
	}
	op := "list destinations of " + k.String()
	r, err := h.exec(ctx, cmdGetDest, modeDump, attrs, op)
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(r))
	for _, b := range r {
		d, err := decodeDestMsg(b, k.Family)
		if err != nil {
			return nil, fmt.Errorf("ipvs: %s: %w", op, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Table returns all virtual services with their destinations. It is not
// atomic: another program may change the table between the reads.
func (h *Handle) Table(ctx context.Context) (Table, error) {
	svcs, err := h.Services(ctx)
	if err != nil {
		return nil, err
	}
	t := make(Table, 0, len(svcs))
	for _, s := range svcs {
		ds, err := h.Destinations(ctx, s.Key())
		if err != nil {
			return nil, err
		}
		t = append(t, VirtualService{Service: s, Destinations: ds})
	}
	return t, nil
}

func (h *Handle) one(ctx context.Context, r request, err error) error {
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", r.op, err)
	}
	_, err = h.exec(ctx, r.cmd, modeChange, r.attrs, r.op)
	return err
}

// NewService adds a virtual service.
func (h *Handle) NewService(ctx context.Context, s Service) error {
	r, err := Op{Kind: AddService, Service: s}.request()
	return h.one(ctx, r, err)
}

// UpdateService changes the scheduler, flags, persistence timeout, netmask
// and persistence engine of a virtual service.
func (h *Handle) UpdateService(ctx context.Context, s Service) error {
	r, err := Op{Kind: EditService, Service: s}.request()
	return h.one(ctx, r, err)
}

// DeleteService deletes a virtual service and its destinations.
func (h *Handle) DeleteService(ctx context.Context, k ServiceKey) error {
	r, err := Op{Kind: DeleteService, Service: serviceOfKey(k)}.request()
	return h.one(ctx, r, err)
}

// NewDestination adds a destination to the service k.
func (h *Handle) NewDestination(ctx context.Context, k ServiceKey, d Destination) error {
	r, err := Op{Kind: AddDest, Service: serviceOfKey(k), Dest: d}.request()
	return h.one(ctx, r, err)
}

// UpdateDestination changes the weight, thresholds and tunnel options of a
// destination of the service k. (The kernel also accepts a new forwarding
// method here, but Plan deletes and re-adds instead; see Plan.)
func (h *Handle) UpdateDestination(ctx context.Context, k ServiceKey, d Destination) error {
	r, err := Op{Kind: EditDest, Service: serviceOfKey(k), Dest: d}.request()
	return h.one(ctx, r, err)
}

// DeleteDestination removes a destination from the service k.
func (h *Handle) DeleteDestination(ctx context.Context, k ServiceKey, d DestKey) error {
	r, err := Op{Kind: DeleteDest, Service: serviceOfKey(k), Dest: Destination{Addr: d.Addr, Port: d.Port}}.request()
	return h.one(ctx, r, err)
}

// Apply performs ops in order, pipelining them on the socket. Every op is
// attempted even if an earlier one fails (as ipvsadm -R does); the errors
// are returned joined, each an *OpError.
func (h *Handle) Apply(ctx context.Context, ops []Op) error {
	reqs := make([]request, 0, len(ops))
	for _, o := range ops {
		r, err := o.request()
		if err != nil {
			return fmt.Errorf("ipvs: %s: %w", o, err)
		}
		reqs = append(reqs, r)
	}
	return h.batch(ctx, reqs)
}

// Flush deletes all virtual services.
func (h *Handle) Flush(ctx context.Context) error {
	_, err := h.exec(ctx, cmdFlush, modeChange, nil, "flush")
	return err
}

// Zero zeroes the counters of all services and destinations.
func (h *Handle) Zero(ctx context.Context) error {
	_, err := h.exec(ctx, cmdZero, modeChange, nil, "zero counters")
	return err
}

// ZeroService zeroes the counters of one service and its destinations.
func (h *Handle) ZeroService(ctx context.Context, k ServiceKey) error {
	attrs, err := serviceAttrs(serviceOfKey(k), false)
	if err != nil {
		return fmt.Errorf("ipvs: zero %s: %w", k, err)
	}
	_, err = h.exec(ctx, cmdZero, modeChange, attrs, "zero counters of "+k.String())
	return err
}

// Timeouts returns the TCP, TCP FIN and UDP connection timeouts.
func (h *Handle) Timeouts(ctx context.Context) (Timeouts, error) {
	r, err := h.exec(ctx, cmdGetConfig, modeQuery, nil, "get timeouts")
	if err != nil {
		return Timeouts{}, err
	}
	if len(r) == 0 {
		return Timeouts{}, errors.New("ipvs: get timeouts: no reply")
	}
	return decodeTimeouts(r[0])
}

// SetTimeouts sets the connection timeouts; zero fields stay unchanged.
func (h *Handle) SetTimeouts(ctx context.Context, t Timeouts) error {
	attrs, err := timeoutAttrs(t)
	if err != nil {
		return fmt.Errorf("ipvs: set timeouts: %w", err)
	}
	_, err = h.exec(ctx, cmdSetConfig, modeChange, attrs, "set timeouts")
	return err
}

// StartDaemon starts a connection sync daemon (master or backup).
func (h *Handle) StartDaemon(ctx context.Context, d Daemon) error {
	if d.State != DaemonMaster && d.State != DaemonBackup {
		return fmt.Errorf("ipvs: start sync daemon: state must be master or backup, not %d", d.State)
	}
	if d.Interface == "" || len(d.Interface) >= 16 {
		return fmt.Errorf("ipvs: start sync daemon: bad interface name %q", d.Interface)
	}
	attrs, err := daemonAttrs(d, true)
	if err != nil {
		return fmt.Errorf("ipvs: start sync daemon: %w", err)
	}
	_, err = h.exec(ctx, cmdNewDaemon, modeChange, attrs, "start "+d.State.String()+" sync daemon")
	return err
}

// StopDaemon stops the sync daemon in state (master or backup).
func (h *Handle) StopDaemon(ctx context.Context, state DaemonState) error {
	attrs, err := daemonAttrs(Daemon{State: state}, false)
	if err != nil {
		return fmt.Errorf("ipvs: stop sync daemon: %w", err)
	}
	_, err = h.exec(ctx, cmdDelDaemon, modeChange, attrs, "stop "+state.String()+" sync daemon")
	return err
}

// Daemons returns the running sync daemons (none, one or both roles).
func (h *Handle) Daemons(ctx context.Context) ([]Daemon, error) {
	r, err := h.exec(ctx, cmdGetDaemon, modeDump, nil, "list sync daemons")
	if err != nil {
		return nil, err
	}
	var out []Daemon
	for _, b := range r {
		d, err := decodeDaemon(b)
		if err != nil {
			return nil, fmt.Errorf("ipvs: list sync daemons: %w", err)
		}
		if d.State != 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

func serviceOfKey(k ServiceKey) Service {
	return Service{Family: k.Family, Protocol: k.Protocol, Addr: k.Addr, Port: k.Port, FWMark: k.FWMark}
}
