package config

import (
	"bytes"
	"io"
	"strconv"
	"strings"
)

// maxReparse bounds how many bad lines of one file are reported.
const maxReparse = 50

// parseCollect runs one of Heartbeat's file parsers, which stop at their
// first error, so that one run still reports every bad line: after an error
// at a line it blanks that line (with continues, also the lines a trailing
// backslash joins to it, as in haresources) and parses again. An error
// that is not below the blanked line (one without a line, or from the
// checks at the end of the file) is dropped: it may only be a consequence
// of the blanked line ("no nodes" after a bad node line, "key 1 is not
// defined" after a bad key line), and the next run, with the lines fixed,
// reports it if it is real. The result is
// the parser's only when the file has no error at all.
func parseCollect[T any](p *problems, path string, src []byte, continues bool, parse func(io.Reader, string) (T, error)) (T, bool) {
	v, err := parse(bytes.NewReader(src), path)
	if err == nil {
		return v, true
	}
	p.foreign(path, err)
	lines := strings.Split(string(src), "\n")
	prev := 0
	for range maxReparse {
		n := errorLine(path, err)
		if n <= 0 || n > len(lines) || n == prev {
			break
		}
		prev = n
		for i := n - 1; i < len(lines); i++ {
			joined := continues && strings.HasSuffix(strings.TrimRight(lines[i], "\r"), `\`)
			lines[i] = ""
			if !joined {
				break
			}
		}
		_, err = parse(strings.NewReader(strings.Join(lines, "\n")), path)
		// The parsers read top to bottom, so the next real bad line is
		// below this one; an error above it comes from the checks at the
		// end of the file and may be a consequence of the blanked line.
		if err == nil || errorLine(path, err) <= n {
			break
		}
		p.foreign(path, err)
	}
	var zero T
	return zero, false
}

// errorLine is the line of a "path:line: …" error, 0 when it has none.
func errorLine(path string, err error) int {
	rest, ok := strings.CutPrefix(err.Error(), path+":")
	if !ok {
		return 0
	}
	num, _, found := strings.Cut(rest, ":")
	n, cerr := strconv.Atoi(num)
	if !found || cerr != nil {
		return 0
	}
	return n
}
