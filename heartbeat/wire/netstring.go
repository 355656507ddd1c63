package wire

import (
	"bytes"
	"fmt"
	"strconv"
)

const (
	netStart = "###\n"
	netEnd   = "%%%\n"
	// maxLenDigits bounds a netstring length prefix: no length can exceed
	// MaxMessageSize, which has 6 decimal digits.
	maxLenDigits = 6
	// maxAuthBytes is cluster-glue's MAX_AUTH_BYTES: the room a sender
	// reserves for the trailing auth netstring when sizing a message.
	maxAuthBytes = 64
)

// appendNetstringBody appends the netstring form of m ("###\n" … "%%%\n",
// no auth). m must have been validated.
func appendNetstringBody(dst []byte, m *Message) []byte {
	dst = append(dst, netStart...)
	var val []byte
	for _, f := range m.Fields {
		val = netstringValue(val[:0], f)
		n := 3 + len(f.Name) + 1 + len(val)
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, ':', '(', '0'+byte(f.Type), ')')
		dst = append(dst, f.Name...)
		dst = append(dst, '=')
		dst = append(dst, val...)
		dst = append(dst, ',')
	}
	return append(dst, netEnd...)
}

func netstringValue(dst []byte, f Field) []byte {
	switch f.Type {
	case TypeStruct:
		return appendNetstringBody(dst, f.Struct)
	case TypeList:
		return appendList(dst, f.List)
	default:
		return append(dst, f.Value...)
	}
}

// appendList packs list elements as cluster-glue's string_list_pack does:
// "<len>:<elem>," for each element.
func appendList(dst []byte, elems []string) []byte {
	for _, e := range elems {
		dst = strconv.AppendInt(dst, int64(len(e)), 10)
		dst = append(dst, ':')
		dst = append(dst, e...)
		dst = append(dst, ',')
	}
	return dst
}

// readNetstring reads one "<len>:<data>," from b and returns data and the
// number of bytes consumed.
func readNetstring(b []byte) (data []byte, n int, err error) {
	i := 0
	length := 0
	for i < len(b) && i < maxLenDigits && b[i] >= '0' && b[i] <= '9' {
		length = length*10 + int(b[i]-'0')
		i++
	}
	if i == 0 {
		return nil, 0, fmt.Errorf("%w: netstring length expected, got %q", ErrMalformed, prefix(b))
	}
	// cluster-glue would accept leading zeros but never writes them;
	// refusing them keeps every accepted frame in its one canonical form.
	if i > 1 && b[0] == '0' {
		return nil, 0, fmt.Errorf("%w: netstring length with leading zero", ErrMalformed)
	}
	if i >= len(b) || b[i] != ':' {
		return nil, 0, fmt.Errorf("%w: netstring length not followed by ':'", ErrMalformed)
	}
	i++
	if length > len(b)-i-1 {
		return nil, 0, fmt.Errorf("%w: netstring of %d bytes overruns its buffer", ErrMalformed, length)
	}
	data = b[i : i+length]
	i += length
	if b[i] != ',' {
		return nil, 0, fmt.Errorf("%w: netstring not terminated by ','", ErrMalformed)
	}
	return data, i + 1, nil
}

