package wire

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"strconv"
)

// Format is a wire framing.
type Format uint8

// Wire framings.
const (
	Netstring Format = iota + 1 // "###\n" … "%%%\n" + auth netstring
	Classic                     // ">>>\n" name=value lines "<<<\n"
)

// String returns "netstring" or "classic".
func (f Format) String() string {
	switch f {
	case Netstring:
		return "netstring"
	case Classic:
		return "classic"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// Frame is a decoded datagram whose authentication is not yet checked.
type Frame struct {
	Msg    *Message
	Format Format
	// Signed is the part of a netstring datagram the trailing auth
	// signs. It aliases the buffer given to Decode; Msg does not.
	Signed []byte
	// AuthNum and AuthToken are the trailing auth (netstring) or the auth
	// field (classic); HasAuth reports whether either was present.
	AuthNum   int
	AuthToken string
	HasAuth   bool
}

// Decode parses one datagram in either format, choosing by its first four
// bytes as Heartbeat's wirefmt2msg does. It does not check authentication.
func Decode(pkt []byte) (*Frame, error) {
	if len(pkt) >= MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(pkt), MaxMessageSize-1)
	}
	switch {
	case bytes.HasPrefix(pkt, []byte(netStart)):
		return decodeNetstringFrame(pkt)
	case bytes.HasPrefix(pkt, []byte(classicStart)):
		return decodeClassicFrame(pkt)
	}
	return nil, fmt.Errorf("%w: unknown framing %q", ErrMalformed, prefix(pkt))
}

func decodeNetstringFrame(pkt []byte) (*Frame, error) {
	m, n, err := decodeNetstringBody(pkt, 0)
	if err != nil {
		return nil, err
	}
	if err := checkCompressionFields(m); err != nil {
		return nil, err
	}
	fr := &Frame{Msg: m, Format: Netstring, Signed: pkt[:n]}
	rest := pkt[n:]
	if len(rest) == 0 || rest[0] == 0 {
		return nil, fmt.Errorf("%w: no trailing auth netstring", ErrNoAuth)
	}
	a, an, err := readNetstring(rest)
	if err != nil {
		return nil, fmt.Errorf("trailing auth: %w", err)
	}
	if fr.AuthNum, fr.AuthToken, err = parseAuthString(a); err != nil {
		return nil, fmt.Errorf("trailing auth: %w", err)
	}
	fr.HasAuth = true
	if err := trailingNULs(rest[an:]); err != nil {
		return nil, err
	}
	return fr, nil
}

func decodeClassicFrame(pkt []byte) (*Frame, error) {
	m, n, err := decodeClassicBody(pkt, 0)
	if err != nil {
		return nil, err
	}
	if err := trailingNULs(pkt[n:]); err != nil {
		return nil, err
	}
	if err := checkCompressionFields(m); err != nil {
		return nil, err
	}
	fr := &Frame{Msg: m, Format: Classic}
	if a, ok := m.Get(FieldAuth); ok {
		if fr.AuthNum, fr.AuthToken, err = parseAuthString([]byte(a)); err != nil {
			return nil, err
		}
		fr.HasAuth = true
	}
	return fr, nil
}

// trailingNULs accepts the NUL a sender or receiver may append and
// nothing else.
func trailingNULs(b []byte) error {
	if len(b) > 1 || (len(b) == 1 && b[0] != 0) {
		return fmt.Errorf("%w: %d unexpected bytes after the message", ErrMalformed, len(b))
	}
	return nil
}

