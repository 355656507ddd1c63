package daemon

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/directord/directord/heartbeat/cluster"
	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/ipvs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the daemon's Prometheus metrics. Most are read from the live
// state when scraped (a collector), so they can never disagree with status;
// events the state does not keep (heartbeat lateness, IPVS ops) are counted.
type metrics struct {
	d   *Daemon
	reg *prometheus.Registry

	events   *prometheus.CounterVec
	ipvsOps  *prometheus.CounterVec
	ipvsErrs prometheus.Counter

	lateness prometheus.Histogram
}

var (
	descNodeState    = prometheus.NewDesc("directord_node_state", "This node's heartbeat status (1 for the current one).", []string{"state"}, nil)
	descHolding      = prometheus.NewDesc("directord_group_held", "Whether this node holds the resource group (1) or not (0).", []string{"group", "owner"}, nil)
	descTransitions  = prometheus.NewDesc("directord_transitions_total", "Resource group starts and stops carried out by this node.", nil, nil)
	descPeer         = prometheus.NewDesc("directord_peer_up", "Whether the peer is alive (1) or dead (0).", []string{"peer"}, nil)
	descPeerLate     = prometheus.NewDesc("directord_peer_late_heartbeats_total", "Late heartbeat warnings for the peer.", []string{"peer"}, nil)
	descPeerSilence  = prometheus.NewDesc("directord_peer_silence_seconds", "Time since the peer's last heartbeat.", []string{"peer"}, nil)
	descLink         = prometheus.NewDesc("directord_link_up", "Whether a heartbeat link to the peer is up.", []string{"peer", "link"}, nil)
	descPing         = prometheus.NewDesc("directord_ping_node_up", "Whether an ipfail ping node answers.", []string{"node"}, nil)
	descReal         = prometheus.NewDesc("directord_real_server_up", "Real server health: 1 up, 0 down, -1 unknown, -2 maintenance.", []string{"service", "real"}, nil)
	descRealCheck    = prometheus.NewDesc("directord_real_server_last_check_timestamp_seconds", "When the real server's last check finished.", []string{"service", "real"}, nil)
	descRealLatency  = prometheus.NewDesc("directord_real_server_check_latency_seconds", "How long the real server's last check took.", []string{"service", "real"}, nil)
	descRealFails    = prometheus.NewDesc("directord_real_server_check_failures", "Failed checks of the real server in a row (0 after a pass).", []string{"service", "real"}, nil)
	descRealLastFail = prometheus.NewDesc("directord_real_server_last_failure_timestamp_seconds", "When the real server's last failed check finished (kept after it recovers).", []string{"service", "real"}, nil)
	descSync         = prometheus.NewDesc("directord_ipvs_sync_master", "Whether this node's IPVS sync daemon is the master.", nil, nil)
	descHandedOver   = prometheus.NewDesc("directord_connections_handed_over_total", "Connections this node sent to the peer's backup sync daemon as it let groups go (graceful handovers).", nil, nil)
	descHandoffs     = prometheus.NewDesc("directord_handoffs_total", "Graceful handovers from a directord peer in which this node, taking a VIP over, forwarded the segments of connections it did not know yet to the peer (vip/handoff).", nil, nil)
	descReceives     = prometheus.NewDesc("directord_handoff_receives_total", "Graceful handovers to a directord peer in which this node, letting a VIP go, kept taking TCP for it for 2 s so that the segments the peer forwards still reach its IPVS (vip/handoff).", nil, nil)
	descForwarded    = prometheus.NewDesc("directord_handoff_forwarded_total", "TCP segments for a VIP this node passed back to the directord peer that just handed it over, because IPVS here did not know their connection yet (vip/handoff).", nil, nil)
	descResetsHeld   = prometheus.NewDesc("directord_reset_guard_dropped_total", "TCP resets from a VIP this node held back just after a directord peer handed it over (each a connection whose handover had not arrived yet).", nil, nil)
	descSvcConns     = prometheus.NewDesc("directord_ipvs_service_connections_total", "Connections scheduled by the virtual service.", []string{"service"}, nil)
	descSvcInBytes   = prometheus.NewDesc("directord_ipvs_service_in_bytes_total", "Bytes received by the virtual service.", []string{"service"}, nil)
	descSvcOutBytes  = prometheus.NewDesc("directord_ipvs_service_out_bytes_total", "Bytes sent by the virtual service.", []string{"service"}, nil)
	descDstActive    = prometheus.NewDesc("directord_ipvs_real_active_connections", "Active connections of a real server.", []string{"service", "real"}, nil)
	descDstInact     = prometheus.NewDesc("directord_ipvs_real_inactive_connections", "Inactive connections of a real server.", []string{"service", "real"}, nil)
	descDstWeight    = prometheus.NewDesc("directord_ipvs_real_weight", "Weight of a real server in the kernel.", []string{"service", "real"}, nil)
	descDstConns     = prometheus.NewDesc("directord_ipvs_real_connections_total", "Connections scheduled to a real server.", []string{"service", "real"}, nil)
)

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		d:   d,
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "directord_heartbeat_events_total", Help: "Heartbeat engine events by kind (link-dead, node-dead, late-heartbeat, …).",
		}, []string{"kind"}),
		ipvsOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "directord_ipvs_ops_total", Help: "IPVS netlink operations issued by lnoded, by kind.",
		}, []string{"kind"}),
		ipvsErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "directord_ipvs_apply_errors_total", Help: "IPVS updates that failed.",
		}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "directord_heartbeat_late_interval_seconds",
			Help:    "Intervals between the peer's heartbeats that exceeded warntime (each one a \"Late heartbeat\" warning).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}),
	}
	m.reg.MustRegister(m.events, m.ipvsOps, m.ipvsErrs, m.lateness, m, prometheus.NewGoCollector())
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// onEvent is the engine's OnEvent: it must not block.
func (m *metrics) onEvent(e cluster.Event) {
	m.events.WithLabelValues(string(e.Kind)).Inc()
	if e.Kind == cluster.EventLate {
		// "Late heartbeat: Node node2: interval 3010 ms", Heartbeat's line.
		if _, after, ok := strings.Cut(e.Text, "interval "); ok {
			if ms, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(after), " ms")); err == nil {
				m.lateness.Observe(float64(ms) / 1000)
			}
		}
	}
}

