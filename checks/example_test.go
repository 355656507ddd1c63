package checks_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/directord/directord/checks"
)

// How lnoded builds checkers from a parsed virtual section and keeps them
// running: one Job per (virtual, real) pair, keyed by Config.Key so that
// virtual services checking a real server the same way share one probe.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "OK")
	}))
	defer srv.Close()
	rip := netip.MustParseAddrPort(srv.Listener.Addr().String())

	var jobs []checks.Job
	for _, vip := range []string{"192.0.2.1:80", "192.0.2.2:80"} {
		cfg := checks.Config{
			CheckType:        "negotiate",
			Service:          "http",
			Protocol:         "tcp",
			Addr:             rip, // real server IP and checkport
			Request:          "/health",
			Receive:          "OK",
			NegotiateTimeout: 5 * time.Second,
		}
		c, err := checks.New(cfg)
		if err != nil {
			fmt.Println(err) // e.g. an unsupported service
			return
		}
		jobs = append(jobs, checks.Job{
			ID:           "tcp " + vip + " -> " + rip.String(),
			Key:          cfg.Key(),
			Checker:      c,
			Interval:     time.Second, // checkinterval
			FailureCount: 3,           // failurecount
		})
	}

	ups := make(chan checks.Transition, len(jobs))
	s := checks.NewScheduler(checks.SchedulerConfig{
		OnTransition: func(t checks.Transition) { ups <- t },
	})
	if err := s.Update(jobs); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for range jobs {
		t := <-ups
		fmt.Println(t.From, "->", t.To)
	}
	cancel()
	<-done
	// Output:
	// unknown -> up
	// unknown -> up
}
