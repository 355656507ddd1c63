package config_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/lnoded/config"
)

// TestLdirectordAlertMail lets Debian's ldirectord send its e-mail alerts
// over smtp=127.0.0.1 (port 25, which its smtp= cannot change) to a server
// this test runs on the loopback address, and holds them to the format
// lnoded's alerts are tested for in lnoded/alert_test.go: the envelope,
// the headers, and the body lines.
func TestLdirectordAlertMail(t *testing.T) {
	if _, err := os.Stat(config.LdirectordPath); err != nil {
		t.Skipf("%s is absent (apt-get install ldirectord): the alert comparison did not run", config.LdirectordPath)
	}
	if testing.Short() {
		t.Skip("starts ldirectord; skipped in -short mode")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:25")
	if err != nil {
		t.Fatalf("the test's SMTP server needs 127.0.0.1:25: %v", err)
	}
	var (
		mu    sync.Mutex
		mails []string // envelope lines, then the data
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 sink ESMTP\r\n")
				var env []string
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.TrimRight(l, "\r\n")
					switch {
					case strings.EqualFold(cmd, "DATA"):
						fmt.Fprint(c, "354 go\r\n")
						var b strings.Builder
						for {
							d, err := r.ReadString('\n')
							if err != nil || d == ".\r\n" {
								break
							}
							b.WriteString(d)
						}
						mu.Lock()
						mails = append(mails, strings.Join(env, "\n")+"\n\n"+b.String())
						mu.Unlock()
						fmt.Fprint(c, "250 queued\r\n")
					case strings.EqualFold(cmd, "QUIT"):
						fmt.Fprint(c, "221 bye\r\n")
						return
					default:
						if strings.HasPrefix(strings.ToUpper(cmd), "MAIL") || strings.HasPrefix(strings.ToUpper(cmd), "RCPT") {
							env = append(env, cmd)
						}
						fmt.Fprint(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	defer func() { ln.Close(); wg.Wait() }()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	src := "checkinterval=60\nemailalert=\"ops@example.com\"\nemailalertfrom=lnoded@example.com\nsmtp=127.0.0.1\n" +
		"virtual=127.0.0.2:8080\n    real=127.0.0.1:" + port + " gate\n    service=http\n    servicename=web\n    comment=public web\n"
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), mails...)
	}
	config.RunLdirectordStart(t, self, "alert.cf", []byte(src), func(*config.FakeTable) bool { return len(got()) > 0 })
	ms := got()
	if len(ms) == 0 {
		t.Fatal("ldirectord sent no alert")
	}
	host, _ := os.Hostname()
	subject := "[web] Added real server: 127.0.0.1:" + port + " (127.0.0.2:8080) (Weight set to 1)"
	// What lnoded/alert_test.go requires of lnoded's mail, in ldirectord's
	// words (lnoded adds a Date header and sends CRLF, as SMTP wants).
	want := "MAIL FROM:<root@" + host + ">\nRCPT TO:<ops@example.com>\n\n" +
		"From: lnoded@example.com\r\nTo: ops@example.com\r\nSubject: " + subject + "\r\n\r\n" +
		"ldirectord host: " + host + "\r\nLog-Message: " + subject + "\r\nDaemon-Status: starting\r\n" +
		"\r\nService name: web\r\nComment: public web\r\n\r\n"
	for _, m := range ms {
		t.Logf("ldirectord sent:\n%s", m)
	}
	if ms[0] != want {
		t.Errorf("ldirectord's first alert:\n%q\nwant\n%q", ms[0], want)
	}
}
