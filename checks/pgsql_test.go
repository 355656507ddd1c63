package checks

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// pgServer is a minimal PostgreSQL server: it refuses TLS, asks for a
// cleartext password, and answers simple queries: "SELECT 1" with one row,
// "SELECT none" with no rows, anything else with an error.
func pgServer(t *testing.T, user, password string, seen chan<- map[string]string) netip.AddrPort {
	return tcpServer(t, func(c net.Conn) {
		be := pgproto3.NewBackend(c, c)
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			c.Write([]byte("N"))
			if msg, err = be.ReceiveStartupMessage(); err != nil {
				return
			}
		}
		sm, ok := msg.(*pgproto3.StartupMessage)
		if !ok {
			return
		}
		if seen != nil {
			seen <- sm.Parameters
		}
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
		be.Flush()
		be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
		msg, err = be.Receive()
		if err != nil {
			return
		}
		pw, ok := msg.(*pgproto3.PasswordMessage)
		if !ok || sm.Parameters["user"] != user || pw.Password != password {
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
			be.Flush()
			return
		}
		be.Send(&pgproto3.AuthenticationOk{})
		be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "16.0"})
		be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
		be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
		be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		be.Flush()
		for {
			msg, err := be.Receive()
			if err != nil {
				return
			}
			q, ok := msg.(*pgproto3.Query)
			if !ok {
				return // Terminate or anything else
			}
			cols := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("x"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}}
			switch strings.TrimSpace(q.String) {
			case "SELECT 1":
				be.Send(cols)
				be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("1")}})
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			case "SELECT none":
				be.Send(cols)
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
			default:
				be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601", Message: "syntax error"})
			}
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			be.Flush()
		}
	})
}

func TestPgSQL(t *testing.T) {
	noLeaks(t)
	seen := make(chan map[string]string, 10)
	addr := pgServer(t, "monitor", "pw", seen)
	cfg := Config{Service: "pgsql", Addr: addr, Login: "monitor", Passwd: "pw", Database: "app", Request: "/SELECT 1", NegotiateTimeout: 3 * time.Second}
	expect(t, mustNew(t, cfg), true)
	if p := <-seen; p["user"] != "monitor" || p["database"] != "app" {
		t.Errorf("startup parameters %v", p)
	}
	for _, bad := range []Config{
		{Request: "SELECT none"},
		{Request: "SELEKT"},
		{Passwd: "wrong"},
	} {
		c := cfg
		if bad.Request != "" {
			c.Request = bad.Request
		}
		if bad.Passwd != "" {
			c.Passwd = bad.Passwd
		}
		expect(t, mustNew(t, c), false)
	}
	cfg.Addr = hungServer(t)
	cfg.NegotiateTimeout = 300 * time.Millisecond
	start := time.Now()
	expect(t, mustNew(t, cfg), false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("hung server held the check %v", el)
	}
	// ldirectord is always down without login or request.
	for _, c := range []Config{{Service: "pgsql", Addr: addr, Request: "SELECT 1"}, {Service: "pgsql", Addr: addr, Login: "monitor"}} {
		r := expect(t, mustNew(t, c), false)
		if !strings.Contains(r.Message, "needs login and request") {
			t.Errorf("%+v: %v", c, r)
		}
		if _, err := NewPgSQL(c); err == nil {
			t.Errorf("NewPgSQL(%+v) accepted", c)
		}
	}
}
