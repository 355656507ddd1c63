package authkeys

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directord/directord/heartbeat/wire"
)

func TestParse(t *testing.T) {
	in := `# authkeys
auth 2   # the signing key

1 sha1 key-for-sha1-any-text-you-want
	2 md5 m5key # trailing comment
3 crc
`
	r, err := Parse(strings.NewReader(in), "authkeys")
	if err != nil {
		t.Fatal(err)
	}
	if r.Active != 2 || len(r.Keys) != 3 {
		t.Fatalf("active %d, %d keys", r.Active, len(r.Keys))
	}
	want := map[int]wire.Key{
		1: {Num: 1, Method: wire.SHA1, Secret: []byte("key-for-sha1-any-text-you-want")},
		2: {Num: 2, Method: wire.MD5, Secret: []byte("m5key")},
		3: {Num: 3, Method: wire.CRC},
	}
	for n, w := range want {
		g := r.Keys[n]
		if g.Num != w.Num || g.Method != w.Method || string(g.Secret) != string(w.Secret) {
			t.Errorf("key %d = %+v, want %+v", n, g, w)
		}
	}
	// The parsed keyring signs with key 2.
	pkt, err := r.Seal(wire.New("status").Add("st", "up"))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := wire.Decode(pkt)
	if err != nil || fr.AuthNum != 2 {
		t.Fatalf("Decode: %+v %v", fr, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1 crc\n", "authkeys: no \"auth N\""},
		{"auth 1\n", "authkeys:1: auth 1: key 1 is not defined"},
		{"auth 1\nauth 1\n1 crc\n", "authkeys:2: second auth line"},
		{"auth\n1 crc\n", "authkeys:1: want \"auth N\""},
		{"auth x\n", "authkeys:1: auth: key number \"x\""},
		{"auth 16\n", "authkeys:1: auth: key number \"16\" is not 0..15"},
		{"auth 1\n1 sha1\n", "authkeys:2: method sha1 needs a key"},
		{"auth 1\n1 md5\n", "authkeys:2: method md5 needs a key"},
		{"auth 1\n1 crc key\n", "authkeys:2: method crc takes no key"},
		{"auth 1\n1 sha1 two words\n", "authkeys:2: key must be one word"},
		{"auth 1\n1 sha256 k\n", "authkeys:2: unknown authentication method \"sha256\""},
		{"auth 1\n1 crc\n1 crc\n", "authkeys:3: key 1 defined twice"},
		{"auth 1\n-1 crc\n", "authkeys:2: key number \"-1\""},
		{"auth 1\n1\n", "authkeys:2: want \"N crc\""},
		{"auth 1\n1 crc\n" + strings.Repeat("x", 5000) + "\n", "authkeys:3: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in), "authkeys")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want prefix %q", tt.in, err, tt.want)
		}
	}
}

func TestLoadPermissions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "authkeys")
	if err := os.WriteFile(p, []byte("auth 1\n1 sha1 k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatalf("mode 600: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Errorf("mode %04o: err = %v, want ErrPermissions naming chmod 600", mode, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file loaded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("auth 1\n1 sha1 key\n")
	f.Add("# c\nauth 3\n3 crc\n2 md5 x # y\n")
	f.Add("auth 15\n15 md5 k\n0 crc\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(strings.NewReader(in), "authkeys")
		if err != nil {
			return
		}
		k, ok := r.Keys[r.Active]
		if !ok || k.Method.NeedsKey() != (len(k.Secret) > 0) {
			t.Fatalf("inconsistent keyring %+v", r)
		}
		if _, err := r.Seal(wire.New("x")); err != nil {
			t.Fatalf("parsed keyring cannot sign: %v", err)
		}
	})
}