// Verify checks fr's authentication against the keyring: the trailing
// auth for netstring frames, the auth field for classic frames, as a
// Heartbeat receiver does.
func (r *Keyring) Verify(fr *Frame) error {
	if !fr.HasAuth {
		return ErrNoAuth
	}
	var data []byte
	switch fr.Format {
	case Netstring:
		data = fr.Signed
	case Classic:
		var err error
		if data, err = classicAuthText(fr.Msg); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown format", ErrMalformed)
	}
	var want string
	var err error
	if fr.Format == Classic {
		// isauthentic() uses key AuthNum's own method and secret.
		k, ok := r.Keys[fr.AuthNum]
		if !ok {
			return fmt.Errorf("%w: auth key %d is not in authkeys", ErrAuth, fr.AuthNum)
		}
		want, err = k.Method.Token(k.Secret, data)
	} else {
		want, err = r.token(fr.AuthNum, data)
	}
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(fr.AuthToken)) != 1 {
		return fmt.Errorf("%w: %s token of key %d does not match", ErrAuth, fr.Format, fr.AuthNum)
	}
	return nil
}

// Open decodes a datagram and verifies its authentication.
func (r *Keyring) Open(pkt []byte) (*Message, error) {
	fr, err := Decode(pkt)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(fr); err != nil {
		return nil, err
	}
	return fr.Msg, nil
}

// Seal signs m and encodes it as Heartbeat 3.0.6 sends it with the
// default "msgfmt classic": it sets m's auth field (in place if present,
// else last) to the classic auth, then returns the netstring form
// followed by the trailing auth netstring.
func (r *Keyring) Seal(m *Message) ([]byte, error) {
	if err := r.addAuthField(m); err != nil {
		return nil, err
	}
	return r.sealNetstring(m)
}

// SealNoAuthField encodes m as Heartbeat does under "msgfmt netstring":
// no in-message auth field is added (add_control_msg_fields skips it),
// only the trailing auth netstring. Netstring receivers accept both.
func (r *Keyring) SealNoAuthField(m *Message) ([]byte, error) {
	if err := m.validate(0); err != nil {
		return nil, err
	}
	return r.sealNetstring(m)
}

func (r *Keyring) sealNetstring(m *Message) ([]byte, error) {
	body := appendNetstringBody(nil, m)
	if len(body)+maxAuthBytes+1 >= MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(body))
	}
	active, err := r.activeKey()
	if err != nil {
		return nil, err
	}
	tok, err := r.token(active.Num, body)
	if err != nil {
		return nil, err
	}
	auth := strconv.Itoa(active.Num) + " " + tok
	body = strconv.AppendInt(body, int64(len(auth)), 10)
	body = append(body, ':')
	body = append(body, auth...)
	return append(body, ','), nil
}

// SealClassic signs m like Seal but encodes it in classic form, which
// Heartbeat receivers accept but 3.0.6 never sends; it exists for tests
// and for talking to older peers.
func (r *Keyring) SealClassic(m *Message) ([]byte, error) {
	if err := r.addAuthField(m); err != nil {
		return nil, err
	}
	b, err := appendClassicBody(nil, m, 0)
	if err != nil {
		return nil, err
	}
	b = append(b, 0)
	if len(b) >= MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

func (r *Keyring) addAuthField(m *Message) error {
	if err := m.validate(0); err != nil {
		return err
	}
	active, err := r.activeKey()
	if err != nil {
		return err
	}
	text, err := classicAuthText(m)
	if err != nil {
		return err
	}
	tok, err := r.token(active.Num, text)
	if err != nil {
		return err
	}
	m.Set(FieldAuth, strconv.Itoa(active.Num)+" "+tok)
	return nil
}

// EncodeNetstring returns the netstring form of m with no authentication
// ("###\n" … "%%%\n"), the form nested messages take.
func EncodeNetstring(m *Message) ([]byte, error) {
	if err := m.validate(0); err != nil {
		return nil, err
	}
	b := appendNetstringBody(nil, m)
	if len(b) >= MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// EncodeClassic returns the classic form of m with no authentication
// added, terminated by the NUL a classic sender appends.
func EncodeClassic(m *Message) ([]byte, error) {
	if err := m.validate(0); err != nil {
		return nil, err
	}
	b, err := appendClassicBody(nil, m, 0)
	if err != nil {
		return nil, err
	}
	b = append(b, 0)
	if len(b) >= MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}
