package checks

import (
	"fmt"
	"regexp"
)

// receiveRE is ldirectord's receive pattern: an unanchored regular
// expression. It is compiled with Go's RE2 syntax, which covers the Perl
// patterns seen in ldirectord configurations; constructs RE2 lacks
// (backreferences, lookaround) are a configuration error, never a silent
// mismatch.
type receiveRE struct {
	src string
	re  *regexp.Regexp
}

func compileReceive(src string) (*receiveRE, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("receive %q is not a regular expression this implementation accepts: %w", src, err)
	}
	return &receiveRE{src: src, re: re}, nil
}

// match reports whether b contains a match. Perl's `$` (without /m) also
// matches just before a final newline while RE2's matches only at the end,
// so a pattern like "OK$" against "OK\n" is retried without that newline.
func (r *receiveRE) match(b []byte) bool {
	if r.re.Match(b) {
		return true
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return r.re.Match(b[:n-1])
	}
	return false
}

func (r *receiveRE) String() string { return "/" + r.src + "/" }
