package checks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPChecker is ldirectord's negotiate check for service=ldap and ldaps
// (Net::LDAP): it binds (simply as login with passwd when both are set,
// anonymously otherwise), reads the entry named by request (without its
// leading "/") with a base-scope search for (objectClass=*), and is up when
// exactly one entry comes back and, if receive is set, its DN matches it.
// As in ldirectord, checktimeout bounds the whole check. ldaps verifies the
// server's certificate chain but not its name, like the https check.
type LDAPChecker struct {
	url           string
	tls           *tls.Config
	login, passwd string
	base          string
	receive       *receiveRE
	timeout       time.Duration
}

// NewLDAP builds the check for service=ldap (useTLS false) or ldaps (true).
func NewLDAP(cfg Config, useTLS bool) (*LDAPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("ldap check: no real server address")
	}
	scheme := "ldap"
	if useTLS {
		scheme = "ldaps"
	}
	c := &LDAPChecker{
		url:     scheme + "://" + cfg.Addr.String(),
		tls:     tlsFor(cfg, useTLS),
		base:    strings.TrimPrefix(cfg.request(), "/"),
		timeout: cfg.checkTimeout(),
	}
	if cfg.Login != "" && cfg.Passwd != "" {
		c.login, c.passwd = cfg.Login, cfg.Passwd
	}
	if cfg.Receive != "" {
		re, err := compileReceive(cfg.Receive)
		if err != nil {
			return nil, fmt.Errorf("ldap check: %w", err)
		}
		c.receive = re
	}
	return c, nil
}

// Check implements Checker.
func (c *LDAPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *LDAPChecker) check(ctx context.Context) Result {
	d := &net.Dialer{}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	opts := []ldap.DialOpt{ldap.DialWithDialer(d)}
	if c.tls != nil {
		opts = append(opts, ldap.DialWithTLSConfig(c.tls))
	}
	conn, err := ldap.DialURL(c.url, opts...)
	if err != nil {
		return down("", fmt.Errorf("connecting: %w", err))
	}
	// Closing the connection is the only way to interrupt go-ldap.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(dl))
	}
	if c.login != "" {
		err = conn.Bind(c.login, c.passwd)
	} else {
		err = conn.UnauthenticatedBind("")
	}
	if err != nil {
		return down("bind failed", ctxErr(ctx, err))
	}
	res, err := conn.Search(ldap.NewSearchRequest(c.base, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", nil, nil))
	if err != nil {
		return down("search failed", ctxErr(ctx, err))
	}
	return judgeLDAP(res.Entries, c.receive)
}

// judgeLDAP is ldirectord's verdict on the search: exactly one entry, whose
// DN matches receive when receive is set.
func judgeLDAP(entries []*ldap.Entry, receive *receiveRE) Result {
	if len(entries) != 1 {
		return down(fmt.Sprintf("%d entries, want 1", len(entries)), nil)
	}
	dn := entries[0].DN
	if receive != nil && !receive.match([]byte(dn)) {
		return down(fmt.Sprintf("DN %q does not match %v", dn, receive), nil)
	}
	return up("entry " + dn)
}

// ctxErr prefers the context's error: go-ldap reports a connection closed by
// the deadline as a network error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// String says in words what the check does and expects.
func (c *LDAPChecker) String() string {
	who := "anonymously"
	if c.login != "" {
		who = fmt.Sprintf("as %q", c.login)
	}
	s := fmt.Sprintf("LDAP bind %s to %s and read %q expecting one entry", who, c.url, c.base)
	if c.receive != nil {
		s += fmt.Sprintf(" whose DN ~ %v", c.receive)
	}
	return s + fmt.Sprintf(" within %v", c.timeout)
}
