package lnoded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/directord/directord/lnoded/config"
)

// ReloadFile parses the lnoded.cf at path and, if it is valid, reloads the
// module with it (see Reload). A file with errors changes nothing: each
// error is logged with its file and line, and returned.
func (m *Module) ReloadFile(ctx context.Context, path string, opts *config.Options) error {
	cfg, err := config.ParseFile(ctx, path, opts)
	if err == nil {
		err = m.Reload(cfg)
	}
	if err != nil {
		if list, ok := config.AsErrorList(err); ok {
			for _, e := range list {
				m.log.Error(e.Error())
			}
		} else {
			m.log.Error(err.Error())
		}
		m.log.Error("Configuration file '" + path + "' not loaded; the running configuration stays in force")
		return err
	}
	return nil
}

// WatchFile watches the lnoded.cf at path until ctx ends, as ldirectord's
// check_cfgfile does: when the file's content changes, it logs so, reloads
// the file if the running configuration says autoreload=yes (a file with
// errors changes nothing), and runs the configured callback with the file's
// name. It polls the file's modification time and size every interval
// (default 1 s) and compares a checksum when they change, so editors that
// replace the file are seen too.
func (m *Module) WatchFile(ctx context.Context, path string, interval time.Duration, opts *config.Options) error {
	if interval <= 0 {
		interval = time.Second
	}
	st, sum, err := fileSum(path)
	if err != nil {
		return fmt.Errorf("lnoded: watch %s: %w", path, err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // being replaced; ldirectord waits too
		}
		if st != nil && fi.ModTime().Equal(st.ModTime()) && fi.Size() == st.Size() {
			continue
		}
		nst, nsum, err := fileSum(path)
		if err != nil {
			continue
		}
		st = nst
		if bytes.Equal(nsum, sum) {
			continue
		}
		sum = nsum
		m.log.Info("Configuration file '" + path + "' has changed on disk")
		cur := m.Config()
		if cur.Global.AutoReload {
			m.log.Info(" - reread new configuration")
			m.ReloadFile(ctx, path, opts)
		} else {
			m.log.Info(" - ignore new configuration")
		}
		// ldirectord reads callback from the configuration in force now.
		if cb := m.Config().Global.Callback; cb != "" {
			if fi, err := os.Stat(cb); err == nil && fi.Mode()&0o111 != 0 {
				runShell(ctx, m.opts.shell, cb+" "+path, m.log)
			}
		}
	}
}

func fileSum(path string) (os.FileInfo, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, nil, err
	}
	return fi, h.Sum(nil), nil
}
