package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary datagrams to the decoder. Anything it
// accepts must re-encode in the same format to a message that decodes
// back identically, and verification must never panic.
func FuzzDecode(f *testing.F) {
	r := sha1Ring("k")
	if pkt, err := r.Seal(keepalive()); err == nil {
		f.Add(pkt)
	}
	if pkt, err := r.SealClassic(keepalive()); err == nil {
		f.Add(pkt)
	}
	n := nested()
	if pkt, err := r.Seal(n.Clone()); err == nil {
		f.Add(pkt)
	}
	n.Del("empty")
	if pkt, err := r.SealClassic(n); err == nil {
		f.Add(pkt)
	}
	f.Add([]byte("###\n8:(0)t=leaf,%%%\n6:1 abcd,"))
	f.Add([]byte(">>>\nt=x\n<<<\n\x00"))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fr, err := Decode(pkt)
		if err != nil {
			return
		}
		_ = r.Verify(fr)
		var again []byte
		switch fr.Format {
		case Netstring:
			again, err = EncodeNetstring(fr.Msg)
			if err != nil {
				t.Fatalf("decoded netstring message does not re-encode: %v\n%v", err, fr.Msg)
			}
			// The decoder accepts only canonical frames, so the signed
			// bytes must re-encode exactly: what was verified is what
			// the message says.
			if !bytes.Equal(again, fr.Signed) {
				t.Fatalf("re-encoding differs:\n%q\n%q", fr.Signed, again)
			}
			m2, _, err := decodeNetstringBody(again, 0)
			if err != nil || !equalMessages(m2, fr.Msg) {
				t.Fatalf("round trip: %v\n%v\n%v", err, fr.Msg, m2)
			}
		case Classic:
			again, err = EncodeClassic(fr.Msg)
			if err != nil {
				t.Fatalf("decoded classic message does not re-encode: %v\n%v", err, fr.Msg)
			}
			fr2, err := Decode(again)
			if err != nil || !equalMessages(fr2.Msg, fr.Msg) {
				t.Fatalf("round trip: %v\n%v\n%v", err, fr.Msg, fr2)
			}
		}
	})
}
