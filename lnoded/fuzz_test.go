package lnoded

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// FuzzDesired parses arbitrary lnoded.cf text and, for every file the
// parser accepts, checks Desired's promises under arbitrary check results:
// every service and destination is one the kernel accepts, a destination
// has a weight above 0 only if it is a real server that is up (or the
// fallback), a quiescent=no service holds no real server that is down, and
// the fallback is there exactly when no real server is up.
func FuzzDesired(f *testing.F) {
	f.Add(seed("yes"), uint64(0))
	f.Add(seed("no")+"\tfallback=127.0.0.1:80 gate\n", uint64(1))
	f.Add("fallback=192.0.2.13\nvirtual=192.0.2.100:53\n\treal=192.0.2.11 masq 3\n\treal=192.0.2.12:54 ipip\n\tprotocol=udp\n\tpersistent=10\n", uint64(2))
	f.Add("virtual=7\n\treal=192.0.2.11 gate\nvirtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 gate 0\n", uint64(3))
	f.Fuzz(func(t *testing.T, src string, bits uint64) {
		cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), &config.Options{
			Services: []byte("http 80/tcp\n"),
			Hostname: "fuzz",
			// No network lookups while fuzzing.
			LookupHost: func(context.Context, string, bool) (netip.Addr, error) { return netip.Addr{}, errNoLookup },
		})
		if err != nil {
			return
		}
		health := map[RealKey]Health{}
		i := 0
		for vi := range cfg.Virtuals {
			v := &cfg.Virtuals[vi]
			svc, err := ServiceOf(v)
			if err != nil {
				continue
			}
			for ri := range v.Reals {
				k := RealKey{svc.Key(), DestOf(v, &v.Reals[ri]).Key()}
				health[k] = Health(bits >> (2 * (i % 32)) & 3)
				i++
			}
		}
		table, _ := Desired(cfg, Input{Health: health, ReAdd: bits&1 == 1})
		for _, vs := range table {
			if err := vs.Validate(); err != nil {
				t.Fatalf("service %s: %v", vs.Key(), err)
			}
			v := virtualOf(cfg, vs.Key())
			if v == nil {
				t.Fatalf("service %s is not in the file", vs.Key())
			}
			reals := map[ipvs.DestKey]bool{}
			up := false
			for ri := range v.Reals {
				dk := DestOf(v, &v.Reals[ri]).Key()
				reals[dk] = true
				if health[RealKey{vs.Key(), dk}] == Up {
					up = true
				}
			}
			fb, hasFB := fallbackDest(v)
			sawFB := false
			for _, d := range vs.Destinations {
				if err := d.Validate(vs.Family); err != nil {
					t.Fatalf("%s -> %s: %v", vs.Key(), destString(d.Key()), err)
				}
				h := health[RealKey{vs.Key(), d.Key()}]
				switch {
				case reals[d.Key()]:
					if d.Weight > 0 && h != Up {
						t.Fatalf("%s -> %s has weight %d but is %v", vs.Key(), destString(d.Key()), d.Weight, h)
					}
					if !v.Quiescent && h != Up {
						t.Fatalf("quiescent=no, yet %s -> %s (%v) is in", vs.Key(), destString(d.Key()), h)
					}
				case hasFB && d.Key() == fb.Key():
					sawFB = true
				default:
					t.Fatalf("%s -> %s is neither a real server nor the fallback", vs.Key(), destString(d.Key()))
				}
			}
			if hasFB && !reals[fb.Key()] && sawFB == up {
				t.Fatalf("%s: fallback present=%v with a real server up=%v", vs.Key(), sawFB, up)
			}
		}
	})
}

func virtualOf(cfg *config.Config, k ipvs.ServiceKey) *config.Virtual {
	for i := range cfg.Virtuals {
		if s, err := ServiceOf(&cfg.Virtuals[i]); err == nil && s.Key() == k {
			return &cfg.Virtuals[i]
		}
	}
	return nil
}

var errNoLookup = errors.New("no host lookups while fuzzing")
