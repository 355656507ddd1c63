package wire_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/directord/directord/heartbeat/authkeys"
	"github.com/directord/directord/heartbeat/wire"
)

// Packets in testdata/heartbeat-3.0.6/<method>/ were sent over ucast by
// Debian's heartbeat 1:3.0.6-13+b2 (node "nodeA", start-up with no peer:
// status init/up/active, NS_ackmsg, starting, resource, stonith,
// ip-request-resp) with the authkeys file beside them.
func TestRealHeartbeatPackets(t *testing.T) {
	for _, method := range []string{"sha1", "md5", "crc"} {
		t.Run(method, func(t *testing.T) {
			dir := filepath.Join("testdata", "heartbeat-3.0.6", method)
			ak, err := os.ReadFile(filepath.Join(dir, "authkeys"))
			if err != nil {
				t.Fatal(err)
			}
			ring, err := authkeys.Parse(bytes.NewReader(ak), "authkeys")
			if err != nil {
				t.Fatal(err)
			}
			wrong := &wire.Keyring{Active: ring.Active, Keys: map[int]wire.Key{}}
			for n, k := range ring.Keys {
				k.Secret = append(bytes.Clone(k.Secret), 'x')
				wrong.Keys[n] = k
			}
			pkts, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
			if len(pkts) < 20 {
				t.Fatalf("only %d packets", len(pkts))
			}
			types := map[string]int{}
			for _, p := range pkts {
				pkt, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				fr, err := wire.Decode(pkt)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				types[fr.Msg.Type()]++
				if err := ring.Verify(fr); err != nil {
					t.Errorf("%s: trailing auth: %v", p, err)
				}
				if method != "crc" {
					if err := wrong.Verify(fr); !errors.Is(err, wire.ErrAuth) {
						t.Errorf("%s: wrong key: err = %v", p, err)
					}
				}
				// The in-message auth field verifies as a classic frame.
				cl, err := wire.EncodeClassic(fr.Msg)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				cfr, err := wire.Decode(cl)
				if err != nil {
					t.Fatalf("%s: classic: %v", p, err)
				}
				if err := ring.Verify(cfr); err != nil {
					t.Errorf("%s: auth field: %v", p, err)
				}
				// Resealing the decoded message reproduces the datagram
				// byte for byte.
				again, err := ring.Seal(fr.Msg.Clone())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, pkt) {
					t.Errorf("%s: resealed differs:\n%q\n%q", p, pkt, again)
				}
				if src, _ := fr.Msg.Get(wire.FieldSrc); src != "nodea" {
					t.Errorf("%s: src = %q, want lowercased nodea", p, src)
				}
				if _, err := fr.Msg.UUIDField(wire.FieldSrcUUID); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
			for _, typ := range []string{"status", "NS_ackmsg", "starting", "resource"} {
				if types[typ] == 0 {
					t.Errorf("no %s packet among %v", typ, types)
				}
			}
		})
	}
}
