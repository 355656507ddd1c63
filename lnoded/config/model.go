package config

import (
	"net/netip"
	"strconv"
	"time"
)

// Config is a parsed lnoded.cf with every default resolved: a consumer reads
// a field and never has to know ldirectord's fallback rules.
type Config struct {
	// File is the name the configuration was parsed under (used in messages).
	File string
	// Global holds the directives written outside any virtual block, with
	// ldirectord's defaults for those not written.
	Global Global
	// Virtuals are the virtual services in file order.
	Virtuals []Virtual
	// Warnings are the messages ldirectord prints as "Warning" while still
	// accepting the file, plus the few places where lnoded silently does what
	// ldirectord does although it is probably not what the author meant.
	Warnings []Diagnostic
}

// Global holds the global (unindented) directives of lnoded.cf.
//
// The timeouts, counts, quiescent, cleanstop, fallback, fallbackcommand and
// e-mail settings here are the global values as written (or ldirectord's
// defaults); each Virtual carries the value that applies to it after its own
// override, so consumers should read those from the Virtual.
type Global struct {
	// CheckInterval is the time between two rounds of checks (checkinterval,
	// default 10s).
	CheckInterval time.Duration
	// CheckTimeout is the global checktimeout; zero when not written (the
	// per-virtual value then falls back to negotiatetimeout, then 5s).
	CheckTimeout time.Duration
	// NegotiateTimeout is the global negotiatetimeout; zero when not written.
	NegotiateTimeout time.Duration
	// CheckCount is the deprecated checkcount (default 1).
	CheckCount int
	// FailureCount is the number of consecutive failed checks before a real
	// server is taken out (failurecount, default 1).
	FailureCount int
	// Fallback is the global IPv4 fallback server (fallback=), nil if none.
	Fallback *GlobalFallback
	// Fallback6 is the global IPv6 fallback server (fallback6=), nil if none.
	Fallback6 *GlobalFallback
	// FallbackCommand is a shell command line, run as
	// `sh -c "CMD start|stop VIP:PORT PROTO"` when the fallback comes into or
	// out of use; empty if none. The global form is kept verbatim, quotes
	// included, as ldirectord keeps it (the shell then removes them).
	FallbackCommand string
	// AutoReload re-reads the file when it changes (autoreload, default no).
	AutoReload bool
	// Callback is an executable run as `sh -c "CALLBACK FILE"` when the file
	// changes on disk; empty if none.
	Callback string
	// LogFile is an absolute file name or a syslog facility
	// (logfile, default "/var/log/ldirectord.log").
	LogFile string
	// Execute lists further configuration files whose instances are started
	// and stopped with this one (execute=, may repeat), in file order,
	// without duplicates. Each is kept verbatim: ldirectord pastes it into
	// a shell command line, so quotes in it are shell quotes.
	Execute []string
	// Fork runs the checks of each virtual service in its own process in
	// ldirectord (fork, default no); lnoded runs them concurrently anyway,
	// but with Fork the per-virtual checkinterval is honoured.
	Fork bool
	// Supervised keeps the daemon in the foreground (supervised, default no).
	Supervised bool
	// Quiescent sets a failed real server's weight to 0 instead of removing
	// it (quiescent, default no as ldirectord's code has it).
	Quiescent bool
	// ReaddQuiescent re-adds a failed real server missing from the table with
	// weight 0 when quiescent (readdquiescent, default no).
	ReaddQuiescent bool
	// EmailAlert is the address alerts go to; empty disables them.
	EmailAlert string
	// EmailAlertFreq is the interval between repeated alerts for a server
	// that stays down; 0 sends one alert (emailalertfreq, default 0).
	EmailAlertFreq time.Duration
	// EmailAlertStatus says in which daemon states alerts are sent
	// (emailalertstatus, default all).
	EmailAlertStatus AlertStatus
	// EmailAlertFrom is the sender address; empty leaves it to the mailer.
	EmailAlertFrom string
	// CleanStop removes the virtual services on exit (cleanstop, default yes).
	CleanStop bool
	// SMTP is the mail server to send alerts through; empty uses the local
	// mailer.
	SMTP string
	// MaintenanceDir holds files that force real servers down; empty if none.
	MaintenanceDir string
}

