package checks

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// radiusServer answers Access-Requests on loopback UDP: Accept when the
// user and password match, else Reject. It signs answers with signSecret
// and adds a Message-Authenticator when withMA is set.
func radiusServer(t *testing.T, secret, signSecret string, users map[string]string, withMA bool) (netip.AddrPort, chan map[byte][]byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	seen := make(chan map[byte][]byte, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p := buf[:n]
			if n < 20 || p[0] != radiusAccessRequest {
				continue
			}
			var reqAuth [16]byte
			copy(reqAuth[:], p[4:20])
			attrs := map[byte][]byte{}
			for a := p[20:]; len(a) >= 2 && int(a[1]) >= 2 && int(a[1]) <= len(a); a = a[a[1]:] {
				attrs[a[0]] = a[2:a[1]]
			}
			seen <- attrs
			// Reveal the password: the inverse of the hiding.
			hidden := attrs[radiusUserPassword]
			plain := make([]byte, len(hidden))
			prev := reqAuth[:]
			for i := 0; i+16 <= len(hidden); i += 16 {
				sum := md5.Sum(append([]byte(secret), prev...))
				for j := 0; j < 16; j++ {
					plain[i+j] = hidden[i+j] ^ sum[j]
				}
				prev = hidden[i : i+16]
			}
			for len(plain) > 0 && plain[len(plain)-1] == 0 {
				plain = plain[:len(plain)-1]
			}
			code := byte(radiusAccessReject)
			if pw, ok := users[string(attrs[radiusUserName])]; ok && pw == string(plain) {
				code = radiusAccessAccept
			}
			resp := []byte{code, p[1], 0, 0}
			resp = append(resp, reqAuth[:]...)
			if withMA {
				resp = append(resp, radiusMessageAuth, 18)
				resp = append(resp, make([]byte, 16)...)
			}
			binary.BigEndian.PutUint16(resp[2:4], uint16(len(resp)))
			if withMA {
				m := hmac.New(md5.New, []byte(signSecret))
				m.Write(resp)
				copy(resp[22:38], m.Sum(nil))
			}
			h := md5.New()
			h.Write(resp)
			h.Write([]byte(signSecret))
			copy(resp[4:20], h.Sum(nil))
			pc.WriteTo(resp, from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String()), seen
}

func TestRADIUS(t *testing.T) {
	users := map[string]string{"probe": "a long password, more than sixteen bytes", "empty": ""}
	for _, withMA := range []bool{false, true} {
		addr, seen := radiusServer(t, "s3cret", "s3cret", users, withMA)
		cfg := Config{Service: "radius", Addr: addr, Secret: "s3cret", Login: "probe", Passwd: users["probe"], CheckTimeout: time.Second}
		expect(t, mustNew(t, cfg), true)
		attrs := <-seen
		if net.IP(attrs[radiusNASIPAddress]).String() != "127.0.0.1" || len(attrs[radiusMessageAuth]) != 16 {
			t.Errorf("request attributes %v", attrs)
		}
		cfg.Passwd = "wrong"
		expect(t, mustNew(t, cfg), false)
		expect(t, mustNew(t, Config{Service: "radius", Addr: addr, Secret: "s3cret", Login: "empty"}), true)
	}
	// An answer signed with another secret is refused.
	addr, _ := radiusServer(t, "s3cret", "other", users, true)
	r := expect(t, mustNew(t, Config{Service: "radius", Addr: addr, Secret: "s3cret", Login: "probe", Passwd: users["probe"]}), false)
	if r.Err == nil {
		t.Errorf("bad authenticator without an error: %v", r)
	}
	// Silence is down at checktimeout.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	start := time.Now()
	expect(t, mustNew(t, Config{Service: "radius", Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), CheckTimeout: 200 * time.Millisecond}), false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("silent server held the check %v", el)
	}
}

func TestDifferentialRADIUS(t *testing.T) {
	users := map[string]string{"probe": "pw"}
	for _, c := range []struct {
		sign, passwd string
		withMA       bool
	}{{"s3cret", "pw", false}, {"s3cret", "pw", true}, {"s3cret", "bad", false}, {"other", "pw", false}, {"other", "pw", true}} {
		addr, _ := radiusServer(t, "s3cret", c.sign, users, c.withMA)
		host, port, _ := net.SplitHostPort(addr.String())
		differ(t, "radius signed with "+c.sign+" passwd "+c.passwd,
			Config{Service: "radius", Addr: addr, Secret: "s3cret", Login: "probe", Passwd: c.passwd, CheckTimeout: 2 * time.Second},
			"check_radius", "v_service=radius", "v_checktimeout=2", "v_negotiatetimeout=2", "v_secret=s3cret", "v_login=probe", "v_passwd="+c.passwd,
			"r_server="+host, "r_port="+port)
	}
}
