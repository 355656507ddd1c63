package wire

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

const (
	classicStart = ">>>\n"
	classicEnd   = "<<<"
	// stringNLSym replaces '\n' inside string values in classic form
	// (cluster-glue's SPECIAL_SYM).
	stringNLSym = 0x13
)

// structNLSym is the byte that replaces '\n' in the classic text of a
// struct field found at the given depth (cluster-glue's SPECIAL_SYMS).
func structNLSym(depth int) byte {
	syms := [MaxDepth]byte{20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 15, 16, 17, 18}
	return syms[depth]
}

// appendClassicBody appends ">>>\n", one line per field and "<<<\n".
func appendClassicBody(dst []byte, m *Message, depth int) ([]byte, error) {
	dst = append(dst, classicStart...)
	for _, f := range m.Fields {
		var err error
		if dst, err = appendClassicField(dst, f, depth); err != nil {
			return nil, err
		}
	}
	return append(dst, classicEnd+"\n"...), nil
}

// appendClassicField appends `[(T)]name=value\n`. The same text, without
// the auth field, is what the in-message auth signs.
func appendClassicField(dst []byte, f Field, depth int) ([]byte, error) {
	if f.Type != TypeString {
		dst = append(dst, '(', '0'+byte(f.Type), ')')
	}
	dst = append(dst, f.Name...)
	dst = append(dst, '=')
	switch f.Type {
	case TypeString:
		if bytes.IndexByte(f.Value, stringNLSym) >= 0 {
			return nil, fmt.Errorf("%w: field %q: byte 0x13 cannot be sent in classic form", ErrMalformed, f.Name)
		}
		for _, c := range f.Value {
			if c == '\n' {
				c = stringNLSym
			}
			dst = append(dst, c)
		}
	case TypeBinary:
		dst = base64.StdEncoding.AppendEncode(dst, f.Value)
	case TypeStruct:
		if depth+1 >= MaxDepth {
			return nil, ErrTooDeep
		}
		sub, err := appendClassicBody(nil, f.Struct, depth+1)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f.Name, err)
		}
		sym := structNLSym(depth)
		if bytes.IndexByte(sub, sym) >= 0 {
			return nil, fmt.Errorf("%w: field %q: byte 0x%02x cannot be sent in classic form", ErrMalformed, f.Name, sym)
		}
		for _, c := range sub {
			if c == '\n' {
				c = sym
			}
			dst = append(dst, c)
		}
	case TypeList:
		for _, e := range f.List {
			if bytes.IndexByte([]byte(e), '\n') >= 0 {
				return nil, fmt.Errorf("%w: field %q: newline in list element", ErrMalformed, f.Name)
			}
		}
		dst = appendList(dst, f.List)
	default:
		return nil, fmt.Errorf("field %q: %w", f.Name, ErrCompression)
	}
	return append(dst, '\n'), nil
}

// decodeClassicBody decodes one classic message at the start of b and
// returns it with the number of bytes it occupies.
func decodeClassicBody(b []byte, depth int) (*Message, int, error) {
	if depth >= MaxDepth {
		return nil, 0, ErrTooDeep
	}
	if !bytes.HasPrefix(b, []byte(classicStart)) {
		return nil, 0, fmt.Errorf("%w: no %q at start of classic message", ErrMalformed, classicStart)
	}
	m := &Message{}
	pos := len(classicStart)
	for {
		if pos >= len(b) {
			return nil, 0, fmt.Errorf("%w: classic message has no %q end line", ErrMalformed, classicEnd)
		}
		line := b[pos:]
		next := len(b)
		if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
			line = line[:nl]
			next = pos + nl + 1
		}
		pos = next
		if string(line) == classicEnd {
			return m, pos, nil
		}
		if len(m.Fields) >= MaxFields {
			return nil, 0, fmt.Errorf("%w: more than %d fields", ErrTooLarge, MaxFields)
		}
		f, err := decodeClassicField(line, depth)
		if err != nil {
			return nil, 0, err
		}
		m.Fields = append(m.Fields, f)
	}
}

func decodeClassicField(line []byte, depth int) (Field, error) {
	typ := TypeString
	if len(line) > 0 && line[0] == '(' {
		if len(line) < 3 || line[2] != ')' || line[1] < '1' || line[1] > '9' {
			return Field{}, fmt.Errorf("%w: classic line %q has a bad (type) prefix", ErrMalformed, prefix(line))
		}
		typ = FieldType(line[1] - '0')
		line = line[3:]
	}
	eq := bytes.IndexByte(line, '=')
	if eq <= 0 {
		return Field{}, fmt.Errorf("%w: classic line %q has no name or no '='", ErrMalformed, prefix(line))
	}
	name := string(line[:eq])
	if err := validName(name); err != nil {
		return Field{}, err
	}
	val := line[eq+1:]
	f := Field{Name: name, Type: typ}
	switch typ {
	case TypeString:
		if len(val) == 0 || bytes.IndexByte(val, 0) >= 0 {
			return Field{}, fmt.Errorf("%w: field %q: empty string or NUL byte in it", ErrMalformed, name)
		}
		f.Value = bytes.ReplaceAll(val, []byte{stringNLSym}, []byte{'\n'})
	case TypeBinary:
		v, err := base64.StdEncoding.Strict().DecodeString(string(val))
		if err != nil || len(v) == 0 {
			// Heartbeat's base64_to_binary fails on empty input too.
			return Field{}, fmt.Errorf("%w: field %q: bad base64", ErrMalformed, name)
		}
		f.Value = v
	case TypeStruct:
		sub := bytes.ReplaceAll(val, []byte{structNLSym(depth)}, []byte{'\n'})
		s, n, err := decodeClassicBody(sub, depth+1)
		if err != nil {
			return Field{}, fmt.Errorf("field %q: %w", name, err)
		}
		if n != len(sub) {
			return Field{}, fmt.Errorf("%w: field %q: bytes after nested message", ErrMalformed, name)
		}
		f.Struct = s
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

// classicAuthText returns the bytes the in-message auth field signs: the
// classic line of every field except "auth", in order.
func classicAuthText(m *Message) ([]byte, error) {
	var dst []byte
	for _, f := range m.Fields {
		if f.Name == FieldAuth {
			continue
		}
		var err error
		if dst, err = appendClassicField(dst, f, 0); err != nil {
			return nil, err
		}
	}
	return dst, nil
}
