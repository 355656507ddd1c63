package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Limits applied to every decoded or encoded message.
const (
	// MaxMessageSize is Heartbeat's MAXMSG (256 KiB). Receivers read at
	// most MaxMessageSize-1 bytes from a datagram.
	MaxMessageSize = 256 * 1024
	// MaxDepth is the deepest nesting of struct fields accepted; it is
	// cluster-glue's MAXDEPTH, which also bounds its newline symbols.
	MaxDepth = 16
	// MaxFields bounds the number of fields in one (sub)message.
	MaxFields = 1024
	// MaxListElems bounds the number of elements in one list field.
	MaxListElems = 1024
)

// FieldType is the type digit of a field, as written "(N)" on the wire.
type FieldType uint8

// Field types defined by cluster-glue's ha_msg.h.
const (
	TypeString     FieldType = 0 // text; no NUL bytes
	TypeBinary     FieldType = 1 // raw bytes (base64 in classic form)
	TypeStruct     FieldType = 2 // a nested message
	TypeList       FieldType = 3 // a list of strings
	TypeCompress   FieldType = 4 // compressed nested message (unsupported)
	TypeUncompress FieldType = 5 // nested message to compress (unsupported)
)

// String names the type as cluster-glue's FT_strings do.
func (t FieldType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeBinary:
		return "binary"
	case TypeStruct:
		return "struct"
	case TypeList:
		return "list"
	case TypeCompress:
		return "compress"
	case TypeUncompress:
		return "uncompress"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Errors returned by the codec. Decoding errors wrap ErrMalformed unless a
// more specific error applies.
var (
	ErrMalformed   = errors.New("malformed heartbeat message")
	ErrTooLarge    = errors.New("heartbeat message too large")
	ErrTooDeep     = errors.New("heartbeat message nested too deeply")
	ErrCompression = errors.New("compressed heartbeat messages are not supported (set 'compression' off or raise 'compression_threshold' on the peer)")
	ErrAuth        = errors.New("heartbeat message authentication failed")
	ErrNoAuth      = errors.New("heartbeat message carries no authentication")
)

// Field is one name/value pair of a Message. Exactly one of Value, Struct
// and List is meaningful, chosen by Type.
type Field struct {
	Name   string
	Type   FieldType
	Value  []byte   // TypeString, TypeBinary
	Struct *Message // TypeStruct
	List   []string // TypeList
}

// Message is an ordered list of fields. The zero value is an empty message.
type Message struct {
	Fields []Field
}

// New returns a message whose first field is t=typ.
func New(typ string) *Message {
	m := &Message{}
	m.Add(FieldT, typ)
	return m
}

// Add appends a string field and returns m.
func (m *Message) Add(name, value string) *Message {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeString, Value: []byte(value)})
	return m
}

// AddBinary appends a binary field and returns m.
func (m *Message) AddBinary(name string, value []byte) *Message {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeBinary, Value: bytes.Clone(value)})
	return m
}

// AddStruct appends a nested message and returns m.
func (m *Message) AddStruct(name string, sub *Message) *Message {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeStruct, Struct: sub})
	return m
}

// AddList appends a list field and returns m.
func (m *Message) AddList(name string, elems []string) *Message {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeList, List: append([]string(nil), elems...)})
	return m
}

// Lookup returns the first field called name.
func (m *Message) Lookup(name string) (*Field, bool) {
	for i := range m.Fields {
		if m.Fields[i].Name == name {
			return &m.Fields[i], true
		}
	}
	return nil, false
}

// Get returns the value of the first string field called name.
func (m *Message) Get(name string) (string, bool) {
	f, ok := m.Lookup(name)
	if !ok || f.Type != TypeString {
		return "", false
	}
	return string(f.Value), true
}

// Binary returns the value of the first binary field called name.
func (m *Message) Binary(name string) ([]byte, bool) {
	f, ok := m.Lookup(name)
	if !ok || f.Type != TypeBinary {
		return nil, false
	}
	return f.Value, true
}

// Set replaces the value of the first field called name with a string
// value, in place, or appends it when absent (Heartbeat's ha_msg_mod).
func (m *Message) Set(name, value string) *Message {
	if f, ok := m.Lookup(name); ok {
		*f = Field{Name: name, Type: TypeString, Value: []byte(value)}
		return m
	}
	return m.Add(name, value)
}

