package lnoded

import (
	"context"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

// commandTimeout bounds one fallbackcommand or callback run. ldirectord
// waits for ever; a hung script must not hold up lnoded.
const commandTimeout = 60 * time.Second

// commander runs shell commands one at a time, in order, on a goroutine of
// its own, so that a slow fallbackcommand does not hold up IPVS updates.
type commander struct {
	shell string
	log   *slog.Logger
	queue chan string
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

func newCommander(shell string, log *slog.Logger) *commander {
	ctx, stop := context.WithCancel(context.Background())
	c := &commander{shell: shell, log: log, queue: make(chan string, 64), ctx: ctx, stop: stop}
	c.wg.Add(1)
	go c.loop()
	return c
}

// run queues cmd, a command line for the shell (as ldirectord's system()
// gets it).
func (c *commander) run(cmd string) {
	select {
	case c.queue <- cmd:
	default:
		c.log.Error("command queue full, not running: " + cmd)
	}
}

func (c *commander) loop() {
	defer c.wg.Done()
	for cmd := range c.queue {
		runShell(c.ctx, c.shell, cmd, c.log)
	}
}

// close runs what is queued (each bounded by commandTimeout) and returns.
func (c *commander) close() {
	close(c.queue)
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(commandTimeout):
		c.stop()
		<-done
	}
	c.stop()
}

// runShell runs cmd with shell -c, logging as ldirectord's system_wrapper.
func runShell(ctx context.Context, shell, cmd string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	log.Info("Running system(" + cmd + ")")
	out, err := exec.CommandContext(ctx, shell, "-c", cmd).CombinedOutput()
	if err != nil {
		log.Error("system("+cmd+") failed: "+err.Error(), "output", string(out))
	}
	return err
}