func prefix(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

// decodeNetstringBody decodes one "###\n" … "%%%\n" message at the start
// of b and returns it with the number of bytes it occupies.
func decodeNetstringBody(b []byte, depth int) (*Message, int, error) {
	if depth >= MaxDepth {
		return nil, 0, ErrTooDeep
	}
	if !bytes.HasPrefix(b, []byte(netStart)) {
		return nil, 0, fmt.Errorf("%w: no %q at start of message", ErrMalformed, netStart)
	}
	m := &Message{}
	pos := len(netStart)
	for {
		if bytes.HasPrefix(b[pos:], []byte(netEnd)) {
			return m, pos + len(netEnd), nil
		}
		if pos >= len(b) {
			return nil, 0, fmt.Errorf("%w: message has no %q end marker", ErrMalformed, netEnd)
		}
		if len(m.Fields) >= MaxFields {
			return nil, 0, fmt.Errorf("%w: more than %d fields", ErrTooLarge, MaxFields)
		}
		nv, n, err := readNetstring(b[pos:])
		if err != nil {
			return nil, 0, fmt.Errorf("field %d: %w", len(m.Fields)+1, err)
		}
		pos += n
		f, err := decodeNetstringField(nv, depth)
		if err != nil {
			return nil, 0, err
		}
		m.Fields = append(m.Fields, f)
	}
}

// decodeNetstringField decodes "(T)name=value".
func decodeNetstringField(nv []byte, depth int) (Field, error) {
	if len(nv) < 5 || nv[0] != '(' || nv[2] != ')' || nv[1] < '0' || nv[1] > '9' {
		return Field{}, fmt.Errorf("%w: field %q does not start with (type)", ErrMalformed, prefix(nv))
	}
	typ := FieldType(nv[1] - '0')
	rest := nv[3:]
	eq := bytes.IndexByte(rest, '=')
	if eq <= 0 {
		return Field{}, fmt.Errorf("%w: field %q has no name or no '='", ErrMalformed, prefix(nv))
	}
	name := string(rest[:eq])
	if err := validName(name); err != nil {
		return Field{}, err
	}
	val := rest[eq+1:]
	f := Field{Name: name, Type: typ}
	switch typ {
	case TypeString:
		if len(val) == 0 || bytes.IndexByte(val, 0) >= 0 {
			return Field{}, fmt.Errorf("%w: field %q: empty string or NUL byte in it", ErrMalformed, name)
		}
		f.Value = bytes.Clone(val)
	case TypeBinary:
		f.Value = bytes.Clone(val)
	case TypeStruct:
		sub, n, err := decodeNetstringBody(val, depth+1)
		if err != nil {
			return Field{}, fmt.Errorf("field %q: %w", name, err)
		}
		if n != len(val) {
			return Field{}, fmt.Errorf("%w: field %q: %d bytes after nested message", ErrMalformed, name, len(val)-n)
		}
		f.Struct = sub
	case TypeList:
		l, err := decodeList(val)
		if err != nil {
			return Field{}, fmt.Errorf("field %q: %w", name, err)
		}
		f.List = l
	case TypeCompress, TypeUncompress:
		return Field{}, fmt.Errorf("field %q (%s): %w", name, typ, ErrCompression)
	default:
		return Field{}, fmt.Errorf("%w: field %q has unknown type %d", ErrMalformed, name, typ)
	}
	return f, nil
}

func decodeList(b []byte) ([]string, error) {
	var out []string
	for pos := 0; pos < len(b); {
		if len(out) >= MaxListElems {
			return nil, fmt.Errorf("%w: list of more than %d elements", ErrTooLarge, MaxListElems)
		}
		e, n, err := readNetstring(b[pos:])
		if err != nil {
			return nil, err
		}
		if len(e) == 0 || bytes.IndexByte(e, 0) >= 0 {
			return nil, fmt.Errorf("%w: empty list element or NUL byte in it", ErrMalformed)
		}
		out = append(out, string(e))
		pos += n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrMalformed)
	}
	return out, nil
}

// parseAuthString parses "<authnum> <token>" as Heartbeat's
// sscanf("%d %s") would for the strings it writes.
func parseAuthString(s []byte) (int, string, error) {
	sp := bytes.IndexByte(s, ' ')
	if sp <= 0 || sp > 9 {
		return 0, "", fmt.Errorf("%w: auth string %q is not \"<num> <token>\"", ErrMalformed, prefix(s))
	}
	num := 0
	for _, c := range s[:sp] {
		if c < '0' || c > '9' {
			return 0, "", fmt.Errorf("%w: auth number %q is not decimal", ErrMalformed, s[:sp])
		}
		num = num*10 + int(c-'0')
	}
	tok := s[sp+1:]
	if len(tok) == 0 || len(tok) > 128 {
		return 0, "", fmt.Errorf("%w: auth token of %d bytes", ErrMalformed, len(tok))
	}
	for _, c := range tok {
		if c <= ' ' || c >= 0x7f {
			return 0, "", fmt.Errorf("%w: auth token has byte 0x%02x", ErrMalformed, c)
		}
	}
	return num, string(tok), nil
}