// Del removes every field called name and reports whether any was removed.
func (m *Message) Del(name string) bool {
	out := m.Fields[:0]
	for _, f := range m.Fields {
		if f.Name != name {
			out = append(out, f)
		}
	}
	removed := len(out) != len(m.Fields)
	m.Fields = out
	return removed
}

// Type returns the message type, the value of field "t".
func (m *Message) Type() string {
	t, _ := m.Get(FieldT)
	return t
}

// Clone returns a deep copy of m.
func (m *Message) Clone() *Message {
	if m == nil {
		return nil
	}
	c := &Message{Fields: make([]Field, len(m.Fields))}
	for i, f := range m.Fields {
		c.Fields[i] = Field{Name: f.Name, Type: f.Type, Value: bytes.Clone(f.Value), Struct: f.Struct.Clone()}
		if f.List != nil {
			c.Fields[i].List = append([]string(nil), f.List...)
		}
	}
	return c
}

// String renders m for logs: name=value pairs in order, binary in hex.
func (m *Message) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range m.Fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.Name)
		b.WriteByte('=')
		switch f.Type {
		case TypeString:
			fmt.Fprintf(&b, "%q", f.Value)
		case TypeBinary:
			fmt.Fprintf(&b, "0x%x", f.Value)
		case TypeStruct:
			b.WriteString(f.Struct.String())
		case TypeList:
			fmt.Fprintf(&b, "%q", f.List)
		default:
			b.WriteString(f.Type.String())
		}
	}
	b.WriteByte('}')
	return b.String()
}

// validate checks that m can be encoded so that Heartbeat accepts it.
func (m *Message) validate(depth int) error {
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrMalformed)
	}
	if depth >= MaxDepth {
		return ErrTooDeep
	}
	if len(m.Fields) > MaxFields {
		return fmt.Errorf("%w: %d fields (max %d)", ErrTooLarge, len(m.Fields), MaxFields)
	}
	for _, f := range m.Fields {
		if err := validName(f.Name); err != nil {
			return err
		}
		switch f.Type {
		case TypeString:
			// Heartbeat refuses empty values and stores strings NUL-terminated.
			if len(f.Value) == 0 {
				return fmt.Errorf("%w: field %q: empty string value (Heartbeat drops such messages)", ErrMalformed, f.Name)
			}
			if bytes.IndexByte(f.Value, 0) >= 0 {
				return fmt.Errorf("%w: field %q: NUL byte in string value", ErrMalformed, f.Name)
			}
		case TypeBinary:
		case TypeStruct:
			if err := f.Struct.validate(depth + 1); err != nil {
				return fmt.Errorf("field %q: %w", f.Name, err)
			}
		case TypeList:
			if len(f.List) == 0 || len(f.List) > MaxListElems {
				return fmt.Errorf("%w: field %q: list of %d elements (want 1..%d)", ErrMalformed, f.Name, len(f.List), MaxListElems)
			}
			for _, e := range f.List {
				if e == "" || strings.IndexByte(e, 0) >= 0 {
					return fmt.Errorf("%w: field %q: empty list element or NUL byte", ErrMalformed, f.Name)
				}
			}
		case TypeCompress, TypeUncompress:
			return fmt.Errorf("field %q: %w", f.Name, ErrCompression)
		default:
			return fmt.Errorf("%w: field %q: unknown type %d", ErrMalformed, f.Name, f.Type)
		}
	}
	return nil
}

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty field name", ErrMalformed)
	}
	if strings.ContainsAny(name, "=\n\x00") || name[0] == '(' {
		return fmt.Errorf("%w: field name %q contains '=', newline or NUL, or starts with '('", ErrMalformed, name)
	}
	return nil
}

// checkCompressionFields rejects messages carrying the fields added by
// Heartbeat's traditional compression: their real payload is compressed.
func checkCompressionFields(m *Message) error {
	for _, f := range m.Fields {
		if f.Name == "_compressed_payload" || f.Name == "_compression_algorithm" {
			return fmt.Errorf("field %q: %w", f.Name, ErrCompression)
		}
	}
	return nil
}
