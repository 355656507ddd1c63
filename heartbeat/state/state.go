// Package state keeps a node's identity across restarts in Heartbeat's
// own files, so that directord taking over a node keeps the uuid and
// generation its peers know: /var/lib/heartbeat/hb_uuid (16 raw bytes)
// and /var/lib/heartbeat/hb_generation (the generation in decimal,
// right-aligned in 15 columns, then a newline, e.g. "     1795307955\n").
package state

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/directord/directord/heartbeat/wire"
)

// Default paths, as Debian's heartbeat uses them.
const (
	DefaultDir     = "/var/lib/heartbeat"
	UUIDFile       = "hb_uuid"
	GenerationFile = "hb_generation"
)

// LoadOrCreateUUID returns the uuid stored at path, creating a random one
// (as Heartbeat does on first start) when the file does not exist.
func LoadOrCreateUUID(path string) (wire.UUID, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != len(wire.UUID{}) {
			return wire.UUID{}, fmt.Errorf("%s: %d bytes, want a 16-byte uuid", path, len(b))
		}
		u := wire.UUID(b)
		if u.IsZero() {
			return wire.UUID{}, fmt.Errorf("%s: all-zero uuid", path)
		}
		return u, nil
	case !errors.Is(err, fs.ErrNotExist):
		return wire.UUID{}, err
	}
	var u wire.UUID
	if _, err := rand.Read(u[:]); err != nil {
		return wire.UUID{}, err
	}
	// RFC 4122 version 4, as libuuid's random uuids are.
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	if err := writeAtomic(path, u[:]); err != nil {
		return wire.UUID{}, err
	}
	return u, nil
}

// NextGeneration reads the generation stored at path, stores and returns
// one more. Without a file it starts from the current time in seconds, as
// Heartbeat does ("No Previous generation - starting at …"). A peer that
// sees a higher generation treats the node as restarted, so the new value
// is on disk before it is returned.
func NextGeneration(path string, now func() time.Time) (uint64, error) {
	var gen uint64
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		g, perr := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if perr != nil || g == 0 {
			return 0, fmt.Errorf("%s: bad generation %q", path, bytes.TrimSpace(b))
		}
		gen = g + 1
	case errors.Is(err, fs.ErrNotExist):
		gen = uint64(now().Unix())
	default:
		return 0, err
	}
	if err := writeAtomic(path, []byte(fmt.Sprintf("%15d\n", gen))); err != nil {
		return 0, err
	}
	return gen, nil
}

// Generation returns the generation stored at path without changing it, for
// a node that resumes the generation it already announced.
func Generation(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	g, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || g == 0 {
		return 0, fmt.Errorf("%s: bad generation %q", path, bytes.TrimSpace(b))
	}
	return g, nil
}

// writeAtomic replaces path with data, durably: a crash leaves either the
// old or the new content.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