// GlobalFallback is a global fallback= or fallback6= line. ldirectord
// resolves its port separately for TCP and UDP services (a service name may
// differ between the two), so both results are kept.
type GlobalFallback struct {
	// Line is the line of the directive.
	Line int
	// TCP applies to TCP virtual services, UDP to UDP ones. A Port of 0
	// means "the virtual service's port". Firewall-mark services get no
	// global fallback (ldirectord dies when it tries).
	TCP, UDP Fallback
}

// Fallback is a server that receives the traffic when no real server of a
// virtual service is up.
type Fallback struct {
	// Addr is the fallback server's address.
	Addr netip.Addr
	// Port is its port; 0 only for firewall-mark services.
	Port uint16
	// Method is the forwarding method (default gate).
	Method Method
	// Weight is always 1: ldirectord has no way to set it.
	Weight int
}

// Virtual is one virtual service (a virtual= or virtual6= block).
type Virtual struct {
	// Line is the line of the virtual= directive.
	Line int
	// IPv6 is true for virtual6= blocks (also for IPv6 firewall marks).
	IPv6 bool
	// Addr and Port are the service address; Addr is invalid for a
	// firewall-mark service.
	Addr netip.Addr
	Port uint16
	// FWMark is the firewall mark (Protocol FWM), else 0.
	FWMark uint32
	// Protocol is tcp, udp or fwm (default tcp; udp when the port is
	// written as 53 or "domain"; fwm for a firewall mark).
	Protocol Protocol

	// Scheduler is the IPVS scheduler name (default "wrr").
	Scheduler string
	// Persistent is true when persistent= is written; PersistentTimeout is
	// its value.
	Persistent        bool
	PersistentTimeout time.Duration
	// PersistenceBits is the persistence netmask as a prefix length
	// (netmask=, default 32 or 128). It only matters when Persistent.
	PersistenceBits int
	// SchedFlags is passed to ipvsadm -b as is; empty if none.
	SchedFlags string
	// OPS is one-packet scheduling (ops=, default no; UDP services only).
	OPS bool

	// CheckType is how the real servers are checked (default negotiate).
	CheckType CheckType
	// NumConnects is N for "checktype = N" (CheckCombined), else 0.
	NumConnects int
	// Service is the protocol spoken by negotiate checks (default from the
	// virtual port, "none" for firewall marks).
	Service Service
	// CheckCommand is the program of external checks (default /bin/true),
	// executed directly (no shell, so no arguments of its own) with the
	// arguments VIP VPORT RIP RPORT (the firewall mark for VIP on a
	// firewall-mark service).
	CheckCommand string
	// CheckPort is the port written with checkport=, 0 if none; the port
	// actually checked is Real.CheckPort.
	CheckPort uint16
	// Request and Receive are the virtual's request (default "/", always
	// starting with "/") and receive regular expression (default empty). The
	// values that apply to each real server are in Real.
	Request string
	Receive string
	// HTTPMethod is GET or HEAD (default GET).
	HTTPMethod string
	// VirtualHost is the HTTP Host header; empty means the real server's
	// address.
	VirtualHost string
	// Login and Passwd are the check credentials. They default to empty,
	// except that "service = ftp" sets anonymous / ldirectord@HOSTNAME and
	// "service = sip" sets the login to ldirectord@HOSTNAME when no login
	// was written before that line (ldirectord's rule).
	Login, Passwd string
	// Database is the SQL database of mysql/pgsql/oracle checks.
	Database string
	// Secret is the RADIUS secret.
	Secret string
	// Load is the load= word (parsed by ldirectord and never used).
	Load string

	// CheckInterval is the interval that applies to this service: its own
	// checkinterval when the global fork=yes, else the global one.
	CheckInterval time.Duration
	// CheckTimeout bounds connect, ping and external checks.
	CheckTimeout time.Duration
	// NegotiateTimeout bounds negotiate checks.
	NegotiateTimeout time.Duration
	// CheckCount and FailureCount as they apply to this service.
	CheckCount   int
	FailureCount int
	// Quiescent as it applies to this service.
	Quiescent bool
	// CleanStop as it applies to this service.
	CleanStop bool
	// Fallback is the fallback server that applies (this service's own, else
	// the global one for its address family and protocol), nil if none.
	Fallback *Fallback
	// FallbackCommand is the shell command line that applies (see
	// Global.FallbackCommand); empty if none.
	FallbackCommand string
	// EmailAlert, EmailAlertFreq, EmailAlertStatus and SMTP as they apply.
	EmailAlert       string
	EmailAlertFreq   time.Duration
	EmailAlertStatus AlertStatus
	SMTP             string
	// MonitorFile is a file each check result is appended to; empty if none.
	MonitorFile string
	// DRPathCheck (drpathcheck=yes, directord's extension: ldirectord
	// rejects the directive) also probes the VIP through each real server
	// as direct routing reaches it, and keeps a real server down when that
	// path is broken (see checks.DRPathChecker). IPv4 TCP services with gate
	// real servers only.
	DRPathCheck bool
	// ServiceName and Comment go into e-mail alerts.
	ServiceName string
	Comment     string

	// Reals are the real servers in file order, ranges expanded.
	Reals []Real
}

