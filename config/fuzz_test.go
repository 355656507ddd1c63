package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseYAML checks that no input makes the YAML front end panic or hang,
// that a rejected input yields errors and no Config, and that an accepted
// one survives MarshalYAML and ParseYAML unchanged.
func FuzzParseYAML(f *testing.F) {
	for _, name := range []string{"testdata/seed003/directord.yaml", "testdata/full/directord.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("cluster:\n  nodes: [a, b]\n  media: [{mcast: eth0, group: 239.1.2.3, ttl: 1}]\n  auto_failback: off\nauth: {method: crc}\ngroups: [{owner: a, resources: [{vip: 2001:db8::1/64/eth0}, {script: {name: x, args: [y]}}]}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("--- \n...\n---\n"))
	// An empty directory: relative lnoded paths find nothing, and nothing
	// outside is read twice in a way that could differ.
	dir := f.TempDir()
	name := filepath.Join(dir, "fuzz.yaml")
	f.Fuzz(func(t *testing.T, src []byte) {
		opts := &Options{AnyNode: true, Lnoded: hermetic("").Lnoded}
		c, err := ParseYAML(context.Background(), name, src, opts)
		if err != nil {
			if c != nil {
				t.Fatal("a Config and an error")
			}
			if l, ok := AsErrorList(err); !ok || len(l) == 0 {
				t.Fatalf("error %v is not a non-empty ErrorList", err)
			}
			return
		}
		y, err := MarshalYAML(c)
		if err != nil {
			t.Fatalf("MarshalYAML of an accepted config: %v", err)
		}
		back, err := ParseYAML(context.Background(), name, y, opts)
		if err != nil {
			t.Fatalf("re-parsing\n%s\nfailed: %v", y, err)
		}
		if d := cmp.Diff(c, back, sameModel); d != "" {
			t.Fatalf("round trip changed the model:\n%s\n%s", d, y)
		}
	})
}
