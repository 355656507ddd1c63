package wire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Method is an authentication method of /etc/ha.d/authkeys.
type Method uint8

// Authentication methods, as named in authkeys.
const (
	CRC  Method = iota + 1 // CRC-32, no key; detects corruption only
	MD5                    // HMAC-MD5
	SHA1                   // HMAC-SHA1
)

// ParseMethod parses "crc", "md5" or "sha1".
func ParseMethod(s string) (Method, error) {
	switch s {
	case "crc":
		return CRC, nil
	case "md5":
		return MD5, nil
	case "sha1":
		return SHA1, nil
	}
	return 0, fmt.Errorf("unknown authentication method %q (want crc, md5 or sha1)", s)
}

// String returns the authkeys spelling of m.
func (m Method) String() string {
	switch m {
	case CRC:
		return "crc"
	case MD5:
		return "md5"
	case SHA1:
		return "sha1"
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// NeedsKey reports whether the method takes a secret.
func (m Method) NeedsKey() bool { return m == MD5 || m == SHA1 }

// Token computes the authentication token Heartbeat's HBauth plugin for
// method m writes for data under secret: lowercase hex of the HMAC for
// md5/sha1, or the CRC printed with %lx (no zero padding) for crc.
func (m Method) Token(secret, data []byte) (string, error) {
	switch m {
	case CRC:
		return strconv.FormatUint(uint64(crc32MSB(data)), 16), nil
	case MD5:
		h := hmac.New(md5.New, secret)
		h.Write(data)
		return hex.EncodeToString(h.Sum(nil)), nil
	case SHA1:
		h := hmac.New(sha1.New, secret)
		h.Write(data)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	return "", fmt.Errorf("unknown authentication method %d", m)
}

// crc32MSB is Heartbeat's crc.c: CRC-32 with polynomial 0x04C11DB7
// processed MSB first, initial value 0, no length appended, result
// inverted (the "CRC-32/CKSUM" parameters without cksum's length suffix).
// Computed bitwise: messages are small and a table would be package state.
func crc32MSB(data []byte) uint32 {
	var crc uint32
	for _, b := range data {
		crc ^= uint32(b) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return ^crc
}

// Key is one numbered entry of authkeys.
type Key struct {
	Num    int
	Method Method
	Secret []byte
}

// Keyring is the content of authkeys: the keys by number and the number
// of the one used to sign ("auth N").
type Keyring struct {
	Active int
	Keys   map[int]Key
}

// NewKeyring returns a keyring holding one key, which signs.
func NewKeyring(k Key) *Keyring {
	return &Keyring{Active: k.Num, Keys: map[int]Key{k.Num: k}}
}

func (r *Keyring) activeKey() (Key, error) {
	if r == nil {
		return Key{}, fmt.Errorf("no authentication keys")
	}
	k, ok := r.Keys[r.Active]
	if !ok {
		return Key{}, fmt.Errorf("active auth key %d is not defined", r.Active)
	}
	return k, nil
}

// token computes the netstring token a Heartbeat receiver expects for
// authnum. Heartbeat's hb_compute_authentication takes the method of key
// authnum but the secret of the active key; doing the same keeps a
// multi-key authkeys file behaving exactly as it does with Heartbeat.
// (The classic auth field is checked by isauthentic(), which uses key
// authnum's own secret; see Verify.)
func (r *Keyring) token(authnum int, data []byte) (string, error) {
	active, err := r.activeKey()
	if err != nil {
		return "", err
	}
	k, ok := r.Keys[authnum]
	if !ok {
		return "", fmt.Errorf("%w: auth key %d is not in authkeys", ErrAuth, authnum)
	}
	return k.Method.Token(active.Secret, data)
}
