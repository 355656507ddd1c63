package lnoded

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// RunFile runs the lnoded.cf at path in the foreground until ctx ends, as
// `directord lnoded --config PATH` does (and as `ldirectord -d` does): it
// parses the file (an invalid file is an error and nothing is programmed),
// watches it for changes (autoreload, callback), reloads it whenever reload
// receives, and on ctx's end stops with cleanstop semantics.
func RunFile(ctx context.Context, path string, h *ipvs.Handle, logger *slog.Logger, reload <-chan struct{}, opts ...Option) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.ParseFile(ctx, path, nil)
	if err != nil {
		return err // an ErrorList naming each bad line
	}
	m, err := New(cfg, h, logger, opts...)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := m.WatchFile(wctx, path, time.Second, nil); err != nil {
			logger.Error(err.Error())
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-wctx.Done():
				return
			case <-reload:
				logger.Info("Reloading lnoded config on signal")
				m.ReloadFile(wctx, path, nil)
			}
		}
	}()
	return m.Run(ctx)
}
