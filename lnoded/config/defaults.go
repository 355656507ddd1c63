package config

import (
	"strconv"
	"strings"
	"time"
)

// resolveDefaults applies the globals to each virtual service and works out
// each real server's check parameters, as ldirectord's ld_setup and its
// run-time lookups (fallback_find, the "defined $v->{x} ? … : $X" choices)
// do. It runs once the whole file is read because globals may come after
// the virtual blocks that use them.
func (p *parser) resolveDefaults() {
	g := &p.cfg.Global
	secs := func(n int64) time.Duration { return time.Duration(n) * time.Second }
	globalCT, globalNT := int64(g.CheckTimeout/time.Second), int64(g.NegotiateTimeout/time.Second)
	for _, b := range p.virtuals {
		v := b.v

		// checktimeout and negotiatetimeout default to each other before
		// the globals and the built-in 5s and 30s.
		v.CheckTimeout = secs(firstPositive(b.checkTimeout, b.negotiateTimeout, globalCT, globalNT, 5))
		v.NegotiateTimeout = secs(firstPositive(b.negotiateTimeout, b.checkTimeout, globalNT, globalCT, 30))
		v.CheckCount = int(firstPositive(b.checkCount, int64(g.CheckCount)))
		v.FailureCount = int(firstPositive(b.failureCount, int64(g.FailureCount)))
		// A per-virtual checkinterval only takes effect in fork mode.
		v.CheckInterval = g.CheckInterval
		if b.checkInterval > 0 {
			if g.Fork {
				v.CheckInterval = secs(b.checkInterval)
			} else {
				p.warnf(v.Line, "checkinterval in this virtual service is ignored when fork = no")
			}
		}
		v.Quiescent = pick(b.quiescent, g.Quiescent)
		v.CleanStop = pick(b.cleanStop, g.CleanStop)
		v.EmailAlert = pick(b.emailAlert, g.EmailAlert)
		v.EmailAlertStatus = pick(b.emailAlertStatus, g.EmailAlertStatus)
		v.SMTP = pick(b.smtp, g.SMTP)
		v.FallbackCommand = pick(b.fallbackCmd, g.FallbackCommand)
		v.EmailAlertFreq = g.EmailAlertFreq
		if b.emailAlertFreq != nil {
			v.EmailAlertFreq = secs(*b.emailAlertFreq)
		}
		if b.netmask == "" {
			v.PersistenceBits = 32
			if v.IPv6 {
				v.PersistenceBits = 128
			}
		}
		v.Fallback = p.fallbackFor(b)

		for i := range v.Reals {
			r := &v.Reals[i]
			switch {
			case b.checkPortSet:
				r.CheckPort = v.CheckPort
			case r.Port > 0:
				r.CheckPort = r.Port
			default:
				r.CheckPort = v.Service.DefaultPort()
			}
			// ld_setup uses the real's own pair only when it has both; a
			// request of its own survives without a receive (see realLine).
			own := b.realOwn[i]
			r.URL = checkURL(&v, r, own.request && own.receive)
			if !own.request {
				r.Request = v.Request
			}
			if !own.receive {
				r.Receive = v.Receive
			}
		}
		p.cfg.Virtuals = append(p.cfg.Virtuals, v)
	}
}

// fallbackFor is fallback_find: the virtual's own fallback, else the global
// one of its family and protocol with the virtual's port when it has none.
func (p *parser) fallbackFor(b *vblock) *Fallback {
	if b.fallback != nil {
		f := *b.fallback
		return &f
	}
	g := p.cfg.Global.Fallback
	if b.v.IPv6 {
		g = p.cfg.Global.Fallback6
	}
	if g == nil {
		return nil
	}
	var f Fallback
	switch b.v.Protocol {
	case TCP:
		f = g.TCP
	case UDP:
		f = g.UDP
	default:
		// ldirectord dies dereferencing the missing "fwm" entry; lnoded
		// gives firewall-mark services no global fallback.
		return nil
	}
	if f.Port == 0 {
		f.Port = b.v.Port
	}
	return &f
}

// checkURL builds the URL ldirectord's ld_setup gives a real server.
func checkURL(v *Virtual, r *Real, perReal bool) string {
	schema := string(v.Service)
	if v.Service == ServiceHTTPProxy {
		schema = "http"
	}
	host := r.Addr.String()
	if r.Addr.Is6() {
		host = "[" + host + "]"
	}
	port := ""
	if r.CheckPort > 0 {
		port = strconv.Itoa(int(r.CheckPort))
	}
	if perReal {
		uri := strings.TrimPrefix(r.Request, "/")
		if strings.Contains(r.Request, schema+"://") {
			return uri
		}
		return schema + "://" + host + ":" + port + "/" + uri
	}
	uri := strings.TrimPrefix(v.Request, "/")
	if v.Service == ServiceHTTPProxy {
		return uri
	}
	return schema + "://" + host + ":" + port + "/" + uri
}

func firstPositive(vals ...int64) int64 {
	for _, v := range vals {
		if v > 0 {
			return v
		}
	}
	return 0
}

func pick[T any](override *T, global T) T {
	if override != nil {
		return *override
	}
	return global
}
