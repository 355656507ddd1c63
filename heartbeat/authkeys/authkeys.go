// Package authkeys reads Heartbeat's /etc/ha.d/authkeys: which numbered
// key signs outgoing messages and which keys verify incoming ones.
//
// The format, as Heartbeat 3.0.6 parses it:
//
//	# comment
//	auth 1
//	1 sha1 key-for-sha1-any-text-you-want
//	2 md5 another-key
//	3 crc
//
// Key numbers run from 0 to 15. The file must not be readable or writable
// by group or others; like Heartbeat, Load refuses it otherwise.
package authkeys

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/directord/directord/heartbeat/wire"
)

// MaxKeys is Heartbeat's MAXAUTH: key numbers are 0..MaxKeys-1.
const MaxKeys = 16

// maxLine bounds one line, like Heartbeat's MAXLINE-sized fgets buffer.
const maxLine = 4096

// ErrPermissions is returned by Load for a file others can read or write.
var ErrPermissions = errors.New("bad permissions on authkeys")

// Load reads and parses the authkeys file at path. It refuses a file
// whose mode grants group or others any access, as Heartbeat refuses a
// group- or world-readable one.
func Load(path string) (*wire.Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authkeys: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("authkeys: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w: mode %04o gives group/others access to the keys; run: chmod 600 %s", path, ErrPermissions, perm, path)
	}
	return Parse(f, path)
}

// Parse parses authkeys text; name is used in error messages, which have
// the form "name:line: problem".
func Parse(r io.Reader, name string) (*wire.Keyring, error) {
	ring := &wire.Keyring{Active: -1, Keys: map[int]wire.Key{}}
	authLine := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	lineno := 0
	for sc.Scan() {
		lineno++
		fail := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", name, lineno, fmt.Sprintf(format, a...))
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		tok := strings.Fields(line)
		for i, t := range tok {
			if strings.HasPrefix(t, "#") {
				tok = tok[:i]
				break
			}
		}
		if tok[0] == "auth" {
			if authLine != 0 {
				return nil, fail("second auth line (the first is line %d)", authLine)
			}
			if len(tok) != 2 {
				return nil, fail("want \"auth N\", got %q", line)
			}
			n, err := keyNum(tok[1])
			if err != nil {
				return nil, fail("auth: %v", err)
			}
			ring.Active, authLine = n, lineno
			continue
		}
		if len(tok) < 2 {
			return nil, fail("want \"N crc\", \"N md5 KEY\" or \"N sha1 KEY\", got %q", line)
		}
		n, err := keyNum(tok[0])
		if err != nil {
			return nil, fail("%v", err)
		}
		if _, dup := ring.Keys[n]; dup {
			return nil, fail("key %d defined twice", n)
		}
		m, err := wire.ParseMethod(tok[1])
		if err != nil {
			return nil, fail("%v", err)
		}
		k := wire.Key{Num: n, Method: m}
		switch {
		case m.NeedsKey() && len(tok) < 3:
			return nil, fail("method %s needs a key: \"%d %s KEY\"", m, n, m)
		case !m.NeedsKey() && len(tok) > 2:
			return nil, fail("method %s takes no key", m)
		case len(tok) > 3:
			// Heartbeat reads the key with %s and would silently sign
			// with the first word only; refuse rather than surprise.
			return nil, fail("key must be one word without spaces (Heartbeat would use only %q)", tok[2])
		case len(tok) == 3:
			k.Secret = []byte(tok[2])
		}
		ring.Keys[n] = k
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, lineno+1, err)
	}
	if authLine == 0 {
		return nil, fmt.Errorf("%s: no \"auth N\" line saying which key signs", name)
	}
	if _, ok := ring.Keys[ring.Active]; !ok {
		return nil, fmt.Errorf("%s:%d: auth %d: key %d is not defined", name, authLine, ring.Active, ring.Active)
	}
	return ring, nil
}

func keyNum(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= MaxKeys {
		return 0, fmt.Errorf("key number %q is not 0..%d", s, MaxKeys-1)
	}
	return n, nil
}
