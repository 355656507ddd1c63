package checks

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// mysqlPeer speaks MySQL's packet framing: a 3-byte length and a sequence
// number before each payload.
type mysqlPeer struct {
	c   net.Conn
	seq byte
}

func (p *mysqlPeer) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(p.c, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p.seq = h[3] + 1
	b := make([]byte, n)
	_, err := io.ReadFull(p.c, b)
	return b, err
}

func (p *mysqlPeer) write(payload []byte) {
	h := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), p.seq}
	p.seq++
	p.c.Write(append(h, payload...))
}

func lenencStr(s string) []byte { return append([]byte{byte(len(s))}, s...) }

var (
	mysqlOK  = []byte{0x00, 0, 0, 2, 0, 0, 0}
	mysqlEOF = []byte{0xfe, 0, 0, 2, 0}
)

func mysqlErr(code uint16, msg string) []byte {
	b := []byte{0xff, byte(code), byte(code >> 8), '#'}
	b = append(b, "HY000"...)
	return append(b, msg...)
}

// mysqlServer is a minimal MySQL server with mysql_native_password: it
// answers "SELECT 1" with one row, "SELECT none" with none, anything else
// with an error, and reports the database each client asked for.
func mysqlServer(t *testing.T, user, password string, dbs chan<- string) netip.AddrPort {
	const (
		capLongPassword   = 0x1
		capConnectWithDB  = 0x8
		capProtocol41     = 0x200
		capTransactions   = 0x2000
		capSecureConn     = 0x8000
		capPluginAuth     = 0x80000
		capPluginAuthLenc = 0x200000
	)
	caps := uint32(capLongPassword | capConnectWithDB | capProtocol41 | capTransactions | capSecureConn | capPluginAuth | capPluginAuthLenc)
	return tcpServer(t, func(c net.Conn) {
		p := &mysqlPeer{c: c}
		seed := []byte("abcdefghijklmnopqrst")
		hs := []byte{10}
		hs = append(hs, "8.0.0-directord-test\x00"...)
		hs = append(hs, 1, 0, 0, 0)
		hs = append(hs, seed[:8]...)
		hs = append(hs, 0, byte(caps), byte(caps>>8), 0x21, 2, 0, byte(caps>>16), byte(caps>>24), 21)
		hs = append(hs, make([]byte, 10)...)
		hs = append(hs, seed[8:]...)
		hs = append(hs, 0)
		hs = append(hs, "mysql_native_password\x00"...)
		p.write(hs)
		resp, err := p.read()
		if err != nil || len(resp) < 32 {
			return
		}
		clientCaps := binary.LittleEndian.Uint32(resp)
		rest := resp[32:]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return
		}
		gotUser := string(rest[:i])
		rest = rest[i+1:]
		if len(rest) == 0 || int(rest[0]) >= len(rest) {
			return
		}
		authResp := rest[1 : 1+int(rest[0])]
		rest = rest[1+int(rest[0]):]
		db := ""
		if clientCaps&capConnectWithDB != 0 {
			if i := bytes.IndexByte(rest, 0); i >= 0 {
				db = string(rest[:i])
			}
		}
		if dbs != nil {
			dbs <- db
		}
		// mysql_native_password: SHA1(pw) XOR SHA1(seed + SHA1(SHA1(pw))).
		var want []byte
		if password != "" {
			h1 := sha1.Sum([]byte(password))
			h2 := sha1.Sum(h1[:])
			h3 := sha1.Sum(append(append([]byte(nil), seed...), h2[:]...))
			for i := range h1 {
				want = append(want, h1[i]^h3[i])
			}
		}
		if gotUser != user || !bytes.Equal(authResp, want) {
			p.write(mysqlErr(1045, "Access denied"))
			return
		}
		p.write(mysqlOK)
		for {
			pkt, err := p.read()
			if err != nil || len(pkt) == 0 || pkt[0] != 0x03 { // COM_QUERY only
				return
			}
			col := append(lenencStr("def"), lenencStr("")...)
			col = append(col, lenencStr("")...)
			col = append(col, lenencStr("")...)
			col = append(col, lenencStr("x")...)
			col = append(col, lenencStr("x")...)
			col = append(col, 0x0c, 0x21, 0, 255, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0)
			switch string(pkt[1:]) {
			case "SELECT 1":
				p.write([]byte{1})
				p.write(col)
				p.write(mysqlEOF)
				p.write(lenencStr("1"))
				p.write(mysqlEOF)
			case "SELECT none":
				p.write([]byte{1})
				p.write(col)
				p.write(mysqlEOF)
				p.write(mysqlEOF)
			default:
				p.write(mysqlErr(1064, "syntax error"))
			}
		}
	})
}

func TestMySQL(t *testing.T) {
	noLeaks(t)
	dbs := make(chan string, 10)
	addr := mysqlServer(t, "monitor", "pw", dbs)
	cfg := Config{Service: "mysql", Addr: addr, Login: "monitor", Passwd: "pw", Database: "app", Request: "/SELECT 1", NegotiateTimeout: 3 * time.Second}
	expect(t, mustNew(t, cfg), true)
	if db := <-dbs; db != "app" {
		t.Errorf("database %q", db)
	}
	for _, mod := range []func(*Config){
		func(c *Config) { c.Request = "SELECT none" },
		func(c *Config) { c.Request = "SELEKT" },
		func(c *Config) { c.Passwd = "wrong" },
		func(c *Config) { c.Login = "intruder" },
	} {
		c := cfg
		mod(&c)
		expect(t, mustNew(t, c), false)
	}
	cfg.Addr = hungServer(t)
	cfg.NegotiateTimeout = 300 * time.Millisecond
	start := time.Now()
	expect(t, mustNew(t, cfg), false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("hung server held the check %v", el)
	}
	for _, c := range []Config{{Service: "mysql", Addr: addr, Request: "SELECT 1"}, {Service: "mysql", Addr: addr, Login: "monitor"}} {
		expect(t, mustNew(t, c), false)
		if _, err := NewMySQL(c); err == nil {
			t.Errorf("NewMySQL(%+v) accepted", c)
		}
	}
}
