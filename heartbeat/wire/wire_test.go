package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// uuidA is an arbitrary uuid for test messages.
var uuidA = UUID{0x8e, 0x1c, 0x5d, 0x02, 0x4a, 0x7b, 0x4c, 0x21, 0x9f, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}

func sha1Ring(secret string) *Keyring {
	return NewKeyring(Key{Num: 1, Method: SHA1, Secret: []byte(secret)})
}

// keepalive builds the keepalive of heartbeat-wire.md §2, field for field.
func keepalive() *Message {
	m := New("status")
	m.Add(FieldStatus, "active").Add(FieldDeadtime, "1388").Add(FieldProtocol, "1")
	m.Add(FieldSrc, "nodea").AddUUID(FieldSrcUUID, uuidA)
	m.Add(FieldSeq, "29").Add(FieldGen, "6b022ec2").Add(FieldTime, "6b022ef6")
	m.Add(FieldLoad, "1.72 1.31 1.04 3/111 1458").Add(FieldTTL, "3")
	return m
}

func TestKeepaliveLayout(t *testing.T) {
	pkt, err := sha1Ring("k").Seal(keepalive())
	if err != nil {
		t.Fatal(err)
	}
	// The reference keepalive is 311 bytes: 265 signed, 46 of auth.
	if len(pkt) != 311 {
		t.Errorf("len = %d, want 311", len(pkt))
	}
	end := bytes.Index(pkt, []byte("%%%\n")) + 4
	if end != 265 {
		t.Errorf("signed part = %d bytes, want 265", end)
	}
	if !bytes.HasPrefix(pkt[end:], []byte("42:1 ")) || pkt[len(pkt)-1] != ',' {
		t.Errorf("trailing auth = %q", pkt[end:])
	}
	want := "###\n11:(0)t=status,12:(0)st=active,10:(0)dt=1388,13:(0)protocol=1,12:(0)src=nodea,27:(1)srcuuid=" +
		string(uuidA[:]) + ",9:(0)seq=29,14:(0)hg=6b022ec2,14:(0)ts=6b022ef6,31:(0)ld=1.72 1.31 1.04 3/111 1458,8:(0)ttl=3,50:(0)auth=1 "
	if !bytes.HasPrefix(pkt, []byte(want)) {
		t.Errorf("packet starts\n%q\nwant\n%q", pkt[:len(want)], want)
	}
	if !bytes.HasSuffix(pkt[:end], []byte(",%%%\n")) {
		t.Errorf("body does not end with ,%%%%%%\\n: %q", pkt[end-10:end])
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, k := range []Key{
		{Num: 1, Method: SHA1, Secret: []byte("secret")},
		{Num: 2, Method: MD5, Secret: []byte("another secret")},
		{Num: 3, Method: CRC},
	} {
		t.Run(k.Method.String(), func(t *testing.T) {
			r := NewKeyring(k)
			for _, format := range []Format{Netstring, Classic} {
				m := keepalive()
				var pkt []byte
				var err error
				if format == Netstring {
					pkt, err = r.Seal(m)
				} else {
					pkt, err = r.SealClassic(m)
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := r.Open(pkt)
				if err != nil {
					t.Fatalf("%s: Open: %v", format, err)
				}
				if !reflect.DeepEqual(got, m) {
					t.Errorf("%s: got %v, want %v", format, got, m)
				}
				fr, err := Decode(pkt)
				if err != nil || fr.Format != format || fr.AuthNum != k.Num {
					t.Errorf("%s: Decode = %+v, %v", format, fr, err)
				}
				// Any change to a signed byte must fail verification.
				bad := bytes.Clone(pkt)
				i := bytes.Index(bad, []byte("nodea"))
				bad[i] = 'x'
				if _, err := r.Open(bad); !errors.Is(err, ErrAuth) {
					t.Errorf("%s: tampered packet: err = %v, want ErrAuth", format, err)
				}
			}
		})
	}
}

func TestSealNoAuthField(t *testing.T) {
	r := NewKeyring(Key{Num: 1, Method: MD5, Secret: []byte("k")})
	m := keepalive()
	pkt, err := r.SealNoAuthField(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lookup(FieldAuth); ok || bytes.Contains(pkt, []byte("auth=")) {
		t.Errorf("auth field added: %q", pkt)
	}
	got, err := r.Open(pkt)
	if err != nil || !equalMessages(got, m) {
		t.Errorf("Open = %v, %v", got, err)
	}
	if _, err := (&Keyring{Active: 2}).SealNoAuthField(keepalive()); err == nil {
		t.Error("sealed without a key")
	}
	if _, err := r.SealNoAuthField(New("x").Add("a", "")); err == nil {
		t.Error("sealed an invalid message")
	}
}

func TestWrongKeyRejected(t *testing.T) {
	pkt, err := sha1Ring("right").Seal(keepalive())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sha1Ring("wrong").Open(pkt); !errors.Is(err, ErrAuth) {
		t.Errorf("err = %v, want ErrAuth", err)
	}
	md5 := NewKeyring(Key{Num: 1, Method: MD5, Secret: []byte("right")})
	if _, err := md5.Open(pkt); !errors.Is(err, ErrAuth) {
		t.Errorf("md5 keyring on sha1 packet: err = %v, want ErrAuth", err)
	}
	other := NewKeyring(Key{Num: 2, Method: SHA1, Secret: []byte("right")})
	if _, err := other.Open(pkt); !errors.Is(err, ErrAuth) {
		t.Errorf("keyring without key 1: err = %v, want ErrAuth", err)
	}
}

// The two auth strings sign different bytes: the trailing one the frame,
// the field the classic text. Check both against independent computation.
func TestAuthStringsSignedBytes(t *testing.T) {
	r := sha1Ring("key-for-sha1-any-text-you-want")
	m := keepalive()
	pkt, err := r.Seal(m)
	if err != nil {
		t.Fatal(err)
	}
	classic := "t=status\nst=active\ndt=1388\nprotocol=1\nsrc=nodea\n(1)srcuuid=jhxdAkp7TCGfChEiM0RVZg==\n" +
		"seq=29\nhg=6b022ec2\nts=6b022ef6\nld=1.72 1.31 1.04 3/111 1458\nttl=3\n"
	tok, _ := SHA1.Token([]byte("key-for-sha1-any-text-you-want"), []byte(classic))
	if a, _ := m.Get(FieldAuth); a != "1 "+tok {
		t.Errorf("auth field = %q, want %q", a, "1 "+tok)
	}
	end := bytes.Index(pkt, []byte("%%%\n")) + 4
	tok2, _ := SHA1.Token([]byte("key-for-sha1-any-text-you-want"), pkt[:end])
	if got := string(pkt[end:]); got != "42:1 "+tok2+"," {
		t.Errorf("trailing auth = %q, want %q", got, "42:1 "+tok2+",")
	}
	// Resealing replaces the auth field in place instead of adding one.
	if _, err := r.Seal(m); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range m.Fields {
		if f.Name == FieldAuth {
			n++
		}
	}
	if n != 1 || m.Fields[len(m.Fields)-1].Name != FieldAuth {
		t.Errorf("after resealing: %d auth fields, last field %q", n, m.Fields[len(m.Fields)-1].Name)
	}
}

func TestTokenVectors(t *testing.T) {
	tests := []struct {
		m          Method
		key, data  string
		wantPrefix string
		want       string
	}{
		// RFC 2202 test case 2.
		{m: MD5, key: "Jefe", data: "what do ya want for nothing?", want: "750c783e6ab0b503eaa86e310a5db738"},
		{m: SHA1, key: "Jefe", data: "what do ya want for nothing?", want: "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		// RFC 2202 test cases 6: an 80-byte key is hashed first.
		{m: MD5, key: strings.Repeat("\xaa", 80), data: "Test Using Larger Than Block-Size Key - Hash Key First", want: "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"},
		{m: SHA1, key: strings.Repeat("\xaa", 80), data: "Test Using Larger Than Block-Size Key - Hash Key First", want: "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		// CRC-32/CKSUM check value (no length appended).
		{m: CRC, data: "123456789", want: "765e7680"},
		{m: CRC, data: "", want: "ffffffff"},
	}
	for _, tt := range tests {
		got, err := tt.m.Token([]byte(tt.key), []byte(tt.data))
		if err != nil || got != tt.want {
			t.Errorf("%s(%q) = %q, %v; want %q", tt.m, tt.data, got, err, tt.want)
		}
	}
}

func TestCRCNotZeroPadded(t *testing.T) {
	// Find an input whose CRC has a leading zero nibble; Heartbeat prints
	// it with %lx, so the token is shorter than 8 characters.
	for i := range 1 << 16 {
		data := []byte{byte(i), byte(i >> 8)}
		if crc32MSB(data) < 0x10000000 {
			tok, _ := CRC.Token(nil, data)
			if len(tok) >= 8 || tok[0] == '0' {
				t.Fatalf("token %q for crc %#x is padded", tok, crc32MSB(data))
			}
			return
		}
	}
	t.Fatal("no small CRC found")
}

// Heartbeat takes the method of the packet's key number but the secret of
// the active key (hb_compute_authentication); a packet that Heartbeat
// accepts must be accepted here too.
func TestKeyringQuirk(t *testing.T) {
	r := &Keyring{Active: 1, Keys: map[int]Key{
		1: {Num: 1, Method: SHA1, Secret: []byte("one")},
		2: {Num: 2, Method: MD5, Secret: []byte("two")},
	}}
	body, err := EncodeNetstring(keepalive())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := MD5.Token([]byte("one"), body)
	auth := "2 " + tok
	pkt := append(append(bytes.Clone(body), []byte(itoa(len(auth))+":")...), auth+","...)
	if _, err := r.Open(pkt); err != nil {
		t.Errorf("md5 with active secret: %v", err)
	}
	tok, _ = MD5.Token([]byte("two"), body)
	pkt = append(append(bytes.Clone(body), []byte(itoa(len(auth))+":")...), "2 "+tok+","...)
	if _, err := r.Open(pkt); !errors.Is(err, ErrAuth) {
		t.Errorf("md5 with key 2's own secret: err = %v, want ErrAuth", err)
	}

	// The classic auth field is checked with key 2's own secret.
	m := New("status").Add("st", "up")
	text, _ := classicAuthText(m)
	tok, _ = MD5.Token([]byte("two"), text)
	m.Add(FieldAuth, "2 "+tok)
	cl, err := EncodeClassic(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(cl); err != nil {
		t.Errorf("classic field with key 2's secret: %v", err)
	}
	tok, _ = MD5.Token([]byte("one"), text)
	m.Set(FieldAuth, "2 "+tok)
	cl, _ = EncodeClassic(m)
	if _, err := r.Open(cl); !errors.Is(err, ErrAuth) {
		t.Errorf("classic field with the active secret: err = %v, want ErrAuth", err)
	}
	m.Set(FieldAuth, "9 "+tok)
	cl, _ = EncodeClassic(m)
	if _, err := r.Open(cl); !errors.Is(err, ErrAuth) {
		t.Errorf("classic field with unknown key: err = %v, want ErrAuth", err)
	}
}

func nested() *Message {
	inner := New("inner").Add("text", "line1\nline2").AddBinary("bin", []byte{0, 1, 2, '\n', 0x13, 0xff})
	inner.AddStruct("deeper", New("deepest").AddList("l", []string{"x y", "z"}))
	m := New("outer").AddStruct("child", inner).AddList("list", []string{"a", "bc", "d,e:f"})
	return m.AddBinary("empty", nil).Add("after", "1")
}

func TestNestedRoundTrip(t *testing.T) {
	m := nested()
	ns, err := EncodeNetstring(m)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := decodeNetstringBody(ns, 0)
	if err != nil || n != len(ns) {
		t.Fatalf("netstring: n=%d/%d err=%v", n, len(ns), err)
	}
	if !equalMessages(got, m) {
		t.Errorf("netstring: got %v\nwant %v", got, m)
	}
	// A nested struct is written as a complete ###…%%% message.
	if !bytes.Contains(ns, []byte("(2)child=###\n")) || !bytes.Contains(ns, []byte("(3)list=1:a,2:bc,5:d,e:f,")) {
		t.Errorf("netstring layout: %q", ns)
	}

	// Classic cannot carry an empty binary (Heartbeat's base64 decoder
	// refuses it), so drop that field for the classic round trip.
	m.Del("empty")
	cl, err := EncodeClassic(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(cl, []byte("\n")) != 6 { // >>> t child list after <<<
		t.Errorf("classic has newlines inside values: %q", cl)
	}
	if !bytes.Contains(cl, []byte("(2)child=>>>\x14t=inner\x14text=line1\x13line2\x14")) {
		t.Errorf("classic struct layout: %q", cl)
	}
	fr, err := Decode(cl)
	if err != nil {
		t.Fatal(err)
	}
	if !equalMessages(fr.Msg, m) {
		t.Errorf("classic: got %v\nwant %v", fr.Msg, m)
	}
}

// equalMessages compares messages treating nil and empty byte slices alike.
func equalMessages(a, b *Message) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		x, y := a.Fields[i], b.Fields[i]
		if x.Name != y.Name || x.Type != y.Type || !bytes.Equal(x.Value, y.Value) || !reflect.DeepEqual(x.List, y.List) {
			return false
		}
		if (x.Struct == nil) != (y.Struct == nil) || (x.Struct != nil && !equalMessages(x.Struct, y.Struct)) {
			return false
		}
	}
	return true
}

func TestClassicFrame(t *testing.T) {
	r := NewKeyring(Key{Num: 2, Method: CRC})
	m := New("status").Add("st", "up").AddUUID(FieldSrcUUID, uuidA)
	pkt, err := r.SealClassic(m)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := CRC.Token(nil, []byte("t=status\nst=up\n(1)srcuuid=jhxdAkp7TCGfChEiM0RVZg==\n"))
	want := ">>>\nt=status\nst=up\n(1)srcuuid=jhxdAkp7TCGfChEiM0RVZg==\nauth=2 " + tok + "\n<<<\n\x00"
	if string(pkt) != want {
		t.Errorf("classic = %q\nwant     %q", pkt, want)
	}
	// Without the trailing NUL it is accepted as well.
	if _, err := r.Open(pkt[:len(pkt)-1]); err != nil {
		t.Error(err)
	}
	// A classic frame without an auth field fails verification.
	plain, _ := EncodeClassic(New("status").Add("st", "up"))
	if _, err := r.Open(plain); !errors.Is(err, ErrNoAuth) {
		t.Errorf("unsigned classic: err = %v, want ErrNoAuth", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := sha1Ring("k").Seal(keepalive())
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.Index(good, []byte("%%%\n")) + 4
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"junk", "hello world", ErrMalformed},
		{"no end", "###\n11:(0)t=status,", ErrMalformed},
		{"no auth", string(good[:end]), ErrNoAuth},
		{"nul instead of auth", string(good[:end]) + "\x00", ErrNoAuth},
		{"short auth", string(good[:end]) + "42:1 ab,", ErrMalformed},
		{"auth not number", string(good[:end]) + "4:x ab,", ErrMalformed},
		{"auth no token", string(good[:end]) + "2:1 ,", ErrMalformed},
		{"garbage after auth", string(good) + "xx", ErrMalformed},
		{"length overrun", "###\n99:(0)t=status,%%%\n", ErrMalformed},
		{"length too long", "###\n123456789:(0)t=x,%%%\n", ErrMalformed},
		{"leading zero", "###\n011:(0)t=status,%%%\n", ErrMalformed},
		{"no colon", "###\n11;(0)t=status,%%%\n", ErrMalformed},
		{"no comma", "###\n11:(0)t=status;%%%\n", ErrMalformed},
		{"no type", "###\n8:t=status,%%%\n", ErrMalformed},
		{"bad type", "###\n11:(9)t=status,%%%\n", ErrMalformed},
		{"no equals", "###\n10:(0)tstatus,%%%\n", ErrMalformed},
		{"empty name", "###\n10:(0)=status,%%%\n", ErrMalformed},
		{"empty string", "###\n5:(0)t=,%%%\n", ErrMalformed},
		{"nul in string", "###\n7:(0)t=a\x00b,%%%\n", ErrMalformed},
		{"compress", "###\n11:(4)t=status,%%%\n", ErrCompression},
		{"uncompress", "###\n11:(5)t=status,%%%\n", ErrCompression},
		{"traditional compression", "###\n11:(0)t=status,30:(0)_compression_algorithm=zlib,%%%\n2:1 x,", ErrCompression},
		{"bad struct", "###\n10:(2)s=###\n%%,%%%\n", ErrMalformed},
		{"struct trailing", "###\n15:(2)s=###\n%%%\nxx,%%%\n", ErrMalformed},
		{"empty list elem", "###\n10:(3)l=0:,1:a,%%%\n", ErrMalformed},
		{"empty list", "###\n5:(3)l=,%%%\n", ErrMalformed},
		{"classic no end", ">>>\nt=status\n", ErrMalformed},
		{"classic bad base64", ">>>\n(1)u=***\n<<<\n", ErrMalformed},
		{"classic empty binary", ">>>\n(1)u=\n<<<\n", ErrMalformed},
		{"classic type 0 prefix", ">>>\n(0)u=x\n<<<\n", ErrMalformed},
		{"classic trailing", ">>>\nt=x\n<<<\nmore", ErrMalformed},
		{"classic compress", ">>>\n(4)u=x\n<<<\n", ErrCompression},
		{"too large", "###\n" + strings.Repeat("x", MaxMessageSize), ErrTooLarge},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestDepthLimit(t *testing.T) {
	m := New("leaf")
	for range MaxDepth - 1 {
		m = New("x").AddStruct("s", m)
	}
	if _, err := EncodeNetstring(m); err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	deep := New("x").AddStruct("s", m)
	if _, err := EncodeNetstring(deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("encode depth %d: err = %v, want ErrTooDeep", MaxDepth+1, err)
	}
	// Hand-build the same too-deep message on the wire.
	inner := []byte("###\n8:(0)t=leaf,%%%\n")
	for range MaxDepth {
		f := append([]byte("(2)s="), inner...)
		inner = append([]byte("###\n"), append(append([]byte(itoa(len(f))+":"), f...), ",%%%\n"...)...)
	}
	if _, _, err := decodeNetstringBody(inner, 0); !errors.Is(err, ErrTooDeep) {
		t.Errorf("decode depth %d: err = %v, want ErrTooDeep", MaxDepth+1, err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestEncodeRejects(t *testing.T) {
	r := sha1Ring("k")
	for name, m := range map[string]*Message{
		"empty value":  New("x").Add("a", ""),
		"nul":          New("x").Add("a", "b\x00"),
		"name with =":  New("x").Add("a=b", "c"),
		"empty name":   New("x").Add("", "c"),
		"paren name":   New("x").Add("(1)a", "c"),
		"empty list":   New("x").AddList("l", nil),
		"compress":     {Fields: []Field{{Name: "c", Type: TypeCompress}}},
		"unknown type": {Fields: []Field{{Name: "c", Type: 7}}},
		"too large":    New("x").AddBinary("big", make([]byte, MaxMessageSize)),
	} {
		if _, err := r.Seal(m); err == nil {
			t.Errorf("%s: Seal succeeded", name)
		}
	}
	if _, err := EncodeClassic(New("x").Add("a", "b\x13c")); err == nil {
		t.Error("classic with 0x13 in a string succeeded")
	}
	if _, err := (&Keyring{Active: 3}).Seal(New("x")); err == nil {
		t.Error("Seal with undefined active key succeeded")
	}
}

func TestMessageHelpers(t *testing.T) {
	m := New("status")
	if err := m.SetUint(FieldSeq, 29); err != nil {
		t.Fatal(err)
	}
	if err := m.SetUint(FieldTTL, 3); err != nil {
		t.Fatal(err)
	}
	if err := m.SetUint(FieldLastSeq, 29); err != nil {
		t.Fatal(err)
	}
	if err := m.SetUint(FieldDeadtime, 5000); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{FieldSeq: "1d", FieldTTL: "3", FieldLastSeq: "29", FieldDeadtime: "1388"} {
		if got, _ := m.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if v, err := m.Uint(FieldDeadtime); err != nil || v != 5000 {
		t.Errorf("Uint(dt) = %d, %v", v, err)
	}
	if err := m.SetUint("src", 1); err == nil {
		t.Error("SetUint(src) succeeded")
	}
	for _, bad := range []string{"", "-1", "+1", "0x1d", " 1d", "1d ", "g", "11111111111111111"} {
		m.Set(FieldSeq, bad)
		if _, err := m.Uint(FieldSeq); err == nil {
			t.Errorf("Uint(seq=%q) succeeded", bad)
		}
	}
	m.AddUUID(FieldSrcUUID, uuidA)
	if u, err := m.UUIDField(FieldSrcUUID); err != nil || u != uuidA {
		t.Errorf("UUIDField = %v, %v", u, err)
	}
	m.AddBinary("short", []byte{1, 2})
	if _, err := m.UUIDField("short"); err == nil {
		t.Error("15-byte uuid accepted")
	}
	if got := uuidA.String(); got != "8e1c5d02-4a7b-4c21-9f0a-112233445566" {
		t.Errorf("UUID.String = %s", got)
	}
	if got := NodeName("NodeA.Example-1"); got != "nodea.example-1" {
		t.Errorf("NodeName = %q", got)
	}
	if !m.Del(FieldSeq) || m.Del(FieldSeq) {
		t.Error("Del")
	}
	if m.Type() != "status" {
		t.Errorf("Type = %q", m.Type())
	}
	c := m.Clone()
	c.Fields[0].Value[0] = 'X'
	if m.Type() != "status" {
		t.Error("Clone shares memory")
	}
}
