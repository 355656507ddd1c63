package config

import (
	"regexp"
	"strings"
)

// The patterns below are ldirectord 4.12's own (read_config, add_real_server,
// parse_fallback and friends), translated to RE2. Go's regexp picks the match
// a backtracking engine would (leftmost-first), so an unanchored Perl pattern
// finds the same substring here; that is what makes lnoded accept and reject
// the same lines ldirectord does, quirks included. Perl's \s also matches
// \v, Go's does not, hence the explicit classes. The patterns are compiled once
// and never modified (a *regexp.Regexp is safe for concurrent use).
const ws = `[\t\n\v\f\r ]`

// nonWS is Perl's \S, the complement of ws.
const nonWS = `[^\t\n\v\f\r ]`

// mustRE compiles a pattern with Perl's \s and \S semantics.
func mustRE(p string) *regexp.Regexp {
	p = strings.ReplaceAll(p, `\s`, ws)
	p = strings.ReplaceAll(p, `\S`, nonWS)
	return regexp.MustCompile(p)
}

var (
	reBlankLine   = mustRE(`^\s*$`)
	reCommentLine = mustRE(`^\s*#`)
	reIndented    = mustRE(`^ {4,}(.+)`)
	reVirtual     = mustRE(`^virtual(6)?\s*=\s*(.*)`)

	// Virtual service forms, tried in this order.
	reVirtualIPv4 = mustRE(`^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z_-]+)`)
	reVirtualHost = mustRE(`^([0-9A-Za-z._+-]+):([0-9A-Za-z_-]+)`)
	reVirtualFWM  = mustRE(`^(\d+)`)
	reVirtualIPv6 = mustRE(`^\[([0-9A-Fa-f:]+)\]:([0-9A-Za-z_-]+)`)
	reUDPPort     = mustRE(`:(53|domain)$`)

	reReal = mustRE(`(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\])(->(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\]))?(:(\d+|[A-Za-z0-9_-]+))?\s+(.*)`)
	// The rest of a real= line, consumed in this order.
	reRealMethod    = mustRE(`(\w+)(.*)`)
	reRealWeight    = mustRE(`\s+(\d+)(.*)`)
	reRealCheck     = mustRE(`\s+"(.*)"[, ]\s*"(.*)"(.*)`)
	reRealLower     = mustRE(`\s+l:(\d+)(.*)`)
	reRealUpper     = mustRE(`\s+u:(\d+)(.*)`)
	reNonSpace      = mustRE(`\S`)
	reFallbackSplit = mustRE(`(\S+)(\s+(\S+))?\s*$`)
	rePortSuffix    = mustRE(`(:(\d+|[A-Za-z0-9_-]+))?$`)

	reDigits    = mustRE(`(\d+)`)
	reWord      = mustRE(`(\w+)`)
	reWordDash  = mustRE(`([\w-]+)`)
	reLower     = mustRE(`([a-z]+)`)
	reNonBlank  = mustRE(`(\S+)`)
	reAnything  = mustRE(`(.+)`)
	reDotQuad   = mustRE(`^\d+\.\d+\.\d+\.\d+$`)
	reAllDigits = mustRE(`^\d+$`)
	reSMTP      = mustRE(`(^([0-9A-Za-z._+-]+))`)
	reVHost     = mustRE(`"?([^"]*)"?`)
	reEmailQuot = mustRE(`^"([^"]*)"$`)
	reAlertSep  = mustRE(`\s*,\s*`)
)

// directive is one "NAME = VALUE" pattern: name matched literally at the
// start, then \s*=\s*, then either the rest of the line or a double-quoted
// value (greedy, as ldirectord's "(.*)" between quotes).
type directive struct {
	re *regexp.Regexp
}

func plain(name string) directive { return directive{mustRE(`^` + name + `\s*=\s*(.*)`)} }

func quoted(name string) directive { return directive{mustRE(`^` + name + `\s*=\s*"(.*)"`)} }

func (d directive) match(s string) (string, bool) {
	m := d.re.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[len(m)-1], true
}

// Directives inside a virtual block, in ldirectord's order of testing.
var (
	vReal           = mustRE(`^(real(6)?)\s*=\s*(.*)`)
	vRequest        = quoted("request")
	vReceive        = quoted("receive")
	vChecktype      = plain("checktype")
	vCheckcommandQ  = quoted("checkcommand")
	vCheckcommand   = plain("checkcommand")
	vChecktimeout   = plain("checktimeout")
	vConnecttimeout = plain("connecttimeout")
	vNegotiate      = plain("negotiatetimeout")
	vCheckcount     = plain("checkcount")
	vFailurecount   = plain("failurecount")
	vCheckinterval  = plain("checkinterval")
	vCheckport      = plain("checkport")
	vLogin          = quoted("login")
	vPasswd         = quoted("passwd")
	vDatabase       = quoted("database")
	vSecret         = quoted("secret")
	vLoad           = quoted("load")
	vScheduler      = plain("scheduler")
	vPersistent     = plain("persistent")
	vSchedflags     = plain("schedflags")
	vNetmask        = plain("netmask")
	vProtocol       = plain("protocol")
	vOps            = plain("ops")
	vService        = plain("service")
	vHTTPMethod     = plain("httpmethod")
	vVirtualhost    = plain("virtualhost")
	vFallback       = mustRE(`^(fallback(6)?)\s*=\s*(.*)`)
	vFallbackcmdQ   = quoted("fallbackcommand")
	vFallbackcmd    = plain("fallbackcommand")
	vQuiescent      = plain("quiescent")
	vEmailalert     = plain("emailalert")
	vEmailalertfreq = directive{mustRE(`^emailalertfreq\s*=\s*(\d*)`)}
	vEmailalertstat = plain("emailalertstatus")
	vMonitorfileQ   = quoted("monitorfile")
	vMonitorfile    = plain("monitorfile")
	vCleanstop      = plain("cleanstop")
	vSMTP           = plain("smtp")
	vServicename    = plain("servicename")
	vComment        = plain("comment")
	vDRPathCheck    = plain("drpathcheck") // directord's extension
	gChecktimeout   = plain("checktimeout")
	gConnecttimeout = plain("connecttimeout")
	gNegotiate      = plain("negotiatetimeout")
	gCheckinterval  = plain("checkinterval")
	gCheckcount     = plain("checkcount")
	gFailurecount   = plain("failurecount")
	gFallback       = mustRE(`^fallback(6)?\s*=\s*(.*)`)
	gFallbackcmd    = plain("fallbackcommand")
	gAutoreload     = plain("autoreload")
	gCallback       = quoted("callback")
	gLogfile        = quoted("logfile")
	gExecute        = plain("execute")
	gFork           = plain("fork")
	gSupervisedAny  = mustRE(`^supervised`)
	gSupervised     = plain("supervised")
	gSupervisedBare = mustRE(`^supervised\s*$`)
	gQuiescent      = plain("quiescent")
	gReaddquiescent = plain("readdquiescent")
	gEmailalert     = plain("emailalert")
	gEmailalertfreq = directive{mustRE(`^emailalertfreq\s*=\s*(\d*)`)}
	gEmailalertstat = plain("emailalertstatus")
	gEmailalertfrom = plain("emailalertfrom")
	gCleanstop      = plain("cleanstop")
	gSMTP           = plain("smtp")
	gMaintenancedir = plain("maintenancedir")
	gTimeout        = plain("timeout")
	reDirectiveName = mustRE(`^\s*([A-Za-z0-9_-]+)`)
)
