package lnoded

import (
	"strings"
	"time"

	"github.com/directord/directord/checks"
)

// RealState is what the module knows of one real server of one virtual
// service.
type RealState struct {
	Key RealKey
	// Virtual names the virtual service as ldirectord does: "tcp:192.0.2.100:80".
	Virtual string
	// Health is the check's verdict, or Maintenance.
	Health Health
	// Check says in words what is checked.
	Check string
	// Reason is why the last check failed (empty when it passed).
	Reason string
	// Since is when the real server entered its health (zero while Unknown).
	Since time.Time
	// LastCheck is when the last check finished (zero before the first).
	LastCheck time.Time
	// Latency is how long the last check took.
	Latency time.Duration
	// Failures is how many checks in a row have failed (0 after a pass).
	Failures int
	// LastFailure and LastFailureAt are the reason and time of the last
	// failed check, kept after the server recovers so that an operator can
	// see why it went away.
	LastFailure   string
	LastFailureAt time.Time
}

// failure is a real server's last failed check.
type failure struct {
	reason string
	at     time.Time
}

// State returns the state of every configured real server, in
// configuration order.
func (m *Module) State() []RealState {
	status := map[string]checks.JobStatus{}
	for _, st := range m.sched.Status() {
		status[st.ID] = st
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]RealState, 0, len(m.plan.reals))
	for _, ri := range m.plan.reals {
		st := status[ri.jobID]
		rs := RealState{
			Key:       ri.key,
			Virtual:   ri.virtual.Protocol.String() + ":" + serviceString(ri.key.Service),
			Check:     ri.check,
			Since:     st.Since,
			LastCheck: st.LastTime,
		}
		switch st.State {
		case checks.Up:
			rs.Health = Up
		case checks.Down:
			rs.Health = Down
		}
		rs.Latency, rs.Failures = st.Last.Latency, st.Failures
		if !st.Last.Up && !st.LastTime.IsZero() {
			rs.Reason = reason(st.Last)
		}
		if f, ok := m.failed[ri.key]; ok {
			rs.LastFailure, rs.LastFailureAt = f.reason, f.at
		}
		if since, ok := m.maint[ri.key]; ok {
			rs.Health, rs.Reason, rs.Since = Maintenance, "Server in maintenance", since
		}
		out = append(out, rs)
	}
	return out
}

// String renders the state on one line, e.g.
// "tcp:192.0.2.100:80 -> 192.0.2.11:80 down since 12:00:01: connection refused".
func (s RealState) String() string {
	var b strings.Builder
	b.WriteString(s.Virtual + " -> " + destString(s.Key.Dest) + " " + s.Health.String())
	if !s.Since.IsZero() {
		b.WriteString(" since " + s.Since.Format(time.TimeOnly))
	}
	if s.Reason != "" {
		b.WriteString(": " + s.Reason)
	}
	return b.String()
}
