package checks

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// ldapServer is a minimal LDAP server: simple binds succeed anonymously or
// as user with password, and a base search finds the entries named in dns
// (case-insensitively), returning each DN as spelled there.
func ldapServer(t *testing.T, user, password string, dns []string) netip.AddrPort {
	result := func(id int64, app ber.Tag, code int64) *ber.Packet {
		env := ber.NewSequence("LDAPMessage")
		env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, app, nil, "result")
		op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, "resultCode"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnostic"))
		env.AppendChild(op)
		return env
	}
	return tcpServer(t, func(c net.Conn) {
		for {
			p, err := ber.ReadPacket(c)
			if err != nil || len(p.Children) < 2 {
				return
			}
			id, _ := p.Children[0].Value.(int64)
			op := p.Children[1]
			switch op.Tag {
			case 0: // BindRequest: version, name, simple password
				name := op.Children[1].Value.(string)
				pw := string(op.Children[2].Data.Bytes())
				code := int64(49) // invalidCredentials
				if (name == "" && pw == "") || (name == user && pw == password) {
					code = 0
				}
				c.Write(result(id, 1, code).Bytes())
			case 3: // SearchRequest: baseObject first
				base := op.Children[0].Value.(string)
				code := int64(32) // noSuchObject
				for _, dn := range dns {
					if strings.EqualFold(dn, base) {
						env := ber.NewSequence("LDAPMessage")
						env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
						entry := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "entry")
						entry.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "dn"))
						attrs := ber.NewSequence("attributes")
						a := ber.NewSequence("attribute")
						a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "objectClass", "type"))
						vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
						vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "top", "val"))
						a.AppendChild(vals)
						attrs.AppendChild(a)
						entry.AppendChild(attrs)
						env.AppendChild(entry)
						c.Write(env.Bytes())
						code = 0
					}
				}
				c.Write(result(id, 5, code).Bytes())
			case 2: // UnbindRequest
				return
			default:
				return
			}
		}
	})
}

func TestLDAP(t *testing.T) {
	noLeaks(t)
	addr := ldapServer(t, "cn=monitor,dc=example,dc=org", "pw", []string{"dc=example,dc=org", "ou=People,dc=example,dc=org"})
	tests := []struct {
		name                            string
		login, passwd, request, receive string
		want                            bool
	}{
		{"anonymous read", "", "", "/dc=example,dc=org", "", true},
		{"DN matches", "", "", "ou=people,dc=example,dc=org", "^ou=People", true},
		{"DN does not match", "", "", "dc=example,dc=org", "ou=", false},
		{"no such entry", "", "", "dc=nowhere", "", false},
		{"bind as login", "cn=monitor,dc=example,dc=org", "pw", "dc=example,dc=org", "", true},
		{"bad password", "cn=monitor,dc=example,dc=org", "nope", "dc=example,dc=org", "", false},
		{"login without passwd binds anonymously", "cn=monitor,dc=example,dc=org", "", "dc=example,dc=org", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, mustNew(t, Config{Service: "ldap", Addr: addr, Login: tt.login, Passwd: tt.passwd, Request: tt.request, Receive: tt.receive, CheckTimeout: 3 * time.Second}), tt.want)
		})
	}
	start := time.Now()
	expect(t, mustNew(t, Config{Service: "ldap", Addr: hungServer(t), Request: "dc=example,dc=org", CheckTimeout: 300 * time.Millisecond}), false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("hung server held the check %v", el)
	}
	expect(t, mustNew(t, Config{Service: "ldap", Addr: closedPort(t), Request: "dc=example,dc=org"}), false)
}

func TestDifferentialLDAP(t *testing.T) {
	addr := ldapServer(t, "cn=monitor,dc=example,dc=org", "pw", []string{"dc=example,dc=org", "ou=People,dc=example,dc=org"})
	host, port, _ := net.SplitHostPort(addr.String())
	for _, c := range []struct{ login, passwd, base, receive string }{
		{"", "", "dc=example,dc=org", ""},
		{"", "", "ou=people,dc=example,dc=org", "^ou=People"},
		{"", "", "dc=example,dc=org", "ou="},
		{"", "", "dc=nowhere", ""},
		{"cn=monitor,dc=example,dc=org", "pw", "dc=example,dc=org", ""},
		{"cn=monitor,dc=example,dc=org", "nope", "dc=example,dc=org", ""},
	} {
		differ(t, "ldap "+c.login+"/"+c.passwd+" "+c.base+" ~ "+c.receive,
			Config{Service: "ldap", Addr: addr, Login: c.login, Passwd: c.passwd, Request: c.base, Receive: c.receive, CheckTimeout: 3 * time.Second},
			"check_ldap", "v_service=ldap", "v_checktimeout=3", "v_negotiatetimeout=3", "v_login="+c.login, "v_passwd="+c.passwd,
			"r_server="+host, "r_port="+port, "r_request=/"+c.base, "r_receive="+c.receive)
	}
}