// Real is one real server of a virtual service.
type Real struct {
	// Line is the line of its real= directive.
	Line int
	// Addr is the real server's address.
	Addr netip.Addr
	// Port is the port as written, 0 when the line has none (ldirectord
	// then hands ipvsadm ADDR:0). For gate and ipip on an ADDRESS:PORT
	// service ipvsadm replaces any real port with the virtual port.
	Port uint16
	// Method is the forwarding method: gate, masq or ipip (required).
	Method Method
	// Weight is the IPVS weight (default 1).
	Weight int
	// Request and Receive are what this real server is checked with: its own
	// quoted pair, else the virtual's.
	Request, Receive string
	// LowerThreshold and UpperThreshold are the l: and u: connection
	// thresholds (0 = none).
	LowerThreshold, UpperThreshold uint32
	// CheckPort is the port checks connect to: the virtual's checkport, else
	// the real's own port, else the well-known port of the service (0 if the
	// service has none).
	CheckPort uint16
	// URL is the URL ldirectord's negotiate checks fetch:
	// SERVICE://ADDR:CHECKPORT/REQUEST, or the per-real request as is when
	// it already holds SERVICE://.
	URL string
}

// Diagnostic is a message about one line of the file.
type Diagnostic struct {
	File string
	// Line is 1-based; 0 when the message is about the whole file.
	Line int
	Msg  string
}

func (d Diagnostic) String() string {
	if d.Line > 0 {
		return d.File + ":" + strconv.Itoa(d.Line) + ": " + d.Msg
	}
	return d.File + ": " + d.Msg
}

// Method is an IPVS forwarding method.
type Method int

// The forwarding methods, named as in lnoded.cf.
const (
	MethodGate Method = iota // direct routing (ipvsadm -g)
	MethodMasq               // NAT (ipvsadm -m)
	MethodIPIP               // tunnelling (ipvsadm -i)
)

func (m Method) String() string {
	switch m {
	case MethodGate:
		return "gate"
	case MethodMasq:
		return "masq"
	case MethodIPIP:
		return "ipip"
	}
	return "Method(" + strconv.Itoa(int(m)) + ")"
}

func parseMethod(s string) (Method, bool) {
	switch s {
	case "gate":
		return MethodGate, true
	case "masq":
		return MethodMasq, true
	case "ipip":
		return MethodIPIP, true
	}
	return 0, false
}

// Protocol is the protocol of a virtual service.
type Protocol int

