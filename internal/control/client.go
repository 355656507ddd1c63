package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrNoDaemon means no daemon listens on the socket: the file is missing or
// nothing accepts connections on it. `directord status` then reads the
// kernel instead.
var ErrNoDaemon = errors.New("no directord daemon is running")

// maxResponse bounds a response; a status with thousands of real servers is
// well under it.
const maxResponse = 64 << 20

// Do sends req to the daemon on the socket at path and returns its response.
// A response with OK false is returned as it is, not as an error: the error
// is for failing to talk to the daemon at all (ErrNoDaemon among them).
func Do(ctx context.Context, path string, req Request) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w (no one answers on %s)", ErrNoDaemon, path)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("control socket %s: permission denied: run as root", path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append(data, '\n')); err != nil {
		return nil, fmt.Errorf("control socket %s: sending the request: %w", path, err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxResponse)).ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("control socket %s: reading the response: %w", path, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control socket %s: bad response: %w", path, err)
	}
	return &resp, nil
}
