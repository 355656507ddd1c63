package netns

import (
	"io"
	"net"
	"sync"
)

// Serve accepts connections on ln until ln is closed and runs handle for
// each on its own goroutine (handle closes the connection). stop closes ln
// and every connection still open (a test's peer may be gone without a FIN:
// a moved VIP, a cut link), and waits until the accept loop and every
// handler have returned.
func Serve(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				mu.Lock()
				delete(open, c)
				mu.Unlock()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// Echo is a Serve handler that sends back what it receives until the peer
// closes.
func Echo(c net.Conn) {
	defer c.Close()
	io.Copy(c, c)
}