// The protocols of lnoded.cf's protocol= directive.
const (
	TCP Protocol = iota
	UDP
	FWM // firewall mark
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case FWM:
		return "fwm"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// CheckType is how real servers are checked.
type CheckType int

// The check types of lnoded.cf's checktype= directive.
const (
	CheckNegotiate    CheckType = iota // speak Service and match Receive
	CheckConnect                       // a TCP connect (ICMP ping for UDP)
	CheckPing                          // an ICMP echo
	CheckOff                           // the real server is never added
	CheckOn                            // always up
	CheckExternal                      // run CheckCommand
	CheckExternalPerl                  // run CheckCommand as Perl in ldirectord
	CheckCombined                      // connect, and negotiate every NumConnects
)

func (c CheckType) String() string {
	switch c {
	case CheckNegotiate:
		return "negotiate"
	case CheckConnect:
		return "connect"
	case CheckPing:
		return "ping"
	case CheckOff:
		return "off"
	case CheckOn:
		return "on"
	case CheckExternal:
		return "external"
	case CheckExternalPerl:
		return "external-perl"
	case CheckCombined:
		return "combined"
	}
	return "CheckType(" + strconv.Itoa(int(c)) + ")"
}

// Service is the protocol a negotiate check speaks, named as in lnoded.cf.
type Service string

// The services ldirectord 4.12 accepts.
const (
	ServiceDNS        Service = "dns"
	ServiceFTP        Service = "ftp"
	ServiceHTTP       Service = "http"
	ServiceHTTPS      Service = "https"
	ServiceHTTPProxy  Service = "http_proxy"
	ServiceIMAP       Service = "imap"
	ServiceIMAPS      Service = "imaps"
	ServiceLDAP       Service = "ldap"
	ServiceLDAPS      Service = "ldaps"
	ServiceNNTP       Service = "nntp"
	ServiceMySQL      Service = "mysql"
	ServiceNone       Service = "none"
	ServiceOracle     Service = "oracle"
	ServicePOP        Service = "pop"
	ServicePOPS       Service = "pops"
	ServiceRADIUS     Service = "radius"
	ServicePgSQL      Service = "pgsql"
	ServiceSIP        Service = "sip"
	ServiceSMTP       Service = "smtp"
	ServiceSubmission Service = "submission"
	ServiceSimpleTCP  Service = "simpletcp"
)

// servicePorts is ldirectord's port ⇄ service table (ld_port_to_service and
// ld_service_to_port), in its order.
var servicePorts = [...]struct {
	port    uint16
	service Service
}{
	{21, ServiceFTP}, {25, ServiceSMTP}, {53, ServiceDNS}, {80, ServiceHTTP},
	{110, ServicePOP}, {119, ServiceNNTP}, {143, ServiceIMAP}, {389, ServiceLDAP},
	{443, ServiceHTTPS}, {587, ServiceSubmission}, {636, ServiceLDAPS},
	{995, ServicePOPS}, {993, ServiceIMAPS}, {1521, ServiceOracle},
	{1812, ServiceRADIUS}, {3128, ServiceHTTPProxy}, {3306, ServiceMySQL},
	{5060, ServiceSIP}, {5432, ServicePgSQL},
}

// knownServices are the values service= accepts.
var knownServices = [...]Service{
	ServiceDNS, ServiceFTP, ServiceHTTP, ServiceHTTPS, ServiceHTTPProxy,
	ServiceIMAP, ServiceIMAPS, ServiceLDAP, ServiceLDAPS, ServiceNNTP,
	ServiceMySQL, ServiceNone, ServiceOracle, ServicePOP, ServicePOPS,
	ServiceRADIUS, ServicePgSQL, ServiceSIP, ServiceSMTP, ServiceSubmission,
	ServiceSimpleTCP,
}

// DefaultPort is the well-known port ldirectord checks for the service when
// neither checkport nor the real server gives one; 0 if it has none.
func (s Service) DefaultPort() uint16 {
	for _, e := range servicePorts {
		if e.service == s {
			return e.port
		}
	}
	return 0
}

// ServiceForPort is the service ldirectord assumes for a virtual port when
// service= is not written: "none" for ports it does not know.
func ServiceForPort(port uint16) Service {
	for _, e := range servicePorts {
		if e.port == port {
			return e.service
		}
	}
	return ServiceNone
}

// AlertStatus is a set of daemon states in which e-mail alerts are sent.
type AlertStatus uint8

// The daemon states of emailalertstatus.
const (
	AlertStarting  AlertStatus = 1 << iota // while starting
	AlertRunning                           // while running
	AlertStopping                          // while stopping
	AlertReloading                         // while reloading
	AlertNone      AlertStatus = 0
	AlertAll                   = AlertStarting | AlertRunning | AlertStopping | AlertReloading
)

func (a AlertStatus) String() string {
	switch a {
	case AlertNone:
		return "none"
	case AlertAll:
		return "all"
	}
	s := ""
	for _, e := range [...]struct {
		bit  AlertStatus
		name string
	}{{AlertStarting, "starting"}, {AlertRunning, "running"}, {AlertStopping, "stopping"}, {AlertReloading, "reloading"}} {
		if a&e.bit != 0 {
			if s != "" {
				s += ","
			}
			s += e.name
		}
	}
	return s
}

func (s Service) String() string { return string(s) }
