package main

import (
	"fmt"
	"io"
	"strconv"
)

// arWriter writes a Unix ar archive in the common format dpkg-deb reads:
// the "!<arch>\n" magic, then per member a 60-byte header and the data,
// padded to an even length with "\n". Names are at most 16 bytes (a .deb's
// are debian-binary, control.tar.gz, data.tar.gz), so neither the GNU nor
// the BSD long-name extension is needed.
type arWriter struct {
	w       io.Writer
	started bool
}

func newArWriter(w io.Writer) *arWriter { return &arWriter{w: w} }

// add writes one member. mtime is in seconds since the epoch.
func (a *arWriter) add(name string, mtime int64, mode uint32, data []byte) error {
	if !a.started {
		if _, err := io.WriteString(a.w, "!<arch>\n"); err != nil {
			return err
		}
		a.started = true
	}
	if len(name) == 0 || len(name) > 16 {
		return fmt.Errorf("ar: member name %q is not 1..16 bytes", name)
	}
	fields := []struct {
		v     string
		width int
	}{
		{name, 16},
		{strconv.FormatInt(mtime, 10), 12},
		{"0", 6}, // uid
		{"0", 6}, // gid
		{strconv.FormatUint(uint64(mode), 8), 8},
		{strconv.Itoa(len(data)), 10},
	}
	hdr := make([]byte, 0, 60)
	for _, f := range fields {
		if len(f.v) > f.width {
			return fmt.Errorf("ar: %s: field %q wider than %d", name, f.v, f.width)
		}
		hdr = append(hdr, f.v...)
		for i := len(f.v); i < f.width; i++ {
			hdr = append(hdr, ' ')
		}
	}
	hdr = append(hdr, '`', '\n')
	if _, err := a.w.Write(hdr); err != nil {
		return err
	}
	if _, err := a.w.Write(data); err != nil {
		return err
	}
	if len(data)%2 == 1 {
		_, err := a.w.Write([]byte{'\n'})
		return err
	}
	return nil
}
