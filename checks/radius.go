package checks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RADIUS (RFC 2865) is defined on MD5
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// RADIUS packet codes and attribute types (RFC 2865, RFC 3579).
const (
	radiusAccessRequest   = 1
	radiusAccessAccept    = 2
	radiusAccessReject    = 3
	radiusAccessChallenge = 11

	radiusUserName     = 1
	radiusUserPassword = 2
	radiusNASIPAddress = 4
	radiusMessageAuth  = 80
)

// RADIUSChecker is ldirectord's negotiate check for service=radius
// (Authen::Radius's check_pwd): it sends one Access-Request over UDP with
// User-Name login, User-Password passwd (PAP, hidden with secret) and
// NAS-IP-Address the local address, and is up when the answer is an
// Access-Accept whose Response Authenticator (and Message-Authenticator, if
// present) is right for secret. A reject, a challenge or silence is down.
//
// Unlike Authen::Radius it also sends a Message-Authenticator, which RADIUS
// servers hardened against BlastRADIUS (CVE-2024-3596) require.
//
// It is written here rather than taken from a library: the one Go RADIUS
// package the module proxy serves (layeh.com/radius) has had no release and
// no change since 2023, and the check needs only one packet each way.
type RADIUSChecker struct {
	addr          string
	login, passwd string
	secret        []byte
	timeout       time.Duration
}

// NewRADIUS builds the check for service=radius.
func NewRADIUS(cfg Config) (*RADIUSChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("radius check: no real server address")
	}
	if len(cfg.Login) > 253 {
		return nil, errors.New("radius check: login longer than 253 bytes")
	}
	if len(cfg.Passwd) > 128 {
		return nil, errors.New("radius check: passwd longer than 128 bytes")
	}
	// ldirectord's alarm is checktimeout around the whole exchange.
	return &RADIUSChecker{addr: cfg.Addr.String(), login: cfg.Login, passwd: cfg.Passwd, secret: []byte(cfg.Secret), timeout: cfg.checkTimeout()}, nil
}

// Check implements Checker.
func (c *RADIUSChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *RADIUSChecker) check(ctx context.Context) Result {
	s, err := dialSession(ctx, "udp", c.addr, nil)
	if err != nil {
		return down("", err)
	}
	defer s.close()
	nas := net.IPv4(127, 0, 0, 1)
	if ua, ok := s.conn.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() != nil {
		nas = ua.IP
	}
	var id [1]byte
	var auth [16]byte
	if _, err := rand.Read(auth[:]); err != nil {
		return down("", fmt.Errorf("random authenticator: %w", err))
	}
	rand.Read(id[:])
	req := radiusRequest(id[0], auth, c.secret, c.login, c.passwd, nas.To4())
	if _, err := s.conn.Write(req); err != nil {
		return down("", fmt.Errorf("sending Access-Request: %w", err))
	}
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	if err != nil {
		return down("", fmt.Errorf("waiting for the answer: %w", err))
	}
	// Like Authen::Radius, judge the first answer, whatever its identifier.
	code, err := radiusVerify(buf[:n], auth, c.secret)
	if err != nil {
		return down("", err)
	}
	switch code {
	case radiusAccessAccept:
		return up("Access-Accept")
	case radiusAccessReject:
		return down("Access-Reject", nil)
	case radiusAccessChallenge:
		return down("Access-Challenge", nil)
	}
	return down(fmt.Sprintf("answer code %d", code), nil)
}

// radiusRequest encodes an Access-Request.
func radiusRequest(id byte, auth [16]byte, secret []byte, user, passwd string, nas net.IP) []byte {
	var b bytes.Buffer
	b.Write([]byte{radiusAccessRequest, id, 0, 0})
	b.Write(auth[:])
	attr := func(t byte, v []byte) {
		b.WriteByte(t)
		b.WriteByte(byte(len(v) + 2))
		b.Write(v)
	}
	attr(radiusUserName, []byte(user))
	attr(radiusUserPassword, radiusHidePassword(passwd, secret, auth))
	attr(radiusNASIPAddress, nas)
	macAt := b.Len() + 2
	attr(radiusMessageAuth, make([]byte, 16))
	p := b.Bytes()
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	m := hmac.New(md5.New, secret)
	m.Write(p)
	copy(p[macAt:], m.Sum(nil))
	return p
}

// radiusHidePassword is RFC 2865's User-Password hiding: the password padded
// with zeros to a multiple of 16 bytes (at least 16), each block XORed with
// MD5(secret + the previous cipher block, the authenticator first).
func radiusHidePassword(passwd string, secret []byte, auth [16]byte) []byte {
	n := (len(passwd) + 15) / 16 * 16
	if n == 0 {
		n = 16
	}
	p := make([]byte, n)
	copy(p, passwd)
	prev := auth[:]
	for i := 0; i < n; i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		sum := h.Sum(nil)
		for j := 0; j < 16; j++ {
			p[i+j] ^= sum[j]
		}
		prev = p[i : i+16]
	}
	return p
}

// radiusVerify checks an answer to the request with authenticator auth and
// returns its code: the length must be consistent, the Response
// Authenticator MD5(code, id, length, request authenticator, attributes,
// secret), and a Message-Authenticator, if present, the HMAC-MD5 of the
// packet with it zeroed and the request authenticator in place.
func radiusVerify(p []byte, auth [16]byte, secret []byte) (byte, error) {
	if len(p) < 20 {
		return 0, fmt.Errorf("radius answer of %d bytes", len(p))
	}
	length := int(binary.BigEndian.Uint16(p[2:4]))
	if length < 20 || length > len(p) {
		return 0, fmt.Errorf("radius answer length %d in %d bytes", length, len(p))
	}
	p = p[:length]
	h := md5.New()
	h.Write(p[:4])
	h.Write(auth[:])
	h.Write(p[20:])
	h.Write(secret)
	if !hmac.Equal(h.Sum(nil), p[4:20]) {
		return 0, errors.New("radius answer has a bad Response Authenticator (wrong secret?)")
	}
	for a := p[20:]; len(a) > 0; {
		if len(a) < 2 || int(a[1]) < 2 || int(a[1]) > len(a) {
			return 0, errors.New("radius answer has a malformed attribute")
		}
		if a[0] == radiusMessageAuth {
			if a[1] != 18 {
				return 0, errors.New("radius answer has a malformed Message-Authenticator")
			}
			off := len(p) - len(a) + 2
			q := append([]byte(nil), p...)
			copy(q[4:20], auth[:])
			clear(q[off : off+16])
			m := hmac.New(md5.New, secret)
			m.Write(q)
			if !hmac.Equal(m.Sum(nil), p[off:off+16]) {
				return 0, errors.New("radius answer has a bad Message-Authenticator")
			}
		}
		a = a[a[1]:]
	}
	return p[0], nil
}

// String says in words what the check does and expects.
func (c *RADIUSChecker) String() string {
	return fmt.Sprintf("RADIUS Access-Request for %q to %s expecting Access-Accept within %v", c.login, c.addr, c.timeout)
}
