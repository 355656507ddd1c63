// Package demo runs directord's testbed scenarios: an LVS-DR network of
// client, director and real servers in network namespaces, real traffic
// through the VIP, and a summary of what the client saw.
//
// It must run where the kernel has IPVS (on such a host, or inside the
// testbed VM); cmd/directord's `testbed` command arranges that.
package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/testbed/netns"
)

// Addresses of the testbed LAN, from the documentation ranges.
var (
	lanPrefix   = 24
	vip         = netip.MustParseAddr("192.0.2.100")
	clientAddr  = netip.MustParseAddr("192.0.2.10")
	directorIP  = netip.MustParseAddr("192.0.2.1")
	realServers = []struct {
		name string
		addr netip.Addr
	}{
		{"rs1", netip.MustParseAddr("192.0.2.11")},
		{"rs2", netip.MustParseAddr("192.0.2.12")},
	}
)

// Options say what a scenario does.
type Options struct {
	// Requests is how many HTTP requests the client sends through the VIP.
	Requests int
	// Interval is the pause between two requests.
	Interval time.Duration
	// Progress receives one line per step, for the operator watching.
	Progress io.Writer
	// Table, when set, receives the director's IPVS table (ipvsadm -Ln --stats
	// layout) after the traffic.
	Table io.Writer
}

// Summary is what the client saw; its JSON names are a stable interface for
// scripts.
type Summary struct {
	Scenario       string         `json:"scenario"`
	RequestsSent   int            `json:"requests_sent"`
	RequestsLost   int            `json:"requests_lost"`
	LongestGapMS   float64        `json:"longest_gap_ms"`
	AnsweredBy     map[string]int `json:"answered_by"`
	IPVSServices   int            `json:"ipvs_services"`
	IPVSOps        int            `json:"ipvs_ops"`
	SetupMS        float64        `json:"setup_ms"`
	TrafficMS      float64        `json:"traffic_ms"`
	FirstErrorText string         `json:"first_error,omitempty"`
}

// Scenarios lists the scenario names Run accepts, with what each shows.
func Scenarios() map[string]string {
	return map[string]string{
		"basic": "one director balances HTTP over two DR real servers (programmed through ipvs.Reconcile)",
	}
}

// Run builds the testbed, runs the named scenario and tears everything down,
// also when ctx is cancelled.
func Run(ctx context.Context, scenario string, o Options) (Summary, error) {
	if _, ok := Scenarios()[scenario]; !ok {
		return Summary{}, fmt.Errorf("unknown scenario %q (known: %s)", scenario, strings.Join(scenarioNames(), ", "))
	}
	if o.Requests <= 0 {
		o.Requests = 100
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(o.Progress, "testbed: "+format+"\n", args...) }

	start := time.Now()
	topo, err := netns.New()
	if err != nil {
		return Summary{}, err
	}
	defer func() {
		step("tearing down")
		topo.Close()
	}()

	step("building the LAN: client %s, director %s, real servers %s and %s, VIP %s", clientAddr, directorIP, realServers[0].addr, realServers[1].addr, vip)
	lan, err := topo.Switch("lan")
	if err != nil {
		return Summary{}, err
	}
	host := func(name string, addr netip.Addr) (*netns.Host, error) {
		h, err := topo.Host(name)
		if err != nil {
			return nil, err
		}
		if _, err := topo.Plug(h, "eth0", lan); err != nil {
			return nil, err
		}
		return h, h.AddAddr("eth0", netip.PrefixFrom(addr, lanPrefix))
	}
	client, err := host("client", clientAddr)
	if err != nil {
		return Summary{}, err
	}
	director, err := host("director", directorIP)
	if err != nil {
		return Summary{}, err
	}
	if err := director.AddAddr("eth0", netip.PrefixFrom(vip, 32)); err != nil {
		return Summary{}, err
	}

	var servers sync.WaitGroup
	defer servers.Wait()
	for _, rs := range realServers {
		h, err := host(rs.name, rs.addr)
		if err != nil {
			return Summary{}, err
		}
		step("preparing real server %s: VIP on lo, arp_ignore=1, arp_announce=2, HTTP on %s:80", rs.name, vip)
		if err := prepareRealServer(h); err != nil {
			return Summary{}, fmt.Errorf("real server %s: %w", rs.name, err)
		}
		srv, err := serveHTTP(h, rs.name, &servers)
		if err != nil {
			return Summary{}, fmt.Errorf("real server %s: %w", rs.name, err)
		}
		defer srv.Close()
	}

	step("programming IPVS on the director: TCP %s:80 rr, DR to both real servers", vip)
	var h *ipvs.Handle
	if err := director.Do(func() (err error) { h, err = ipvs.Open(); return err }); err != nil {
		return Summary{}, fmt.Errorf("director: %w", err)
	}
	defer h.Close()
	desired := ipvs.Table{{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: vip, Port: 80, Scheduler: "rr"}}}
	for _, rs := range realServers {
		desired[0].Destinations = append(desired[0].Destinations, ipvs.Destination{Addr: rs.addr, Port: 80, Forward: ipvs.Route, Weight: 1})
	}
	ops, err := ipvs.Reconcile(ctx, h, desired, ipvs.OwnKeys(desired[0].Key()))
	if err != nil {
		return Summary{}, fmt.Errorf("director: %w", err)
	}
	sum := Summary{Scenario: scenario, IPVSOps: len(ops), AnsweredBy: map[string]int{}}
	sum.SetupMS = ms(time.Since(start))

	step("client sends %d HTTP requests to http://%s/ every %v", o.Requests, vip, o.Interval)
	trafficStart := time.Now()
	if err := sendRequests(ctx, client, o, &sum); err != nil {
		return sum, err
	}
	sum.TrafficMS = ms(time.Since(trafficStart))

	info, err := h.Info(ctx)
	if err != nil {
		return sum, err
	}
	// The kernel publishes counters every 2 s; wait so the table shows this run.
	select {
	case <-time.After(2100 * time.Millisecond):
	case <-ctx.Done():
		return sum, ctx.Err()
	}
	table, err := h.Table(ctx)
	if err != nil {
		return sum, err
	}
	sum.IPVSServices = len(table)
	if o.Table != nil {
		if err := ipvs.WriteList(o.Table, info, table, ipvs.ListOptions{Format: ipvs.ListStats}); err != nil {
			return sum, err
		}
	}
	step("done: %d sent, %d lost, answered by %v", sum.RequestsSent, sum.RequestsLost, sum.AnsweredBy)
	return sum, nil
}