func (m *metrics) onApply(ops []ipvs.Op, err error) {
	for _, o := range ops {
		m.ipvsOps.WithLabelValues(opKind(o.Kind)).Inc()
	}
	if err != nil {
		m.ipvsErrs.Inc()
	}
}

func opKind(k ipvs.OpKind) string {
	switch k {
	case ipvs.AddService:
		return "add_service"
	case ipvs.EditService:
		return "edit_service"
	case ipvs.DeleteService:
		return "delete_service"
	case ipvs.AddDest:
		return "add_real"
	case ipvs.EditDest:
		return "edit_real"
	case ipvs.DeleteDest:
		return "delete_real"
	}
	return "unknown"
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeState, descHolding, descTransitions, descPeer, descPeerLate, descPeerSilence,
		descLink, descPing, descReal, descRealCheck, descRealLatency, descRealFails, descRealLastFail, descSync, descHandedOver, descResetsHeld, descForwarded, descHandoffs, descReceives, descSvcConns, descSvcInBytes, descSvcOutBytes,
		descDstActive, descDstInact, descDstWeight, descDstConns} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector from the same state status shows.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := m.d.Status(ctx)
	if err != nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	if st.HA.State != "" {
		gauge(descNodeState, 1, st.HA.State)
	}
	for _, g := range st.Groups {
		gauge(descHolding, b2f(g.State == StateRunning), g.Name, g.Owner)
	}
	counter(descTransitions, float64(st.HA.Transitions))
	if m.d.sync != nil {
		counter(descHandedOver, float64(m.d.sync.handedOver.Load()))
	}
	counter(descResetsHeld, float64(m.d.resetsHeldBack.Load()))
	counter(descForwarded, float64(m.d.handoffForwarded.Load()))
	counter(descHandoffs, float64(m.d.handoffs.Load()))
	counter(descReceives, float64(m.d.handoffReceives.Load()))
	m.d.mu.Lock()
	eng := m.d.engine
	m.d.mu.Unlock()
	if eng != nil {
		s := eng.State()
		if s.Peer.Name != "" {
			gauge(descPeer, b2f(s.Peer.Status != "" && s.Peer.Status != cluster.StatusDead), s.Peer.Name)
			counter(descPeerLate, float64(s.Peer.Late), s.Peer.Name)
			if !s.Peer.LastHeard.IsZero() {
				gauge(descPeerSilence, time.Since(s.Peer.LastHeard).Seconds(), s.Peer.Name)
			}
			for _, l := range s.Peer.Links {
				gauge(descLink, b2f(l.Up), s.Peer.Name, l.Interface)
			}
		}
		for _, p := range s.Ping {
			gauge(descPing, b2f(p.Up), p.Name)
		}
	}
	for _, r := range st.Reals {
		svc, real := r.Service.String(), addrPort(r)
		v := -1.0
		switch r.Health {
		case "up":
			v = 1
		case "down":
			v = 0
		case "maintenance":
			v = -2
		}
		gauge(descReal, v, svc, real)
		if !r.LastCheck.IsZero() {
			gauge(descRealCheck, float64(r.LastCheck.UnixNano())/1e9, svc, real)
			gauge(descRealLatency, r.Latency.Seconds(), svc, real)
			gauge(descRealFails, float64(r.Failures), svc, real)
		}
		if !r.LastFailureTime.IsZero() {
			gauge(descRealLastFail, float64(r.LastFailureTime.UnixNano())/1e9, svc, real)
		}
	}
	gauge(descSync, b2f(st.Sync.State == "master"))
	for _, vs := range st.IPVS.Table {
		svc := vs.Key().String()
		counter(descSvcConns, float64(vs.Stats.Conns), svc)
		counter(descSvcInBytes, float64(vs.Stats.InBytes), svc)
		counter(descSvcOutBytes, float64(vs.Stats.OutBytes), svc)
		for _, dst := range vs.Destinations {
			real := dst.Addr.String() + ":" + strconv.Itoa(int(dst.Port))
			if dst.Addr.Is6() {
				real = "[" + dst.Addr.String() + "]:" + strconv.Itoa(int(dst.Port))
			}
			gauge(descDstActive, float64(dst.ActiveConns), svc, real)
			gauge(descDstInact, float64(dst.InactConns), svc, real)
			gauge(descDstWeight, float64(dst.Weight), svc, real)
			counter(descDstConns, float64(dst.Stats.Conns), svc, real)
		}
	}
}

func addrPort(r control.Real) string {
	if r.Addr.Is6() {
		return "[" + r.Addr.String() + "]:" + strconv.Itoa(int(r.Port))
	}
	return r.Addr.String() + ":" + strconv.Itoa(int(r.Port))
}
