package ipvs

import (
	"context"
	"fmt"
)

// OpKind is the kind of an Op.
type OpKind int

// Operation kinds; each is one netlink request.
const (
	AddService OpKind = iota + 1
	EditService
	DeleteService
	AddDest
	EditDest
	DeleteDest
)

// Op is one change to the kernel's table. For destination ops, Service
// names the service (only its key is used).
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Destination
}

// String renders the op as the ipvsadm command that does the same, e.g.
// "-e -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 3 -x 0 -y 0".
func (o Op) String() string {
	k := o.Service.Key()
	svc := func(c string) string {
		return c + " " + k.String() + serviceOptions(o.Service.normalized())
	}
	dst := func(c string) string {
		d := o.Dest
		return fmt.Sprintf("%s %s -r %s %s -w %d -x %d -y %d", c, k, addrPort(d.Addr, d.Port),
			fwdSwitch(d.Forward), d.Weight, d.UpperThreshold, d.LowerThreshold)
	}
	switch o.Kind {
	case AddService:
		return svc("-A")
	case EditService:
		return svc("-E")
	case DeleteService:
		return "-D " + k.String()
	case AddDest:
		return dst("-a")
	case EditDest:
		return dst("-e")
	case DeleteDest:
		return "-d " + k.String() + " -r " + addrPort(o.Dest.Addr, o.Dest.Port)
	}
	return fmt.Sprintf("op(%d)", o.Kind)
}

// request encodes the op as a netlink request.
func (o Op) request() (request, error) {
	r := request{op: o.String()}
	k := o.Service.Key()
	var err error
	switch o.Kind {
	case AddService, EditService:
		if err := o.Service.Validate(); err != nil {
			return r, err
		}
		r.cmd = cmdNewService
		if o.Kind == EditService {
			r.cmd = cmdSetService
		}
		r.attrs, err = serviceAttrs(o.Service, true)
	case DeleteService:
		r.cmd = cmdDelService
		r.attrs, err = serviceAttrs(o.Service, false)
	case AddDest, EditDest:
		if err := o.Dest.Validate(k.Family); err != nil {
			return r, err
		}
		r.cmd = cmdNewDest
		if o.Kind == EditDest {
			r.cmd = cmdSetDest
		}
		r.attrs, err = destAttrs(k, o.Dest, true)
	case DeleteDest:
		if !o.Dest.Addr.IsValid() {
			return r, fmt.Errorf("destination without address")
		}
		r.cmd = cmdDelDest
		r.attrs, err = destAttrs(k, o.Dest, false)
	default:
		return r, fmt.Errorf("unknown op kind %d", o.Kind)
	}
	return r, err
}

