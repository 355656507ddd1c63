package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser. It must never panic, and
// its two outcomes must be consistent: either a Config and no error, or no
// Config and an ErrorList whose every entry names a line of the input.
// The seeds are the differential corpus plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(ldirectordCorpus, "*.cf"))
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		opts := testOptions()
		cfg, err := Parse(context.Background(), "fuzz.cf", src, opts)
		lines := len(splitLines(src))
		if err != nil {
			if cfg != nil {
				t.Fatalf("both a config and an error: %v", err)
			}
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, e := range l {
				if e.Line < 1 || e.Line > lines || e.File != "fuzz.cf" || e.Msg == "" {
					t.Fatalf("bad error position or message (%d lines): %#v", lines, e)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("no config and no error")
		}
		for _, v := range cfg.Virtuals {
			if v.Line < 1 || v.Line > lines {
				t.Fatalf("virtual line %d out of 1..%d", v.Line, lines)
			}
			if (v.Protocol == FWM) == v.Addr.IsValid() {
				t.Fatalf("protocol %v with address %v", v.Protocol, v.Addr)
			}
			if v.Addr.IsValid() && v.Addr.Is6() != v.IPv6 {
				t.Fatalf("virtual6=%v with address %v", v.IPv6, v.Addr)
			}
			if !strings.HasPrefix(v.Request, "/") || v.Scheduler == "" || v.CheckTimeout <= 0 || v.NegotiateTimeout <= 0 ||
				v.CheckInterval <= 0 || v.FailureCount < 1 || v.CheckCount < 1 {
				t.Fatalf("a default is unresolved: %+v", v)
			}
			if v.HTTPMethod != "GET" && v.HTTPMethod != "HEAD" {
				t.Fatalf("httpmethod %q", v.HTTPMethod)
			}
			if v.Fallback != nil && v.Fallback.Addr.Is6() != v.IPv6 {
				t.Fatalf("fallback %v for virtual6=%v", v.Fallback.Addr, v.IPv6)
			}
			for _, r := range v.Reals {
				if !r.Addr.IsValid() || r.Addr.Is6() != v.IPv6 || r.Weight < 0 || !strings.HasPrefix(r.Request, "/") {
					t.Fatalf("bad real %+v in %+v", r, v)
				}
				if r.Line < v.Line || r.Line > lines {
					t.Fatalf("real line %d outside its block (virtual at %d, %d lines)", r.Line, v.Line, lines)
				}
			}
		}
	})
}
