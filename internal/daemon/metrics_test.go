package daemon

import (
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/cluster"
	"github.com/directord/directord/ipvs"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsEvents: the counted metrics (the rest are read from the same
// state as status when scraped, and checked end to end in e2etest).
func TestMetricsEvents(t *testing.T) {
	m := newMetrics(nil)
	m.onEvent(cluster.Event{At: time.Now(), Kind: cluster.EventLate, Text: "Late heartbeat: Node node2: interval 3010 ms"})
	m.onEvent(cluster.Event{At: time.Now(), Kind: cluster.EventLinkDead, Text: "Link node2:eth1 dead."})
	var h dto.Metric
	m.lateness.Write(&h)
	if h.Histogram.GetSampleCount() != 1 || h.Histogram.GetSampleSum() != 3.01 {
		t.Errorf("lateness histogram: %d samples, sum %v; want one of 3.01s", h.Histogram.GetSampleCount(), h.Histogram.GetSampleSum())
	}
	var c dto.Metric
	m.events.WithLabelValues(string(cluster.EventLinkDead)).Write(&c)
	if c.Counter.GetValue() != 1 {
		t.Errorf("link-dead events = %v", c.Counter.GetValue())
	}
	m.onApply([]ipvs.Op{{Kind: ipvs.EditDest}, {Kind: ipvs.EditDest}, {Kind: ipvs.AddService}}, nil)
	m.ipvsOps.WithLabelValues("edit_real").Write(&c)
	if c.Counter.GetValue() != 2 {
		t.Errorf("edit_real ops = %v", c.Counter.GetValue())
	}
}
