package checks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchServerEnv makes the test binary a plain HTTP server instead, so that a
// benchmark can measure the checker's CPU apart from the server's.
const benchServerEnv = "DIRECTORD_CHECKS_BENCH_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) != "" {
		serveBench()
		return
	}
	os.Exit(m.Run())
}

func serveBench() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>health: OK</html>\n")
	})}
	go func() {
		// Exit with the parent: it holds our stdin.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	srv.Serve(ln)
}

// benchServer starts the out-of-process HTTP server.
func benchServer(b *testing.B) netip.AddrPort {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return netip.MustParseAddrPort(strings.TrimSpace(line))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHTTPCheck measures GET-and-match checks against a loopback
// server in another process. It reports checks/s (wall clock) and the
// checker process's CPU per check, from which checks/s per core follows.
// "new-conn" is the checker as shipped (one connection per check, as
// ldirectord); "keep-alive" reuses connections, for comparison.
func BenchmarkHTTPCheck(b *testing.B) {
	addr := benchServer(b)
	for _, mode := range []string{"new-conn", "keep-alive"} {
		b.Run(mode, func(b *testing.B) {
			c, err := NewHTTP(Config{Service: "http", Addr: addr, Request: "/health", Receive: "health: OK", NegotiateTimeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			if mode == "keep-alive" {
				tr := c.client.Transport.(*http.Transport).Clone()
				tr.DisableKeepAlives = false
				tr.MaxIdleConnsPerHost = 256
				c.client = &http.Client{Transport: tr, CheckRedirect: lwpRedirect}
			}
			// Warm up, and prove the check passes.
			if r := c.Check(context.Background()); !r.Up {
				b.Fatal(r)
			}
			b.SetParallelism(16)
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := c.Check(context.Background()); !r.Up {
						b.Error(r)
						return
					}
				}
			})
			cpu, wall := cpuTime()-cpu0, time.Since(t0)
			b.ReportMetric(float64(b.N)/wall.Seconds(), "checks/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/check")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "checks/cpu-s")
		})
	}
}

// BenchmarkScheduler measures the scheduler's own cost per check: 10,000
// jobs whose checks return at once, each due again immediately.
func BenchmarkScheduler(b *testing.B) {
	var n atomic.Int64
	counting := countingChecker{&n}
	s := NewScheduler(SchedulerConfig{Concurrency: 256, Jitter: -1})
	jobs := make([]Job, 10000)
	for i := range jobs {
		jobs[i] = Job{ID: fmt.Sprint(i), Checker: counting, Interval: time.Nanosecond}
	}
	s.Update(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	go func() { done <- s.Run(ctx) }()
	for n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	b.ReportMetric(float64(n.Load())/wall.Seconds(), "checks/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n.Load()), "cpu-ns/check")
}

type countingChecker struct{ n *atomic.Int64 }

func (c countingChecker) Check(context.Context) Result {
	c.n.Add(1)
	return Result{Up: true}
}
func (countingChecker) String() string { return "counting" }