func scenarioNames() []string {
	var names []string
	for n := range Scenarios() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// prepareRealServer does what seed 003 does by hand on each real server: the
// VIP on lo as /32, and ARP settings so only the director answers for it.
func prepareRealServer(h *netns.Host) error {
	for k, v := range map[string]string{
		"net.ipv4.conf.all.arp_ignore":   "1",
		"net.ipv4.conf.lo.arp_ignore":    "1",
		"net.ipv4.conf.all.arp_announce": "2",
		"net.ipv4.conf.lo.arp_announce":  "2",
	} {
		if err := h.Sysctl(k, v); err != nil {
			return err
		}
	}
	return h.AddAddr("lo", netip.PrefixFrom(vip, 32))
}

// serveHTTP answers every request on VIP:80 in h's namespace with the server's
// name, so the client can tell who answered.
func serveHTTP(h *netns.Host, name string, wg *sync.WaitGroup) (*http.Server, error) {
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(vip, 80).String())
		return err
	}); err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, name)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Serve(ln)
	}()
	return srv, nil
}

// sendRequests sends o.Requests requests, each on a new connection (so the
// scheduler picks a real server for each), and records who answered and the
// longest time between two answered requests.
func sendRequests(ctx context.Context, client *netns.Host, o Options, sum *Summary) error {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := client.Do(func() (err error) {
			d := net.Dialer{Timeout: time.Second}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	hc := &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
		Timeout:   2 * time.Second,
	}
	defer hc.CloseIdleConnections()
	url := "http://" + vip.String() + "/"
	lastOK := time.Now()
	for i := 0; i < o.Requests; i++ {
		if i > 0 && o.Interval > 0 {
			select {
			case <-time.After(o.Interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sum.RequestsSent++
		who, err := get(ctx, hc, url)
		if err != nil {
			sum.RequestsLost++
			if sum.FirstErrorText == "" {
				sum.FirstErrorText = err.Error()
			}
			continue
		}
		now := time.Now()
		if gap := ms(now.Sub(lastOK)); gap > sum.LongestGapMS && i > 0 {
			sum.LongestGapMS = gap
		}
		lastOK = now
		sum.AnsweredBy[who]++
	}
	return nil
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 256)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
