package lnoded

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/directord/directord/checks"
	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// realInfo is what the module keeps about one configured real server.
type realInfo struct {
	key     RealKey
	jobID   string
	virtual *config.Virtual
	real    *config.Real
	check   string // the checker's String, for State
}

// checkConfig fills the checks package's Config for real r of virtual v.
func checkConfig(v *config.Virtual, r *config.Real) checks.Config {
	ct := v.CheckType.String()
	if v.CheckType == config.CheckCombined {
		ct = strconv.Itoa(v.NumConnects)
	}
	c := checks.Config{
		CheckType:        ct,
		Service:          string(v.Service),
		Protocol:         v.Protocol.String(),
		RealPort:         r.Port,
		Request:          r.Request,
		Receive:          r.Receive,
		VirtualHost:      v.VirtualHost,
		HTTPMethod:       v.HTTPMethod,
		Login:            v.Login,
		Passwd:           v.Passwd,
		Database:         v.Database,
		Secret:           v.Secret,
		CheckCommand:     v.CheckCommand,
		CheckTimeout:     v.CheckTimeout,
		NegotiateTimeout: v.NegotiateTimeout,
		CheckCount:       v.CheckCount,
	}
	if v.Protocol == config.FWM {
		c.Virtual, c.VirtualPort = strconv.FormatUint(uint64(v.FWMark), 10), "0"
	} else {
		c.Virtual, c.VirtualPort = v.Addr.String(), strconv.Itoa(int(v.Port))
	}
	c.Addr = netip.AddrPortFrom(r.Addr, r.CheckPort)
	if v.DRPathCheck {
		c.DRPath = netip.AddrPortFrom(v.Addr, v.Port)
	}
	return c
}

// jobID names a real server of a virtual service in check transitions,
// ldirectord's way: "tcp:192.0.2.100:80 -> 192.0.2.11:80".
func jobID(v *config.Virtual, k RealKey) string {
	return v.Protocol.String() + ":" + serviceString(k.Service) + " -> " + destString(k.Dest)
}

// plan is the part of a configuration the module runs: the scheduler's jobs
// and what it knows about each real server.
type plan struct {
	cfg   *config.Config
	jobs  []checks.Job
	reals []realInfo
	byJob map[string]int // job ID → index in reals
	owned map[ipvs.ServiceKey]bool
	// unsupported lists the real servers whose checks directord cannot
	// run; they are kept down.
	unsupported []string
}

// newPlan validates cfg and builds the checkers for it. It fails, changing
// nothing anywhere, when a service cannot be programmed or a checker cannot
// be built for a reason other than an unsupported check type.
func newPlan(cfg *config.Config) (*plan, error) {
	p := &plan{cfg: cfg, byJob: map[string]int{}, owned: map[ipvs.ServiceKey]bool{}}
	var errs []error
	for i := range cfg.Virtuals {
		v := &cfg.Virtuals[i]
		svc, err := ServiceOf(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%w", cfg.File, err))
			continue
		}
		sk := svc.Key()
		if p.owned[sk] {
			errs = append(errs, fmt.Errorf("%s:%d: service %s is defined twice", cfg.File, v.Line, sk))
			continue
		}
		p.owned[sk] = true
		for j := range v.Reals {
			r := &v.Reals[j]
			rk := RealKey{sk, DestOf(v, r).Key()}
			id := jobID(v, rk)
			if _, dup := p.byJob[id]; dup {
				continue // ldirectord checks a repeated real line once too
			}
			cc := checkConfig(v, r)
			c, err := checks.New(cc)
			if errors.Is(err, checks.ErrUnsupported) {
				// Keep the file usable: such a real server stays down,
				// never up, as checks.New asks.
				p.unsupported = append(p.unsupported, fmt.Sprintf("%s:%d: %v", cfg.File, r.Line, err))
				c = checks.NewStatic(false, "unsupported check: "+err.Error())
			} else if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: real %s: %w", cfg.File, r.Line, rk.Dest.Addr, err))
				continue
			}
			p.byJob[id] = len(p.reals)
			p.reals = append(p.reals, realInfo{key: rk, jobID: id, virtual: v, real: r, check: c.String()})
			p.jobs = append(p.jobs, checks.Job{
				ID:           id,
				Key:          cc.Key(),
				Checker:      c,
				Interval:     v.CheckInterval,
				FailureCount: v.FailureCount,
			})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}
