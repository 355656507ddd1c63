package lnoded

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/directord/directord/checks"
	"github.com/directord/directord/lnoded/config"
)

// onResult receives every check result of every real server (through
// checks.SchedulerConfig.OnResult): it appends it to the virtual service's
// monitorfile, and, as ldirectord does after its checks, repeats the e-mail
// alerts due.
func (m *Module) onResult(jr checks.JobResult) {
	m.mu.Lock()
	jobs := len(m.plan.jobs)
	var v *config.Virtual
	var r *config.Real
	if i, ok := m.plan.byJob[jr.ID]; ok {
		v, r = m.plan.reals[i].virtual, m.plan.reals[i].real
		if !jr.Result.Up {
			// Every failure, also one that does not (yet) take the server
			// down, kept after it recovers (State's LastFailure).
			if m.failed == nil {
				m.failed = map[RealKey]failure{}
			}
			m.failed[m.plan.reals[i].key] = failure{reason: reason(jr.Result), at: jr.Time}
		}
	}
	m.mu.Unlock()
	if !m.notes.checked.Load() && m.notes.firstResult(jr.ID) >= jobs && m.allChecked() {
		// The first round of checks is over: the next reconcile ends
		// "starting" (see notifier.settled).
		m.notes.checked.Store(true)
		m.wake()
	}
	m.notes.resend()
	if v == nil || v.MonitorFile == "" {
		return
	}
	msg := jr.Result.Message
	if !jr.Result.Up {
		msg = reason(jr.Result)
	}
	line := MonitorLine(jr.Time, os.Getpid(), v, r, jr.Result.Up, msg)
	m.notes.monitor(v.MonitorFile, line)
}

// allChecked tells whether every job has had a result.
func (m *Module) allChecked() bool {
	if m.sched == nil {
		return false
	}
	for _, st := range m.sched.Status() {
		if st.State == checks.Unknown {
			return false
		}
	}
	return true
}

// monitor appends line to file, logging a failure once until a write
// succeeds again. ldirectord dies when it cannot write the file; lnoded
// keeps checking.
func (n *notifier) monitor(file, line string) {
	err := appendFile(file, line)
	n.mu.Lock()
	failing := n.monErr[file]
	n.monErr[file] = err != nil
	n.mu.Unlock()
	switch {
	case err != nil && !failing:
		n.log.Error("Error writing to monitorfile", "file", file, "err", err)
	case err == nil && failing:
		n.log.Info("Writing to monitorfile again", "file", file)
	}
}

func appendFile(file, line string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// monitorEscape is ldirectord's URI-escaping of '%', '|' and line breaks in
// a monitorfile message.
var monitorEscape = regexp.MustCompile(`[%|\r\n]`)

// colonRun is what Perl's tr/:/ /s squeezes into one space.
var colonRun = regexp.MustCompile(`:+`)

// MonitorLine is the line lnoded appends to v's monitorfile for a check
// of r (up or not, with the check's message) that finished at at, in
// process pid: ldirectord's line (service_set),
//
//	[Sun Nov 22 02:03:38 2026] [PID] REAL-ID [up|down] MESSAGE
//
// with the local time as Perl's scalar localtime writes it, REAL-ID
// ldirectord's real server id with runs of ':' made one space and
// backslashes dropped, and MESSAGE the check's message ("-" if none) with
// '%', '|', CR and LF written as %XX.
func MonitorLine(at time.Time, pid int, v *config.Virtual, r *config.Real, up bool, msg string) string {
	state := "down"
	if up {
		state = "up"
	}
	if msg == "" {
		msg = "-"
	}
	msg = monitorEscape.ReplaceAllStringFunc(msg, func(s string) string { return fmt.Sprintf("%%%.2x", s[0]) })
	id := realID(v, r)
	id = colonRun.ReplaceAllString(id, " ")
	id = strings.ReplaceAll(id, `\`, "")
	return fmt.Sprintf("[%s] [%d] %s [%s] %s\n", at.Local().Format("Mon Jan _2 15:04:05 2006"), pid, id, state, msg)
}

// realID is ldirectord's get_real_id_str: check, protocol, server, port,
// virtualhost, checkport, weight, forwarding method, request and receive,
// joined by ':'. (Perl's quotemeta on request and receive is undone by the
// monitor line's dropping of backslashes, so it is left out.)
func realID(v *config.Virtual, r *config.Real) string {
	check := v.CheckType.String()
	switch v.CheckType {
	case config.CheckNegotiate, config.CheckCombined:
		check += ":" + string(v.Service)
	case config.CheckExternal, config.CheckExternalPerl:
		check += ":" + v.CheckCommand
	}
	server := r.Addr.String()
	if r.Addr.Is6() && !r.Addr.Is4In6() {
		server = "[" + server + "]"
	}
	checkport := ""
	if v.CheckPort != 0 {
		checkport = strconv.Itoa(int(v.CheckPort))
	}
	return strings.Join([]string{
		check, v.Protocol.String(), server, strconv.Itoa(int(r.Port)),
		v.VirtualHost, checkport, strconv.Itoa(r.Weight), r.Method.String(),
		r.Request, r.Receive,
	}, ":")
}
