package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Handler carries out the commands. Its methods are called concurrently, one
// goroutine per connection.
type Handler interface {
	Status(ctx context.Context) (*Status, error)
	Standby(ctx context.Context, which string) (string, error)
	Takeover(ctx context.Context, which string) (string, error)
	Reload(ctx context.Context) (string, error)
}

// Limits of one exchange. A command that moves resources (standby, takeover)
// may take as long as stopping or starting them does.
const (
	readTimeout    = 5 * time.Second
	commandTimeout = 2 * time.Minute
	maxRequest     = 64 << 10
)

// Server serves Handler on a Unix socket.
type Server struct {
	ln   *net.UnixListener
	path string
	h    Handler
	log  *slog.Logger
	// allowUID is the one non-root user the server also answers: its own,
	// so that tests run by a user work. Root is always allowed.
	allowUID uint32
}

// Listen creates the socket at path with mode 0600 (the mode is set before
// the socket accepts connections, so there is no window in which another user
// could connect) and returns a Server for h. A socket file left by a daemon
// that died is replaced; one that a running daemon answers on is an error, so
// that two daemons never share a socket.
func Listen(path string, h Handler, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return nil, fmt.Errorf("control socket %s: %w (does its directory exist?)", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := syscall.Listen(fd, 16); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	// The file is ours to remove on Close, as for a socket made by Listen.
	ul.SetUnlinkOnClose(true)
	return &Server{ln: ul, path: path, h: h, log: logger, allowUID: uint32(os.Geteuid())}, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: exists and is not a socket; remove it or choose another --socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another directord is answering on it; stop it first or choose another --socket", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers connections until ctx ends, then closes the listener (which
// removes the socket file) and waits for the exchanges in progress.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends: back off instead of spinning.
			s.log.Warn("control socket: accept failed", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

// Close stops accepting and removes the socket file.
func (s *Server) Close() error { return s.ln.Close() }

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(readTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxRequest), 4096).ReadBytes('\n')
	if uid, ok := peerUID(c); !ok || (uid != 0 && uid != s.allowUID) {
		// The file mode keeps others out already; this guards against a
		// socket whose mode an administrator loosened. (The request was
		// read, unparsed, so that the client gets the answer instead of a
		// broken pipe.)
		writeResponse(c, &Response{Version: Version, Error: "permission denied: the control socket is for root"})
		return
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		writeResponse(c, &Response{Version: Version, Error: fmt.Sprintf("reading the request: %v", err)})
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(c, &Response{Version: Version, Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	resp := s.dispatch(cctx, req)
	c.SetWriteDeadline(time.Now().Add(readTimeout))
	writeResponse(c, resp)
}

func (s *Server) dispatch(ctx context.Context, req Request) *Response {
	resp := &Response{Version: Version}
	which := req.Which
	if which == "" {
		which = WhichAll
	}
	var err error
	switch req.Command {
	case CmdStatus:
		resp.Status, err = s.h.Status(ctx)
	case CmdStandby, CmdTakeover:
		if !ValidWhich(which) {
			resp.Error = fmt.Sprintf("%s %q: expected all, foreign, local or failback", req.Command, req.Which)
			return resp
		}
		s.log.Info("Control socket: "+req.Command+" ["+which+"] requested", "command", req.Command, "which", which)
		if req.Command == CmdStandby {
			resp.Message, err = s.h.Standby(ctx, which)
		} else {
			resp.Message, err = s.h.Takeover(ctx, which)
		}
	case CmdReload:
		s.log.Info("Control socket: reload requested")
		resp.Message, err = s.h.Reload(ctx)
	default:
		resp.Error = fmt.Sprintf("unknown command %q (this daemon knows status, standby, takeover, reload)", req.Command)
		return resp
	}
	if err != nil {
		resp.Error = err.Error()
		return resp
	}
	resp.OK = true
	return resp
}

func writeResponse(w io.Writer, r *Response) {
	data, err := json.Marshal(r)
	if err != nil {
		data, _ = json.Marshal(&Response{Version: Version, Error: "encoding the response: " + err.Error()})
	}
	w.Write(append(data, '\n'))
}

func peerUID(c *net.UnixConn) (uint32, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return cred.Uid, true
}
