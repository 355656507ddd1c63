// Package lnoded is directord's ldirectord: it checks the real servers of an
// lnoded.cf (ldirectord.cf syntax, parsed by lnoded/config) and keeps the
// kernel's IPVS table for that file's virtual services equal to what the
// configuration and the checks ask for.
//
// The decision is one pure function, Desired: a real server that is up is
// in its service at its configured weight; one that is down (or not yet
// checked, or in maintenance) is at weight 0 with quiescent=yes and absent
// with quiescent=no; a fallback server is in a service exactly when none of
// its real servers is up. A Module runs the checks (checks.Scheduler), and
// on every change reconciles the kernel to Desired's table with ipvs.Plan,
// touching only its own services: an unchanged service or real server gets
// no operation at all, also across reloads.
//
//	m, err := lnoded.New(cfg, handle, logger)
//	go m.WatchFile(ctx, "/etc/ha.d/lnoded.cf", time.Second, nil) // autoreload, callback
//	err = m.Run(ctx) // until ctx ends; then cleanstop
//	m.Detach()       // or: Run returns leaving the table (a daemon restarting in place)
//
// It keeps ldirectord 4.12's semantics for quiescent, readdquiescent,
// fallback, fallbackcommand ("CMD start|stop VIP:PORT PROTO"), callback
// ("CALLBACK FILE"), maintenancedir, autoreload, cleanstop, the e-mail
// alerts (emailalert, emailalertfreq, emailalertstatus, emailalertfrom,
// smtp: ldirectord's mails, sent by one goroutine from a bounded queue so
// that a mail server never delays checks) and monitorfile (ldirectord's
// line per check, see MonitorLine). drpathcheck=yes, directord's own,
// adds checks.DRPathChecker to a virtual service's checks. Where it
// deliberately differs (it issues no operation for what did not change, it
// programs a real server's final state in one operation instead of adding
// it and then quiescing it) docs/lnoded.md says so.
package lnoded