// Plan returns the fewest ops that turn actual into desired, touching only
// services for which owns returns true (owns nil: every service).
// Services in desired must be owned.
//
// An existing service or destination is never deleted and re-added when an
// edit can change it, because deleting drops its connections: scheduler,
// scheduler flags, persistence, netmask and persistence engine of a
// service, and weight, thresholds and tunnel options of a destination are
// edits. A service's protocol, address, port or mark, and a destination's
// address or port, are its identity: a change is a different service or
// destination (delete one, add the other). A destination's forwarding
// method is deleted and re-added too, so that no connection keeps a
// forwarding method that no longer applies.
//
// Ops come in this order: deletions of services, then per desired service
// (in desired's order) its add or edit, deletions of its destinations,
// edits, and additions.
func Plan(desired, actual Table, owns func(ServiceKey) bool) ([]Op, error) {
	if owns == nil {
		owns = func(ServiceKey) bool { return true }
	}
	want := make(map[ServiceKey]int, len(desired))
	for i, vs := range desired {
		k := vs.Key()
		if err := vs.Validate(); err != nil {
			return nil, fmt.Errorf("ipvs: plan: %w", err)
		}
		if _, dup := want[k]; dup {
			return nil, fmt.Errorf("ipvs: plan: service %s is desired twice", k)
		}
		if !owns(k) {
			return nil, fmt.Errorf("ipvs: plan: desired service %s is not owned", k)
		}
		seen := map[DestKey]bool{}
		for _, d := range vs.Destinations {
			if err := d.Validate(k.Family); err != nil {
				return nil, fmt.Errorf("ipvs: plan: service %s: %w", k, err)
			}
			if seen[d.Key()] {
				return nil, fmt.Errorf("ipvs: plan: service %s: destination %s is desired twice", k, addrPort(d.Addr, d.Port))
			}
			seen[d.Key()] = true
		}
		want[k] = i
	}
	have := make(map[ServiceKey]int, len(actual))
	for i, vs := range actual {
		have[vs.Key()] = i
	}

	var ops []Op
	for _, vs := range actual {
		k := vs.Key()
		if _, ok := want[k]; !ok && owns(k) {
			ops = append(ops, Op{Kind: DeleteService, Service: vs.Service})
		}
	}
	for _, vs := range desired {
		k := vs.Key()
		ws := vs.Service.normalized()
		i, exists := have[k]
		if !exists {
			ops = append(ops, Op{Kind: AddService, Service: ws})
			for _, d := range vs.Destinations {
				ops = append(ops, Op{Kind: AddDest, Service: ws, Dest: d})
			}
			continue
		}
		cur := actual[i]
		if !sameServiceSettings(ws, cur.Service.normalized()) {
			ops = append(ops, Op{Kind: EditService, Service: ws})
		}
		ops = append(ops, planDests(ws, vs.Destinations, cur.Destinations)...)
	}
	return ops, nil
}

func planDests(s Service, desired, actual []Destination) []Op {
	cur := make(map[DestKey]Destination, len(actual))
	for _, d := range actual {
		cur[d.Key()] = d
	}
	want := make(map[DestKey]bool, len(desired))
	for _, d := range desired {
		want[d.Key()] = true
	}
	var dels, edits, adds []Op
	for _, d := range actual {
		if !want[d.Key()] {
			dels = append(dels, Op{Kind: DeleteDest, Service: s, Dest: d})
		}
	}
	for _, d := range desired {
		c, ok := cur[d.Key()]
		switch {
		case !ok:
			adds = append(adds, Op{Kind: AddDest, Service: s, Dest: d})
		case c.Forward != d.Forward:
			dels = append(dels, Op{Kind: DeleteDest, Service: s, Dest: c})
			adds = append(adds, Op{Kind: AddDest, Service: s, Dest: d})
		case !sameDestSettings(c, d):
			edits = append(edits, Op{Kind: EditDest, Service: s, Dest: d})
		}
	}
	return append(append(dels, edits...), adds...)
}

func sameServiceSettings(a, b Service) bool {
	return a.Scheduler == b.Scheduler && a.Flags&^FlagHashed == b.Flags&^FlagHashed &&
		a.Timeout == b.Timeout && a.Netmask == b.Netmask && a.PE == b.PE
}

func sameDestSettings(a, b Destination) bool {
	if a.Weight != b.Weight || a.UpperThreshold != b.UpperThreshold || a.LowerThreshold != b.LowerThreshold {
		return false
	}
	if a.Forward == Tunnel {
		return a.TunnelType == b.TunnelType && a.TunnelPort == b.TunnelPort && a.TunnelFlags == b.TunnelFlags
	}
	return true
}

// Reconcile reads the kernel's table, plans the changes that make the
// owned services equal desired, and applies them. It returns the ops it
// issued.
func Reconcile(ctx context.Context, h *Handle, desired Table, owns func(ServiceKey) bool) ([]Op, error) {
	actual, err := h.Table(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipvs: reconcile: %w", err)
	}
	ops, err := Plan(desired, actual, owns)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return ops, h.Apply(ctx, ops)
}

// OwnKeys returns an ownership predicate for Plan that owns exactly the
// given services.
func OwnKeys(keys ...ServiceKey) func(ServiceKey) bool {
	set := make(map[ServiceKey]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	return func(k ServiceKey) bool { return set[k] }
}
